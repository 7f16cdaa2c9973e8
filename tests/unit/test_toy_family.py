"""A fourth model family takes one class and one registration: the real sentiment_model
asset tunes, trains, calibrates and registers it, model_evaluation scores it on the next
month, and load_version serves it, through the paths the built-in families take."""

import functools
import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from sentiment_assets.defs.embeddings.resources import EncoderResource
from sentiment_assets.defs.models.resources import platform_mlflow
from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.lib.data.text import text_hash
from sentiment_assets.lib.encoding.encoder import DEFAULT_ENCODER, TextEncoder
from sentiment_assets.lib.models.families import register_family, unregister_family
from sentiment_assets.lib.models.training import FitResult
from sentiment_assets.lib.settings import load_settings
from sentiment_assets.lib.stats.metrics import classification_metrics
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.serving import load_version
from sentiment_assets.lineage import MODEL_EVALUATION, SENTIMENT_MODEL
from tests import loaded
from tests.conftest import use_home

TOY = "word_votes"
MONTHS = (date(2024, 1, 1), date(2024, 2, 1))


@dataclass(frozen=True)
class VoteParams:
    smoothing: float = 1.0
    seed: int = 0


class WordVotes:
    """Each word votes with its smoothed log-odds of being in a positive tweet."""

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = weights

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        votes = np.array([sum(self.weights.get(w, 0.0) for w in t.split()) for t in texts])
        return 1.0 / (1.0 + np.exp(-votes))


class WordVoteFamily:
    name, short_name, searched_knobs = TOY, "votes", ("smoothing",)
    needs_vectors = uses_encoder = False
    fast = True

    def params(self, knobs):
        return VoteParams(seed=knobs.get("seed", 0))

    def card_params(self, params):
        return asdict(params)

    mlflow_params = card_params

    def search_space(self, trial):
        return {"smoothing": trial.suggest_float("smoothing", 0.1, 10.0, log=True)}

    def objective(self, train, base, metric):
        return lambda _, p: self.fit(train, replace(base, **p), None).validation[metric]

    def fit(self, rows, params, progress):
        texts, held = np.asarray(rows.texts, dtype=object), rows.holdout
        counts = {0: Counter(), 1: Counter()}
        for text, label in zip(texts[~held], rows.labels[~held], strict=True):
            counts[int(label)].update(text.split())
        s = params.smoothing
        model = WordVotes(
            {w: math.log((counts[1][w] + s) / (counts[0][w] + s)) for w in counts[0] | counts[1]}
        )
        scored = classification_metrics(rows.labels[held], model.predict_proba(texts[held]))
        return FitResult(model, scored, int((~held).sum()), int(held.sum()), 0.0)

    def save(self, estimator, directory):
        (directory / "votes.json").write_text(json.dumps(estimator.weights, sort_keys=True))

    def load(self, directory, device, runtime):
        return WordVotes(json.loads((directory / "votes.json").read_text()))

    def predict_proba(self, model, cleaned_texts, vectors):
        return model.predict_proba(cleaned_texts)

    def runtime(self, model, encoder):
        return "python"


@pytest.fixture
def toy_family() -> Iterator[None]:
    register_family(WordVoteFamily())
    try:
        yield
    finally:
        unregister_family(TOY)


@functools.lru_cache(maxsize=1)
def _torch_encoder(name: str) -> TextEncoder:
    return TextEncoder(name, device="cpu")


class TorchEncoder(EncoderResource):
    """The encoder on torch: a family that never embeds needs no ONNX graph built first."""

    def get(self) -> TextEncoder:
        return _torch_encoder(self.name)


def tweets(month: date, n: int = 120) -> list[tuple]:
    """Labelled tweets whose sentiment words agree with the label four times in five."""
    rng = np.random.default_rng(month.month)
    words = {1: ["love", "great", "happy"], 0: ["hate", "awful", "sad"]}
    rows = []
    for i in range(n):
        label = i % 2
        voice = label if rng.random() < 0.8 else 1 - label
        text = f"my {rng.choice(['phone', 'day', 'game'])} is {rng.choice(words[voice])}"
        rows.append((f"{month:%Y%m}-{i}", month, text, text_hash(text), label))
    return rows


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = use_home(monkeypatch, tmp_path / "home")
    settings = load_settings({"SENTIMENT_HOME": str(home)})
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(
            "CREATE SCHEMA clean; CREATE TABLE clean.tweets_clean (tweet_id VARCHAR, "
            "month DATE, text VARCHAR, text_hash VARCHAR, label INTEGER)"
        )
        for month in MONTHS:
            con.executemany("INSERT INTO clean.tweets_clean VALUES (?, ?, ?, ?, ?)", tweets(month))
    return home


def test_a_toy_family_is_trained_registered_evaluated_and_served(toy_family, home) -> None:
    settings = load_settings({"SENTIMENT_HOME": str(home)})
    resources = {
        "warehouse": WarehouseResource(database=str(settings.warehouse_path)),
        "encoder": TorchEncoder(name=DEFAULT_ENCODER),
        "platform": PlatformResource.of(settings),
        "mlflow": platform_mlflow.configured(
            {
                "experiment_name": registry.EXPERIMENT_NAME,
                "mlflow_tracking_uri": settings.mlflow_tracking_uri,
                "artifacts_dir": str(settings.mlflow_artifacts_dir),
            }
        ),
    }
    tune = {"enabled": True, "n_trials": 3, "families": [TOY]}
    config = {"families": [TOY], "window_months": 1, "tune": tune}
    trained = dg.materialize(
        [loaded.asset(SENTIMENT_MODEL)],
        partition_key=MONTHS[0].isoformat(),
        resources=resources,
        run_config={"ops": {"sentiment_model": {"config": config}}},
    )
    assert trained.success
    metadata = trained.asset_materializations_for_node("sentiment_model")[0].metadata
    assert metadata["best_family"].value == TOY and "val_f1_votes" in metadata

    client = MlflowClient(settings.mlflow_tracking_uri)
    (info,) = registry.all_versions(client)
    assert info.family == TOY
    run = client.get_run(info.run_id)
    assert run.data.params["encoder"] == "none" and "smoothing" in run.data.params
    assert run.data.params["tune_trials"] == "3"
    assert run.data.metrics["ece_after"] <= run.data.metrics["ece_before"]

    evaluated = dg.materialize(
        [loaded.asset(MODEL_EVALUATION)], partition_key=MONTHS[1].isoformat(), resources=resources
    )
    assert evaluated.success
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        (accuracy,) = con.execute(
            "SELECT accuracy FROM metrics.model_evaluations "
            "WHERE model_family = ? AND eval_set = 'next_month'",
            [TOY],
        ).fetchone()
    assert accuracy > 0.7

    served = load_version(info, settings.registry_cache_dir)
    assert served.runtime == "python" and served.card.calibration
    positive, negative = served.predict_proba(["my game is great", "my day is awful"])
    assert positive > 0.5 > negative
