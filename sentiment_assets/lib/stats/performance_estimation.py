"""Accuracy and macro-F1 expected before any label arrives (confidence-based estimation).

With calibrated probabilities p_i = P(y_i = 1), the model's prediction on row i is right with
probability c_i = max(p_i, 1 - p_i), so the expected accuracy is mean(c_i). The expected
confusion counts are sums of p_i (positives) and 1 - p_i (negatives) over each predicted
class, and the expected macro-F1 is the macro-F1 of those expected counts.

The interval is the spread of the realised values if the labels were drawn from the
calibrated probabilities: the positives among the rows predicted positive (S1) and among those
predicted negative (S0) are independent Poisson-binomial counts. Each is drawn (seeded) from
its normal approximation (mean sum p, variance sum p(1 - p)), clipped to its possible range,
and the 2.5% and 97.5% quantiles of accuracy and macro-F1 over the draws are the bounds. The
interval covers label noise only: where calibration itself fails (concept drift: the same
text now means something else), the estimate is off by more than the interval says, and
bench/bench_estimation.py measures by how much.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sentiment_assets.lib.stats.metrics import DECISION_THRESHOLD

ESTIMATE_DRAWS = 4000
INTERVAL_LEVEL = 0.95


@dataclass(frozen=True)
class PerformanceEstimate:
    n: int
    accuracy: float
    accuracy_lower: float
    accuracy_upper: float
    macro_f1: float
    macro_f1_lower: float
    macro_f1_upper: float
    # Expected share of positives: the month's label prior as the calibrated model sees it.
    positive_share: float

    def as_dict(self) -> dict:
        return asdict(self)


def _macro_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> np.ndarray:
    """Macro-F1 from (possibly fractional) confusion counts; a class with no predicted and
    no actual rows scores 0, as sklearn's zero_division=0 does."""

    def f1(hits: np.ndarray, misses: np.ndarray) -> np.ndarray:
        denominator = 2 * hits + misses
        return np.divide(
            2 * hits, denominator, out=np.zeros_like(denominator), where=denominator > 0
        )

    return (f1(tp, fp + fn) + f1(tn, fn + fp)) / 2


def estimate_performance(
    calibrated_proba: np.ndarray,
    seed: int = 0,
    draws: int = ESTIMATE_DRAWS,
    level: float = INTERVAL_LEVEL,
) -> PerformanceEstimate:
    """Expected accuracy and macro-F1 of thresholding `calibrated_proba` at 0.5, with the
    interval described in the module docstring."""
    p = np.asarray(calibrated_proba, dtype=np.float64)
    if len(p) == 0:
        raise ValueError("cannot estimate performance on an empty month")
    predicted_positive = p >= DECISION_THRESHOLD
    p1, p0 = p[predicted_positive], p[~predicted_positive]
    n1, n0 = float(len(p1)), float(len(p0))

    expected_accuracy = float(np.mean(np.maximum(p, 1 - p)))
    tp, fn = p1.sum(), p0.sum()
    expected_f1 = float(
        _macro_f1(np.array([tp]), np.array([n1 - tp]), np.array([fn]), np.array([n0 - fn]))[0]
    )

    rng = np.random.default_rng(seed)
    s1 = np.clip(rng.normal(tp, np.sqrt(np.sum(p1 * (1 - p1))), draws), 0, n1)
    s0 = np.clip(rng.normal(fn, np.sqrt(np.sum(p0 * (1 - p0))), draws), 0, n0)
    accuracy_draws = (s1 + (n0 - s0)) / len(p)
    f1_draws = _macro_f1(s1, n1 - s1, s0, n0 - s0)
    tail = (1 - level) / 2
    acc_low, acc_high = np.quantile(accuracy_draws, [tail, 1 - tail])
    f1_low, f1_high = np.quantile(f1_draws, [tail, 1 - tail])
    return PerformanceEstimate(
        n=len(p),
        accuracy=expected_accuracy,
        accuracy_lower=float(acc_low),
        accuracy_upper=float(acc_high),
        macro_f1=expected_f1,
        macro_f1_lower=float(f1_low),
        macro_f1_upper=float(f1_high),
        positive_share=float(p.mean()),
    )
