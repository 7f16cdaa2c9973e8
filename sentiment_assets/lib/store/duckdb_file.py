"""The embedded warehouse: one DuckDB file, written in transactions.

DuckDB lets one process hold a file read-write at a time. Connections here are opened per
unit of work and closed at once, and opening retries for a while when another process (dbt,
a second run) holds the lock, instead of failing a run on a brief overlap.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from sentiment_assets.lib.store.schema import DDL

LOCK_RETRY_SECONDS = 120.0
# DuckDB's buffer pool keeps the pages a process reads and writes up to 80% of the
# machine's memory by default, so a process grew with the data it touched: embedding a
# million-tweet month peaked at 2.8 GB, reading 200,000 of its vectors back at 2.6 GB. Past
# this cap DuckDB evicts and spills to disk instead (measured: 0.9 GB and 1.6 GB).
MEMORY_LIMIT = "1GB"


class DuckDBConnection:
    """A DuckDB connection with the warehouse's write methods (lib/store/warehouse.py's
    WarehouseConnection). Everything else is the connection's own, as on a lake connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._in_transaction = False

    def __getattr__(self, name: str) -> object:
        return getattr(self._con, name)

    def ensure_schema(self) -> None:
        self._con.execute(DDL)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction around the block; a write method inside it joins it."""
        if self._in_transaction:
            yield
            return
        self._con.execute("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield
            self._con.execute("COMMIT")
        except Exception:
            self._con.execute("ROLLBACK")
            raise
        finally:
            self._in_transaction = False

    def replace_rows(
        self, table: str, frame: pd.DataFrame, where: str, params: Sequence[object]
    ) -> None:
        with self.transaction():
            self._con.execute(f"DELETE FROM {table} WHERE {where}", list(params))
            if len(frame):
                self._con.register("incoming_rows", frame)
                columns = ", ".join(f'"{c}"' for c in frame.columns)
                self._con.execute(
                    f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming_rows"
                )
                self._con.unregister("incoming_rows")

    def replace_month_with(
        self, table: str, month: date, query: str, params: Sequence[object] = ()
    ) -> None:
        with self.transaction():
            self._con.execute(f"DELETE FROM {table} WHERE month = ?", [month])
            self._con.execute(f"INSERT INTO {table} BY NAME {query}", list(params))

    def insert_new(self, table: str, query: str, params: Sequence[object] = ()) -> int:
        # The table's primary key decides what is new.
        added = self._con.execute(f"INSERT OR IGNORE INTO {table} BY NAME {query}", list(params))
        return int(added.fetchone()[0])


@dataclass(frozen=True)
class DuckDBFile:
    """The warehouse as one DuckDB file at `path`."""

    path: Path

    @property
    def scratch_dir(self) -> Path:
        return self.path.parent

    @contextmanager
    def connect(
        self, read_only: bool = False, lock_wait_seconds: float = LOCK_RETRY_SECONDS
    ) -> Iterator[DuckDBConnection]:
        """A short-lived connection, waiting up to `lock_wait_seconds` for another writer's
        lock."""
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + lock_wait_seconds
        delay = 0.1
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.IOException as error:
                if "lock" not in str(error).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        try:
            con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
            yield DuckDBConnection(con)
        finally:
            con.close()

    @contextmanager
    def dbt_database(self, name: str) -> Iterator[None]:
        """dbt builds in the file itself (its profile's own path): nothing to stage."""
        yield None

    def publish_dbt_build(
        self, database: Path | None, window: Sequence[date], full_refresh: bool
    ) -> None:
        """Nothing to publish: dbt wrote the file's tables in place."""
