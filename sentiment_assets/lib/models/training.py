"""Fitting of the model families on one trailing window of labelled tweets (the families
themselves, and which one is which, are lib/models/families)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from sentiment_assets.lib.models.params import FinetuneParams, LogRegParams
from sentiment_assets.lib.stats.metrics import classification_metrics

TFIDF_LOGREG = "tfidf_logreg"
EMBEDDING_LOGREG = "embedding_logreg"
FINETUNED_TRANSFORMER = "finetuned_transformer"
# Months a model learns from, ending with the month it is trained through. A model's own
# window is on its card; this is the default the lineage graph shows.
DEFAULT_WINDOW_MONTHS = 3
# Labelled rows of a window that training loads at most (training and validation rows
# together). A larger window (a million-tweet month) is cut to a label-stratified sample of
# this size before any embedding is read, so memory stays bounded (200,000 rows of 384-float
# vectors: about 300 MB) and the logistic-regression families fit in about a minute on a CPU;
# their accuracy has long flattened out at this size. None loads every row.
DEFAULT_MAX_WINDOW_ROWS = 200_000


@dataclass
class FitResult:
    estimator: object
    validation: dict
    n_train: int
    n_validation: int
    train_seconds: float
    # What the fit trained on, when a family sizes itself (the fine-tuned family's budget).
    size_note: str = ""


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
    from sentiment_assets.lib.models.finetune import FinetunedClassifier

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
        model,
        validation_metrics,
        int(stats["samples"]),
        len(validation),
        float(stats["seconds"]),
        size_note(stats),
    )


def size_note(stats: dict) -> str:
    """One line on what a fine-tuning trained on, from its train_stats."""
    size = stats["size"]
    line = f"{stats['samples']:,} of {stats['samples_offered']:,} tweets x {size['epochs']} epoch(s), {size['basis']}"
    if stats.get("stopped_at_budget"):
        line += (
            f"; stopped at the budget after {stats['steps']:,} steps ({stats['epochs']:.2f} epochs)"
        )
    return line
