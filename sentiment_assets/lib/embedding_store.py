"""Embedding cache keyed by (encoder fingerprint, text hash), and month-level embedding sets.

Only texts the cache has never seen are encoded, so re-materialising an unchanged month
costs a couple of queries instead of a pass through the transformer. The warehouse
connection is not held while the encoder runs: encoding is the slow part, and holding the
DuckDB write lock through it would block every other writer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from sentiment_assets.lib.warehouse import (
    arrow_to_vectors,
    connect,
    replace_month,
    vectors_to_arrow,
)


class Encoder(Protocol):
    fingerprint: str

    def encode(
        self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class EmbeddingStats:
    rows: int
    unique_texts: int
    from_cache: int
    encoded: int


def embed_month(
    duckdb_path: Path,
    month: date,
    encoder: Encoder,
    progress: Callable[[int, int], None] | None = None,
) -> EmbeddingStats:
    with connect(duckdb_path) as con:
        rows = con.execute(
            "SELECT tweet_id, text, text_hash FROM clean.tweets_clean WHERE month = ? "
            "ORDER BY tweet_id",
            [month],
        ).df()
        unique = rows.drop_duplicates("text_hash")[["text_hash", "text"]]
        con.register("month_hashes", unique[["text_hash"]])
        cached = {
            h
            for (h,) in con.execute(
                "SELECT c.text_hash FROM features.embedding_cache c "
                "JOIN month_hashes m USING (text_hash) WHERE c.encoder = ?",
                [encoder.fingerprint],
            ).fetchall()
        }
    missing = unique[~unique["text_hash"].isin(cached)]
    vectors = encoder.encode(missing["text"].tolist(), progress=progress)

    with connect(duckdb_path) as con:
        if len(missing):
            new_rows = pa.table(
                {
                    "encoder": pa.array([encoder.fingerprint] * len(missing)),
                    "text_hash": pa.array(missing["text_hash"].tolist()),
                    "embedding": vectors_to_arrow(vectors),
                }
            )
            con.register("new_embeddings", new_rows)
            con.execute(
                "INSERT OR IGNORE INTO features.embedding_cache "
                "SELECT encoder, text_hash, embedding, now() FROM new_embeddings"
            )
            con.unregister("new_embeddings")
        membership = pd.DataFrame(
            {
                "month": month,
                "tweet_id": rows["tweet_id"],
                "encoder": encoder.fingerprint,
                "text_hash": rows["text_hash"],
            }
        )
        replace_month(con, "features.tweet_embeddings", month, membership)
    return EmbeddingStats(
        rows=len(rows),
        unique_texts=len(unique),
        from_cache=len(unique) - len(missing),
        encoded=len(missing),
    )


def load_tweets(
    duckdb_path: Path,
    months: Sequence[date],
    encoder_fingerprint: str | None = None,
    labelled_only: bool = True,
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Cleaned tweets of `months` in a stable order, with their embeddings when asked for.

    Rows without an embedding (the month was never embedded) are an error rather than a
    silent drop, because a model trained on a quietly smaller set is a wrong model.
    """
    month_list = list(months)
    label_filter = "label IS NOT NULL AND" if labelled_only else ""
    with connect(duckdb_path) as con:
        frame = con.execute(
            "SELECT tweet_id, month, text, text_hash, label FROM clean.tweets_clean "
            f"WHERE {label_filter} month IN (SELECT unnest(?::DATE[])) "
            "ORDER BY month, tweet_id",
            [month_list],
        ).df()
        if encoder_fingerprint is None:
            return frame, None
        table = con.sql(
            "SELECT t.tweet_id, c.embedding FROM clean.tweets_clean t "
            "LEFT JOIN features.tweet_embeddings e ON e.tweet_id = t.tweet_id "
            "  AND e.month = t.month AND e.encoder = ? "
            "LEFT JOIN features.embedding_cache c ON c.encoder = e.encoder "
            "  AND c.text_hash = e.text_hash "
            f"WHERE {label_filter.replace('label', 't.label')} t.month IN (SELECT unnest(?::DATE[])) "
            "ORDER BY t.month, t.tweet_id",
            params=[encoder_fingerprint, month_list],
        ).to_arrow_table()
    embeddings = table.column("embedding")
    if embeddings.null_count:
        raise ValueError(
            f"{embeddings.null_count} tweets in {[str(m) for m in month_list]} have no "
            f"embedding for encoder {encoder_fingerprint!r}: materialize tweet_embeddings "
            "for those months first"
        )
    return frame, arrow_to_vectors(embeddings)
