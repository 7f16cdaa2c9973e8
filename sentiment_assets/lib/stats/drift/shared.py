"""What the drift statistics share: skipped checks, seeded draws, label masks, proportions."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from sentiment_assets.lib.stats.drift.registry import DriftThresholds, Measurement

NOT_ENOUGH_DATA = "not enough data"
NO_LABELS = "not applicable: no labels"


def seeded_rng(thresholds: DriftThresholds, statistic: str) -> np.random.Generator:
    """The statistic's own generator, seeded by ``(thresholds.seed, statistic)``."""
    # Keyed by the statistic's name: adding or reordering checks never changes another's draw.
    return np.random.default_rng([thresholds.seed, zlib.crc32(statistic.encode())])


def not_judged(reason: str, **detail: Any) -> Measurement:
    """A check that could not run: NaN value and threshold, no verdict, the reason in detail."""
    return Measurement(math.nan, math.nan, None, None, {"reason": reason, **detail})


def too_small(n_reference: int, n_current: int, minimum: int) -> Measurement | None:
    """``not_judged`` when either side has fewer than ``minimum`` rows, else None."""
    if min(n_reference, n_current) >= minimum:
        return None
    return not_judged(
        NOT_ENOUGH_DATA,
        n_reference=int(n_reference),
        n_current=int(n_current),
        min_samples=int(minimum),
    )


def finite(scores: np.ndarray) -> np.ndarray:
    """The scores that exist (NaN marks a row without an out-of-sample score)."""
    scores = np.asarray(scores, dtype=np.float64)
    return scores[np.isfinite(scores)]


def as_labels(labels: np.ndarray | Sequence[float] | None) -> np.ndarray | None:
    """Labels as a flat float array (None stays None: that side has no labels)."""
    return None if labels is None else np.asarray(labels, dtype=np.float64).reshape(-1)


def labelled(labels: np.ndarray) -> np.ndarray:
    """Mask of the rows with a 0/1 label."""
    return (labels == 0) | (labels == 1)


def _two_proportion(
    x_ref: int, n_ref: int, x_cur: int, n_cur: int, alpha: float
) -> tuple[float, float, float]:
    """|difference| of two proportions, its two-sided critical value and p (pooled z-test)."""
    p_ref, p_cur = x_ref / n_ref, x_cur / n_cur
    pooled = (x_ref + x_cur) / (n_ref + n_cur)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_cur))
    diff = abs(p_cur - p_ref)
    if se == 0.0:  # both sides all 0 or all 1: identical, nothing to test
        return diff, math.inf, 1.0
    z_crit = float(stats.norm.isf(alpha / 2))
    p_value = float(2 * stats.norm.sf(diff / se))
    return diff, z_crit * se, p_value


def two_proportion_test(
    share: str, x_ref: int, n_ref: int, x_cur: int, n_cur: int, thresholds: DriftThresholds
) -> Measurement:
    """A two-proportion z-test at alpha; `share` names the proportion in detail."""
    diff, threshold, p_value = _two_proportion(x_ref, n_ref, x_cur, n_cur, thresholds.alpha)
    return Measurement(
        diff,
        threshold,
        bool(p_value <= thresholds.alpha),
        p_value,
        {
            "alpha": thresholds.alpha,
            f"{share}_reference": x_ref / n_ref,
            f"{share}_current": x_cur / n_cur,
            "n_reference": n_ref,
            "n_current": n_cur,
        },
    )
