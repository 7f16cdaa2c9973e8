"""Re-estimating a month's class prior from unlabelled predictions (label shift).

When the share of positive tweets moves but what a positive tweet looks like does not, a
classifier's posteriors are biased towards the prior it was trained under. The EM procedure
of Saerens, Latinne & Decaestecker (2002) estimates the new prior from the posteriors alone:
reweight every posterior by the ratio of new to old prior, average them to get the next prior
estimate, and repeat until it stops moving. The adjusted posteriors are what the classifier
would have said had it been trained under the new prior. It needs no label, so it can act the
day a month's tweets arrive, weeks before its labels do.

The posteriors must be calibrated (see `calibration`): EM trusts their magnitudes, and an
over-confident model would drag the estimate towards its own mistakes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from sentiment_assets.lib.stats.calibration import Calibration
from sentiment_assets.lib.stats.drift import (
    EMBEDDING_MEAN_DISTANCE,
    EMBEDDING_MMD,
    LABEL_PRIOR,
    PREDICTED_POSITIVE_RATE,
    PREDICTION_KS,
    PREDICTION_PSI,
    VOCABULARY_OOV,
)

# Posteriors are clipped away from 0 and 1: a single overconfident 1.0 would otherwise pin
# every reweighted value to 1 whatever the prior.
_EPSILON = 1e-6


@dataclass(frozen=True)
class PriorEstimate:
    """The re-estimated prior of the positive class and how EM got there."""

    training_prior: float
    estimated_prior: float
    iterations: int
    converged: bool

    def adjust(self, posteriors: np.ndarray) -> np.ndarray:
        """P(positive) of each row under the estimated prior instead of the training one."""
        return adjust_posteriors(posteriors, self.training_prior, self.estimated_prior)


def adjust_posteriors(posteriors: np.ndarray, training_prior: float, prior: float) -> np.ndarray:
    """Bayes' rule with the class-conditional likelihoods held fixed and the prior replaced."""
    _check_prior(training_prior, "training_prior")
    _check_prior(prior, "prior")
    p = np.clip(np.asarray(posteriors, dtype=np.float64), _EPSILON, 1 - _EPSILON)
    positive = p * (prior / training_prior)
    negative = (1 - p) * ((1 - prior) / (1 - training_prior))
    return positive / (positive + negative)


def estimate_prior(
    posteriors: np.ndarray,
    training_prior: float,
    tolerance: float = 1e-6,
    max_iterations: int = 1000,
) -> PriorEstimate:
    """EM estimate of the positive-class prior behind `posteriors` (P(positive) per row, made
    by a model trained where that prior was `training_prior`)."""
    _check_prior(training_prior, "training_prior")
    p = np.asarray(posteriors, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError("posteriors must be a non-empty 1-D array of P(positive)")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError("posteriors must be probabilities in [0, 1]")
    prior = training_prior
    for iteration in range(1, max_iterations + 1):
        updated = float(adjust_posteriors(p, training_prior, prior).mean())
        # The estimate stays strictly inside (0, 1) so the next reweighting is defined.
        updated = min(max(updated, _EPSILON), 1 - _EPSILON)
        if abs(updated - prior) < tolerance:
            return PriorEstimate(training_prior, updated, iteration, True)
        prior = updated
    return PriorEstimate(training_prior, prior, max_iterations, False)


def _check_prior(value: float, name: str) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")


# The drift statistics that a change of the class prior moves on its own, and those that
# only move when what tweets say changes (topic, wording): see `is_prior_shift_only`.
PRIOR_STATISTICS = (PREDICTION_KS, PREDICTION_PSI, PREDICTED_POSITIVE_RATE, LABEL_PRIOR)
CONTENT_STATISTICS = (EMBEDDING_MEAN_DISTANCE, EMBEDDING_MMD, VOCABULARY_OOV)


def is_prior_shift_only(drifted_statistics: Iterable[str]) -> bool:
    """Whether a drift report's flagged statistics describe a label-prior shift alone: the
    predictions' (or labels') balance moved while the embeddings and vocabulary did not.
    That is the case EM re-estimation answers; a topic shift needs new weights."""
    flagged = set(drifted_statistics)
    return bool(flagged & set(PRIOR_STATISTICS)) and not flagged & set(CONTENT_STATISTICS)


@dataclass(frozen=True)
class PriorAdjustment:
    """What turns a version into its prior-adjusted child: the parent's calibration, then
    Bayes' rule from the prior it was trained under to the one EM found in `month`."""

    parent_version: str
    month: str
    training_prior: float
    prior: float
    calibration: dict

    def apply(self, raw: np.ndarray) -> np.ndarray:
        calibrated = Calibration.from_dict(self.calibration).apply(raw)
        return adjust_posteriors(calibrated, self.training_prior, self.prior)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PriorAdjustment:
        return cls(**data)
