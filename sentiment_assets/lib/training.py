"""Training of the scikit-learn model families on one trailing window of labelled tweets."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from sentiment_assets.lib.metrics import classification_metrics

TFIDF_LOGREG = "tfidf_logreg"
EMBEDDING_LOGREG = "embedding_logreg"
FINETUNED_TRANSFORMER = "finetuned_transformer"
FAMILIES = (TFIDF_LOGREG, EMBEDDING_LOGREG, FINETUNED_TRANSFORMER)


@dataclass(frozen=True)
class LogRegParams:
    C: float = 1.0
    max_iter: int = 2000
    seed: int = 0
    validation_fraction: float = 0.1
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


def validation_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of row indices; stratification needs both classes twice."""
    indices = np.arange(len(labels))
    counts = np.bincount(labels, minlength=2)
    if fraction <= 0 or counts.min() < 2 or len(labels) < 10:
        return indices, indices[:0]
    train, validation = train_test_split(
        indices, test_size=fraction, random_state=seed, stratify=labels
    )
    return np.sort(train), np.sort(validation)


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels, dtype=int)
    classes = set(np.unique(labels).tolist())
    if classes != {0, 1}:
        raise ValueError(
            f"training needs both classes (0 and 1) in the window, found {sorted(classes)}"
        )
    return labels


def fit_tfidf_logreg(texts: list[str], labels: np.ndarray, params: LogRegParams) -> FitResult:
    labels = _check_labels(labels)
    train, validation = validation_split(labels, params.validation_fraction, params.seed)
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
    embeddings: np.ndarray, labels: np.ndarray, params: LogRegParams
) -> FitResult:
    labels = _check_labels(labels)
    train, validation = validation_split(labels, params.validation_fraction, params.seed)
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
