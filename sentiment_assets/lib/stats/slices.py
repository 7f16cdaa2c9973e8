"""Slices of a month's tweets, and a model's accuracy and macro-F1 on each.

Every slice is defined on the text as clean.tweets_clean stores it (lib/data/text.py, the twin of
the dbt macro): URLs are already the token ``http`` and mentions ``@user``. Words are runs
of non-space characters. A tweet may fall in several slices, or in none; each slice is scored
on exactly the tweets that match it.

- short: at most SHORT_MAX_WORDS words (about the shortest 10-12% of Sentiment140 and of the
  synthetic demo).
- long: at least LONG_MIN_WORDS words (about the longest 20% of Sentiment140).
- url: the token ``http`` (every URL after cleaning) as a whole word.
- mention: the token ``@user`` not preceded by a letter, digit or underscore (cleaning turns
  every mention into it and leaves e-mail addresses alone).
- hashtag: ``#`` not preceded by a letter, digit or underscore, then letters, digits or
  underscores with at least one letter (``#1`` is a number, not a hashtag).
- negation: a negating word (not, no, never, nothing, nobody, none, neither, nor, nowhere,
  cannot, without), a contraction ending in n't (straight or curly apostrophe), or the
  same contraction written without its apostrophe (dont, cant, isnt, ...), any case.
- emoticon: an ASCII face standing alone (eyes ``:``/``;``/``=``, an optional nose
  ``-``/``o``/``'``/``^``, a mouth such as ``)`` ``(`` ``D`` ``P`` ``/`` ``|`` ``*`` ``3``;
  also ``<3`` and ``^^``/``^_^``), or an emoji from the pictographic blocks U+1F300-U+1FAFF
  and U+2600-U+27BF.
- all_caps: once the cleaning tokens ``http`` and ``@user`` are removed, at least
  ALL_CAPS_MIN_LETTERS ASCII letters and none of them lower case.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from sentiment_assets.lib.stats.metrics import classification_metrics

SHORT_MAX_WORDS = 6
LONG_MIN_WORDS = 20
ALL_CAPS_MIN_LETTERS = 5
# A slice is judged (the WARN check) only from this many labelled rows: at 100 rows the
# standard error of an accuracy near 0.75 is about 0.043, so the default margin of 0.10 is
# more than two of them and a flag is rarely noise.
DEFAULT_MIN_SLICE_ROWS = 100
DEFAULT_SLICE_MARGIN = 0.10

_URL = re.compile(r"(?<![A-Za-z0-9_])http(?![A-Za-z0-9_])")
_MENTION = re.compile(r"(?<![A-Za-z0-9_])@user(?![A-Za-z0-9_])")
_HASHTAG = re.compile(r"(?<![A-Za-z0-9_])#[A-Za-z0-9_]*[A-Za-z][A-Za-z0-9_]*")
_NEGATION = re.compile(
    r"\b(?:not|no|never|nothing|nobody|none|neither|nor|nowhere|cannot|without)\b"
    r"|[A-Za-z]n['\u2019]t\b"
    r"|\b(?:dont|cant|wont|isnt|arent|wasnt|werent|doesnt|didnt|couldnt|shouldnt|wouldnt"
    r"|havent|hasnt|hadnt|aint)\b",
    re.IGNORECASE,
)
_FACE = r"(?:[:;=][-o'^]?[)(\]\[DPpOo3/\\|*]|<3|\^_?\^)"
_EMOTICON = re.compile(rf"(?:(?<=\s)|^){_FACE}(?=\s|$|[.,!?])|[\U0001F300-\U0001FAFF\u2600-\u27BF]")
_CLEANING_TOKENS = re.compile(r"(?<![A-Za-z0-9_])(?:http|@user)(?![A-Za-z0-9_])")


def _all_caps(text: str) -> bool:
    letters = [c for c in _CLEANING_TOKENS.sub(" ", text) if c.isascii() and c.isalpha()]
    return len(letters) >= ALL_CAPS_MIN_LETTERS and not any(c.islower() for c in letters)


SLICES: dict[str, Callable[[str], bool]] = {
    "short": lambda text: len(text.split()) <= SHORT_MAX_WORDS,
    "long": lambda text: len(text.split()) >= LONG_MIN_WORDS,
    "url": lambda text: _URL.search(text) is not None,
    "mention": lambda text: _MENTION.search(text) is not None,
    "hashtag": lambda text: _HASHTAG.search(text) is not None,
    "negation": lambda text: _NEGATION.search(text) is not None,
    "emoticon": lambda text: _EMOTICON.search(text) is not None,
    "all_caps": _all_caps,
}


def slice_masks(cleaned_texts: Sequence[str]) -> dict[str, np.ndarray]:
    """One boolean mask per slice over `cleaned_texts`."""
    return {
        name: np.fromiter((rule(t) for t in cleaned_texts), dtype=bool, count=len(cleaned_texts))
        for name, rule in SLICES.items()
    }


@dataclass(frozen=True)
class SliceScore:
    slice: str
    n: int
    accuracy: float
    macro_f1: float

    def as_dict(self) -> dict:
        return asdict(self)


def slice_scores(
    cleaned_texts: Sequence[str], labels: np.ndarray, positive_proba: np.ndarray
) -> list[SliceScore]:
    """Accuracy and macro-F1 on every non-empty slice (an empty slice has no score and no
    row), in SLICES order."""
    labels = np.asarray(labels, dtype=int)
    positive_proba = np.asarray(positive_proba, dtype=np.float64)
    scores = []
    for name, mask in slice_masks(cleaned_texts).items():
        if not mask.any():
            continue
        metrics = classification_metrics(labels[mask], positive_proba[mask])
        scores.append(SliceScore(name, int(mask.sum()), metrics["accuracy"], metrics["macro_f1"]))
    return scores


def weak_slices(
    scores: Sequence[SliceScore],
    overall_accuracy: float,
    margin: float = DEFAULT_SLICE_MARGIN,
    min_rows: int = DEFAULT_MIN_SLICE_ROWS,
) -> list[SliceScore]:
    """Slices of at least `min_rows` rows whose accuracy is more than `margin` below the
    whole month's."""
    return [s for s in scores if s.n >= min_rows and s.accuracy < overall_accuracy - margin]
