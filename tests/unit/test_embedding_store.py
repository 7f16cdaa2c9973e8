"""The embedding store at scale: embed_month streams chunks through the real encoder and
writes each text once; load_tweets cuts a large window to a seeded, label-stratified sample
before reading any vector."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from sentiment_assets.lib.data.sampling import stratified_quotas
from sentiment_assets.lib.encoding import embedding_store
from sentiment_assets.lib.encoding.embedding_store import embed_month, load_tweets
from sentiment_assets.lib.encoding.encoder import TextEncoder
from sentiment_assets.lib.store import warehouse
from sentiment_assets.lib.store.duckdb_file import MEMORY_LIMIT

JAN, FEB = date(2024, 1, 1), date(2024, 2, 1)


def _clean_table(db: Path, rows: pd.DataFrame) -> None:
    """clean.tweets_clean as dbt builds it (the columns the store reads), text_hash = md5."""
    with warehouse.connect(db) as con:
        warehouse.ensure_schema(con)
        con.execute("CREATE SCHEMA IF NOT EXISTS clean")
        con.register("incoming", rows)
        con.execute(
            "CREATE OR REPLACE TABLE clean.tweets_clean AS SELECT tweet_id, "
            "month::DATE AS month, text, md5(text) AS text_hash, label::INTEGER AS label "
            "FROM incoming"
        )


class RecordingEncoder:
    """The real encoder, remembering which texts it was asked to encode, per call."""

    def __init__(self, encoder: TextEncoder) -> None:
        self._encoder = encoder
        self.fingerprint = encoder.fingerprint
        self.calls: list[list[str]] = []

    def encode(
        self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        self.calls.append(list(texts))
        return self._encoder.encode(texts, progress=progress)


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder(device="cpu", batch_size=32)


def test_embed_month_streams_chunks_and_encodes_each_text_once(
    tmp_path: Path, encoder: TextEncoder
) -> None:
    texts = [f"tweet number {i} about {'cats' if i % 3 else 'dogs'}" for i in range(150)]
    jan = pd.DataFrame(
        {
            "tweet_id": [f"j{i}" for i in range(200)],
            "month": JAN,
            # 50 tweets repeat an earlier text: 150 distinct texts in 200 rows.
            "text": texts + texts[:50],
            "label": [i % 2 for i in range(200)],
        }
    )
    feb = pd.DataFrame({"tweet_id": ["f0"], "month": FEB, "text": ["only in february"], "label": 1})
    db = tmp_path / "warehouse.duckdb"
    _clean_table(db, pd.concat([jan, feb], ignore_index=True))
    recording = RecordingEncoder(encoder)
    reported: list[tuple[int, int]] = []

    stats = embed_month(
        db, JAN, recording, progress=lambda d, t: reported.append((d, t)), chunk_texts=40
    )

    assert (stats.rows, stats.unique_texts, stats.encoded, stats.from_cache) == (200, 150, 150, 0)
    assert [len(c) for c in recording.calls] == [40, 40, 40, 30]
    encoded = Counter(t for call in recording.calls for t in call)
    assert set(encoded) == set(texts) and set(encoded.values()) == {1}
    assert reported[-1] == (150, 150)
    assert [d for d, _ in reported] == sorted(d for d, _ in reported)
    with warehouse.connect(db) as con:
        assert con.execute("SELECT count(*) FROM features.embedding_cache").fetchone() == (150,)
        members = con.execute(
            "SELECT month, count(*) FROM features.tweet_embeddings GROUP BY month"
        ).fetchall()
    assert members == [(JAN, 200)]
    frame, vectors = load_tweets(db, [JAN], encoder.fingerprint)
    assert vectors is not None and vectors.shape[0] == 200
    probe = frame["text"].iloc[:3].tolist()
    np.testing.assert_allclose(vectors[:3], encoder.encode(probe), atol=1e-5)

    recording.calls.clear()
    again = embed_month(db, JAN, recording, chunk_texts=40)
    assert (again.encoded, again.from_cache) == (0, 150)
    assert recording.calls == []


def test_stratified_quotas_keep_shares_and_the_cap() -> None:
    assert stratified_quotas({0: 700, 1: 300}, 100) == {0: 70, 1: 30}
    assert stratified_quotas({0: 5, 1: 3}, 100) == {0: 5, 1: 3}
    quotas = stratified_quotas({0: 333, 1: 333, 2: 334}, 10)
    assert sum(quotas.values()) == 10 and set(quotas.values()) <= {3, 4}
    assert stratified_quotas({0: 9_999, 1: 1}, 10) == {0: 9, 1: 1}


def test_load_tweets_samples_a_large_window_by_label_and_seed(tmp_path: Path) -> None:
    n = 1_000
    rows = pd.DataFrame(
        {
            "tweet_id": [f"t{i:04d}" for i in range(n)],
            "month": [JAN if i % 2 else FEB for i in range(n)],
            "text": [f"text {i}" for i in range(n)],
            "label": [0 if i % 10 < 7 else 1 for i in range(n)],
        }
    )
    db = tmp_path / "warehouse.duckdb"
    _clean_table(db, rows)
    # Vectors that name their tweet, so a sampled row can be matched with its vector.
    with warehouse.connect(db) as con:
        con.execute(
            "INSERT INTO features.embedding_cache SELECT 'enc', text_hash, "
            "[CAST(substr(tweet_id, 2) AS FLOAT), 1.0], now() FROM clean.tweets_clean"
        )
        con.execute(
            "INSERT INTO features.tweet_embeddings SELECT month, tweet_id, 'enc', text_hash "
            "FROM clean.tweets_clean"
        )

    full, _ = load_tweets(db, [JAN, FEB])
    first, vectors = load_tweets(db, [JAN, FEB], "enc", max_rows=100, sample_seed=1)
    again, _ = load_tweets(db, [JAN, FEB], max_rows=100, sample_seed=1)
    other, _ = load_tweets(db, [JAN, FEB], max_rows=100, sample_seed=2)

    assert len(full) == n
    assert first["label"].value_counts().to_dict() == {0: 70, 1: 30}
    assert first["tweet_id"].tolist() == again["tweet_id"].tolist()
    assert first["tweet_id"].tolist() != other["tweet_id"].tolist()
    assert set(first["month"]) == {pd.Timestamp(JAN), pd.Timestamp(FEB)}
    assert vectors is not None
    assert vectors[:, 0].astype(int).tolist() == [int(t[1:]) for t in first["tweet_id"]]
    # Same stable order as an unsampled load: by month, then id.
    assert first[["month", "tweet_id"]].equals(
        first.sort_values(["month", "tweet_id"])[["month", "tweet_id"]]
    )
    small, _ = load_tweets(db, [JAN, FEB], max_rows=n)
    assert small["tweet_id"].tolist() == full["tweet_id"].tolist()


def test_load_tweets_gives_every_row_its_own_texts_vector_batch_by_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Vectors stream out of the cache in small batches, in no particular order, and a text
    # shared by several tweets fills each of their rows.
    monkeypatch.setattr(embedding_store, "VECTOR_BATCH_ROWS", 7)
    n = 90
    rows = pd.DataFrame(
        {
            # Ids out of text order, so the cache's order and the frame's differ.
            "tweet_id": [f"t{(i * 37) % n:02d}" for i in range(n)],
            "month": [JAN if i % 2 else FEB for i in range(n)],
            # 30 distinct texts, each shared by three tweets.
            "text": [f"text {i % 30}" for i in range(n)],
            "label": [i % 2 for i in range(n)],
        }
    )
    db = tmp_path / "warehouse.duckdb"
    _clean_table(db, rows)
    with warehouse.connect(db) as con:
        # Each vector names its text; another encoder's vectors are never read.
        con.execute(
            "INSERT INTO features.embedding_cache SELECT DISTINCT e.encoder, text_hash, "
            "[CAST(substr(text, 6) AS FLOAT), e.mark], now() FROM clean.tweets_clean, "
            "(VALUES ('enc', 1.0), ('other', -1.0)) e(encoder, mark)"
        )
        con.execute(
            "INSERT INTO features.tweet_embeddings SELECT month, tweet_id, 'enc', text_hash "
            "FROM clean.tweets_clean"
        )

    frame, vectors = load_tweets(db, [JAN, FEB], "enc")

    assert vectors is not None and vectors.shape == (n, 2)
    assert vectors[:, 0].astype(int).tolist() == [int(t.split()[1]) for t in frame["text"]]
    assert set(vectors[:, 1]) == {1.0}
    with warehouse.connect(db) as con:
        con.execute("DELETE FROM features.tweet_embeddings WHERE tweet_id IN ('t05', 't06')")
    with pytest.raises(ValueError, match=r"2 tweets in .* have no embedding for encoder 'enc'"):
        load_tweets(db, [JAN, FEB], "enc")


def test_warehouse_connections_cap_duckdbs_memory(tmp_path: Path) -> None:
    # Without the cap DuckDB's buffer pool may take 80% of the machine's memory, and a
    # process grows with every page of the cache it has touched.
    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(":memory:") as plain:
        plain.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        (expected,) = plain.execute("SELECT current_setting('memory_limit')").fetchone()
        (default,) = (
            plain.execute("RESET memory_limit")
            .execute("SELECT current_setting('memory_limit')")
            .fetchone()
        )
    assert expected != default
    with warehouse.connect(db) as con:
        warehouse.ensure_schema(con)
        assert con.execute("SELECT current_setting('memory_limit')").fetchone() == (expected,)
    with warehouse.connect(db, read_only=True) as con:
        assert con.execute("SELECT current_setting('memory_limit')").fetchone() == (expected,)
