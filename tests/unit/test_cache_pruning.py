"""Pruning registry_cache/ and onnx_cache/: real folders, a real MLflow registry and warehouse,
and a real ONNX export of a (tiny, one-step) fine-tuned model."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from sentiment_assets.lib.models.model_bundle import ModelCard
from sentiment_assets.lib.settings import DEFAULT_CACHE_KEEP_NEWEST, Settings, load_settings
from sentiment_assets.lib.store.warehouse import connect, ensure_schema
from sentiment_assets.lib.versions import cache_pruning, registry
from sentiment_assets.lib.versions.cache_pruning import (
    prune_caches,
    prune_caches_safely,
    prune_onnx_cache,
    prune_registry_cache,
    versions_to_keep,
)
from sentiment_assets.lib.versions.promotion import (
    PROMOTED,
    PromotionRecord,
    record_champion_change,
)


def version_folders(cache: Path) -> list[str]:
    names = [p.name for p in cache.iterdir() if p.name[:1] == "v" and p.name[1:].isdigit()]
    return sorted(names, key=lambda name: int(name[1:]))


def fill_cache(cache: Path, versions) -> None:
    for version in versions:
        folder = cache / f"v{version}"
        folder.mkdir(parents=True)
        (folder / "card.json").write_text(f"card of {version}")


# ------------------------------------------------------------------ which versions stay
@pytest.mark.parametrize(
    ("champion", "previous", "newest_n", "expected"),
    [
        ("3", "1", 2, {"1", "3", "9", "10"}),
        ("10", "9", 2, {"9", "10"}),  # champion and previous among the newest: no extras
        ("4", None, 3, {"4", "8", "9", "10"}),  # no earlier champion yet
        ("2", "5", 0, {"2", "5"}),
        (None, None, 1, {"10"}),
    ],
)
def test_versions_to_keep_is_champion_previous_and_the_newest_n(
    champion, previous, newest_n, expected
):
    # Unordered, and compared as numbers: "10" is newer than "9".
    all_versions = ["10", "2", "1", "9", "3", "4", "5", "6", "7", "8"]
    assert versions_to_keep(all_versions, champion, previous, newest_n) == expected


def test_the_number_of_newest_versions_comes_from_the_environment():
    home = {"SENTIMENT_HOME": "/tmp/sentiment-home"}
    assert load_settings(home).cache_keep_newest == DEFAULT_CACHE_KEEP_NEWEST == 6
    settings = load_settings({**home, "SENTIMENT_CACHE_KEEP_VERSIONS": "2"})
    assert settings.cache_keep_newest == 2
    assert settings.environment()["SENTIMENT_CACHE_KEEP_VERSIONS"] == "2"  # to child processes
    with pytest.raises(ValueError, match="SENTIMENT_CACHE_KEEP_VERSIONS must be positive"):
        load_settings({**home, "SENTIMENT_CACHE_KEEP_VERSIONS": "0"})


# --------------------------------------------------------------------- the bundle cache
def test_pruning_keeps_exactly_the_kept_versions_and_leaves_staging_alone(tmp_path):
    cache = tmp_path / "registry_cache"
    fill_cache(cache, range(1, 11))
    downloading = cache / ".v2-k3j9x"  # a download of a pruned version, in progress
    (downloading / "model").mkdir(parents=True)
    training = cache / ".finetuned_transformer-q8r2"  # a bundle being saved and registered
    training.mkdir()
    (cache / "notes.txt").write_text("not a version")
    keep = versions_to_keep([str(n) for n in range(1, 11)], "3", "1", 2)

    removed = prune_registry_cache(cache, keep)

    assert sorted(removed) == sorted(f"v{n}" for n in (2, 4, 5, 6, 7, 8))
    assert version_folders(cache) == ["v1", "v3", "v9", "v10"]
    assert downloading.is_dir() and (downloading / "model").is_dir() and training.is_dir()
    assert (cache / "notes.txt").exists()
    # Nothing of the pruning itself is left behind.
    assert sorted(p.name for p in cache.iterdir() if p.name.startswith(".")) == sorted(
        [downloading.name, training.name]
    )
    assert prune_registry_cache(cache, keep) == []  # a second pass finds nothing more


def test_a_version_registered_after_the_listing_is_not_pruned(tmp_path):
    """The pruner listed versions 1-5; version 6 was trained and cached meanwhile."""
    cache = tmp_path / "registry_cache"
    fill_cache(cache, range(1, 7))
    keep = versions_to_keep([str(n) for n in range(1, 6)], "2", None, 1)
    assert prune_registry_cache(cache, keep) == ["v1", "v3", "v4"]
    assert version_folders(cache) == ["v2", "v5", "v6"]


def test_nothing_is_pruned_when_nothing_is_known_to_keep(tmp_path):
    cache = tmp_path / "registry_cache"
    fill_cache(cache, range(1, 4))
    assert prune_registry_cache(cache, set()) == []
    assert version_folders(cache) == ["v1", "v2", "v3"]
    assert prune_registry_cache(tmp_path / "missing", {"1"}) == []


def test_a_bundle_leaves_its_name_before_it_is_deleted(tmp_path, monkeypatch):
    """Readers see the whole folder or none: the delete runs on the hidden staging name."""
    cache = tmp_path / "registry_cache"
    fill_cache(cache, range(1, 3))
    seen = []
    real_rmtree = shutil.rmtree

    def watching_rmtree(path, *args, **kwargs):
        seen.append((Path(path).name, (cache / "v1").exists(), sorted(Path(path).rglob("*"))))
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(registry.shutil, "rmtree", watching_rmtree)
    assert prune_registry_cache(cache, {"2"}) == ["v1"]
    [(name, v1_still_there, contents)] = seen
    assert name.startswith(".pruned-v1-") and not v1_still_there
    assert [p.name for p in contents] == ["v1", "card.json"]  # moved whole, then deleted


# --------------------------------------------------- with the registry and the warehouse
def home_settings(home: Path, keep_newest: int) -> Settings:
    return load_settings(
        {
            "SENTIMENT_HOME": str(home),
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
            "SENTIMENT_CACHE_KEEP_VERSIONS": str(keep_newest),
        }
    )


def register_versions(settings: Settings, count: int, tmp_path: Path) -> list[registry.VersionInfo]:
    """`count` tiny registered versions (a card and a stand-in weights file each)."""
    previous_uri = mlflow.get_tracking_uri()
    infos = []
    try:
        experiment_id = registry.configure(
            settings.mlflow_tracking_uri, settings.mlflow_artifacts_dir
        )
        client = MlflowClient(settings.mlflow_tracking_uri)
        for n in range(count):
            card = ModelCard(
                "tfidf_logreg", date(2024, 1, 1), date(2024, 1, 1), {"n": n}, f"data-{n}"
            )
            bundle = tmp_path / f"bundle-{n}"
            bundle.mkdir()
            (bundle / "card.json").write_text(json.dumps({"n": n}))
            (bundle / "model.skops").write_bytes(b"weights %d" % n)
            with mlflow.start_run(experiment_id=experiment_id) as run:
                infos.append(
                    registry.register_bundle(
                        client, run.info.run_id, run.info.artifact_uri, bundle, card
                    )
                )
    finally:
        # configure() set the process-wide URI: later tests must not log into this registry.
        mlflow.set_tracking_uri(previous_uri)
    return infos


def promote(settings: Settings, client: MlflowClient, con, info: registry.VersionInfo) -> None:
    record = PromotionRecord(info.version, info.family, date(2024, 1, 1), PROMOTED, "test")
    record_champion_change(record, client, con, settings.published_dir)


def test_the_caches_keep_champion_previous_and_newest_and_a_pruned_version_comes_back(tmp_path):
    settings = home_settings(tmp_path / "home", keep_newest=2)
    infos = register_versions(settings, 6, tmp_path)
    client = MlflowClient(settings.mlflow_tracking_uri)
    cache = settings.registry_cache_dir
    for info in infos:
        registry.download_bundle(info, cache)
    assert len(version_folders(cache)) == 6

    with connect(settings.duckdb_path) as con:
        ensure_schema(con)
        # No champion yet: nothing can be known to be safe to remove.
        assert prune_caches(settings, client, con).skipped
        assert len(version_folders(cache)) == 6
        promote(settings, client, con, infos[1])  # version 2, then version 4
        promote(settings, client, con, infos[3])
        pruned = prune_caches(settings, client, con)

    assert pruned.skipped is None
    assert sorted(pruned.kept, key=int) == ["2", "4", "5", "6"]
    assert sorted(pruned.bundles) == ["v1", "v3"]
    assert version_folders(cache) == ["v2", "v4", "v5", "v6"]
    # A reader that wants a pruned version fetches it again from MLflow.
    again = registry.download_bundle(registry.version_info(client, "1"), cache)
    assert again == cache / "v1"
    assert json.loads((again / "card.json").read_text()) == {"n": 0}
    assert (again / "model.skops").read_bytes() == b"weights 0"
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]


def test_a_rollback_prunes_and_so_does_the_command(tmp_path, monkeypatch, capsys):
    from sentiment_assets.cli import main
    from tests.conftest import use_home

    settings = home_settings(tmp_path / "home", keep_newest=1)
    # Before pointing the environment at the home: mlflow.set_tracking_uri, which
    # register_versions calls to put the previous URI back, writes MLFLOW_TRACKING_URI too.
    infos = register_versions(settings, 5, tmp_path)
    use_home(monkeypatch, settings.home)
    monkeypatch.setenv("SENTIMENT_CACHE_KEEP_VERSIONS", "1")
    client = MlflowClient(settings.mlflow_tracking_uri)
    for info in infos:
        registry.download_bundle(info, settings.registry_cache_dir)
    with connect(settings.duckdb_path) as con:
        ensure_schema(con)
        promote(settings, client, con, infos[1])
        promote(settings, client, con, infos[3])

    assert main(["rollback"]) == 0  # back to version 2; version 4 is now the previous one
    assert registry.champion(client).version == "2"
    assert version_folders(settings.registry_cache_dir) == ["v2", "v4", "v5"]
    assert "removed 2 cached bundle(s)" in capsys.readouterr().err
    assert main(["prune-cache"]) == 0
    assert "kept versions 2, 4, 5; removed 0 cached bundle(s)" in capsys.readouterr().out


def test_a_failing_pruning_only_warns(tmp_path, monkeypatch):
    def broken(*args):
        raise OSError("disk on fire")

    monkeypatch.setattr(cache_pruning, "prune_caches", broken)
    warnings = []
    settings = home_settings(tmp_path, keep_newest=1)
    assert prune_caches_safely(settings, None, None, warnings.append) is None
    assert len(warnings) == 1 and "disk on fire" in warnings[0]


# ------------------------------------------------------------------------- the ONNX cache
@pytest.fixture(scope="module")
def tiny_finetuned():
    """A fine-tuned classifier after one CPU step: its weights only need to be its own."""
    from sentiment_assets.lib.models.finetune import FinetunedClassifier
    from sentiment_assets.lib.models.params import FinetuneParams

    classifier = FinetunedClassifier(device="cpu")
    params = FinetuneParams(max_steps=1, batch_size=4, max_train_samples=None, device="cpu")
    classifier.fit(["love it", "hate it", "so bad", "so good"], [1, 0, 0, 1], params)
    return classifier


def test_onnx_graphs_of_pruned_finetuned_versions_go_and_the_encoder_graph_stays(
    tmp_path, onnx_cache, tiny_finetuned
):
    from sentiment_assets.lib.encoding.encoder_choice import ServingRuntime
    from sentiment_assets.lib.models.model_bundle import load_predictor, save_bundle
    from sentiment_assets.lib.models.training import FINETUNED_TRANSFORMER

    cache = tmp_path / "registry_cache"
    onnx_dir = tmp_path / "onnx_cache"
    shutil.copytree(onnx_cache, onnx_dir)  # the sentence encoder's real export
    encoder_files = sorted(p.name for p in onnx_dir.iterdir())
    card = ModelCard(FINETUNED_TRANSFORMER, date(2024, 1, 1), date(2024, 1, 1), {}, "tiny")
    bundle = save_bundle(cache / "v3", card, tiny_finetuned)
    # Served the way the app serves version 3: exported from its cached bundle.
    served = load_predictor(bundle, device="cpu", runtime=ServingRuntime("onnx", onnx_dir, 1))
    graph = served._model.model_path
    manifest = json.loads(graph.with_suffix(".json").read_text())
    assert manifest["kind"] == "finetuned"
    assert Path(manifest["weights"]).parent == bundle.resolve()
    # A graph exported before owners were recorded, and one whose manifest is not written yet.
    legacy = onnx_dir / "finetuned-0123456789abcdef.onnx"
    legacy.write_bytes(b"graph")
    legacy.with_suffix(".json").write_text(json.dumps({"identity": "finetuned:abc"}))
    unwritten = onnx_dir / "finetuned-fedcba9876543210.onnx"
    unwritten.write_bytes(b"graph")
    everything = sorted(p.name for p in onnx_dir.iterdir())

    # Version 3 kept (say, the previous champion): its graph stays.
    assert prune_onnx_cache(onnx_dir, cache, {"3", "7"}) == []
    assert sorted(p.name for p in onnx_dir.iterdir()) == everything
    # Version 3 pruned: its graph and manifest go, the encoder and the unknown ones stay.
    assert prune_onnx_cache(onnx_dir, cache, {"5", "7"}) == [graph.name]
    left = sorted(p.name for p in onnx_dir.iterdir())
    assert left == sorted([*encoder_files, legacy.name, legacy.name[:-5] + ".json", unwritten.name])
    assert any(
        json.loads((onnx_dir / n).read_text()).get("kind") == "encoder"
        for n in encoder_files
        if n.endswith(".json")
    )
