"""Seeded generator of tweet-like texts with Sentiment140-style labels and controllable drift.

The generator is the offline default source: it needs no data files, and every month is a pure
function of (seed, month), so any partition can be re-materialised alone and give the same rows.
Three drift knobs per month make the monitoring and retraining paths demonstrable:

* ``positive_rate``: the label prior (prior / label drift);
* ``topic_shift``: the share of tweets about topics the baseline never mentions, with their own
  sentiment words (covariate / vocabulary drift);
* ``concept_drift``: slang that used to be praise ("sick", "wicked", ...) is now used for
  complaints, so the same words mean the opposite (concept drift: a model trained before the
  drift month confidently predicts the old meaning).
"""

from __future__ import annotations

import csv
import hashlib
import random
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sentiment_assets.lib.core.months import add_months, month_start, months_between
from sentiment_assets.lib.data.text import clean_text, map_label

COLUMNS = ["tweet_id", "created_at", "text", "label", "user_name"]
LABEL_NEGATIVE = "0"
LABEL_POSITIVE = "4"

# Share of clean rows whose label is flipped: real corpora (Sentiment140 was labelled from
# emoticons) are noisy, and a perfectly clean task would hide model differences.
LABEL_NOISE = 0.07
# Share of positive tweets that praise with slang in undrifted months; high enough that a model
# learns the slang words as strong positive cues.
BASE_SLANG_RATE = 0.12
# Share of tweets whose sentiment is expressed through negation ("not good", "can't complain").
NEGATION_RATE = 0.18
# Share of shifted-topic tweets using that topic's own sentiment words (unseen in the baseline).
TOPIC_WORD_RATE = 0.6
# Exact duplicates (same id, same everything) per row, to exercise de-duplication downstream.
DUPLICATE_RATE = 0.004


@dataclass(frozen=True)
class MonthDrift:
    """Drift knobs for one month; the defaults describe an undrifted month."""

    positive_rate: float = 0.5
    topic_shift: float = 0.0
    concept_drift: float = 0.0

    def __post_init__(self) -> None:
        for name in ("positive_rate", "topic_shift", "concept_drift"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"MonthDrift.{name} must be within [0, 1], got {value!r}")


NO_DRIFT = MonthDrift()
STRONG_DRIFT = MonthDrift(positive_rate=0.25, topic_shift=0.6, concept_drift=0.5)
DEFAULT_DRIFT_MONTH = 4


def _default_drift() -> dict[int, MonthDrift]:
    return {DEFAULT_DRIFT_MONTH: STRONG_DRIFT}


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate. ``drift`` maps a month index (0 = start_month) to its knobs."""

    seed: int = 7
    start_month: date = date(2024, 1, 1)
    n_months: int = 6
    tweets_per_month: int = 1500
    bad_row_rate: float = 0.01
    drift: Mapping[int, MonthDrift] = field(default_factory=_default_drift)

    def __post_init__(self) -> None:
        # Partitions are keyed by the first day of the month, so normalise once here.
        object.__setattr__(self, "start_month", month_start(self.start_month))
        if self.n_months < 0:
            raise ValueError("n_months must be >= 0")
        if self.tweets_per_month < 0:
            raise ValueError("tweets_per_month must be >= 0")
        if not 0.0 <= self.bad_row_rate <= 1.0:
            raise ValueError("bad_row_rate must be within [0, 1]")

    def drift_for(self, month: date) -> MonthDrift:
        """Knobs for a calendar month; months outside the mapping (or the range) are undrifted."""
        return self.drift.get(month_index(self, month), NO_DRIFT)


def default_config() -> SyntheticConfig:
    return SyntheticConfig()


def month_index(config: SyntheticConfig, month: date) -> int:
    """Months since config.start_month (negative before it)."""
    return months_between(config.start_month, month)


def months(config: SyntheticConfig) -> list[date]:
    return [add_months(config.start_month, i) for i in range(config.n_months)]


def config_from_env(env: Mapping[str, str]) -> SyntheticConfig:
    """Build a config from SENTIMENT_SYNTHETIC_* variables; unset or empty ones keep defaults."""
    base = SyntheticConfig()

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    seed = get("SENTIMENT_SYNTHETIC_SEED")
    n_months = get("SENTIMENT_SYNTHETIC_MONTHS")
    per_month = get("SENTIMENT_SYNTHETIC_TWEETS_PER_MONTH")
    start = get("SENTIMENT_SYNTHETIC_START")
    drift_month = get("SENTIMENT_SYNTHETIC_DRIFT_MONTH")
    drift: Mapping[int, MonthDrift] = base.drift
    if drift_month is not None:
        index = int(drift_month)
        drift = {} if index < 0 else {index: STRONG_DRIFT}
    return SyntheticConfig(
        seed=int(seed) if seed is not None else base.seed,
        start_month=date.fromisoformat(start) if start is not None else base.start_month,
        n_months=int(n_months) if n_months is not None else base.n_months,
        tweets_per_month=int(per_month) if per_month is not None else base.tweets_per_month,
        bad_row_rate=base.bad_row_rate,
        drift=drift,
    )


# --- vocabulary -------------------------------------------------------------------------------
# Each topic: (subjects, hashtags, positive words, negative words). Baseline topics use only the
# generic sentiment words; shifted topics bring their own, which a pre-drift model never saw.
BASELINE_TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "phones": (
        (
            "my new phone",
            "this phone",
            "the battery life",
            "the camera on this phone",
            "the ios update",
            "my android",
            "the new charger",
        ),
        ("#iphone", "#android", "#tech"),
    ),
    "coffee": (
        (
            "my morning coffee",
            "this latte",
            "the new cafe downtown",
            "the cold brew",
            "the espresso here",
            "the oat milk cappuccino",
        ),
        ("#coffee", "#caffeine", "#mondaymorning"),
    ),
    "movies": (
        (
            "the new movie",
            "that trailer",
            "the season finale",
            "this show",
            "the sequel",
            "the soundtrack",
        ),
        ("#movies", "#netflix", "#cinema"),
    ),
    "weather": (
        (
            "the weather today",
            "this rain",
            "the sunshine",
            "the heatwave",
            "the snow",
            "the forecast for the weekend",
        ),
        ("#weather", "#rain", "#sunday"),
    ),
    "music": (
        ("the new album", "that concert", "this playlist", "the opening act", "their new single"),
        ("#music", "#nowplaying"),
    ),
}
SHIFTED_TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "crypto": (
        ("bitcoin", "my wallet", "this altcoin", "the token launch", "eth gas fees"),
        ("#btc", "#crypto", "#hodl"),
    ),
    "elections": (
        ("the debate", "the polls", "the candidate", "the campaign ad", "the primaries"),
        ("#election", "#vote", "#politics"),
    ),
    "gaming": (
        ("the new patch", "this raid", "the ranked queue", "the dlc", "my new build"),
        ("#gaming", "#esports", "#twitch"),
    ),
    "ai": (
        ("this chatbot", "the new model", "the image generator", "the ai assistant"),
        ("#ai", "#llm", "#genai"),
    ),
}
TOPIC_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "crypto": (("bullish", "mooning", "printing gains"), ("bearish", "rugged", "rekt", "dumping")),
    "elections": (("inspiring", "a landslide", "hopeful"), ("rigged", "corrupt", "shameful")),
    "gaming": (("goated", "clutch", "poggers"), ("laggy", "pay2win", "nerfed", "buggy")),
    "ai": (("mindblowing", "genius"), ("hallucinating", "creepy", "glitchy")),
}
# Words that only occur in shifted-topic tweets: lets tests and drift statistics measure
# vocabulary drift.
SHIFTED_VOCABULARY: frozenset[str] = frozenset(
    word
    for subjects, tags in SHIFTED_TOPICS.values()
    for phrase in subjects + tags
    for word in phrase.lstrip("#").split()
    if word not in {"the", "my", "this", "new"}
)

POSITIVE_ADJECTIVES = (
    "great",
    "awesome",
    "amazing",
    "good",
    "perfect",
    "fantastic",
    "lovely",
    "brilliant",
    "beautiful",
    "fun",
    "wonderful",
    "excellent",
)
NEGATIVE_ADJECTIVES = (
    "terrible",
    "awful",
    "bad",
    "horrible",
    "boring",
    "annoying",
    "disappointing",
    "broken",
    "useless",
    "sad",
    "ugly",
    "lame",
)
POSITIVE_VERBS = ("love", "adore", "enjoy", "really like")
NEGATIVE_VERBS = ("hate", "can't stand", "despise", "am so done with")
# Slang whose meaning flips under concept drift: praise before, complaint after.
FLIPPING_SLANG = ("sick", "wicked", "insane", "savage")

INTENSIFIERS = ("", "", "so ", "really ", "super ", "kinda ", "totally ", "sooo ")
OPENERS = (
    "",
    "",
    "",
    "ngl ",
    "honestly ",
    "ok so ",
    "tbh ",
    "lol ",
    "omg ",
    "just saying, ",
    "update: ",
    "well ",
)
TAILS = (
    "",
    "",
    "",
    " today",
    " tonight",
    " tbh",
    "!!",
    "!!!",
    " lol",
    "...",
    " this morning",
    " again",
    " fr",
)
ENTITY_TAILS = (
    " &amp; it's only monday",
    " &quot;as usual&quot;",
    " (work &gt; sleep)",
    " &amp; the rest of it",
    " &lt;- me",
)
POSITIVE_EMOJI = ("😀", "😍", "❤️", "🙌", "🔥", ":)", ":D", "<3")
NEGATIVE_EMOJI = ("😢", "😡", "💔", "🙄", ":(", ":/", "😩")
TYPOS = {
    "great": "gr8",
    "love": "luv",
    "really": "rly",
    "tonight": "2nite",
    "you": "u",
    "good": "gud",
    "thanks": "thx",
    "please": "plz",
    "before": "b4",
    "because": "bc",
}
USER_PARTS = (
    ("sunny", "lazy", "tiny", "mad", "cool", "happy", "night", "blue", "wild", "quiet"),
    ("fox", "panda", "coder", "girl", "dude", "cat", "owl", "rider", "chef", "nerd"),
)


def _rng_for(seed: int, month: date, stream: str) -> random.Random:
    # A hash of (seed, month) rather than one shared stream: a month's rows must not depend on
    # which other months were generated before it.
    digest = hashlib.sha256(f"{seed}|{month.isoformat()}|{stream}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _user_pool(seed: int) -> list[str]:
    # Per seed, not per month, so the same users keep tweeting across months.
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


def _clean_row(rng: random.Random, knobs: MonthDrift, users: list[str]) -> tuple[str, str]:
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


def _break_row(row: dict[str, str], kind: int, rng: random.Random) -> None:
    # The failure kinds the ingestion layer must quarantine, in a fixed rotation.
    if kind == 0:
        row["text"] = rng.choice(("", "   ", "\t"))
    elif kind == 1:
        row["created_at"] = ""
    elif kind == 2:
        row["created_at"] = rng.choice(("32/13/2024 25:61", "yesterday-ish", "2024-02-30 10:00"))
    elif kind == 3:
        row["label"] = rng.choice(("", "3", "pos", "-1"))
    else:
        # ~1,700 characters: over the ingestion default of 1,000 and any sane tweet limit.
        filler = " ".join(rng.choice(("blah", "so", "much", "text", "words")) for _ in range(400))
        row["text"] = row["text"] + " " + filler


def generate_month(config: SyntheticConfig, month: date) -> pd.DataFrame:
    """All rows of one month: ``config.tweets_per_month`` rows with the COLUMNS, all strings.

    Includes deliberate dirt: ~LABEL_NOISE flipped labels, a few exact duplicates (same id),
    one contradictory duplicate (same id, other label) and round(bad_row_rate * n) broken rows.
    """
    month = month_start(month)
    prefix = f"syn{config.seed}-{month:%Y%m}"
    rows = _month_rows(
        config,
        month,
        _rng_for(config.seed, month, "rows"),
        config.tweets_per_month,
        lambda i: f"{prefix}-{i:06d}",
    )
    return pd.DataFrame(rows, columns=COLUMNS)


def _month_span(month: date) -> tuple[datetime, int]:
    """The month's first instant and its length in seconds."""
    start = datetime(month.year, month.month, 1)
    end = datetime.combine(add_months(month, 1), datetime.min.time())
    return start, int((end - start).total_seconds())


def _month_rows(
    config: SyntheticConfig,
    month: date,
    rng: random.Random,
    n_total: int,
    tweet_id: Callable[[int], str],
) -> list[dict[str, str]]:
    knobs = config.drift_for(month)
    users = _user_pool(config.seed)
    n_bad = min(n_total, round(config.bad_row_rate * n_total))
    n_dup = min(n_total - n_bad, round(DUPLICATE_RATE * n_total))
    n_contra = 1 if n_total - n_bad - n_dup >= 50 else 0
    n_base = n_total - n_dup - n_contra
    # Seconds spread uniformly over the calendar month.
    start, span = _month_span(month)

    rows: list[dict[str, str]] = []
    for i in range(n_base):
        text, label = _clean_row(rng, knobs, users)
        if rng.random() < LABEL_NOISE:
            label = LABEL_NEGATIVE if label == LABEL_POSITIVE else LABEL_POSITIVE
        created = start + timedelta(seconds=rng.randrange(span))
        rows.append(
            {
                "tweet_id": tweet_id(i),
                "created_at": created.strftime("%Y-%m-%d %H:%M:%S"),
                "text": text,
                "label": label,
                "user_name": rng.choice(users),
            }
        )
    # Break some base rows (never the ones duplicated below, so duplicates stay clean).
    bad_positions = rng.sample(range(n_base), n_bad) if n_bad else []
    for kind, position in enumerate(bad_positions):
        _break_row(rows[position], kind % 5, rng)
    bad_set = set(bad_positions)
    clean_positions = [i for i in range(n_base) if i not in bad_set]
    if not clean_positions:
        n_dup = n_contra = 0
    for _ in range(n_dup):
        rows.append(dict(rows[rng.choice(clean_positions)]))
    for _ in range(n_contra):
        twin = dict(rows[rng.choice(clean_positions)])
        twin["label"] = LABEL_NEGATIVE if twin["label"] == LABEL_POSITIVE else LABEL_POSITIVE
        rows.append(twin)
    # Spread the appended duplicates through the month instead of leaving them at the end.
    rng.shuffle(rows)
    return rows


# Rows generated at a time by write_month: each block has its own random stream, so a block's
# rows depend only on (seed, month, block), and memory is bounded by one block.
STREAM_BLOCK_ROWS = 50_000


def write_month(
    config: SyntheticConfig,
    month: date,
    path: Path,
    n_tweets: int,
    *,
    block_rows: int = STREAM_BLOCK_ROWS,
) -> int:
    """Stream a month of ``n_tweets`` rows to ``path`` (.csv or .parquet) block by block.

    For months far larger than ``generate_month`` should build in memory (a million tweets):
    each block of ``block_rows`` rows is generated like a small month (the same dirt rates,
    duplicates inside the block) and appended, so the file never exists in memory as a whole.
    The same (config, month, n_tweets, block_rows) always writes the same bytes. Ids are
    ``syn<seed>-<yyyymm>-s<row>``, apart from generate_month's. Returns the rows written.
    """
    if n_tweets < 0 or block_rows < 1:
        raise ValueError("n_tweets must be >= 0 and block_rows >= 1")
    month = month_start(month)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"write_month writes .csv or .parquet, not {suffix or 'no suffix'}")
    prefix = f"syn{config.seed}-{month:%Y%m}-s"
    schema = pa.schema([(column, pa.string()) for column in COLUMNS])
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with ExitStack() as stack:
        if suffix == ".parquet":
            parquet = stack.enter_context(pq.ParquetWriter(path, schema))
        else:
            handle = stack.enter_context(path.open("w", encoding="utf-8", newline=""))
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
        for block, first in enumerate(range(0, n_tweets, block_rows)):
            n = min(block_rows, n_tweets - first)
            rng = _rng_for(config.seed, month, f"rows|block{block}")
            rows = _month_rows(
                config, month, rng, n, lambda i, first=first: f"{prefix}{first + i:09d}"
            )
            if suffix == ".parquet":
                parquet.write_table(pa.Table.from_pylist(rows, schema=schema))
            else:
                writer.writerows([row[c] for c in COLUMNS] for row in rows)
            written += len(rows)
    return written


def labelled_sample(n: int, seed: int, month: date) -> pd.DataFrame:
    """About `n` drift-free synthetic tweets for `month` as a model trains on them.

    One row per id, text cleaned like ``tweets_clean`` (1 to 1000 characters), label 0/1;
    unlabelled rows are dropped. Columns: tweet_id, text, label. For benchmarks and tests
    that need a small real model without running the pipeline.
    """
    frame = generate_month(SyntheticConfig(seed=seed, tweets_per_month=n, drift={}), month)
    frame = frame.drop_duplicates("tweet_id")
    labels = frame["label"].map(map_label)
    texts = frame["text"].map(clean_text)
    keep = labels.notna() & texts.str.len().between(1, 1000)
    return pd.DataFrame(
        {
            "tweet_id": frame.loc[keep, "tweet_id"].to_numpy(),
            "text": texts[keep].to_numpy(),
            "label": labels[keep].to_numpy(dtype=int),
        }
    )
