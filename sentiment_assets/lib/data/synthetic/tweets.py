"""One synthetic tweet: its sentiment, its style (plain, negated, slang, topic words), its decoration."""

from __future__ import annotations

import hashlib
import random

from sentiment_assets.lib.data.synthetic.config import MonthDrift
from sentiment_assets.lib.data.synthetic.vocabulary import (
    BASELINE_TOPICS,
    ENTITY_TAILS,
    FLIPPING_SLANG,
    INTENSIFIERS,
    NEGATIVE_ADJECTIVES,
    NEGATIVE_EMOJI,
    NEGATIVE_VERBS,
    OPENERS,
    POSITIVE_ADJECTIVES,
    POSITIVE_EMOJI,
    POSITIVE_VERBS,
    SHIFTED_TOPICS,
    TAILS,
    TOPIC_WORDS,
    TYPOS,
    USER_PARTS,
)

LABEL_NEGATIVE = "0"
LABEL_POSITIVE = "4"

# Share of positive tweets that praise with slang in undrifted months; high enough that a model
# learns the slang words as strong positive cues.
BASE_SLANG_RATE = 0.12
# Share of tweets whose sentiment is expressed through negation ("not good", "can't complain").
NEGATION_RATE = 0.18
# Share of shifted-topic tweets using that topic's own sentiment words (unseen in the baseline).
TOPIC_WORD_RATE = 0.6


def user_pool(seed: int) -> list[str]:
    """The 300 user names of a seed: per seed, not per month, so the same users keep tweeting
    across months."""
    rng = random.Random(
        int.from_bytes(hashlib.sha256(f"users|{seed}".encode()).digest()[:8], "big")
    )
    adjectives, nouns = USER_PARTS
    return [f"{rng.choice(adjectives)}{rng.choice(nouns)}{rng.randint(1, 999)}" for _ in range(300)]


def _elongate(word: str, rng: random.Random) -> str:
    vowels = [i for i, ch in enumerate(word) if ch in "aeiou"]
    if not vowels:
        return word
    i = rng.choice(vowels)
    return word[:i] + word[i] * rng.randint(3, 6) + word[i + 1 :]


def _sentiment_body(
    rng: random.Random, positive: bool, subject: str, style: str, topic: str
) -> str:
    intens = rng.choice(INTENSIFIERS)
    if style == "slang":
        slang = rng.choice(FLIPPING_SLANG)
        # The same templates whatever the meaning, so the slang word is the only cue.
        return rng.choice(
            (
                f"{subject} is {intens}{slang}",
                f"{subject}?? {slang}",
                f"that was {slang}, {subject} i mean",
                f"{subject} lowkey {slang}",
            )
        )
    if style == "topic":
        word = rng.choice(TOPIC_WORDS[topic][0 if positive else 1])
        return rng.choice(
            (
                f"{subject} is {intens}{word}",
                f"{word}! {subject}",
                f"feeling {word} about {subject}",
            )
        )
    if style == "negated":
        if positive:
            return rng.choice(
                (
                    f"{subject} is not {rng.choice(NEGATIVE_ADJECTIVES)}",
                    f"can't complain about {subject}",
                    f"no complaints about {subject}",
                    f"i don't hate {subject}",
                    f"{subject} wasn't {rng.choice(NEGATIVE_ADJECTIVES)} at all",
                )
            )
        return rng.choice(
            (
                f"{subject} is not {rng.choice(POSITIVE_ADJECTIVES)}",
                f"i don't love {subject}",
                f"{subject}... never again",
                f"{subject} isn't {intens}{rng.choice(POSITIVE_ADJECTIVES)}",
                f"not a fan of {subject}",
            )
        )
    adjective = rng.choice(POSITIVE_ADJECTIVES if positive else NEGATIVE_ADJECTIVES)
    verb = rng.choice(POSITIVE_VERBS if positive else NEGATIVE_VERBS)
    if rng.random() < 0.1:
        adjective = _elongate(adjective, rng)
    return rng.choice(
        (
            f"{subject} is {intens}{adjective}",
            f"{subject} was {intens}{adjective}",
            f"i {verb} {subject}",
            f"{adjective} {subject}",
            f"wow {subject}, {intens}{adjective}",
        )
    )


def _decorate(
    rng: random.Random, body: str, positive: bool, hashtags: tuple[str, ...], users: list[str]
) -> str:
    text = rng.choice(OPENERS) + body + rng.choice(TAILS)
    if rng.random() < 0.15:
        text = " ".join(TYPOS.get(word, word) for word in text.split(" "))
    if rng.random() < 0.1:
        text += rng.choice(ENTITY_TAILS)
    if rng.random() < 0.35:
        text += " " + rng.choice(hashtags)
    if rng.random() < 0.3:
        # Emoji mostly agree with the label, like the emoticons Sentiment140 was labelled by.
        agree = rng.random() < 0.85
        pool = POSITIVE_EMOJI if positive == agree else NEGATIVE_EMOJI
        text += " " + rng.choice(pool)
    if rng.random() < 0.1:
        code = "".join(rng.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(6))
        text += f" http://bit.ly/{code}"
    if rng.random() < 0.25:
        text = f"@{rng.choice(users)} " + text
    roll = rng.random()
    if roll < 0.05:
        text = text.upper()
    elif roll < 0.3:
        text = text[:1].upper() + text[1:]
    return text


def clean_row(rng: random.Random, knobs: MonthDrift, users: list[str]) -> tuple[str, str]:
    """One clean tweet: (text, label) before label noise."""
    positive = rng.random() < knobs.positive_rate
    shifted = rng.random() < knobs.topic_shift
    topics = SHIFTED_TOPICS if shifted else BASELINE_TOPICS
    topic = rng.choice(sorted(topics))
    subjects, hashtags = topics[topic]
    subject = rng.choice(subjects)
    if not positive and rng.random() < knobs.concept_drift:
        style = "slang"  # the new, negative meaning
    elif positive and rng.random() < BASE_SLANG_RATE * (1.0 - knobs.concept_drift):
        style = "slang"  # the old, positive meaning, fading as the new one takes over
    elif shifted and rng.random() < TOPIC_WORD_RATE:
        style = "topic"
    elif rng.random() < NEGATION_RATE:
        style = "negated"
    else:
        style = "plain"
    body = _sentiment_body(rng, positive, subject, style, topic)
    text = _decorate(rng, body, positive, hashtags, users)
    return text, LABEL_POSITIVE if positive else LABEL_NEGATIVE
