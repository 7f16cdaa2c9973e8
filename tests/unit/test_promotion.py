import pytest

from sentiment_assets.lib.models.behaviour import SuiteResult
from sentiment_assets.lib.versions.promotion import KEPT, PROMOTED, REJECTED, behaviour_veto, decide


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


def test_a_tie_is_never_promoted_whatever_the_margin():
    # A byte-identical retrain scores exactly the champion's score.
    for margin in (0.0, 0.05):
        tie = decide("4", 0.8312, "1", 0.8312, margin=margin)
        assert tie.decision == REJECTED and not tie.passes
        assert "+0.0000" in tie.reason and "tie" in tie.reason
    # Below the tolerance is a tie too; just above it is an improvement.
    assert decide("4", 0.83124, "1", 0.8312, margin=0.0).decision == REJECTED
    assert decide("4", 0.8313, "1", 0.8312, margin=0.0).decision == PROMOTED


def test_same_version_is_kept_and_negative_margin_refused():
    assert decide("3", 0.7, "3", 0.7, margin=0.0).decision == KEPT
    with pytest.raises(ValueError):
        decide("2", 0.7, "1", 0.7, margin=-0.1)


def _suite(correct: int, total: int = 20) -> SuiteResult:
    failures = tuple((f"tweet {i}", 1, 0.2) for i in range(total - correct))
    return SuiteResult(correct, total, failures)


def test_a_challenger_below_the_floor_cannot_replace_a_champion_above_it():
    veto = behaviour_veto(_suite(15), _suite(19), 0.9)
    assert veto is not None and "15/20" in veto and "19/20" in veto
    decision = decide("5", 0.95, "2", 0.80, 0.0, veto)
    assert decision.decision == REJECTED and decision.reason == veto
    assert not decision.passes


def test_the_floor_only_protects_a_champion_that_clears_it():
    assert behaviour_veto(_suite(18), _suite(20), 0.9) is None  # challenger clears it
    assert behaviour_veto(_suite(12), _suite(14), 0.9) is None  # champion misreads too
    assert behaviour_veto(_suite(12), None, 0.9) is None  # no champion yet
    assert behaviour_veto(_suite(0), _suite(20), 0.0) is None  # floor turned off


def test_a_veto_does_not_stop_the_first_model_or_a_kept_champion():
    assert decide("1", 0.5, None, None, 0.0, "vetoed").decision == PROMOTED
    assert decide("3", 0.5, "3", 0.5, 0.0, "vetoed").decision == KEPT
