"""Chunked ingestion: a file read a few rows at a time gives exactly the rows, reasons and
per-file counts of one read of the whole file, and staging through Parquet into DuckDB loses
nothing."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sentiment_assets.lib.data import sources
from sentiment_assets.lib.data.sources import load_month, months_in_source, stage_month
from sentiment_assets.lib.data.synthetic import SyntheticConfig, write_month
from sentiment_assets.lib.store import warehouse

JAN, FEB = date(2024, 1, 1), date(2024, 2, 1)
WHOLE = 1_000_000  # larger than any file here: one chunk
# Lines the careful CSV path must handle, spliced into a generated month at fixed places.
ODD_LINES = {
    40: ['q1,2024-01-05 10:00:00,"multi\nline, quoted text",4,ann\n'],
    90: ["\n", "   \n"],
    120: ["too,many,fields,here,and,more,2024-01-05\n"],
    150: [b"bad,2024-01-06 10:00:00,caf\xe9 au lait,4,bob\n".decode("latin-1")],
    200: ['u1,2024-01-07 10:00:00,"never closed,0,cid\n', "n1,2024-01-07 11:00:00,ok,4,dee\n"],
    205: ['n2,2024-01-07 12:00:00,"closes, here",4,eve\n'],
    260: ["d1,,no date at all,4,fay\n", "f1,2024-02-03 09:00:00,february row,0,gus\n"],
}


def _dirty_csv(path: Path, n: int = 330) -> Path:
    """A generated month (several generator blocks, with their own dirt) plus ODD_LINES."""
    clean = path.with_name("clean.csv")
    write_month(SyntheticConfig(seed=3), JAN, clean, n, block_rows=120)
    lines = clean.read_text(encoding="utf-8").splitlines(keepends=True)
    out: list[str] = []
    for number, line in enumerate(lines):
        out.append(line)
        out += ODD_LINES.get(number, [])
    # latin-1 round trip: the 'bad' line keeps its invalid UTF-8 byte, the rest is unchanged.
    path.write_bytes(
        "".join(out).encode("utf-8", "surrogateescape").replace(b"caf\xc3\xa9", b"caf\xe9")
    )
    return path


def _rows(result: sources.IngestResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    accepted = result.accepted.sort_values("source_row").reset_index(drop=True)
    rejected = result.rejected.sort_values("source_row").reset_index(drop=True)
    return accepted, rejected


def _same_load(path: Path, chunk_rows: int) -> int:
    """Assert every month loads identically whole and in chunks; returns rows seen."""
    months = months_in_source(str(path))
    assert months
    seen: list[int] = []
    for month in months:
        whole = load_month(str(path), month, chunk_rows=WHOLE)
        sources.clear_cache()
        chunked = load_month(str(path), month, chunk_rows=chunk_rows)
        for a, b in zip(_rows(whole), _rows(chunked), strict=True):
            pd.testing.assert_frame_equal(a, b)
        pd.testing.assert_frame_equal(whole.files, chunked.files)
        seen += chunked.accepted["source_row"].tolist() + chunked.rejected["source_row"].tolist()
    # Every data row is in exactly one month, accepted or rejected.
    assert sorted(seen) == list(range(1, len(seen) + 1))
    return len(seen)


@pytest.mark.parametrize("chunk_rows", [1, 7, 50])
def test_csv_in_chunks_gives_the_rows_of_one_read(tmp_path: Path, chunk_rows: int) -> None:
    path = _dirty_csv(tmp_path / "month.csv")
    n = _same_load(path, chunk_rows)
    reasons = load_month(str(path), JAN, chunk_rows=chunk_rows).rejected["reason"]
    # The file exercises every careful path: broken records, bad bytes, no date, dirt rows.
    for reason in ("malformed_row", "invalid_encoding", "missing_date", "empty_text"):
        assert reason in set(reasons), reason
    assert n > 330


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_jsonl_and_parquet_in_chunks(tmp_path: Path, suffix: str) -> None:
    frame = pd.read_csv(_dirty_csv(tmp_path / "month.csv").with_name("clean.csv"), dtype=str)
    frame.loc[5, "created_at"] = None
    path = tmp_path / f"month{suffix}"
    if suffix == ".jsonl":
        lines = [json.dumps(r) for r in frame.to_dict("records")]
        lines[10:10] = ["", "{not json", "[1, 2]"]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=64)
    assert _same_load(path, 13) == len(frame) + (2 if suffix == ".jsonl" else 0)


def test_staged_month_lands_in_duckdb_whole(tmp_path: Path) -> None:
    path = _dirty_csv(tmp_path / "month.csv")
    expected = load_month(str(path), JAN, chunk_rows=WHOLE)
    staging = tmp_path / "staging"
    staging.mkdir()
    staged = stage_month(str(path), JAN, staging, chunk_rows=17)
    assert (staged.rows_in, staged.accepted, staged.rejected) == (
        expected.rows_in,
        len(expected.accepted),
        len(expected.rejected),
    )
    assert staged.reasons == expected.rejected["reason"].value_counts().sort_index().to_dict()
    assert staged.labelled == int(expected.accepted["label_raw"].notna().sum())
    db = tmp_path / "warehouse.duckdb"
    with warehouse.connect(db) as con:
        warehouse.ensure_schema(con)
        for _ in range(2):  # a second load replaces the month, never appends to it
            sources.write_staged_months(con, JAN, [staged], pd.Timestamp("2024-03-01"))
        accepted = con.execute(
            "SELECT * EXCLUDE (ingested_at) FROM raw.tweets ORDER BY source_row"
        ).df()
        rejected = con.execute(
            "SELECT * EXCLUDE (ingested_at) FROM raw.rejected_tweets ORDER BY source_row"
        ).df()
        files = con.execute("SELECT rows, accepted, rejected FROM raw.ingested_files").fetchall()
    want_accepted, want_rejected = _rows(expected)
    assert accepted["tweet_id"].tolist() == want_accepted["tweet_id"].tolist()
    assert accepted["text"].tolist() == want_accepted["text"].tolist()
    assert (accepted["month"].dt.date == JAN).all()
    assert rejected[["source_row", "reason", "raw_record"]].values.tolist() == (
        want_rejected[["source_row", "reason", "raw_record"]].values.tolist()
    )
    assert files == [(expected.rows_in, len(expected.accepted), len(expected.rejected))]


def test_generated_month_is_seeded_and_sized(tmp_path: Path) -> None:
    config = SyntheticConfig(seed=11)
    first, second, other = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    assert write_month(config, FEB, first, 250, block_rows=100) == 250
    write_month(config, FEB, second, 250, block_rows=100)
    write_month(SyntheticConfig(seed=12), FEB, other, 250, block_rows=100)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()
    frame = pd.read_csv(first, dtype=str, keep_default_na=False)
    assert len(frame) == 250
    # Dirt as in generate_month, per block: duplicates and broken rows are present.
    assert frame["tweet_id"].duplicated().any()
    assert (frame["text"].str.strip() == "").any()
    parquet = tmp_path / "a.parquet"
    write_month(config, FEB, parquet, 250, block_rows=100)
    pd.testing.assert_frame_equal(pd.read_parquet(parquet).fillna(""), frame)
