"""Classification metrics for binary sentiment, as stored in metrics.model_evaluations."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

DECISION_THRESHOLD = 0.5


def classification_metrics(labels: Sequence[int] | np.ndarray, positive_proba: np.ndarray) -> dict:
    """Accuracy, macro-F1 and per-class precision/recall at the 0.5 threshold.

    Both classes are always reported (zero_division=0), so a month where the model predicts a
    single class yields 0.0 for the other class instead of an exception or a missing column.
    """
    y_true = np.asarray(labels, dtype=int)
    if len(y_true) == 0:
        raise ValueError("cannot compute metrics on an empty evaluation set")
    y_pred = (np.asarray(positive_proba) >= DECISION_THRESHOLD).astype(int)
    precision, recall, _, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1], zero_division=0
    )
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=[0, 1], average="macro", zero_division=0)
        ),
        "precision_negative": float(precision[0]),
        "recall_negative": float(recall[0]),
        "precision_positive": float(precision[1]),
        "recall_positive": float(recall[1]),
    }


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion: honest error bars for small test sets."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))
