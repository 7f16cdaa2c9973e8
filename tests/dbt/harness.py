"""Test harness for the dbt project: a throw-away DuckDB warehouse and an in-process dbt runner.

Each warehouse lives in its own tmp folder with its own dbt target and log folders, so
several test runs (or a Dagster run) can use the project at the same time.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from dbt.cli.main import dbtRunner, dbtRunnerResult

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"

# The raw layer as fixed by the shared contract (written by ingestion in production).
RAW_DDL = """
CREATE SCHEMA IF NOT EXISTS raw;
CREATE TABLE IF NOT EXISTS raw.tweets (
    tweet_id VARCHAR, created_at TIMESTAMP, month DATE, text VARCHAR, label_raw VARCHAR,
    user_name VARCHAR, source VARCHAR, source_row BIGINT, ingested_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS raw.rejected_tweets (
    month DATE, source VARCHAR, source_row BIGINT, raw_record VARCHAR, reason VARCHAR,
    ingested_at TIMESTAMP
);
"""

# (tweet_id, created_at, text, label_raw); month, source and row numbers are derived.
RawRow = tuple[str, str, str | None, str | None]


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@dataclass
class Warehouse:
    """A DuckDB file plus the dbt folders that belong to it."""

    root: Path

    @property
    def path(self) -> Path:
        # The file stem is DuckDB's catalog name and dbt's database name: every copy keeps
        # the same one so compiled relation names stay valid.
        return self.root / "warehouse.duckdb"

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = duckdb.connect(str(self.path))
        try:
            yield con
        finally:
            con.close()

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.connect() as con:
            return con.execute(sql, params or []).fetchall()

    def insert_raw(self, rows: Sequence[RawRow], source: str = "fixture.csv") -> None:
        """Append rows to raw.tweets as ingestion would: month from created_at, 1-based
        source_row continuing after the rows already there for this source."""
        ids, times, texts, labels = (list(column) for column in zip(*rows, strict=True))
        with self.connect() as con:
            # One set-based insert: executemany goes row by row and costs seconds.
            con.execute(
                """
                INSERT INTO raw.tweets
                SELECT tweet_id, created_at, CAST(date_trunc('month', created_at) AS DATE),
                       text, label_raw, 'user_' || tweet_id, $source,
                       offset_row + row_number() OVER (ORDER BY ordinality),
                       TIMESTAMP '2024-01-01 00:00:00'
                FROM (
                    SELECT unnest($ids) AS tweet_id,
                           CAST(unnest($times) AS TIMESTAMP) AS created_at,
                           unnest($texts) AS text, unnest($labels) AS label_raw,
                           unnest(range(1, len($ids) + 1)) AS ordinality
                ),
                (SELECT coalesce(max(source_row), 0) AS offset_row
                 FROM raw.tweets WHERE source = $source)
                """,
                {
                    "ids": ids,
                    "times": times,
                    "texts": texts,
                    "labels": labels,
                    "source": source,
                },
            )

    def dbt(self, *args: str, dbt_vars: dict[str, str] | None = None) -> dbtRunnerResult:
        """Run one dbt command in-process against this warehouse."""
        cli = [
            *args,
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(PROJECT_DIR),
            "--target-path",
            str(self.root / "target"),
            "--log-path",
            str(self.root / "logs"),
        ]
        if dbt_vars:
            cli += ["--vars", json.dumps(dbt_vars)]
        with _env("DUCKDB_PATH", str(self.path)), _env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false"):
            return dbtRunner().invoke(cli)

    def copy_to(self, root: Path) -> Warehouse:
        # A checkpoint folds the WAL into the file so one file is the whole database.
        with self.connect() as con:
            con.execute("CHECKPOINT")
        root.mkdir(parents=True)
        shutil.copy2(self.path, root / "warehouse.duckdb")
        # Reuse the parsed manifest: saves a full parse per copy.
        if (self.root / "target").exists():
            shutil.copytree(self.root / "target", root / "target")
        return Warehouse(root)


def new_warehouse(root: Path) -> Warehouse:
    root.mkdir(parents=True, exist_ok=True)
    warehouse = Warehouse(root)
    with warehouse.connect() as con:
        con.execute(RAW_DDL)
    return warehouse


def node_statuses(result: dbtRunnerResult) -> dict[str, set[str]]:
    """Status -> names of the nodes with it; a test is named by its test kind
    (``unique``, ``month_matches_created_at``...), a model by the model name."""
    if result.result is None:
        raise AssertionError(f"dbt did not run: {result.exception}")
    statuses: dict[str, set[str]] = {}
    for node_result in result.result.results:
        node = node_result.node
        metadata = getattr(node, "test_metadata", None)
        name = metadata.name if metadata is not None else node.name
        statuses.setdefault(str(node_result.status), set()).add(name)
    return statuses


def assert_success(result: dbtRunnerResult) -> None:
    if not result.success:
        detail = result.exception
        if detail is None and result.result is not None:
            detail = [(r.node.name, str(r.status), r.message) for r in result.result.results]
        raise AssertionError(f"dbt failed: {detail}")
