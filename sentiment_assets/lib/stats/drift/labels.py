"""Label-based checks, when both sides carry labels: the class prior and the champion's accuracy.

They measure what retraining is for (the champion is wrong more often, or the class balance
it learnt is no longer true), so both are error checks.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from sentiment_assets.lib.stats.drift.registry import (
    DriftThresholds,
    Measurement,
    Threshold,
    statistic,
)
from sentiment_assets.lib.stats.drift.shared import (
    NO_LABELS,
    as_labels,
    labelled,
    not_judged,
    too_small,
    two_proportion_test,
)
from sentiment_assets.lib.stats.metrics import DECISION_THRESHOLD

LABEL_PRIOR = "label_prior"
PERFORMANCE_DROP = "performance_drop"


@statistic(LABEL_PRIOR, "label", severity="error", reads=("labels",))
def label_prior(
    reference_labels: np.ndarray | None,
    current_labels: np.ndarray | None,
    thresholds: DriftThresholds,
) -> Measurement:
    """Two-proportion z-test on the share of positive labels (prior / label shift).

    Only when both sides carry labels. Value = |current - reference| positive share.
    """
    reference_labels, current_labels = as_labels(reference_labels), as_labels(current_labels)
    if reference_labels is None or current_labels is None:
        return not_judged(NO_LABELS)
    ref = reference_labels[labelled(reference_labels)]
    cur = current_labels[labelled(current_labels)]
    skipped = too_small(len(ref), len(cur), thresholds.min_samples)
    if skipped:
        return skipped
    x_ref, x_cur = int(ref.sum()), int(cur.sum())
    return two_proportion_test("positive_share", x_ref, len(ref), x_cur, len(cur), thresholds)


ACCURACY_TOLERANCE = Threshold(
    0.03,
    """Accuracy loss (reference minus current) that is tolerated: the performance check only
    flags a drop that is significantly larger than this, so sampling noise and tiny losses do
    not trigger retraining.""",
    lambda tolerance, _: 0.0 <= tolerance < 1.0,
    "must be within [0, 1)",
)


def _accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((scores >= DECISION_THRESHOLD) == (labels == 1)))


@statistic(
    PERFORMANCE_DROP,
    "performance",
    severity="error",
    reads=("scores", "labels"),
    thresholds={"accuracy_tolerance": ACCURACY_TOLERANCE},
)
def performance_drop(
    reference_scores: np.ndarray,
    reference_labels: np.ndarray | None,
    current_scores: np.ndarray,
    current_labels: np.ndarray | None,
    thresholds: DriftThresholds,
) -> Measurement:
    """One-sided test that the champion's accuracy fell by more than the tolerance.

    H0: reference accuracy - current accuracy <= tolerance. Value = reference minus current
    accuracy (positive = worse now); threshold = tolerance + z_(1-alpha) x standard error.
    The reference accuracy must come from rows the champion did not train on (see
    :class:`DriftSample`). Rows need both a score and a label.
    """
    reference_labels, current_labels = as_labels(reference_labels), as_labels(current_labels)
    if reference_labels is None or current_labels is None:
        return not_judged(NO_LABELS)
    reference_scores = np.asarray(reference_scores, dtype=np.float64).reshape(-1)
    current_scores = np.asarray(current_scores, dtype=np.float64).reshape(-1)
    ref_ok = labelled(reference_labels) & np.isfinite(reference_scores)
    cur_ok = labelled(current_labels) & np.isfinite(current_scores)
    n_ref, n_cur = int(ref_ok.sum()), int(cur_ok.sum())
    skipped = too_small(n_ref, n_cur, thresholds.min_samples)
    if skipped:
        return skipped
    acc_ref = _accuracy(reference_scores[ref_ok], reference_labels[ref_ok])
    acc_cur = _accuracy(current_scores[cur_ok], current_labels[cur_ok])

    def clipped(acc: float, n: int) -> float:
        # A perfect (or useless) side would have zero variance; half a count keeps SE honest.
        return min(max(acc, 0.5 / n), 1 - 0.5 / n)

    a_ref, a_cur = clipped(acc_ref, n_ref), clipped(acc_cur, n_cur)
    se = math.sqrt(a_ref * (1 - a_ref) / n_ref + a_cur * (1 - a_cur) / n_cur)
    drop = acc_ref - acc_cur
    p_value = float(stats.norm.sf((drop - thresholds.accuracy_tolerance) / se))
    threshold = thresholds.accuracy_tolerance + float(stats.norm.isf(thresholds.alpha)) * se
    return Measurement(
        drop,
        threshold,
        bool(p_value <= thresholds.alpha),
        p_value,
        {
            "alpha": thresholds.alpha,
            "accuracy_reference": acc_ref,
            "accuracy_current": acc_cur,
            "tolerance": thresholds.accuracy_tolerance,
            "n_reference": n_ref,
            "n_current": n_cur,
        },
    )
