"""Months of synthetic tweets: in memory, streamed to a file, or cleaned for a quick model."""

from __future__ import annotations

import csv
import hashlib
import random
from collections.abc import Callable
from contextlib import ExitStack
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sentiment_assets.lib.core.months import add_months, month_start
from sentiment_assets.lib.data.synthetic.config import SyntheticConfig
from sentiment_assets.lib.data.synthetic.tweets import (
    LABEL_NEGATIVE,
    LABEL_POSITIVE,
    clean_row,
    user_pool,
)
from sentiment_assets.lib.data.text import clean_text, map_label

COLUMNS = ["tweet_id", "created_at", "text", "label", "user_name"]

# Share of clean rows whose label is flipped: real corpora (Sentiment140 was labelled from
# emoticons) are noisy, and a perfectly clean task would hide model differences.
LABEL_NOISE = 0.07
# Exact duplicates (same id, same everything) per row, to exercise de-duplication downstream.
DUPLICATE_RATE = 0.004


def _rng_for(seed: int, month: date, stream: str) -> random.Random:
    # A hash of (seed, month) rather than one shared stream: a month's rows must not depend on
    # which other months were generated before it.
    digest = hashlib.sha256(f"{seed}|{month.isoformat()}|{stream}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


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
    users = user_pool(config.seed)
    n_bad = min(n_total, round(config.bad_row_rate * n_total))
    n_dup = min(n_total - n_bad, round(DUPLICATE_RATE * n_total))
    n_contra = 1 if n_total - n_bad - n_dup >= 50 else 0
    n_base = n_total - n_dup - n_contra
    # Seconds spread uniformly over the calendar month.
    start, span = _month_span(month)

    rows: list[dict[str, str]] = []
    for i in range(n_base):
        text, label = clean_row(rng, knobs, users)
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
