"""Temperature scaling on the holdout: ECE falls on a miscalibrated model, decisions stay."""

import dataclasses
from datetime import date

import numpy as np
import pytest

from sentiment_assets.lib.models.model_bundle import (
    ModelCard,
    load_predictor,
    save_bundle,
    write_card,
)
from sentiment_assets.lib.models.params import LogRegParams
from sentiment_assets.lib.models.training import fit_tfidf_logreg
from sentiment_assets.lib.stats.calibration import (
    MIN_CALIBRATION_ROWS,
    TEMPERATURE_SCALING,
    UNCALIBRATED,
    Calibration,
    bins_from_json,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    reliability_figure,
    reliability_json,
)


def miscalibrated(sharpness: float, n: int = 4000, seed: int = 0):
    """Labels drawn from sigmoid(2x); the 'model' reports sigmoid(2 * sharpness * x), the right
    ranking with the wrong confidence (sharpness > 1: overconfident)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-2 * x))).astype(int)
    return 1 / (1 + np.exp(-2 * sharpness * x)), labels


@pytest.mark.parametrize("sharpness", [3.0, 0.4])
def test_temperature_scaling_lowers_ece_of_a_miscalibrated_model(sharpness):
    proba, labels = miscalibrated(sharpness)
    calibration = fit_temperature(proba, labels)
    assert calibration.method == TEMPERATURE_SCALING
    assert calibration.temperature == pytest.approx(sharpness, rel=0.15)
    assert calibration.ece_before == pytest.approx(expected_calibration_error(proba, labels))
    assert calibration.ece_before > 0.05
    assert calibration.ece_after < calibration.ece_before / 3
    calibrated = calibration.apply(proba)
    # Temperature scaling changes confidence, never a decision at 0.5.
    assert np.array_equal(calibrated >= 0.5, proba >= 0.5)


def test_a_calibrated_model_keeps_a_temperature_near_one():
    proba, labels = miscalibrated(1.0)
    calibration = fit_temperature(proba, labels)
    assert calibration.temperature == pytest.approx(1.0, abs=0.1)
    assert calibration.ece_after < 0.03


def test_too_few_rows_leave_the_scores_alone():
    proba, labels = miscalibrated(3.0, n=MIN_CALIBRATION_ROWS - 1)
    calibration = fit_temperature(proba, labels)
    assert calibration.method == UNCALIBRATED
    assert np.array_equal(calibration.apply(proba), proba)
    assert Calibration.from_dict({}) == Calibration()


def test_reliability_bins_count_every_row_once_and_survive_json():
    proba, labels = miscalibrated(3.0, n=500)
    proba[0], proba[1] = 0.0, 1.0
    bins = reliability_bins(proba, labels)
    assert sum(b.n for b in bins) == len(proba)
    assert bins[0].n > 0 and bins[-1].n > 0
    calibration = fit_temperature(proba, labels)
    after = reliability_bins(calibration.apply(proba), labels)
    assert bins_from_json(reliability_json(bins, after)) == (bins, after)
    figure = reliability_figure(bins, after, calibration, "test")
    assert len(figure.axes) == 2


def test_calibration_travels_on_the_card_without_changing_the_version(tmp_path):
    texts = ["good great love", "awful bad hate", "love it great", "hate this awful"] * 10
    labels = np.array([1, 0, 1, 0] * 10)
    holdout = np.zeros(len(texts), dtype=bool)
    fit = fit_tfidf_logreg(texts, labels, holdout, LogRegParams(min_df=1))
    card = ModelCard("tfidf_logreg", date(2024, 1, 1), date(2024, 1, 1), {}, "fingerprint")
    directory = save_bundle(tmp_path / "bundle", card, fit.estimator)
    plain = load_predictor(directory)
    raw = plain.predict_proba_clean(texts[:4])
    assert np.array_equal(plain.calibrated_proba_clean(texts[:4]), raw)  # no calibration yet

    calibration = Calibration(TEMPERATURE_SCALING, 2.5, 40, 0.2, 0.05)
    calibrated_card = dataclasses.replace(card, calibration=calibration.as_dict())
    write_card(directory, calibrated_card)
    loaded = load_predictor(directory)
    assert loaded.version == card.version
    assert loaded.calibration == calibration
    assert np.allclose(loaded.calibrated_proba_clean(texts[:4]), calibration.apply(raw))
    assert not np.allclose(calibration.apply(raw), raw)
