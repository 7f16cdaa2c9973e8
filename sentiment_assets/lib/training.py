"""Training of the scikit-learn model families on one trailing window of labelled tweets."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from sentiment_assets.lib.metrics import classification_metrics

TFIDF_LOGREG = "tfidf_logreg"
EMBEDDING_LOGREG = "embedding_logreg"
FINETUNED_TRANSFORMER = "finetuned_transformer"
FAMILIES = (TFIDF_LOGREG, EMBEDDING_LOGREG, FINETUNED_TRANSFORMER)
# Share of tweets (chosen by id hash) that no model trains on: validation, the promotion
# comparison and the drift reference's out-of-sample scores all use these rows.
HOLDOUT_FRACTION = 0.2
# Months a model learns from, ending with the month it is trained through. A model's own
# window is on its card; this is the default the lineage graph shows.
DEFAULT_WINDOW_MONTHS = 3
# Labelled rows of a window that training loads at most (training and validation rows
# together). A larger window (a million-tweet month) is cut to a label-stratified sample of
# this size before any embedding is read, so memory stays bounded (200,000 rows of 384-float
# vectors: about 300 MB) and the logistic-regression families fit in about a minute on a CPU;
# their accuracy has long flattened out at this size. None loads every row.
DEFAULT_MAX_WINDOW_ROWS = 200_000


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


@dataclass(frozen=True)
class FinetuneParams:
    """Fine-tuning knobs. The defaults are the pipeline's: a short CPU run (about a minute
    for a demo month); raise them, or train on a GPU, for real quality."""

    epochs: int = 1
    # Hard cap on optimizer steps; training stops when reached even mid-epoch.
    max_steps: int | None = None
    # CPU budget: larger inputs are subsampled deterministically, stratified by label.
    max_train_samples: int | None = 800
    batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 48
    seed: int = 0
    # Freeze the embeddings and the first N transformer layers (0 = train everything).
    freeze_layers: int = 2
    # None: CUDA when available, else CPU.
    device: str | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError("epochs must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("max_steps must be >= 1 or None")
        if self.max_train_samples is not None and self.max_train_samples < 2:
            raise ValueError("max_train_samples must be >= 2 or None")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError("warmup_ratio must be in [0, 1)")
        if self.max_length < 2:
            raise ValueError("max_length must be >= 2")
        if self.freeze_layers < 0:
            raise ValueError("freeze_layers must be >= 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneParams:
        """Rebuild from JSON, ignoring keys a newer/older version may have added."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


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


def in_holdout(tweet_ids: Sequence[str]) -> np.ndarray:
    """The platform's holdout: HOLDOUT_FRACTION of the tweets, the same ones everywhere."""
    return holdout_mask(tweet_ids, HOLDOUT_FRACTION)


def stratified_quotas(counts: Mapping[Any, int], cap: int) -> dict[Any, int]:
    """Rows to keep per label so that at most ``cap`` rows keep the labels' shares.

    Each label gets the floor of its share and the rows left over go to the largest
    remainders (ties by label order), so the quotas sum to exactly min(cap, total) and a label
    with any rows keeps at least one when the cap allows.
    """
    if cap < 1:
        raise ValueError("cap must be >= 1")
    total = sum(counts.values())
    if total <= cap:
        return dict(counts)
    labels = sorted(counts, key=str)
    exact = {label: cap * counts[label] / total for label in labels}
    quotas = {label: int(exact[label]) for label in labels}
    left = cap - sum(quotas.values())
    by_remainder = sorted(labels, key=lambda label: -(exact[label] - quotas[label]))
    for label in by_remainder[:left]:
        quotas[label] += 1
    for label in labels:
        if counts[label] and not quotas[label]:
            donor = max(labels, key=lambda other: quotas[other])
            if quotas[donor] > 1:
                quotas[donor] -= 1
                quotas[label] = 1
    return quotas


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
