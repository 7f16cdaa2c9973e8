import numpy as np
import pytest

from sentiment_assets.lib.stats.metrics import classification_metrics, wilson_interval


def test_metrics_on_a_hand_computed_case():
    labels = [1, 1, 1, 0, 0]
    proba = np.array([0.9, 0.8, 0.2, 0.1, 0.7])  # predictions 1,1,0,0,1
    result = classification_metrics(labels, proba)
    assert result["n"] == 5
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["precision_positive"] == pytest.approx(2 / 3)
    assert result["recall_positive"] == pytest.approx(2 / 3)
    assert result["precision_negative"] == pytest.approx(1 / 2)
    assert result["recall_negative"] == pytest.approx(1 / 2)
    assert result["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_single_class_predictions_report_zero_not_error():
    result = classification_metrics([0, 1, 1], np.array([0.9, 0.9, 0.9]))
    assert result["recall_negative"] == 0.0
    assert result["precision_negative"] == 0.0
    assert result["accuracy"] == pytest.approx(2 / 3)


def test_empty_evaluation_set_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        classification_metrics([], np.array([]))


def test_wilson_interval_contains_the_estimate_and_narrows_with_n():
    low, high = wilson_interval(300, 359)
    assert low < 300 / 359 < high
    small = wilson_interval(30, 36)
    assert (small[1] - small[0]) > (high - low)
