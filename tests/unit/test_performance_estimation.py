"""Accuracy and macro-F1 expected from calibrated probabilities, before labels."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from sentiment_assets.lib.stats.calibration import fit_temperature
from sentiment_assets.lib.stats.metrics import classification_metrics
from sentiment_assets.lib.stats.performance_estimation import estimate_performance


def test_a_hand_computed_estimate():
    p = np.array([0.9, 0.2, 0.6, 0.5])
    estimate = estimate_performance(p)
    assert estimate.n == 4
    assert estimate.accuracy == pytest.approx((0.9 + 0.8 + 0.6 + 0.5) / 4)
    # Predicted positive: 0.9, 0.6, 0.5 -> TP 2.0, FP 1.0; predicted negative: 0.2 -> FN 0.2,
    # TN 0.8.
    f1_positive = 2 * 2.0 / (2 * 2.0 + 1.0 + 0.2)
    f1_negative = 2 * 0.8 / (2 * 0.8 + 0.2 + 1.0)
    assert estimate.macro_f1 == pytest.approx((f1_positive + f1_negative) / 2)
    assert estimate.positive_share == pytest.approx(p.mean())
    assert estimate.accuracy_lower <= estimate.accuracy <= estimate.accuracy_upper


def test_an_empty_month_cannot_be_estimated():
    with pytest.raises(ValueError, match="empty"):
        estimate_performance(np.array([]))


def world(n: int, rng: np.random.Generator, positive_shift: float = 0.0):
    """Features whose true P(positive) is sigmoid(w.x + b)."""
    x = rng.normal(size=(n, 5))
    logit = x @ np.array([1.5, -1.0, 0.5, 0.0, 0.8]) + positive_shift
    return x, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)


def test_the_estimate_lands_within_its_interval_on_a_labelled_month():
    """Train, calibrate on a holdout, estimate an unseen month from its features alone; its
    labels, revealed afterwards, give accuracy and macro-F1 inside the intervals. The model is
    made overconfident on purpose (logits x 3): uncalibrated, the estimate misses."""
    rng = np.random.default_rng(3)
    x_train, y_train = world(3000, rng)
    x_hold, y_hold = world(1000, rng)
    x_month, y_month = world(2000, rng)
    model = LogisticRegression().fit(x_train, y_train)

    def overconfident(x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-3 * model.decision_function(x)))

    calibration = fit_temperature(overconfident(x_hold), y_hold)
    raw = overconfident(x_month)
    estimate = estimate_performance(calibration.apply(raw), seed=0)
    realised = classification_metrics(y_month, raw)
    assert estimate.accuracy_lower <= realised["accuracy"] <= estimate.accuracy_upper
    assert estimate.macro_f1_lower <= realised["macro_f1"] <= estimate.macro_f1_upper
    assert 0.01 < estimate.accuracy_upper - estimate.accuracy_lower < 0.06
    naive = estimate_performance(raw, seed=0)
    assert naive.accuracy_lower > realised["accuracy"], "without calibration it overestimates"


def test_the_interval_covers_about_95_percent_of_months_drawn_from_the_probabilities():
    rng = np.random.default_rng(11)
    p = 1 / (1 + np.exp(-rng.normal(0.3, 1.5, size=800)))
    estimate = estimate_performance(p, seed=1)
    predictions = p >= 0.5
    months = rng.random((400, len(p))) < p
    accuracy = (months == predictions).mean(axis=1)
    f1 = np.array([classification_metrics(m.astype(int), p)["macro_f1"] for m in months])
    accuracy_coverage = np.mean(
        (estimate.accuracy_lower <= accuracy) & (accuracy <= estimate.accuracy_upper)
    )
    f1_coverage = np.mean((estimate.macro_f1_lower <= f1) & (f1 <= estimate.macro_f1_upper))
    assert 0.91 <= accuracy_coverage <= 0.99
    assert 0.91 <= f1_coverage <= 0.99
    assert accuracy.mean() == pytest.approx(estimate.accuracy, abs=0.005)


def test_the_same_seed_gives_the_same_interval():
    p = np.linspace(0.05, 0.95, 301)
    assert estimate_performance(p, seed=4) == estimate_performance(p, seed=4)
