"""Slices of tweets: what each one matches, how rows are counted, and the WARN check."""

import dagster as dg
import numpy as np
import pytest

from sentiment_assets.defs.models.evaluation import EvaluationConfig, _slice_check
from sentiment_assets.lib.data.text import clean_text
from sentiment_assets.lib.stats.slices import (
    SLICES,
    SliceScore,
    slice_masks,
    slice_scores,
    weak_slices,
)

CASES = [
    ("ok", {"short"}),
    ("this one has exactly seven words in it", set()),
    (" ".join(["word"] * 20), {"long"}),
    (clean_text("look at https://t.co/abc and more words here"), {"url"}),
    (clean_text("@bob thanks for the tip today friend"), {"mention"}),
    ("write to me at bob@user.com about the thing please", set()),
    ("loving the #sunshine today with all my friends", {"hashtag"}),
    ("we came #1 in the league this year", set()),
    ("i don't like the new update at all", {"negation"}),
    ("i dont like the new update at all", {"negation"}),
    ("there is nothing on the telly tonight sadly", {"negation"}),
    ("the knot in my shoelace came undone", set()),
    ("great game last night lads :D", {"emoticon", "short"}),
    ("meeting moved to 12:30 for everyone tomorrow morning", set()),
    ("what a day at the beach 😡 honestly", {"emoticon"}),
    ("WHY IS THIS HAPPENING TO ME @user", {"all_caps", "mention"}),
    ("LOL ok then we go", {"short"}),
    (
        clean_text("@Ann NO WAY THAT IS AMAZING http://x.co"),
        {"all_caps", "mention", "url", "negation"},
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_each_slice_matches_what_it_says(text, expected):
    masks = slice_masks([text])
    assert {name for name, mask in masks.items() if mask[0]} == expected


def test_every_row_counts_once_in_each_slice_it_matches_and_in_none_otherwise():
    texts = [text for text, _ in CASES]
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, len(texts))
    proba = rng.random(len(texts))
    scores = {s.slice: s for s in slice_scores(texts, labels, proba)}
    expected_n = {name: sum(name in members for _, members in CASES) for name in SLICES}
    assert {name: s.n for name, s in scores.items()} == {
        name: n for name, n in expected_n.items() if n
    }
    # A row in several slices is counted in each; a row in none adds to none.
    assert sum(s.n for s in scores.values()) == sum(len(members) for _, members in CASES)
    for name, score in scores.items():
        members = np.array([name in m for _, m in CASES])
        right = ((proba[members] >= 0.5) == labels[members]).mean()
        assert score.accuracy == pytest.approx(right)


def test_an_empty_slice_gets_no_score():
    scores = slice_scores(["plain words only here in this tweet"], np.array([1]), np.array([0.9]))
    assert scores == []


def month_with_a_weak_slice(weak: bool):
    """400 tweets, 150 of them negated: the model is right on 85% of all tweets, and on the
    negated ones too, unless `weak` makes it wrong on most of those."""
    rng = np.random.default_rng(5)
    texts = ["this phone is really good today"] * 250 + ["this phone is not good today"] * 150
    labels = rng.integers(0, 2, len(texts))
    right = rng.random(len(texts)) < 0.85
    if weak:
        right[250:] = rng.random(150) < 0.4
    proba = np.where(right, labels, 1 - labels).astype(float)
    return texts, labels, proba


def test_weak_slices_flags_a_slice_below_the_margin_with_enough_rows():
    texts, labels, proba = month_with_a_weak_slice(weak=True)
    overall = float(((proba >= 0.5) == labels).mean())
    scores = slice_scores(texts, labels, proba)
    assert [s.slice for s in weak_slices(scores, overall, margin=0.10, min_rows=100)] == [
        "negation"
    ]
    assert weak_slices(scores, overall, margin=0.10, min_rows=151) == []
    texts, labels, proba = month_with_a_weak_slice(weak=False)
    overall = float(((proba >= 0.5) == labels).mean())
    assert weak_slices(slice_scores(texts, labels, proba), overall, margin=0.10) == []


def test_the_slice_check_warns_on_a_weak_slice_and_passes_otherwise():
    config = EvaluationConfig(slice_margin=0.10, min_slice_rows=100)
    weak = {"7": [SliceScore("negation", 150, 0.55, 0.5), SliceScore("short", 120, 0.8, 0.8)]}
    result = _slice_check(weak, {"7": 0.8}, config)
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["weak_slices"].value == 1
    assert "negation" in result.metadata["detail"].value
    fine = {"7": [SliceScore("negation", 150, 0.75, 0.7), SliceScore("short", 50, 0.2, 0.2)]}
    assert _slice_check(fine, {"7": 0.8}, config).passed
