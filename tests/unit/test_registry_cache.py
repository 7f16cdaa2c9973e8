import os
import stat
import time
from datetime import date
from pathlib import Path

import pytest

from sentiment_assets.lib.versions.registry import (
    ABANDONED_STAGING_S,
    VersionInfo,
    adopt_bundle,
    cached_bundle_path,
    download_bundle,
    run_url,
    staging_dir,
    sweep_abandoned,
)

INFO = VersionInfo("7", "tfidf_logreg", date(2024, 1, 1), None, "unused")


def bundle_in(folder: Path, marker: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "card.json").write_text(marker)
    return folder


def test_adopting_moves_the_bundle_in_as_the_version_and_the_cache_serves_it(tmp_path):
    cache = tmp_path / "cache"
    with staging_dir(cache, "tfidf_logreg") as staging:
        assert staging.parent == cache and staging.name.startswith(".tfidf_logreg-")
        adopted = adopt_bundle(bundle_in(staging / "bundle", "trained"), INFO, cache)
    assert adopted == cached_bundle_path(cache, "7") == cache / "v7"
    assert (adopted / "card.json").read_text() == "trained"
    assert sorted(p.name for p in cache.iterdir()) == ["v7"]  # staging gone
    # Found locally: the (unreachable) source is never asked for.
    assert download_bundle(INFO, cache) == adopted


def test_a_copy_of_the_same_version_fetched_first_is_kept(tmp_path):
    cache = tmp_path / "cache"
    bundle_in(cache / "v7", "card of version 7")
    before = (cache / "v7").stat().st_ino
    with staging_dir(cache, "tfidf_logreg") as staging:
        adopted = adopt_bundle(bundle_in(staging / "bundle", "card of version 7"), INFO, cache)
        assert not (staging / "bundle").exists()
    assert adopted.stat().st_ino == before  # theirs, untouched
    assert sorted(p.name for p in cache.iterdir()) == ["v7"]


def test_a_stale_copy_under_the_same_number_is_replaced(tmp_path):
    """A registry reset restarts numbering: the old cache entry v7 is another model."""
    cache = tmp_path / "cache"
    bundle_in(cache / "v7", "a model from before the reset")
    with staging_dir(cache, "tfidf_logreg") as staging:
        adopted = adopt_bundle(bundle_in(staging / "bundle", "the new version 7"), INFO, cache)
    assert (adopted / "card.json").read_text() == "the new version 7"
    assert sorted(p.name for p in cache.iterdir()) == ["v7"]


def test_staging_is_removed_when_the_step_fails(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError), staging_dir(cache, "finetuned_transformer") as staging:
        bundle_in(staging / "bundle", "half written")
        raise RuntimeError("training failed")
    assert list(cache.iterdir()) == []


def test_a_saved_bundle_is_readable_by_other_users(tmp_path):
    # The app may run as another user than the trainer; mkdtemp alone would leave 0700.
    from sklearn.linear_model import LogisticRegression

    from sentiment_assets.lib.models.model_bundle import ModelCard, save_bundle

    card = ModelCard("tfidf_logreg", date(2024, 1, 1), date(2024, 1, 1), {"C": 1.0}, "abc")
    bundle = save_bundle(tmp_path / "bundle", card, LogisticRegression())
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o755
    assert all(p.stat().st_mode & stat.S_IROTH for p in bundle.iterdir())


def test_staging_left_by_a_killed_process_is_swept_and_live_staging_is_not(tmp_path):
    cache = tmp_path / "cache"
    abandoned = bundle_in(cache / ".finetuned_transformer-dead", "half written")
    live = bundle_in(cache / ".v3-fresh", "downloading")
    kept = bundle_in(cache / "v3", "a cached version")
    old = time.time() - ABANDONED_STAGING_S - 60
    os.utime(abandoned, (old, old))
    os.utime(kept, (old, old))  # old but not hidden: a cache entry, never swept
    assert sweep_abandoned(cache) == [abandoned.name]
    assert not abandoned.exists() and live.exists() and kept.exists()
    with staging_dir(cache, "tfidf_logreg"):
        assert live.exists()  # younger than the cutoff


def test_run_links_open_mlflow_on_its_training_view() -> None:
    url = run_url("http://127.0.0.1:5000/", "1", "abc")
    assert url == "http://127.0.0.1:5000/#/experiments/1/runs/abc?workflowType=machine_learning"
