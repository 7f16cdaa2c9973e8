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

from sentiment_assets.lib.data.sampling import stratified_quotas
from sentiment_assets.lib.store.warehouse import (
    Warehouse,
    arrow_to_vectors,
    connect,
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


# Texts encoded and written per round trip: memory follows this, not the month, and each
# round trip costs one indexed query, noise next to encoding this many texts.
DEFAULT_CHUNK_TEXTS = 20_000
# Vectors per batch when reading them back (50,000 x 384 floats: 77 MB).
VECTOR_BATCH_ROWS = 50_000


def embed_month(
    warehouse: Path | Warehouse,
    month: date,
    encoder: Encoder,
    progress: Callable[[int, int], None] | None = None,
    *,
    chunk_texts: int = DEFAULT_CHUNK_TEXTS,
) -> EmbeddingStats:
    """Embed the month's texts the cache lacks, ``chunk_texts`` at a time, then record the
    month's membership.

    Each chunk is read, encoded with the warehouse closed, and written before the next is
    read, so a million-tweet month holds one chunk of texts and vectors at a time, and an
    interrupted run keeps the chunks it finished (the next run encodes only the rest).
    """
    if chunk_texts < 1:
        raise ValueError("chunk_texts must be >= 1")
    fingerprint = encoder.fingerprint
    with connect(warehouse) as con:
        n_rows, n_unique, n_missing = con.execute(
            "SELECT count(*), count(DISTINCT text_hash), count(DISTINCT text_hash) FILTER "
            "(WHERE text_hash NOT IN (SELECT text_hash FROM features.embedding_cache "
            "WHERE encoder = ?)) FROM clean.tweets_clean WHERE month = ?",
            [fingerprint, month],
        ).fetchone()
    encoded = 0
    after = ""  # keyset paging by hash: each chunk starts past the last one, whatever was cached
    while encoded < n_missing:
        with connect(warehouse) as con:
            chunk = con.execute(
                "SELECT text_hash, any_value(text) AS text FROM clean.tweets_clean t "
                "WHERE month = ? AND text_hash > ? AND NOT EXISTS (SELECT 1 FROM "
                "features.embedding_cache c WHERE c.encoder = ? AND c.text_hash = t.text_hash) "
                "GROUP BY text_hash ORDER BY text_hash LIMIT ?",
                [month, after, fingerprint, chunk_texts],
            ).df()
        if chunk.empty:
            break  # another writer cached the rest meanwhile
        done_before = encoded

        def chunk_progress(done: int, _total: int, done_before: int = done_before) -> None:
            if progress is not None:
                progress(done_before + done, n_missing)

        vectors = encoder.encode(chunk["text"].tolist(), progress=chunk_progress)
        new_rows = pa.table(
            {
                "encoder": pa.array([fingerprint] * len(chunk)),
                "text_hash": pa.array(chunk["text_hash"].tolist()),
                "embedding": vectors_to_arrow(vectors),
            }
        )
        with connect(warehouse) as con:
            con.register("new_embeddings", new_rows)
            select = "SELECT encoder, text_hash, embedding, now() AS created_at FROM new_embeddings"
            con.insert_new("features.embedding_cache", select)
            con.unregister("new_embeddings")
        encoded += len(chunk)
        after = chunk["text_hash"].iloc[-1]

    with connect(warehouse) as con:
        # The membership is copied inside DuckDB: a month's ids never pass through Python.
        con.replace_month_with(
            "features.tweet_embeddings",
            month,
            "SELECT month, tweet_id, ?::VARCHAR AS encoder, text_hash "
            "FROM clean.tweets_clean WHERE month = ?",
            [fingerprint, month],
        )
    return EmbeddingStats(
        rows=n_rows, unique_texts=n_unique, from_cache=n_unique - encoded, encoded=encoded
    )


def load_tweets(
    warehouse: Path | Warehouse,
    months: Sequence[date],
    encoder_fingerprint: str | None = None,
    labelled_only: bool = True,
    *,
    max_rows: int | None = None,
    sample_seed: int = 0,
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Cleaned tweets of `months` in a stable order, with their embeddings when asked for.

    With ``max_rows``, a window holding more rows is cut, inside DuckDB and before any
    embedding is read, to a sample of ``max_rows`` rows stratified by label (the window's
    label shares, see ``stratified_quotas``): within each label the rows with the smallest
    md5(tweet_id, sample_seed) are kept, so the same data and seed give the same sample.
    Rows without an embedding (the month was never embedded) are an error rather than a
    silent drop, because a model trained on a quietly smaller set is a wrong model.
    """
    month_list = list(months)
    label_filter = "t.label IS NOT NULL AND" if labelled_only else ""
    window = f"{label_filter} t.month IN (SELECT unnest(?::DATE[]))"
    with connect(warehouse) as con:
        sample_join = ""
        if max_rows is not None:
            counts = dict(
                con.execute(
                    f"SELECT t.label, count(*) FROM clean.tweets_clean t WHERE {window} "
                    "GROUP BY t.label",
                    [month_list],
                ).fetchall()
            )
            if sum(counts.values()) > max_rows:
                quotas = stratified_quotas(counts, max_rows)
                con.register(
                    "label_quotas",
                    pd.DataFrame({"label": list(quotas), "quota": list(quotas.values())}),
                )
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE window_sample AS SELECT tweet_id, month FROM "
                    "(SELECT t.tweet_id, t.month, t.label, row_number() OVER (PARTITION BY "
                    "t.label ORDER BY md5(t.tweet_id || ':' || ?), t.tweet_id) AS rank "
                    f"FROM clean.tweets_clean t WHERE {window}) r "
                    "JOIN label_quotas q ON q.label IS NOT DISTINCT FROM r.label "
                    "WHERE r.rank <= q.quota",
                    [str(sample_seed), month_list],
                )
                con.unregister("label_quotas")
                sample_join = (
                    "JOIN window_sample s ON s.tweet_id = t.tweet_id AND s.month = t.month"
                )
        frame = con.execute(
            "SELECT t.tweet_id, t.month, t.text, t.text_hash, t.label FROM clean.tweets_clean t "
            f"{sample_join} WHERE {window} ORDER BY t.month, t.tweet_id",
            [month_list],
        ).df()
        if encoder_fingerprint is None:
            return frame, None
        # Which cached vector each row needs, in the frame's order: narrow columns only.
        con.execute(
            "CREATE OR REPLACE TEMP TABLE wanted_vectors AS SELECT r.position, e.text_hash "
            "FROM (SELECT t.tweet_id, t.month, "
            "row_number() OVER (ORDER BY t.month, t.tweet_id) - 1 AS position "
            f"FROM clean.tweets_clean t {sample_join} WHERE {window}) r "
            "LEFT JOIN features.tweet_embeddings e ON e.tweet_id = r.tweet_id "
            "  AND e.month = r.month AND e.encoder = ?",
            [month_list, encoder_fingerprint],
        )
        wanted = con.execute(
            "SELECT position, text_hash FROM wanted_vectors WHERE text_hash IS NOT NULL"
        ).df()
        # The vectors stream out of the cache in batches through a semi-join, whose hash
        # table holds only the wanted hashes, and each batch is written into its rows. (A
        # join that returned them in order sorted the 384-float lists and built its hash
        # table on the whole cache: 5.5 GB for a million rows, 1.5 GB of vectors.)
        reader = con.sql(
            "SELECT text_hash, embedding FROM features.embedding_cache WHERE encoder = ? "
            "AND text_hash IN (SELECT text_hash FROM wanted_vectors)",
            params=[encoder_fingerprint],
        ).to_arrow_reader(VECTOR_BATCH_ROWS)
        vectors, filled = _fill_vectors(
            reader, wanted["position"].to_numpy(), wanted["text_hash"].to_numpy(str), len(frame)
        )
    if filled < len(frame):
        raise ValueError(
            f"{len(frame) - filled} tweets in {[str(m) for m in month_list]} have no "
            f"embedding for encoder {encoder_fingerprint!r}: materialize tweet_embeddings "
            "for those months first"
        )
    return frame, vectors


def _fill_vectors(
    reader: pa.RecordBatchReader, positions: np.ndarray, hashes: np.ndarray, rows: int
) -> tuple[np.ndarray, int]:
    """Write each (text_hash, embedding) batch into every row (`positions`) whose hash it
    is: a text shared by several tweets fills several rows. Returns (rows x dim vectors,
    how many rows were filled)."""
    unique, inverse = np.unique(hashes, return_inverse=True)
    # The rows grouped by hash: rows_by_hash[first[u] : first[u] + counts[u]] share hash u.
    rows_by_hash = positions[np.argsort(inverse, kind="stable")]
    counts = np.bincount(inverse, minlength=len(unique))
    first = np.cumsum(counts) - counts
    vectors: np.ndarray | None = None
    filled = 0
    for batch in reader:
        if batch.num_rows == 0:
            continue
        block = arrow_to_vectors(batch.column("embedding"))
        if vectors is None:
            vectors = np.empty((rows, block.shape[1]), dtype=np.float32)
        which = np.searchsorted(unique, batch.column("text_hash").to_numpy(zero_copy_only=False))
        repeats = counts[which]
        offsets = np.repeat(first[which] - (np.cumsum(repeats) - repeats), repeats)
        targets = rows_by_hash[offsets + np.arange(int(repeats.sum()))]
        vectors[targets] = np.repeat(block, repeats, axis=0)
        filled += len(targets)
    if vectors is None:
        vectors = np.zeros((rows, 0), dtype=np.float32)
    return vectors, filled
