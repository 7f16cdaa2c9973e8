"""Training of the scikit-learn model families on one trailing window of labelled tweets."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from sentiment_assets.lib.metrics import classification_metrics

if TYPE_CHECKING:
    from sentiment_assets.lib.finetune import FinetuneParams

TFIDF_LOGREG = "tfidf_logreg"
EMBEDDING_LOGREG = "embedding_logreg"
FINETUNED_TRANSFORMER = "finetuned_transformer"
FAMILIES = (TFIDF_LOGREG, EMBEDDING_LOGREG, FINETUNED_TRANSFORMER)
# Share of tweets (chosen by id hash) that no model trains on: validation, the promotion
# comparison and the drift reference's out-of-sample scores all use these rows.
HOLDOUT_FRACTION = 0.2


@dataclass(frozen=True)
class LogRegParams:
    C: float = 1.0
    max_iter: int = 2000
    seed: int = 0
    # TF-IDF only: word uni+bigrams catch negation ("not good"); min_df drops one-off noise.
    ngram_max: int = 2
    min_df: int = 2
    max_features: int = 100_000

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class FitResult:
    estimator: object
    validation: dict
    n_train: int
    n_validation: int
    train_seconds: float


def holdout_mask(tweet_ids: Sequence[str], fraction: float) -> np.ndarray:
    """Rows held out of every model's training, chosen by a hash of the tweet id.

    The choice depends on the tweet alone, not on the window or the seed, so a challenger and
    the champion it is compared with have both never seen these rows, whatever months each
    was trained on.
    """
    cutoff = round(fraction * 10_000)
    return np.fromiter(
        (int(hashlib.md5(t.encode()).hexdigest()[:8], 16) % 10_000 < cutoff for t in tweet_ids),
        dtype=bool,
        count=len(tweet_ids),
    )


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels, dtype=int)
    classes = set(np.unique(labels).tolist())
    if classes != {0, 1}:
        raise ValueError(
            f"training needs both classes (0 and 1) in the window, found {sorted(classes)}"
        )
    return labels


def _split(labels: np.ndarray, holdout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    indices = np.arange(len(labels))
    return indices[~holdout], indices[holdout]


def fit_tfidf_logreg(
    texts: list[str], labels: np.ndarray, holdout: np.ndarray, params: LogRegParams
) -> FitResult:
    labels = _check_labels(labels)
    train, validation = _split(labels, holdout)
    _check_labels(labels[train])
    pipeline = Pipeline(
        [
            (
                "tfidf",
                TfidfVectorizer(
                    ngram_range=(1, params.ngram_max),
                    min_df=params.min_df,
                    max_features=params.max_features,
                    sublinear_tf=True,
                    lowercase=True,
                ),
            ),
            (
                "logreg",
                LogisticRegression(C=params.C, max_iter=params.max_iter, random_state=params.seed),
            ),
        ]
    )
    texts_array = np.asarray(texts, dtype=object)
    started = time.perf_counter()
    pipeline.fit(texts_array[train].tolist(), labels[train])
    seconds = time.perf_counter() - started
    validation_metrics = (
        classification_metrics(
            labels[validation], pipeline.predict_proba(texts_array[validation].tolist())[:, 1]
        )
        if len(validation)
        else {}
    )
    return FitResult(pipeline, validation_metrics, len(train), len(validation), seconds)


def fit_embedding_logreg(
    embeddings: np.ndarray, labels: np.ndarray, holdout: np.ndarray, params: LogRegParams
) -> FitResult:
    labels = _check_labels(labels)
    train, validation = _split(labels, holdout)
    _check_labels(labels[train])
    model = LogisticRegression(C=params.C, max_iter=params.max_iter, random_state=params.seed)
    started = time.perf_counter()
    model.fit(embeddings[train], labels[train])
    seconds = time.perf_counter() - started
    validation_metrics = (
        classification_metrics(
            labels[validation], model.predict_proba(embeddings[validation])[:, 1]
        )
        if len(validation)
        else {}
    )
    return FitResult(model, validation_metrics, len(train), len(validation), seconds)


def fit_finetuned_transformer(
    texts: list[str],
    labels: np.ndarray,
    holdout: np.ndarray,
    params: FinetuneParams,
    encoder_dir: str | None = None,
    progress: Callable[[dict], None] | None = None,
) -> FitResult:
    from sentiment_assets.lib.finetune import FinetunedClassifier

    labels = _check_labels(labels)
    train, validation = _split(labels, holdout)
    _check_labels(labels[train])
    texts_array = np.asarray(texts, dtype=object)
    model = FinetunedClassifier(encoder_dir, device=params.device)
    stats = model.fit(texts_array[train].tolist(), labels[train], params, progress=progress)
    validation_metrics = (
        classification_metrics(
            labels[validation], model.predict_proba(texts_array[validation].tolist())
        )
        if len(validation)
        else {}
    )
    return FitResult(
        model, validation_metrics, int(stats["samples"]), len(validation), float(stats["seconds"])
    )
