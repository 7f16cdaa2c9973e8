"""EM prior re-estimation on a model whose posteriors are exactly calibrated by construction.

Two Gaussian classes (positive around +1, negative around -1, unit variance): the Bayes
posterior under prior q is sigmoid(2x + logit(q)), so a "model trained where the prior was
0.6" is that formula with q = 0.6, and a month drawn with another prior is a pure label shift.
"""

import numpy as np
import pytest

from sentiment_assets.lib.stats import drift
from sentiment_assets.lib.stats.calibration import Calibration
from sentiment_assets.lib.stats.prior_shift import (
    PriorAdjustment,
    adjust_posteriors,
    estimate_prior,
    is_prior_shift_only,
)

TRAINING_PRIOR = 0.6


def _month(prior: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < prior).astype(int)
    x = rng.normal(np.where(labels == 1, 1.0, -1.0), 1.0)
    logit = 2 * x + np.log(TRAINING_PRIOR / (1 - TRAINING_PRIOR))
    return 1 / (1 + np.exp(-logit)), labels


def _accuracy(posteriors: np.ndarray, labels: np.ndarray) -> float:
    return float(((posteriors >= 0.5).astype(int) == labels).mean())


@pytest.mark.parametrize("true_prior", [0.2, 0.41, 0.6, 0.8])
def test_em_recovers_an_injected_prior(true_prior: float) -> None:
    posteriors, labels = _month(true_prior, 20_000, seed=int(true_prior * 100))
    estimate = estimate_prior(posteriors, TRAINING_PRIOR)
    assert estimate.converged
    assert abs(estimate.estimated_prior - labels.mean()) < 0.03


def test_adjusting_to_a_shifted_prior_raises_accuracy() -> None:
    posteriors, labels = _month(0.2, 20_000, seed=7)
    estimate = estimate_prior(posteriors, TRAINING_PRIOR)
    assert _accuracy(estimate.adjust(posteriors), labels) > _accuracy(posteriors, labels) + 0.02


def test_without_a_shift_the_adjustment_changes_almost_nothing() -> None:
    posteriors, labels = _month(TRAINING_PRIOR, 20_000, seed=11)
    estimate = estimate_prior(posteriors, TRAINING_PRIOR)
    adjusted = estimate.adjust(posteriors)
    assert abs(estimate.estimated_prior - TRAINING_PRIOR) < 0.02
    assert _accuracy(adjusted, labels) >= _accuracy(posteriors, labels) - 0.005


def test_the_same_prior_leaves_posteriors_unchanged() -> None:
    posteriors = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(adjust_posteriors(posteriors, 0.3, 0.3), posteriors)


@pytest.mark.parametrize(
    ("posteriors", "prior"),
    [
        (np.array([]), 0.5),
        (np.array([0.2, 1.5]), 0.5),
        (np.array([0.2, np.nan]), 0.5),
        (np.array([0.2, 0.3]), 0.0),
        (np.array([0.2, 0.3]), 1.0),
    ],
)
def test_bad_input_is_refused(posteriors: np.ndarray, prior: float) -> None:
    with pytest.raises(ValueError):
        estimate_prior(posteriors, prior)


@pytest.mark.parametrize(
    ("flagged", "prior_only"),
    [
        ([drift.PREDICTED_POSITIVE_RATE], True),
        ([drift.LABEL_PRIOR, drift.PERFORMANCE_DROP], True),
        ([drift.PREDICTION_KS, drift.VOCABULARY_OOV], False),
        ([drift.EMBEDDING_MEAN_DISTANCE], False),
        ([drift.PERFORMANCE_DROP], False),
        ([], False),
    ],
)
def test_a_prior_shift_is_one_the_content_statistics_do_not_see(flagged, prior_only) -> None:
    assert is_prior_shift_only(flagged) is prior_only


def test_a_prior_adjustment_round_trips_and_calibrates_before_moving_the_prior() -> None:
    calibration = Calibration(method="temperature", temperature=2.0, n=100)
    adjustment = PriorAdjustment("7", "2024-05-01", 0.6, 0.3, calibration.as_dict())
    assert PriorAdjustment.from_dict(adjustment.as_dict()) == adjustment
    raw = np.array([0.05, 0.5, 0.97])
    expected = adjust_posteriors(calibration.apply(raw), 0.6, 0.3)
    np.testing.assert_allclose(adjustment.apply(raw), expected)
