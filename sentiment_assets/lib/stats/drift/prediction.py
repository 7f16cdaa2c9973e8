"""Prediction drift: has the champion's output moved (its scores, the share it calls positive)?

Embedding tests are blind to a pure change of the sentiment prior; tests on the champion's
output see it, and a 1-D test has far more power than a 384-D one. They need no labels.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from sentiment_assets.lib.stats.drift.registry import (
    DriftThresholds,
    Measurement,
    Threshold,
    statistic,
)
from sentiment_assets.lib.stats.drift.shared import finite, too_small, two_proportion_test
from sentiment_assets.lib.stats.metrics import DECISION_THRESHOLD

PREDICTION_KS = "prediction_ks"
PREDICTION_PSI = "prediction_psi"
PREDICTED_POSITIVE_RATE = "predicted_positive_rate"


@statistic(PREDICTION_KS, "prediction", severity="error", reads=("scores",))
def prediction_ks(
    reference_scores: np.ndarray, current_scores: np.ndarray, thresholds: DriftThresholds
) -> Measurement:
    """Two-sample Kolmogorov-Smirnov test on the champion's P(positive).

    "Black-box shift detection" (Rabanser et al. 2019): the model's output distribution moves
    with the sentiment prior and with any input change the model reacts to, and a 1-D test has
    far more power than a 384-D one. Value = KS D; threshold = the asymptotic critical D.
    """
    ref, cur = finite(reference_scores), finite(current_scores)
    skipped = too_small(len(ref), len(cur), thresholds.min_samples)
    if skipped:
        return skipped
    result = stats.ks_2samp(ref, cur, method="asymp")
    # scipy's asymptotic p-value is kstwo.sf(D, round(en)); invert the same distribution so
    # that value > threshold exactly when p <= alpha.
    en = round(len(ref) * len(cur) / (len(ref) + len(cur)))
    threshold = float(stats.kstwo.isf(thresholds.alpha, en))
    p_value = float(result.pvalue)
    return Measurement(
        float(result.statistic),
        threshold,
        bool(p_value <= thresholds.alpha),
        p_value,
        {
            "alpha": thresholds.alpha,
            "n_reference": len(ref),
            "n_current": len(cur),
            "mean_score_reference": float(ref.mean()),
            "mean_score_current": float(cur.mean()),
        },
    )


PSI_BINS = Threshold(
    10,
    "Quantile bins of the reference scores for the population stability index.",
    lambda bins, _: bins >= 2,
    "must be >= 2",
)


@statistic(
    PREDICTION_PSI,
    "prediction",
    severity="warn",
    reads=("scores",),
    thresholds={"psi_bins": PSI_BINS},
)
def prediction_psi(
    reference_scores: np.ndarray, current_scores: np.ndarray, thresholds: DriftThresholds
) -> Measurement:
    """Population stability index of the scores over quantile bins of the reference.

    Reported because credit-risk style dashboards speak PSI, but judged with a calibrated
    threshold instead of the folklore 0.1/0.25 (which depend on the window size): for small
    shifts PSI / (1/n_ref + 1/n_cur) is the chi-square homogeneity statistic with bins - 1
    degrees of freedom. Severity warn: it overlaps with the KS test, which decides.
    """
    ref, cur = finite(reference_scores), finite(current_scores)
    skipped = too_small(len(ref), len(cur), thresholds.min_samples)
    if skipped:
        return skipped
    interior = np.quantile(ref, np.linspace(0, 1, thresholds.psi_bins + 1)[1:-1])
    edges = np.unique(interior)  # ties in the scores merge bins
    n_bins = len(edges) + 1
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=n_bins)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=n_bins)
    # Half-count floor: an empty bin would make the log ratio infinite.
    p = np.maximum(ref_counts, 0.5) / len(ref)
    q = np.maximum(cur_counts, 0.5) / len(cur)
    psi = float(np.sum((q - p) * np.log(q / p)))
    scale = 1.0 / len(ref) + 1.0 / len(cur)
    dof = max(n_bins - 1, 1)
    threshold = float(stats.chi2.isf(thresholds.alpha, dof)) * scale
    p_value = float(stats.chi2.sf(psi / scale, dof))
    band = "stable" if psi < 0.1 else "moderate" if psi < 0.25 else "major"
    return Measurement(
        psi,
        threshold,
        bool(p_value <= thresholds.alpha),
        p_value,
        {
            "alpha": thresholds.alpha,
            "bins": n_bins,
            "n_reference": len(ref),
            "n_current": len(cur),
            "conventional_band": band,
            "current_share_per_bin": [round(float(x), 4) for x in cur_counts / len(cur)],
        },
    )


@statistic(PREDICTED_POSITIVE_RATE, "prediction", severity="error", reads=("scores",))
def predicted_positive_rate(
    reference_scores: np.ndarray, current_scores: np.ndarray, thresholds: DriftThresholds
) -> Measurement:
    """Two-proportion z-test on the share of tweets the champion calls positive.

    The number users see move; also more powerful than KS when the shift sits right at the
    decision threshold. Value = |current - reference| share.
    """
    ref, cur = finite(reference_scores), finite(current_scores)
    skipped = too_small(len(ref), len(cur), thresholds.min_samples)
    if skipped:
        return skipped
    x_ref = int(np.count_nonzero(ref >= DECISION_THRESHOLD))
    x_cur = int(np.count_nonzero(cur >= DECISION_THRESHOLD))
    return two_proportion_test("rate", x_ref, len(ref), x_cur, len(cur), thresholds)
