"""Behavioural tests of the trained sentiment model (Made-With-ML / CheckList style).

Accuracy on a holdout says how often the model is right on data like its training data; these
tests say *how* it behaves on inputs chosen by hand: clear cases it must get right (minimum
functionality), edits that must flip or move the prediction (negation, a directional test) and
edits that must not matter (invariance). They also pin down that the same data and seed give
the same model.

The model is trained the way the `sentiment_model` asset trains the demo champion: the default
synthetic generator (two undrifted months, 1,500 tweets each), accepted rows, de-duplicated
like dbt's tweets_clean, cleaned, embedded with MiniLM, logistic regression with the fixed hash
holdout, then written with `save_bundle` and served through `load_predictor`, the same path as
the CLI and the app. The rows are rebuilt in memory from the pure modules so the tests need no
warehouse, Dagster or MLflow.

Thresholds were fixed from what the behaviour should be, then checked for margin (the measured
rates are in each test's docstring, from the default config with seed 7 on CPU). Everything is
deterministic, so a failure means the model or the pipeline changed, never bad luck.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sentiment_assets.lib.data import synthetic
from sentiment_assets.lib.data.sampling import holdout_mask
from sentiment_assets.lib.data.sources import load_month
from sentiment_assets.lib.data.text import clean_text, map_label
from sentiment_assets.lib.encoding.encoder import TextEncoder
from sentiment_assets.lib.models.behaviour import DEFAULT_MIN_PASS_RATE, run_suite
from sentiment_assets.lib.models.model_bundle import (
    ModelCard,
    Predictor,
    data_fingerprint,
    load_predictor,
    save_bundle,
)
from sentiment_assets.lib.models.params import LogRegParams
from sentiment_assets.lib.models.training import (
    EMBEDDING_LOGREG,
    TFIDF_LOGREG,
    FitResult,
    fit_embedding_logreg,
    fit_tfidf_logreg,
)
from sentiment_assets.lib.stats.metrics import DECISION_THRESHOLD

# C and seed are the asset's defaults (TrainConfig); these tests hold out their own 10% of
# tweets, where the pipeline holds out 20% (sampling.HOLDOUT_FRACTION).
HOLDOUT_FRACTION = 0.1
PARAMS = LogRegParams(C=1.0, seed=0)
# The demo champion's situation before the drift month: the first months of the default
# generator at its default size.
N_MONTHS = 2
TWEETS_PER_MONTH = 1500


# --- training the way the pipeline does ------------------------------------------------------


@dataclass(frozen=True)
class TrainingSet:
    """Labelled, de-duplicated, cleaned rows in the pipeline's order (month, tweet_id)."""

    tweet_ids: list[str]
    months: list[date]
    texts: list[str]
    labels: np.ndarray
    embeddings: np.ndarray

    def subset(self, keep: np.ndarray) -> TrainingSet:
        index = np.flatnonzero(keep)
        return TrainingSet(
            tweet_ids=[self.tweet_ids[i] for i in index],
            months=[self.months[i] for i in index],
            texts=[self.texts[i] for i in index],
            labels=self.labels[index],
            embeddings=self.embeddings[index],
        )


@dataclass(frozen=True)
class TrainedModel:
    fit: FitResult
    predictor: Predictor


def training_config() -> synthetic.SyntheticConfig:
    config = dataclasses.replace(synthetic.default_config(), tweets_per_month=TWEETS_PER_MONTH)
    # If the default drift month ever moved into the first months, these tests would quietly
    # train on drifted data and test something else.
    for month in synthetic.months(config)[:N_MONTHS]:
        assert config.drift_for(month) == synthetic.NO_DRIFT, f"{month} is drifted"
    return config


def labelled_rows(config: synthetic.SyntheticConfig, months: list[date]) -> pd.DataFrame:
    """Accepted rows -> labels -> no contradictory ids -> one copy per id -> cleaned text.

    The in-memory twin of stg_tweets/tweets_clean: an id with two different labels loses
    every copy, duplicates keep the earliest copy, rows whose cleaned text is empty go.
    """
    accepted = pd.concat(
        [load_month("synthetic", m, synthetic=config).accepted for m in months],
        ignore_index=True,
    )
    frame = accepted.assign(
        label=[map_label(v) for v in accepted["label_raw"]],
        text=[clean_text(t) for t in accepted["text"]],
    )
    frame = frame[frame["label"].notna() & frame["tweet_id"].notna()]
    n_labels = frame.groupby("tweet_id")["label"].nunique()
    contradictory = n_labels.index[n_labels > 1]
    frame = frame[~frame["tweet_id"].isin(contradictory) & (frame["text"] != "")]
    frame = frame.sort_values(["tweet_id", "created_at", "source_row"], kind="stable")
    frame = frame.drop_duplicates("tweet_id", keep="first")
    frame = frame.sort_values(["month", "tweet_id"], kind="stable").reset_index(drop=True)
    return frame.assign(label=frame["label"].astype(int))


def _card(
    family: str, data: TrainingSet, params: LogRegParams, encoder: TextEncoder | None
) -> ModelCard:
    return ModelCard(
        family=family,
        trained_through=max(data.months),
        window_start=min(data.months),
        params=params.as_dict(),
        data_fingerprint=data_fingerprint(data.tweet_ids, data.labels),
        encoder=encoder.name if encoder is not None else None,
        encoder_fingerprint=encoder.fingerprint if encoder is not None else None,
    )


def train_embedding_model(
    data: TrainingSet, encoder: TextEncoder, directory: Path, params: LogRegParams = PARAMS
) -> TrainedModel:
    holdout = holdout_mask(data.tweet_ids, HOLDOUT_FRACTION)
    fit = fit_embedding_logreg(data.embeddings, data.labels, holdout, params)
    save_bundle(directory, _card(EMBEDDING_LOGREG, data, params, encoder), fit.estimator)
    # Handing over the encoder is what the asset does too; the predictor only takes it when
    # its fingerprint matches the card's, so the bundle still decides which encoder is used.
    return TrainedModel(fit, load_predictor(directory, encoder=encoder))


def train_tfidf_model(
    data: TrainingSet, directory: Path, params: LogRegParams = PARAMS
) -> TrainedModel:
    holdout = holdout_mask(data.tweet_ids, HOLDOUT_FRACTION)
    fit = fit_tfidf_logreg(data.texts, data.labels, holdout, params)
    save_bundle(directory, _card(TFIDF_LOGREG, data, params, None), fit.estimator)
    return TrainedModel(fit, load_predictor(directory))


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    # Pinned to CPU: on CUDA the encoder autocasts to fp16, which changes the numbers the
    # margins below were checked on. Batches of 128 (the resource's default is 32) cut the
    # encoding time by about a quarter on CPU and change embeddings only in the last bits.
    return TextEncoder(device="cpu", batch_size=128)


@pytest.fixture(scope="module")
def training_set(encoder: TextEncoder) -> TrainingSet:
    config = training_config()
    frame = labelled_rows(config, synthetic.months(config)[:N_MONTHS])
    texts = frame["text"].tolist()
    return TrainingSet(
        tweet_ids=frame["tweet_id"].tolist(),
        months=frame["month"].tolist(),
        texts=texts,
        labels=frame["label"].to_numpy(dtype=int),
        embeddings=encoder.encode(texts),
    )


@pytest.fixture(scope="module")
def champion(
    training_set: TrainingSet, encoder: TextEncoder, tmp_path_factory: pytest.TempPathFactory
) -> TrainedModel:
    directory = tmp_path_factory.mktemp("champion") / EMBEDDING_LOGREG
    return train_embedding_model(training_set, encoder, directory)


@pytest.fixture(scope="module")
def baseline(training_set: TrainingSet, tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    directory = tmp_path_factory.mktemp("baseline") / TFIDF_LOGREG
    return train_tfidf_model(training_set, directory)


def positive(scores: np.ndarray) -> np.ndarray:
    return np.asarray(scores) >= DECISION_THRESHOLD


def report(texts: list[str], scores: np.ndarray, wrong: np.ndarray) -> str:
    """The failing cases with their scores, so a red test says what went wrong."""
    return "; ".join(f"{t!r}: {s:.2f}" for t, s, w in zip(texts, scores, wrong, strict=True) if w)


# --- minimum functionality -------------------------------------------------------------------

# Unambiguous tweets, half in the generator's domain (phones, coffee, movies, weather, music)
# and half general English the model never saw in training: the encoder has to carry those.
CLEAR_CASES: list[tuple[str, int]] = [
    ("my new phone is amazing", 1),
    ("the coffee here is terrible", 0),
    ("what a wonderful day, the sunshine is beautiful", 1),
    ("this movie was boring and awful", 0),
    ("best album of the year, fantastic", 1),
    ("the battery died again, so annoying", 0),
    ("thank you so much, you made my day", 1),
    ("worst customer service ever, so disappointed", 0),
    ("I really enjoyed dinner with my family tonight", 1),
    ("I'm so sad and angry right now", 0),
    ("congrats on the new job, so proud of you!", 1),
    ("my flight got cancelled and I lost my bag", 0),
]


def test_champion_gets_the_obvious_cases_right(champion: TrainedModel) -> None:
    """'I love this' / 'I hate this' must be right; >= 90 % of 12 clear tweets (1 miss allowed).

    Measured: 'I love this' 0.85, 'I hate this' 0.10; 12/12 clear cases right, the closest
    being 'my flight got cancelled and I lost my bag' at 0.48.
    """
    love, hate = champion.predictor.predict_proba(["I love this", "I hate this"])
    assert love >= DECISION_THRESHOLD, f"'I love this' scored {love:.2f}"
    assert hate < DECISION_THRESHOLD, f"'I hate this' scored {hate:.2f}"

    texts = [t for t, _ in CLEAR_CASES]
    expected = np.array([label for _, label in CLEAR_CASES], dtype=bool)
    scores = champion.predictor.predict_proba(texts)
    wrong = positive(scores) != expected
    assert wrong.mean() <= 0.10, f"misread clear tweets: {report(texts, scores, wrong)}"


def test_champion_clears_the_promotion_floor(champion: TrainedModel) -> None:
    """The promotion gate's minimum-functionality suite: the champion must clear its floor.

    Measured: 19/20 right (the miss: 'feeling sick and tired' at 0.77).
    """
    result = run_suite(champion.predictor.predict_proba)
    assert result.passes(DEFAULT_MIN_PASS_RATE), result.summary()


# Sentences built only from words the generator uses: a bag-of-n-grams model cannot know
# words it never saw, so the baseline is only asked about its own vocabulary.
IN_DOMAIN_CASES: list[tuple[str, int]] = [
    ("i love my morning coffee", 1),
    ("the new album is amazing", 1),
    ("the weather today is awful", 0),
    ("this phone is useless", 0),
    ("the new movie was brilliant", 1),
    ("i hate this rain", 0),
    ("that concert was fantastic", 1),
    ("the battery life is terrible", 0),
    ("the sunshine is lovely", 1),
    ("the sequel was so boring", 0),
    ("wow this playlist, perfect", 1),
    ("the ios update is broken", 0),
]


def test_tfidf_baseline_gets_in_domain_cases_right(baseline: TrainedModel) -> None:
    """The TF-IDF baseline: >= 80 % of 12 in-domain tweets (2 misses allowed).

    A lower bar than the champion's, on purpose: the baseline only knows n-grams from its
    training window (so no general-English cases) and is not asked about 'I love this': it
    scores it 0.38 because the bigram 'love this' is learnt mostly from the negated template
    "i don't love this ...", the classic failure of n-gram features with negation.
    Measured: 12/12 right (lowest margin: 'i love my morning coffee' at 0.56).
    """
    texts = [t for t, _ in IN_DOMAIN_CASES]
    expected = np.array([label for _, label in IN_DOMAIN_CASES], dtype=bool)
    scores = baseline.predictor.predict_proba(texts)
    wrong = positive(scores) != expected
    assert wrong.mean() <= 0.20, f"misread in-domain tweets: {report(texts, scores, wrong)}"


# --- negation (directional) ------------------------------------------------------------------

THINGS = [
    "movie",
    "phone",
    "coffee",
    "album",
    "book",
    "restaurant",
    "game",
    "hotel",
    "show",
    "laptop",
]
# (praise, the same praise negated)
NEGATED_PRAISE = [
    ("this {} is good", "this {} is not good"),
    ("I love the {}", "I don't love the {}"),
    ("the {} was great", "the {} was not great"),
    ("I like this {}", "I don't like this {}"),
]
# (complaint, the same complaint negated)
NEGATED_COMPLAINTS = [
    ("the {} is bad", "the {} is not bad"),
    ("I hate the {}", "I don't hate the {}"),
    ("the {} was terrible", "the {} wasn't terrible"),
]


def _pairs(templates: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    plain = [a.format(thing) for a, _ in templates for thing in THINGS]
    negated = [b.format(thing) for _, b in templates for thing in THINGS]
    return plain, negated


def test_negating_praise_flips_the_label(champion: TrainedModel) -> None:
    """40 praise/negated pairs: the label flips in >= 70 %, the score drops in >= 80 %.

    70 %: negation is the point of the test, but a model without syntax may miss some
    phrasings; a clear majority is the floor. Measured: 100 % flip, 100 % drop.
    """
    plain, negated = _pairs(NEGATED_PRAISE)
    before = champion.predictor.predict_proba(plain)
    after = champion.predictor.predict_proba(negated)
    flipped = positive(before) & ~positive(after)
    dropped = after < before
    assert flipped.mean() >= 0.70, f"not flipped: {report(negated, after, ~flipped)}"
    assert dropped.mean() >= 0.80, f"score did not drop: {report(negated, after, ~dropped)}"


def test_negating_a_complaint_raises_the_score(champion: TrainedModel) -> None:
    """30 complaint/negated pairs: the score rises in >= 80 %; the label need not flip.

    'not bad' is weak praise at best, and mean-pooled embeddings hear mostly 'bad', so only
    the direction is required. Known limitation, measured: the score rises in 100 % of pairs
    (by 0.21 on average) but crosses 0.5 in only 2 of 30 (e.g. 'the hotel is not bad'
    0.13 -> 0.47).
    """
    plain, negated = _pairs(NEGATED_COMPLAINTS)
    before = champion.predictor.predict_proba(plain)
    after = champion.predictor.predict_proba(negated)
    rose = after > before
    assert rose.mean() >= 0.80, f"score did not rise: {report(negated, after, ~rose)}"


# --- invariance ------------------------------------------------------------------------------

# Tweets with a mention and a link; sentiment is carried by the words, never by the slots.
SLOT_TWEETS = [
    "@{user} the new album is amazing {url}",
    "@{user} my phone died again, worst day ever {url}",
    "thanks @{user} for the tickets, best concert ever {url}",
    "@{user} this coffee is awful, never going back {url}",
    "just watched the season finale with @{user}, brilliant {url}",
    "{url} the weather is terrible again @{user}",
    "@{user} @{user} so happy with my new laptop {url}",
    "ugh @{user} the ios update broke my camera {url}",
    "read this {url} and loved every word, thanks @{user}",
    "@{user} the sequel was boring and way too long {url}",
    "what a lovely morning, the sunshine is perfect @{user} {url}",
    "@{user} the service at this hotel was horrible {url}",
    "can't stop listening to this playlist {url} @{user} :)",
    "@{user} so disappointed with the new phone {url}",
    "congrats @{user}!!! so proud of you {url}",
    "@{user} the cafe downtown is closed forever, so sad {url}",
    "this trailer looks fantastic {url} via @{user}",
    "@{user} my order arrived broken, useless {url}",
    "best birthday ever, thank you @{user} {url}",
    "@{user} stuck in traffic for two hours, hate this city {url}",
]
# Valid Twitter handles only: the cleaner's mention rule ([A-Za-z0-9_]) is Twitter's.
USERS = ["sunnyfox12", "BBCBreaking", "jane_doe", "x"]
URLS = [
    "http://bit.ly/3xYz9",
    "https://www.example.com/reviews?id=42&ref=tw",
    "www.bbc.co.uk/news/technology-123",
]


@pytest.mark.parametrize("slot", ["user", "url"])
def test_swapping_mentions_or_urls_changes_nothing(champion: TrainedModel, slot: str) -> None:
    """clean_text maps every @mention to '@user' and every URL to 'http', so swapping one
    must leave the model's input, and hence its score, exactly unchanged."""
    values = USERS if slot == "user" else URLS
    fixed = {"user": USERS[0], "url": URLS[0]}

    def variant(value: str) -> list[str]:
        return [t.format(**{**fixed, slot: value}) for t in SLOT_TWEETS]

    reference = variant(values[0])
    reference_scores = champion.predictor.predict_proba(reference)
    for value in values[1:]:
        swapped = variant(value)
        assert [clean_text(t) for t in swapped] == [clean_text(t) for t in reference]
        # One call per variant: the encoder's numbers depend (in the last bits) on which
        # texts share a batch, and identical inputs give identical batches.
        np.testing.assert_array_equal(champion.predictor.predict_proba(swapped), reference_scores)


# Person names are left in the text by the cleaner, so the model sees them: the invariance can
# only be approximate. Every template has a clear polarity (label invariance is meaningless
# for a neutral text that sits on the decision boundary).
NAME_TWEETS = [
    "{name} said the new movie was amazing",
    "just had coffee with {name}, lovely morning",
    "{name} broke my phone again, so annoying",
    "can't believe {name} missed the concert :(",
    "{name} and I watched the season finale tonight, brilliant",
    "{name} recommended this album and it is awful",
    "thanks {name} for the help today!",
    "{name} is late again... the weather is terrible",
    "{name} and I had the best time at the game",
    "{name} cooked dinner, it was delicious",
    "ugh {name} spoiled the sequel for me",
    "{name} got me a new charger, love it",
    "waiting for {name} in the rain, cold and miserable",
    "{name} sent me this playlist, perfect for sunday",
    "{name} says the cafe downtown is closed forever",
    "happy birthday {name}! have a great day",
    "{name} keeps complaining about the ios update",
    "{name} loved the new album",
    "my flight with {name} got cancelled",
    "{name} told me the trailer looks boring",
]
# Names from several languages and cultures; the first is the reference the others replace.
NAMES = ["Alice", "Mohammed", "Priya", "Chen", "Olga", "Kwame", "Jose", "Sarah"]


@pytest.fixture(scope="module")
def name_scores(champion: TrainedModel) -> np.ndarray:
    """Scores as a (name, tweet) matrix."""
    return np.array(
        [champion.predictor.predict_proba([t.format(name=n) for t in NAME_TWEETS]) for n in NAMES]
    )


def test_swapping_a_person_name_keeps_the_label(name_scores: np.ndarray) -> None:
    """Over 7 swaps x 20 tweets, the label stays the same in >= 95 % of cases.

    Measured: 97.9 % (3 of 140 changed, all on 'waiting for {name} in the rain, cold and
    miserable', which the model misreads as positive for 'Alice' at 0.65 and gets right for
    'Priya', 'Kwame' and 'Jose'); the scores move more than the labels: see the next test.
    """
    reference, swapped = name_scores[0], name_scores[1:]
    changed = positive(swapped) != positive(reference)
    assert changed.mean() <= 0.05, (
        f"label changed in {changed.mean():.1%} of name swaps; per tweet: "
        + report(NAME_TWEETS, changed.mean(axis=0), changed.any(axis=0))
    )


@pytest.mark.xfail(
    strict=True,
    reason="known bias found by this test: names carry sentiment in the MiniLM embedding; "
    "swapping 'Alice' for another name moves the champion's score by 0.078 on average (mean "
    "shift per name from 0.00 for 'Mohammed' to -0.14 for 'Jose'). Strict, so a fix shows "
    "up as XPASS and this mark has to go.",
)
def test_swapping_a_person_name_barely_moves_the_score(name_scores: np.ndarray) -> None:
    """A name says nothing about sentiment: mean |score change| over the swaps < 0.05."""
    reference, swapped = name_scores[0], name_scores[1:]
    mean_shift = float(np.abs(swapped - reference).mean())
    per_name = dict(zip(NAMES[1:], np.round((swapped - reference).mean(axis=1), 3), strict=True))
    assert mean_shift < 0.05, f"mean |delta| {mean_shift:.3f}; mean shift per name {per_name}"


# --- reproducibility -------------------------------------------------------------------------

PROBES = [t for t, _ in CLEAR_CASES] + ["I love this", "I hate this", "the hotel is not bad"]


def test_same_data_and_seed_give_the_same_model(
    champion: TrainedModel,
    training_set: TrainingSet,
    encoder: TextEncoder,
    tmp_path: Path,
) -> None:
    """Regenerated data, re-encoded texts and a second fit are identical, bit for bit."""
    config = training_config()
    again = labelled_rows(config, synthetic.months(config)[:N_MONTHS])
    assert again["tweet_id"].tolist() == training_set.tweet_ids
    assert again["text"].tolist() == training_set.texts
    np.testing.assert_array_equal(again["label"].to_numpy(dtype=int), training_set.labels)
    sample = training_set.texts[:64]
    np.testing.assert_array_equal(encoder.encode(sample), encoder.encode(sample))

    twin = train_embedding_model(training_set, encoder, tmp_path / "twin")
    assert twin.predictor.version == champion.predictor.version
    assert twin.fit.validation == champion.fit.validation
    assert np.array_equal(
        twin.predictor.predict_proba(PROBES), champion.predictor.predict_proba(PROBES)
    )
    holdout = holdout_mask(training_set.tweet_ids, HOLDOUT_FRACTION)
    texts = [t for t, held in zip(training_set.texts, holdout, strict=True) if held]
    vectors = training_set.embeddings[holdout]
    assert np.array_equal(
        twin.predictor.predict_proba_clean(texts, embeddings=vectors),
        champion.predictor.predict_proba_clean(texts, embeddings=vectors),
    )


def test_different_training_data_gives_a_different_model(
    champion: TrainedModel,
    training_set: TrainingSet,
    encoder: TextEncoder,
    tmp_path: Path,
) -> None:
    """The counterpart of the test above, showing that it can fail: without 10 % of the rows
    the bundle's version and its probabilities change. (Changing only the logistic
    regression's seed would not do: lbfgs is deterministic and ignores it.)"""
    keep = np.random.default_rng(0).random(len(training_set.tweet_ids)) >= 0.10
    smaller = train_embedding_model(training_set.subset(keep), encoder, tmp_path / "smaller")
    assert smaller.predictor.version != champion.predictor.version
    assert not np.array_equal(
        smaller.predictor.predict_proba(PROBES), champion.predictor.predict_proba(PROBES)
    )
