"""The two logistic-regression families: on TF-IDF features of the text, and on the
encoder's sentence vectors. Their weights are a skops file, loaded against an allowlist of
types, so a tampered file cannot run code at load time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sentiment_assets.lib.models.families.base import Objective, Progress, TrainingRows
from sentiment_assets.lib.models.params import LogRegParams
from sentiment_assets.lib.models.training import (
    EMBEDDING_LOGREG,
    TFIDF_LOGREG,
    FitResult,
    fit_embedding_logreg,
    fit_tfidf_logreg,
)

if TYPE_CHECKING:
    import optuna

SKOPS_FILE = "model.skops"
# Types a skops file of ours may contain beyond skops' own defaults; anything else is refused.
TRUSTED_SKOPS_TYPES = (
    "sklearn.pipeline.Pipeline",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "numpy.dtype",
    "numpy.float64",
    "numpy.int64",
    "builtins.int",
    "builtins.float",
    "builtins.str",
)
# LogRegParams fields that shape the TF-IDF features: the embedding family has no use for them.
TFIDF_ONLY_KNOBS = ("ngram_max", "min_df", "max_features")


def load_skops(path: Path) -> object:
    # Imported here: skops pulls in torch through scikit-learn's array-API shims, which would
    # slow down every process that merely loads the Dagster code location.
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    refused = [t for t in untrusted if t not in TRUSTED_SKOPS_TYPES]
    if refused:
        raise ValueError(f"{path} contains types outside the allowlist: {refused}")
    return skops.io.load(path, trusted=untrusted)


class _LogRegFamily:
    """What the two share: parameters, weights on disk and the tuning objective."""

    needs_vectors: bool
    _fit: Callable[..., FitResult]

    # Seconds each on a 10,000-tweet month on a 2-core CPU (the embeddings already stored).
    fast = True

    def params(self, knobs: Mapping[str, Any]) -> LogRegParams:
        return LogRegParams(
            C=knobs.get("C", LogRegParams.C), seed=knobs.get("seed", LogRegParams.seed)
        )

    def card_params(self, params: LogRegParams) -> dict[str, Any]:
        return params.as_dict()

    def _features(self, rows: TrainingRows) -> list[str] | np.ndarray:
        return rows.vectors if self.needs_vectors else rows.texts

    def fit(self, rows: TrainingRows, params: LogRegParams, progress: Progress | None) -> FitResult:
        return self._fit(self._features(rows), rows.labels, rows.holdout, params)

    def objective(self, train: TrainingRows, base: LogRegParams, metric: str) -> Objective:
        def score(_: optuna.Trial, params: dict[str, Any]) -> float:
            result = self.fit(train, replace(base, **params), None)
            return float(result.validation[metric])

        return score

    def save(self, estimator: Any, directory: Path) -> None:
        import skops.io

        skops.io.dump(estimator, directory / SKOPS_FILE)

    def load(self, directory: Path, device: str | None, runtime: Any) -> Any:
        return load_skops(directory / SKOPS_FILE)


class TfidfLogReg(_LogRegFamily):
    name = TFIDF_LOGREG
    short_name = "tfidf"
    needs_vectors = False
    uses_encoder = False
    searched_knobs = ("C", "ngram_max", "min_df")
    _fit = staticmethod(fit_tfidf_logreg)

    def mlflow_params(self, params: LogRegParams) -> dict[str, Any]:
        return params.as_dict()

    def search_space(self, trial: optuna.Trial) -> dict[str, Any]:
        return {
            "C": trial.suggest_float("C", 1e-2, 1e2, log=True),
            "ngram_max": trial.suggest_int("ngram_max", 1, 3),
            "min_df": trial.suggest_int("min_df", 1, 5),
        }

    def predict_proba(
        self, model: Any, cleaned_texts: list[str], vectors: np.ndarray | None
    ) -> np.ndarray:
        return model.predict_proba(cleaned_texts)[:, 1]

    def runtime(self, model: Any, encoder: Any) -> str:
        return "scikit-learn"


class EmbeddingLogReg(_LogRegFamily):
    name = EMBEDDING_LOGREG
    short_name = "embedding"
    needs_vectors = True
    uses_encoder = True
    searched_knobs = ("C",)
    _fit = staticmethod(fit_embedding_logreg)

    def mlflow_params(self, params: LogRegParams) -> dict[str, Any]:
        return {k: v for k, v in asdict(params).items() if k not in TFIDF_ONLY_KNOBS}

    def search_space(self, trial: optuna.Trial) -> dict[str, Any]:
        return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True)}

    def predict_proba(
        self, model: Any, cleaned_texts: list[str], vectors: np.ndarray | None
    ) -> np.ndarray:
        return model.predict_proba(vectors)[:, 1]

    def runtime(self, model: Any, encoder: Any) -> str:
        return getattr(encoder, "runtime", "torch")
