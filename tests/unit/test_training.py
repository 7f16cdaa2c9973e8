import numpy as np
import pytest

from sentiment_assets.lib.training import (
    LogRegParams,
    fit_embedding_logreg,
    fit_tfidf_logreg,
    validation_split,
)

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
    params = LogRegParams(seed=3, min_df=1, validation_fraction=0.25)
    first = fit_tfidf_logreg(texts, labels, params)
    second = fit_tfidf_logreg(texts, labels, params)
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
    fit = fit_embedding_logreg(vectors, labels, LogRegParams())
    assert fit.validation["accuracy"] >= 0.9
    assert fit.n_validation == 20


def test_one_class_window_is_refused():
    with pytest.raises(ValueError, match="both classes"):
        fit_tfidf_logreg(["good", "great"], np.array([1, 1]), LogRegParams(min_df=1))


def test_validation_split_is_stratified_and_seeded():
    labels = np.array([0] * 30 + [1] * 70)
    train, validation = validation_split(labels, 0.1, seed=1)
    assert len(validation) == 10 and labels[validation].sum() == 7
    again = validation_split(labels, 0.1, seed=1)
    np.testing.assert_array_equal(validation, again[1])
    assert set(train).isdisjoint(validation)
