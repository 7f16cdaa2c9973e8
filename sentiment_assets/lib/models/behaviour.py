"""A minimum-functionality suite: plain tweets any sentiment model must get right.

Holdout accuracy says how a model does on tweets like its training data. A model can score
well there and still misread everyday English it never saw: a TF-IDF model trained on a
narrow vocabulary calls "so happy right now" negative. Promotion uses this suite as a floor
(CheckList's "minimum functionality test"), so the model people try in the app is not one
that fails the first sentence they type. The tweets are short, unambiguous, free of negation
and sarcasm, and about everyday life rather than any one dataset's topics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

MINIMUM_FUNCTIONALITY: tuple[tuple[str, int], ...] = (
    ("I love this so much", 1),
    ("this is the best day ever", 1),
    ("so happy right now", 1),
    ("had a wonderful time with friends", 1),
    ("what a great movie", 1),
    ("thank you, you made my day", 1),
    ("congratulations, so proud of you", 1),
    ("the food was delicious and the staff were lovely", 1),
    ("I'm really excited about the weekend", 1),
    ("such a beautiful morning", 1),
    ("I hate this", 0),
    ("worst service ever, never again", 0),
    ("I am so sad today", 0),
    ("feeling sick and tired", 0),
    ("my phone broke again", 0),
    ("this is so frustrating and annoying", 0),
    ("missed the bus and now I'm late for work", 0),
    ("terrible movie, a total waste of time", 0),
    ("I'm so disappointed", 0),
    ("my head hurts and I can't sleep", 0),
)
# Two misses in twenty are tolerated: the floor is for models that misread plain English,
# not for one borderline tweet.
DEFAULT_MIN_PASS_RATE = 0.9


@dataclass(frozen=True)
class SuiteResult:
    correct: int
    total: int
    # (text, expected label, score) of every tweet the model got wrong.
    failures: tuple[tuple[str, int, float], ...]

    @property
    def pass_rate(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def passes(self, min_pass_rate: float) -> bool:
        return self.pass_rate >= min_pass_rate

    def summary(self) -> str:
        missed = "; ".join(f"{t!r} scored {s:.2f}" for t, _, s in self.failures)
        return f"{self.correct}/{self.total} right" + (f" (missed {missed})" if missed else "")


def run_suite(
    predict_proba: Callable[[list[str]], np.ndarray],
    cases: Sequence[tuple[str, int]] = MINIMUM_FUNCTIONALITY,
    threshold: float = 0.5,
) -> SuiteResult:
    """Score `cases` (raw text, expected 0/1) with `predict_proba` (P(positive) per text)."""
    texts = [text for text, _ in cases]
    scores = np.asarray(predict_proba(texts), dtype=float)
    if scores.shape != (len(texts),):
        raise ValueError(f"expected {len(texts)} scores, got shape {scores.shape}")
    predicted = (scores >= threshold).astype(int)
    failures = tuple(
        (text, label, float(score))
        for (text, label), score, guess in zip(cases, scores, predicted, strict=True)
        if guess != label
    )
    return SuiteResult(len(cases) - len(failures), len(cases), failures)
