"""Vocabulary drift: does the month use words the reference never did, and which ones?"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from sentiment_assets.lib.stats.drift.registry import (
    DriftThresholds,
    Measurement,
    Threshold,
    statistic,
)
from sentiment_assets.lib.stats.drift.shared import seeded_rng, too_small

VOCABULARY_OOV = "vocabulary_oov"

# Function words and the placeholders clean_text() puts in place of URLs and mentions: they
# are in every month, so they only dilute the OOV rate and crowd the keyword list.
STOP_WORDS = frozenset(
    """
    a an the and or but if so of to in on at by for with from as is am are was were be been
    being it its this that these those there here i me my we our you your he him his she
    her they them their what which who whom do does did have has had not no just than then too
    very can will would should could im http https www user
    """.split()  # noqa: SIM905 (a word block reads better than 80 quoted strings)
)
_SPLIT = re.compile(r"\W+")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens: split on non-word characters, drop 1-letter and stop words."""
    return [t for t in _SPLIT.split(text.lower()) if len(t) >= 2 and t not in STOP_WORDS]


def _oov_rate(
    docs: Sequence[list[str]], vocabulary: set[str] | frozenset[str]
) -> tuple[float, float, int]:
    """Token-level OOV rate, its variance (tweets as clusters) and the number of tokens."""
    oov = np.fromiter((sum(t not in vocabulary for t in d) for d in docs), float, len(docs))
    size = np.fromiter((len(d) for d in docs), float, len(docs))
    total = float(size.sum())
    if total == 0:
        return 0.0, 0.0, 0
    rate = float(oov.sum()) / total
    # Ratio-estimator (delta-method) variance: tokens of one tweet are not independent, so
    # the tweet is the sampling unit.
    n = len(docs)
    residual = oov - rate * size
    variance = float(residual @ residual) / total**2 * n / max(n - 1, 1)
    return rate, variance, int(total)


def new_keywords(
    reference_docs: Sequence[list[str]],
    current_docs: Sequence[list[str]],
    top: int = 10,
    min_count: int = 5,
    prior: float = 0.5,
) -> list[dict[str, Any]]:
    """Tokens used by more tweets now than before, ranked by a smoothed log-odds ratio.

    Counts are tweets containing the token (not occurrences), so one spam tweet repeating a
    word cannot make it a keyword. Add-``prior`` smoothing keeps a word absent from the
    reference finite: among such words the most used now ranks first. ``min_count`` (tweets)
    keeps one-off typos out. ``z`` is the log-odds over its standard error, for readers who
    want to know how sure the ranking is.
    """
    ref_df = Counter(t for d in reference_docs for t in set(d))
    cur_df = Counter(t for d in current_docs for t in set(d))
    n_ref, n_cur = len(reference_docs), len(current_docs)
    rows = []
    for token, y_cur in cur_df.items():
        if y_cur < min_count:
            continue
        y_ref = ref_df.get(token, 0)
        log_odds = math.log((y_cur + prior) / (n_cur - y_cur + prior)) - math.log(
            (y_ref + prior) / (n_ref - y_ref + prior)
        )
        if log_odds <= 0:
            continue
        se = math.sqrt(
            1 / (y_cur + prior)
            + 1 / (n_cur - y_cur + prior)
            + 1 / (y_ref + prior)
            + 1 / (n_ref - y_ref + prior)
        )
        rows.append(
            {
                "token": token,
                "tweets_current": y_cur,
                "tweets_reference": y_ref,
                "log_odds": round(log_odds, 4),
                "z": round(log_odds / se, 3),
            }
        )
    rows.sort(key=lambda r: (-r["log_odds"], r["token"]))
    return rows[:top]


def _vocabulary(docs: Sequence[list[str]], min_count: int) -> set[str]:
    counts = Counter(t for d in docs for t in d)
    return {t for t, c in counts.items() if c >= min_count}


@statistic(
    VOCABULARY_OOV,
    "vocabulary",
    severity="warn",
    reads=("texts",),
    thresholds={
        "vocab_min_count": Threshold(
            2, "A token belongs to the reference vocabulary if it occurs at least this often there."
        ),
        "keyword_min_count": Threshold(
            5,
            "Fewest tweets of the current month that must use a token for it to be a new keyword.",
        ),
        "top_keywords": Threshold(
            10,
            "How many new keywords the vocabulary check lists in its detail.",
            lambda top, _: top >= 0,
            "must be >= 0",
        ),
    },
)
def vocabulary_drift(
    reference_texts: Sequence[str], current_texts: Sequence[str], thresholds: DriftThresholds
) -> Measurement:
    """Out-of-vocabulary rate of the current month, calibrated on the reference itself.

    The reference is split at random into halves A and B. The vocabulary is A's tokens seen at
    least ``vocab_min_count`` times; B's OOV rate against it is what an undrifted month scores
    (every corpus has rare words, typos and names), and the current month's OOV rate against
    the same vocabulary is tested against it (one-sided z-test, tweets as clusters). Using half
    A for both keeps the comparison fair: a bigger vocabulary would lower every OOV rate.
    Value = the current OOV rate; threshold = B's rate + z_(1-alpha) x standard error. The
    top new keywords (against the whole reference) are in ``detail["new_keywords"]``. Severity
    warn: new words alone do not mean the model is wrong, but they tell what changed.
    """
    skipped = too_small(len(reference_texts), len(current_texts), thresholds.min_samples)
    if skipped:
        return skipped
    ref_docs = [tokenize(t) for t in reference_texts]
    cur_docs = [tokenize(t) for t in current_texts]
    order = seeded_rng(thresholds, VOCABULARY_OOV).permutation(len(ref_docs))
    half = len(order) // 2
    half_a = [ref_docs[i] for i in order[:half]]
    half_b = [ref_docs[i] for i in order[half:]]
    vocabulary = _vocabulary(half_a, thresholds.vocab_min_count)
    base_rate, base_var, base_tokens = _oov_rate(half_b, vocabulary)
    cur_rate, cur_var, cur_tokens = _oov_rate(cur_docs, vocabulary)
    se = math.sqrt(base_var + cur_var)
    if se == 0.0:
        p_value = 1.0 if cur_rate <= base_rate else 0.0
    else:
        p_value = float(stats.norm.sf((cur_rate - base_rate) / se))
    threshold = base_rate + float(stats.norm.isf(thresholds.alpha)) * se
    full_vocabulary = _vocabulary(ref_docs, thresholds.vocab_min_count)
    full_rate, _, _ = _oov_rate(cur_docs, full_vocabulary)
    return Measurement(
        cur_rate,
        threshold,
        bool(p_value <= thresholds.alpha),
        p_value,
        {
            "alpha": thresholds.alpha,
            "oov_rate_reference_heldout": base_rate,
            "oov_rate_current_vs_full_reference": full_rate,
            "vocabulary_size": len(vocabulary),
            "tokens_reference_heldout": base_tokens,
            "tokens_current": cur_tokens,
            "new_keywords": new_keywords(
                ref_docs, cur_docs, thresholds.top_keywords, thresholds.keyword_min_count
            ),
        },
    )
