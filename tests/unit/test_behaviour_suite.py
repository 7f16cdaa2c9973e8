import numpy as np
import pytest

from sentiment_assets.lib.models.behaviour import (
    DEFAULT_MIN_PASS_RATE,
    MINIMUM_FUNCTIONALITY,
    SuiteResult,
    run_suite,
)

LABELS = {text: label for text, label in MINIMUM_FUNCTIONALITY}


def oracle(texts: list[str]) -> np.ndarray:
    return np.array([0.9 if LABELS[t] else 0.1 for t in texts])


def test_the_suite_is_balanced_and_has_no_repeats():
    texts = [t for t, _ in MINIMUM_FUNCTIONALITY]
    assert len(set(texts)) == len(texts) >= 20
    assert sum(label for _, label in MINIMUM_FUNCTIONALITY) == len(texts) // 2
    assert {label for _, label in MINIMUM_FUNCTIONALITY} == {0, 1}


def test_a_model_that_reads_every_tweet_right_passes():
    result = run_suite(oracle)
    assert (result.correct, result.total, result.failures) == (20, 20, ())
    assert result.pass_rate == 1.0 and result.passes(DEFAULT_MIN_PASS_RATE)
    assert result.summary() == "20/20 right"


def test_misread_tweets_are_named_with_their_scores():
    flipped = {"so happy right now", "I hate this"}

    def two_wrong(texts: list[str]) -> np.ndarray:
        return np.array(
            [1 - p if t in flipped else p for t, p in zip(texts, oracle(texts), strict=True)]
        )

    result = run_suite(two_wrong)
    assert result.correct == 18
    assert {(t, label) for t, label, _ in result.failures} == {
        ("so happy right now", 1),
        ("I hate this", 0),
    }
    assert result.passes(0.9) and not result.passes(0.95)
    assert "'so happy right now' scored 0.10" in result.summary()


def test_a_constant_model_fails_the_floor():
    result = run_suite(lambda texts: np.full(len(texts), 0.7))
    assert result.correct == 10
    assert not result.passes(DEFAULT_MIN_PASS_RATE)


def test_the_threshold_is_inclusive_and_the_shape_checked():
    assert run_suite(lambda t: np.full(len(t), 0.5), [("x", 1)]).correct == 1
    with pytest.raises(ValueError, match="expected 2 scores"):
        run_suite(lambda t: np.zeros(3), [("a", 0), ("b", 1)])


def test_an_empty_result_never_passes_a_positive_floor():
    assert not SuiteResult(0, 0, ()).passes(0.5)
