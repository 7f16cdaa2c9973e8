"""Unit tests for sentiment_assets.lib.data.synthetic: determinism, dirt, and the drift knobs."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from sentiment_assets.lib.data.synthetic import (
    COLUMNS,
    FLIPPING_SLANG,
    SHIFTED_VOCABULARY,
    STRONG_DRIFT,
    MonthDrift,
    SyntheticConfig,
    config_from_env,
    default_config,
    generate_month,
    labelled_sample,
    months,
)
from sentiment_assets.lib.data.text import clean_text

JAN, FEB, MAR = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)
TOKEN = re.compile(r"[a-z0-9]+")


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows a validating reader would accept, one per id (what a model trains on)."""
    ok = (
        frame["text"].str.strip().ne("")
        & frame["label"].isin(["0", "4"])
        & frame["text"].str.len().le(1000)
        & frame["created_at"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
    )
    return frame[ok].drop_duplicates("tweet_id", keep=False)


def _tokens(text: str) -> set[str]:
    return set(TOKEN.findall(text.lower()))


def _config(**knobs: float) -> SyntheticConfig:
    return SyntheticConfig(
        seed=11, tweets_per_month=2000, drift={1: MonthDrift(**knobs)} if knobs else {}
    )


def test_same_seed_and_month_give_identical_frames() -> None:
    config = default_config()
    first = generate_month(config, FEB)
    assert list(first.columns) == COLUMNS
    assert len(first) == config.tweets_per_month
    pd.testing.assert_frame_equal(first, generate_month(config, FEB))
    # Any day of the month names the same month.
    pd.testing.assert_frame_equal(first, generate_month(config, date(2024, 2, 17)))


def test_different_seed_or_month_gives_different_rows() -> None:
    base = generate_month(SyntheticConfig(seed=1), JAN)
    other_seed = generate_month(SyntheticConfig(seed=2), JAN)
    other_month = generate_month(SyntheticConfig(seed=1), FEB)
    assert set(base["text"]) != set(other_seed["text"])
    assert not set(base["tweet_id"]) & set(other_seed["tweet_id"])
    assert not set(base["tweet_id"]) & set(other_month["tweet_id"])


def test_month_does_not_depend_on_other_months() -> None:
    short = SyntheticConfig(seed=5, n_months=2, drift={})
    long = SyntheticConfig(seed=5, n_months=12, drift={})
    # Generation order and the number of months must not change a month's rows.
    for month in (MAR, JAN):
        generate_month(long, month)
    pd.testing.assert_frame_equal(generate_month(short, FEB), generate_month(long, FEB))
    # Nor does the start month, when no drift is keyed to the index.
    later_start = SyntheticConfig(seed=5, start_month=FEB, drift={})
    pd.testing.assert_frame_equal(generate_month(short, FEB), generate_month(later_start, FEB))


def test_rows_look_like_tweets() -> None:
    frame = generate_month(default_config(), JAN)
    texts = frame["text"]
    assert texts.str.contains(r"@\w+").mean() > 0.15
    assert texts.str.contains(r"#\w+").mean() > 0.2
    assert texts.str.contains("http://").mean() > 0.05
    assert texts.str.contains("&amp;|&quot;|&gt;|&lt;").mean() > 0.03
    assert texts.str.contains(r"\b(?:not|don't|never|can't|isn't|wasn't)\b").mean() > 0.08
    assert texts.str.contains(r"a{3}|e{3}|i{3}|o{3}|u{3}").mean() > 0.02  # elongations like "sooo"
    assert texts.str.contains(r"\b(?:gr8|luv|2nite|rly|gud|u)\b").mean() > 0.01
    assert (texts != texts.str.lower()).mean() > 0.15  # mixed case
    assert frame["created_at"].str.startswith("2024-01-").mean() > 0.98
    assert frame["user_name"].str.fullmatch(r"[a-z]+\d+").all()


def test_dirt_duplicates_and_noise() -> None:
    config = SyntheticConfig(seed=3, tweets_per_month=1500, bad_row_rate=0.01, drift={})
    frame = generate_month(config, JAN)
    per_id = frame.groupby("tweet_id")
    sizes = per_id.size()
    assert 5 <= (sizes > 1).sum() <= 10  # a few duplicated ids
    labels_per_id = per_id["label"].nunique()
    assert (labels_per_id > 1).sum() == 1  # exactly one contradictory duplicate
    exact = frame[frame.duplicated(keep=False)]
    assert len(exact) >= 10  # the exact copies are whole-row copies
    # Deliberately broken rows: 15 = round(1% of 1500), three of each kind.
    assert (frame["text"].str.strip() == "").sum() == 3
    assert (frame["created_at"] == "").sum() == 3
    assert (~frame["label"].isin(["0", "4"])).sum() == 3
    assert (frame["text"].str.len() > 1000).sum() == 3
    # Label noise: some plainly positive wording labelled negative (and vice versa).
    clean = _clean(frame)
    loved = clean[clean["text"].str.contains(r"\bi (?:love|adore)\b", case=False)]
    assert 0.0 < (loved["label"] == "0").mean() < 0.2


def test_no_bad_rows_when_rate_is_zero() -> None:
    frame = generate_month(SyntheticConfig(bad_row_rate=0.0, drift={}), JAN)
    assert len(_clean(frame)) + frame["tweet_id"].duplicated(keep=False).sum() == len(frame)


def test_positive_rate_shifts_the_label_prior() -> None:
    config = _config(positive_rate=0.25)
    before = _clean(generate_month(config, JAN))
    after = _clean(generate_month(config, FEB))
    assert 0.45 < (before["label"] == "4").mean() < 0.55
    # 25% positive, diluted by the label noise towards ~29%.
    assert 0.24 < (after["label"] == "4").mean() < 0.34


def test_topic_shift_brings_new_vocabulary() -> None:
    config = _config(topic_shift=0.6)

    def shifted_share(frame: pd.DataFrame) -> float:
        return frame["text"].map(lambda t: bool(_tokens(t) & SHIFTED_VOCABULARY)).mean()

    assert shifted_share(generate_month(config, JAN)) == 0.0
    assert 0.55 < shifted_share(generate_month(config, FEB)) < 0.65


def test_concept_drift_flips_the_slang_meaning() -> None:
    config = _config(concept_drift=0.5)
    slang = set(FLIPPING_SLANG)

    def positive_share_with_slang(frame: pd.DataFrame) -> tuple[float, int]:
        frame = _clean(frame)
        using = frame[frame["text"].map(lambda t: bool(_tokens(t) & slang))]
        return (using["label"] == "4").mean(), len(using)

    before, n_before = positive_share_with_slang(generate_month(config, JAN))
    after, n_after = positive_share_with_slang(generate_month(config, FEB))
    assert before > 0.85 and n_before > 60
    assert after < 0.25 and n_after > 3 * n_before


def test_task_is_learnable_and_the_default_drift_month_hurts() -> None:
    config = default_config()
    month_list = months(config)
    assert config.drift == {4: STRONG_DRIFT}
    train = _clean(generate_month(config, month_list[0])).iloc[:1000]
    vectorizer = TfidfVectorizer(sublinear_tf=True)
    model = LogisticRegression(max_iter=1000).fit(
        vectorizer.fit_transform(train["text"]), train["label"]
    )

    def accuracy(month: date) -> float:
        test = _clean(generate_month(config, month))
        return float((model.predict(vectorizer.transform(test["text"])) == test["label"]).mean())

    undrifted = accuracy(month_list[1])
    drifted = accuracy(month_list[4])
    assert 0.78 <= undrifted <= 0.93
    assert drifted <= undrifted - 0.2


def test_months_and_env_config() -> None:
    config = SyntheticConfig(start_month=date(2023, 11, 20), n_months=3)
    assert config.start_month == date(2023, 11, 1)
    assert months(config) == [date(2023, 11, 1), date(2023, 12, 1), date(2024, 1, 1)]

    assert config_from_env({}) == default_config()
    env = {
        "SENTIMENT_SYNTHETIC_SEED": "99",
        "SENTIMENT_SYNTHETIC_MONTHS": "4",
        "SENTIMENT_SYNTHETIC_TWEETS_PER_MONTH": "300",
        "SENTIMENT_SYNTHETIC_START": "2022-05-01",
        "SENTIMENT_SYNTHETIC_DRIFT_MONTH": "2",
    }
    from_env = config_from_env(env)
    assert (from_env.seed, from_env.n_months, from_env.tweets_per_month) == (99, 4, 300)
    assert from_env.start_month == date(2022, 5, 1)
    assert from_env.drift == {2: STRONG_DRIFT}
    assert from_env.drift_for(date(2022, 7, 1)) == STRONG_DRIFT
    assert from_env.drift_for(date(2022, 6, 1)) == MonthDrift()
    assert config_from_env({"SENTIMENT_SYNTHETIC_DRIFT_MONTH": "-1"}).drift == {}


def test_invalid_knobs_are_refused() -> None:
    with pytest.raises(ValueError):
        MonthDrift(positive_rate=1.5)
    with pytest.raises(ValueError):
        SyntheticConfig(bad_row_rate=-0.1)


def test_labelled_sample_is_what_a_model_trains_on() -> None:
    frame = labelled_sample(300, seed=3, month=JAN)
    assert list(frame.columns) == ["tweet_id", "text", "label"]
    assert 200 < len(frame) <= 300  # unlabelled and broken rows are gone, nothing is added
    assert frame["tweet_id"].is_unique
    assert set(frame["label"]) == {0, 1}
    assert frame["text"].map(clean_text).equals(frame["text"])  # already cleaned
    assert frame["text"].str.len().between(1, 1000).all()
    pd.testing.assert_frame_equal(frame, labelled_sample(300, seed=3, month=JAN))
