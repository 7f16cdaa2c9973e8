import numpy as np
import pytest

from sentiment_assets.lib.data.sampling import holdout_mask
from sentiment_assets.lib.models.params import LogRegParams
from sentiment_assets.lib.models.training import fit_embedding_logreg, fit_tfidf_logreg

POSITIVE = ["love this {}", "great {} today", "so happy with my {}", "best {} ever"]
NEGATIVE = ["hate this {}", "awful {} today", "so sad about my {}", "worst {} ever"]
THINGS = ["phone", "coffee", "movie", "team", "song", "game", "city", "laptop"]


def corpus() -> tuple[list[str], np.ndarray]:
    texts, labels = [], []
    for thing in THINGS:
        for template in POSITIVE:
            texts.append(template.format(thing))
            labels.append(1)
        for template in NEGATIVE:
            texts.append(template.format(thing))
            labels.append(0)
    return texts, np.array(labels)


def test_tfidf_logreg_learns_and_is_deterministic():
    texts, labels = corpus()
    params = LogRegParams(seed=3, min_df=1)
    holdout = np.arange(len(texts)) % 5 == 0
    first = fit_tfidf_logreg(texts, labels, holdout, params)
    second = fit_tfidf_logreg(texts, labels, holdout, params)
    assert first.validation["accuracy"] >= 0.9
    assert first.n_train + first.n_validation == len(texts)
    probe = ["love this song", "worst laptop ever"]
    np.testing.assert_array_equal(
        first.estimator.predict_proba(probe), second.estimator.predict_proba(probe)
    )
    assert first.estimator.predict(probe).tolist() == [1, 0]


def test_embedding_logreg_separates_separable_vectors():
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 100)
    vectors = rng.normal(size=(200, 8)).astype(np.float32) + labels[:, None] * 2.0
    holdout = np.arange(200) % 10 == 0
    fit = fit_embedding_logreg(vectors, labels, holdout, LogRegParams())
    assert fit.validation["accuracy"] >= 0.9
    assert fit.n_validation == 20


def test_one_class_window_is_refused():
    with pytest.raises(ValueError, match="both classes"):
        fit_tfidf_logreg(
            ["good", "great"], np.array([1, 1]), np.array([False, False]), LogRegParams(min_df=1)
        )


def test_holdout_depends_on_the_tweet_only():
    ids = [f"tweet-{i}" for i in range(5000)]
    mask = holdout_mask(ids, 0.1)
    assert 0.08 < mask.mean() < 0.12
    # The same tweet is held out whatever else is in the window.
    np.testing.assert_array_equal(holdout_mask(ids[1000:2000], 0.1), mask[1000:2000])
    assert not holdout_mask(ids, 0.0).any()
