import pytest

from sentiment_assets.lib.promotion import KEPT, PROMOTED, REJECTED, decide


def test_first_model_becomes_champion():
    result = decide("1", 0.6, None, None, margin=0.0)
    assert result.decision == PROMOTED and result.passes


def test_worse_beyond_the_margin_is_rejected():
    result = decide("2", 0.80, "1", 0.83, margin=0.01)
    assert result.decision == REJECTED and not result.passes
    assert "0.0300" in result.reason


def test_within_the_margin_or_better_is_promoted():
    assert decide("2", 0.825, "1", 0.83, margin=0.01).decision == PROMOTED
    assert decide("2", 0.90, "1", 0.83, margin=0.0).decision == PROMOTED
    assert decide("2", 0.8299, "1", 0.83, margin=0.0).decision == REJECTED


def test_same_version_is_kept_and_negative_margin_refused():
    assert decide("3", 0.7, "3", 0.7, margin=0.0).decision == KEPT
    with pytest.raises(ValueError):
        decide("2", 0.7, "1", 0.7, margin=-0.1)
