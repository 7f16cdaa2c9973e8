"""The lake warehouse (lib/store/lake.py): month files, whole-table rewrites, the append-only
cache, and readers and writers that never wait for each other."""

import multiprocessing
import time
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sentiment_assets.lib.store.lake import STALE_STAGING_S, Lake, leftovers
from sentiment_assets.lib.store.warehouse import append_rows, connect, replace_month, replace_rows

MARCH, APRIL = date(2024, 3, 1), date(2024, 4, 1)


def tweets(month: date, ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tweet_id": ids,
            "created_at": [datetime(month.year, month.month, 2)] * len(ids),
            "month": [month] * len(ids),
            "text": [f"text {i}" for i in ids],
        }
    )


def test_a_month_rewrite_replaces_that_month_only(tmp_path):
    lake = Lake(tmp_path / "lake")
    with connect(lake) as con:
        replace_month(con, "raw.tweets", MARCH, tweets(MARCH, ["a", "b"]))
        replace_month(con, "raw.tweets", APRIL, tweets(APRIL, ["c"]))
        replace_month(con, "raw.tweets", MARCH, tweets(MARCH, ["d"]))
        # The writing connection sees its own writes.
        assert con.execute("SELECT count(*) FROM raw.tweets").fetchone()[0] == 2
    with connect(lake, read_only=True) as con:
        rows = con.execute("SELECT month, tweet_id FROM raw.tweets ORDER BY 1, 2").fetchall()
        # Columns of the DDL a writer did not give read as NULL, with the DDL's type.
        label_type = con.execute(
            "SELECT typeof(label_raw), count(label_raw) FROM raw.tweets GROUP BY ALL"
        ).fetchall()
    assert rows == [(MARCH, "d"), (APRIL, "c")]
    assert label_type == [("VARCHAR", 0)]
    assert [p.name for p in lake.files("raw.tweets")] == [
        "2024-03-01.parquet",
        "2024-04-01.parquet",
    ]


def test_plain_sql_writes_are_refused_so_nothing_bypasses_the_files(tmp_path):
    with connect(Lake(tmp_path / "lake")) as con, pytest.raises(duckdb.Error):
        con.execute("DELETE FROM metrics.promotions")


def test_a_month_table_is_only_replaced_by_month(tmp_path):
    with connect(Lake(tmp_path / "lake")) as con, pytest.raises(ValueError, match="one month"):
        replace_rows(con, "raw.tweets", tweets(MARCH, ["a"]), "tweet_id = ?", ["a"])


def evaluation(version: str, month: date, accuracy: float) -> pd.DataFrame:
    return pd.DataFrame({"model_version": [version], "eval_month": [month], "accuracy": [accuracy]})


def test_metric_rows_are_replaced_by_their_where_clause_like_in_duckdb(tmp_path):
    lake = Lake(tmp_path / "lake")
    with connect(lake) as con:
        table = "metrics.model_evaluations"
        where = "eval_month = ? AND model_version IN (SELECT unnest(?::VARCHAR[]))"
        replace_rows(con, table, evaluation("1", MARCH, 0.7), where, [MARCH, ["1"]])
        replace_rows(con, table, evaluation("2", MARCH, 0.8), where, [MARCH, ["2"]])
        replace_rows(con, table, evaluation("1", MARCH, 0.75), where, [MARCH, ["1"]])
        append_rows(con, "metrics.promotions", pd.DataFrame({"model_version": ["2"]}))
        append_rows(con, "metrics.promotions", pd.DataFrame({"model_version": ["3"]}))
    with connect(lake, read_only=True) as con:
        scores = con.execute(
            "SELECT model_version, accuracy FROM metrics.model_evaluations ORDER BY 1"
        ).fetchall()
        promoted = con.execute("SELECT model_version FROM metrics.promotions ORDER BY 1")
        assert promoted.fetchall() == [("2",), ("3",)]
    assert scores == [("1", 0.75), ("2", 0.8)]
    assert [p.name for p in lake.files("metrics.model_evaluations")] == ["table.parquet"]


def cache_rows(keys: list[str]) -> pa.Table:
    return pa.table(
        {
            "encoder": ["enc"] * len(keys),
            "text_hash": keys,
            "embedding": [[float(i), 1.0] for i in range(len(keys))],
        }
    )


def test_the_cache_stores_each_key_once_even_from_writers_that_overlapped(tmp_path):
    lake = Lake(tmp_path / "lake")
    # Both connections opened before either wrote: each computed its rows without the other's.
    with connect(lake) as first, connect(lake) as second:
        for con, keys in ((first, ["a", "b"]), (second, ["b", "c"])):
            con.register("new_rows", cache_rows(keys))
            con.insert_new(
                "features.embedding_cache", "SELECT *, now() AS created_at FROM new_rows"
            )
        assert (
            second.insert_new(
                "features.embedding_cache", "SELECT *, now() AS created_at FROM new_rows"
            )
            == 0
        )
    with connect(lake, read_only=True) as con:
        keys = con.execute("SELECT text_hash FROM features.embedding_cache ORDER BY 1").fetchall()
    assert keys == [("a",), ("b",), ("c",)]


def _write_month(root: str, month: date, ready: multiprocessing.Event) -> None:
    ready.wait(10)
    with connect(Lake(Path(root))) as con:
        replace_month(con, "raw.tweets", month, tweets(month, [f"{month}-{i}" for i in range(50)]))


def test_two_processes_write_two_months_while_a_reader_is_open(tmp_path):
    lake = Lake(tmp_path / "lake")
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    writers = [
        context.Process(target=_write_month, args=(str(lake.root), month, ready))
        for month in (MARCH, APRIL)
    ]
    with connect(lake, read_only=True) as reader:
        for writer in writers:
            writer.start()
        ready.set()
        for writer in writers:
            writer.join(60)
        assert [w.exitcode for w in writers] == [0, 0]
        # The reader's view is the lake as it was when it opened.
        assert reader.execute("SELECT count(*) FROM raw.tweets").fetchone()[0] == 0
    with connect(lake, read_only=True) as con:
        counts = con.execute("SELECT month, count(*) FROM raw.tweets GROUP BY 1 ORDER BY 1")
        assert counts.fetchall() == [(MARCH, 50), (APRIL, 50)]


def _rewrite_month(root: str, month: date, rows: int, times: int) -> None:
    frame = tweets(month, [f"{month}-{i}" for i in range(rows)])
    with connect(Lake(Path(root))) as con:
        for _ in range(times):
            replace_month(con, "raw.tweets", month, frame)


@pytest.mark.reliability
def test_a_reader_never_lists_a_file_that_is_still_being_written(tmp_path, record_property):
    # A clean-clone CI run once failed here: DuckDB's COPY wrote through its own visible
    # `tmp_*.parquet` beside the hidden staging file, and a reader of the other month listed
    # it and read a half-written file ("too small to be a Parquet file").
    lake = Lake(tmp_path / "lake")
    with connect(lake) as con:
        replace_month(con, "raw.tweets", APRIL, tweets(APRIL, ["seed"]))
    context = multiprocessing.get_context("spawn")
    writer = context.Process(target=_rewrite_month, args=(str(lake.root), MARCH, 300_000, 6))
    writer.start()
    listed: set[str] = set()
    unreadable: list[str] = []
    checked = 0
    try:
        while writer.is_alive():
            for path in lake.files("raw.tweets"):
                listed.add(path.name)
                checked += 1
                try:
                    pq.read_metadata(path)
                except (OSError, pa.ArrowException) as error:
                    unreadable.append(f"{path.name}: {error}")
    finally:
        writer.join(120)
    record_property("measured", f"{checked} listed files read while 6 rewrites ran")
    assert writer.exitcode == 0
    assert unreadable == []
    assert listed <= {"2024-03-01.parquet", "2024-04-01.parquet"}
    with connect(lake, read_only=True) as con:
        counts = con.execute("SELECT month, count(*) FROM raw.tweets GROUP BY 1 ORDER BY 1")
        assert counts.fetchall() == [(MARCH, 300_000), (APRIL, 1)]


def test_leftovers_of_dead_writers_are_found_and_live_ones_left_alone(tmp_path):
    lake = Lake(tmp_path / "lake")
    with connect(lake) as con:
        replace_month(con, "raw.tweets", MARCH, tweets(MARCH, ["a"]))
    live, dead = "1" * 36, "2" * 36
    lake.scratch_dir.mkdir(parents=True)
    for run_id in (live, dead):
        (lake.scratch_dir / f"dbt-{run_id}-2024-03-01.duckdb").write_bytes(b"x")
    staging = lake.table_dir("raw.tweets") / ".2024-03-01-abc.parquet"
    staging.write_bytes(b"half")
    (lake.table_dir("raw.tweets") / ".lock").touch()  # a writers' lock is never a leftover
    now = time.time()
    found = leftovers(lake, lambda run_id: run_id == live, now)
    # A fresh staging file may belong to a writer at work; the live run's scratch stays.
    assert found == [lake.scratch_dir / f"dbt-{dead}-2024-03-01.duckdb"]
    later = leftovers(lake, lambda run_id: run_id == live, now + STALE_STAGING_S + 1)
    assert staging in later and lake.table_dir("raw.tweets") / ".lock" not in later
    assert (
        lake.month_file("raw.tweets", MARCH).exists()
        and lake.month_file("raw.tweets", MARCH) not in later
    )
