"""The lake warehouse: every table a folder of Parquet files, so writers never share a lock.

DuckDB admits one writing process per database file, which serialises every month of the
embedded profile. In the lake:

- a month-partitioned table (MONTH_TABLES) keeps one file per month, replaced atomically
  (written aside, then renamed), so two months are written at the same time without waiting
  for each other;
- the embedding cache is append-only: each write adds a file of the keys not yet present;
- every other table (the metric history) is one small file, rewritten whole under a lock
  held for the rewrite alone.

Readers take no lock: a connection is an in-memory DuckDB whose tables are views over the
files present when it opened, so a reader sees each file before or after a write, never a
torn one. A month written by another process after a connection opened shows up on the next
connection (or after `refresh`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from sentiment_assets.lib.core.atomic import copy_to_parquet, exclusive_lock
from sentiment_assets.lib.store.schema import DDL

# Tables with one file per month (`<month>.parquet`); a write replaces that month whole.
MONTH_TABLES = (
    "raw.tweets",
    "raw.rejected_tweets",
    "raw.ingested_files",
    "clean.tweets_clean",
    "clean.tweets_dropped",
    "features.tweet_embeddings",
)
# Append-only tables and their keys: a write adds only rows whose key is not there yet.
APPEND_ONLY = {"features.embedding_cache": ("encoder", "text_hash")}
# The dbt models' tables, copied into and out of the scratch database dbt builds in.
DBT_TABLES = ("clean.tweets_clean", "clean.tweets_dropped")
DBT_SOURCES = ("raw.tweets", "raw.rejected_tweets")
WHOLE_TABLE_FILE = "table.parquet"
LOCK_FILE = ".lock"
# Where writers stage their files and dbt builds its scratch databases: hidden, so no table
# folder ever lists them.
SCRATCH_DIR = ".scratch"
TYPED_PREFIX = "_typed_"
# A Dagster run id (a UUID) as it appears in a scratch database's name.
RUN_ID_LENGTH = 36


@dataclass(frozen=True)
class Lake:
    """A lake warehouse rooted at `root` (`<root>/<schema>/<table>/*.parquet`)."""

    root: Path

    def table_dir(self, table: str) -> Path:
        schema, _, name = table.partition(".")
        return self.root / schema / name

    def month_file(self, table: str, month: date) -> Path:
        return self.table_dir(table) / f"{month.isoformat()}.parquet"

    def files(self, table: str) -> list[Path]:
        folder = self.table_dir(table)
        if not folder.is_dir():
            return []
        # Staging files are hidden (lib/core/atomic.py): never read a half-written one.
        return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))

    def tables(self) -> list[str]:
        """Every table with a folder in the lake, as `schema.table`."""
        if not self.root.is_dir():
            return []
        return sorted(
            f"{schema.name}.{table.name}"
            for schema in self.root.iterdir()
            if schema.is_dir() and not schema.name.startswith(".")
            for table in schema.iterdir()
            if table.is_dir() and not table.name.startswith(".")
        )

    @property
    def scratch_dir(self) -> Path:
        return self.root / SCRATCH_DIR

    def months(self, table: str) -> list[date]:
        return [date.fromisoformat(p.stem) for p in self.files(table)]

    def connect(
        self, read_only: bool = False, lock_wait_seconds: float = 0.0
    ) -> AbstractContextManager[LakeConnection]:
        """A connection over the files present now; it never waits for a lock, and
        `read_only` changes nothing: every write goes through the connection's methods."""
        return connect_lake(self, DDL)

    @contextmanager
    def dbt_database(self, name: str) -> Iterator[Path]:
        """dbt builds in a scratch DuckDB of its own (`dbt_scratch`), so months build in
        parallel."""
        with dbt_scratch(self, DDL, name) as scratch:
            yield scratch

    def publish_dbt_build(
        self, database: Path | None, window: Sequence[date], full_refresh: bool
    ) -> tuple[list[date], dict[str, int]]:
        """Replace the months the build made (every month of a full rebuild, else the
        window's) with their rows in the scratch database."""
        if database is None:
            raise ValueError("a lake's dbt build needs the scratch database it built in")
        months = dbt_months(self, database) if full_refresh else list(window)
        return months, export_dbt_months(self, database, months)


def _quoted_list(paths: Sequence[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _scan(paths: Sequence[Path]) -> str:
    return f"read_parquet({_quoted_list(paths)}, union_by_name = true)"


def _typed_name(table: str) -> str:
    schema, _, name = table.partition(".")
    return f"{schema}.{TYPED_PREFIX}{name}"


class LakeConnection:
    """An in-memory DuckDB over a lake: tables are views, writes go through the methods here.

    Everything else (execute, sql, register, ...) is the DuckDB connection's own, so code
    that reads the warehouse runs unchanged on either kind. A plain INSERT or DELETE fails
    (a view cannot be written), so no write can bypass the files by accident.
    """

    def __init__(self, lake: Lake, ddl: str) -> None:
        self.lake = lake
        self._con = duckdb.connect(":memory:")
        self._con.execute(ddl)
        # The DDL's tables stay as typed, empty templates: each view is template + files, so
        # columns added to the DDL after a file was written read as NULL instead of missing.
        self.typed_tables: set[str] = set()
        for schema, name in self._con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'memory'"
        ).fetchall():
            table = f"{schema}.{name}"
            self._con.execute(f"ALTER TABLE {table} RENAME TO {TYPED_PREFIX}{name}")
            self.typed_tables.add(table)
        for table in sorted(self.typed_tables | set(lake.tables())):
            self.refresh(table)

    def __getattr__(self, name: str) -> object:
        return getattr(self._con, name)

    def close(self) -> None:
        self._con.close()

    def ensure_schema(self) -> None:
        """Nothing to do: a lake connection is made from the DDL."""

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """No transaction spans files: each write below replaces its file atomically, so a
        reader between two writes sees the first and not yet the second."""
        yield

    def relation_sql(self, table: str, paths: Sequence[Path] | None = None) -> str | None:
        """SQL reading `table` from `paths` (default: its files now), typed by the DDL's
        template where there is one; None for a table with neither files nor template."""
        paths = self.lake.files(table) if paths is None else paths
        parts = [f"SELECT * FROM {_typed_name(table)}"] if table in self.typed_tables else []
        if paths:
            parts.append(f"SELECT * FROM {_scan(paths)}")
        return " UNION ALL BY NAME ".join(parts) if parts else None

    def refresh(self, table: str) -> None:
        """Point the view of `table` at the files present now."""
        schema = table.partition(".")[0]
        query = self.relation_sql(table)
        if query is None:
            return
        self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        self._con.execute(f"CREATE OR REPLACE VIEW {table} AS {query}")

    def _write(self, target: Path, query: str, params: Sequence[object] = ()) -> None:
        # COPY takes no parameters: the rows are fixed in a temp table first.
        self._con.execute(f"CREATE OR REPLACE TEMP TABLE lake_rows AS {query}", list(params))
        try:
            copy_to_parquet(self._con, "SELECT * FROM lake_rows", target)
        finally:
            self._con.execute("DROP TABLE IF EXISTS lake_rows")

    def _conformed(self, table: str, query: str) -> str:
        if table in self.typed_tables:
            return f"SELECT * FROM {_typed_name(table)} UNION ALL BY NAME ({query})"
        return query

    def replace_month_with(
        self, table: str, month: date, query: str, params: Sequence[object] = ()
    ) -> None:
        """Make the rows of `query` the whole of `month` in `table` (one atomic file)."""
        if table not in MONTH_TABLES:
            raise ValueError(f"{table} is not partitioned by month in the lake")
        self._write(self.lake.month_file(table, month), self._conformed(table, query), params)
        self.refresh(table)

    def replace_rows(
        self, table: str, frame: pd.DataFrame, where: str, params: Sequence[object]
    ) -> None:
        """Delete the rows matching `where`, then add `frame` (see warehouse.replace_rows)."""
        if table in MONTH_TABLES:
            if where.strip() != "month = ?" or len(params) != 1:
                raise ValueError(f"{table} is replaced one month at a time in the lake")
            self._con.register("incoming_rows", frame)
            try:
                self.replace_month_with(table, params[0], "SELECT * FROM incoming_rows")
            finally:
                self._con.unregister("incoming_rows")
            return
        if table in APPEND_ONLY:
            raise ValueError(f"{table} is append-only in the lake: use insert_new")
        with exclusive_lock(self.lake.table_dir(table) / LOCK_FILE):
            # Read by path under the lock, not through this connection's view: another writer
            # may have rewritten the file since the view was made.
            current = self.relation_sql(table)
            kept = (
                f"SELECT * FROM ({current}) WHERE ({where}) IS NOT TRUE"
                if current is not None
                else None
            )
            self._con.register("incoming_rows", frame)
            try:
                query = " UNION ALL BY NAME ".join(
                    q for q in (kept, "SELECT * FROM incoming_rows") if q is not None
                )
                self._write(self.lake.table_dir(table) / WHOLE_TABLE_FILE, query, params)
            finally:
                self._con.unregister("incoming_rows")
        self.refresh(table)

    def insert_new(self, table: str, query: str, params: Sequence[object] = ()) -> int:
        """Add the rows of `query` whose key is not in `table` yet; returns how many.

        The lock is held for the comparison and the write only, so writers that computed
        the same rows at once (two months sharing a text) still store each key once.
        """
        keys = APPEND_ONLY.get(table)
        if keys is None:
            raise ValueError(f"{table} is not an append-only lake table")
        with exclusive_lock(self.lake.table_dir(table) / LOCK_FILE):
            existing = self.lake.files(table)
            novel = f"SELECT * FROM ({query}) incoming"
            if existing:
                columns = ", ".join(keys)
                novel += f" ANTI JOIN (SELECT {columns} FROM {_scan(existing)}) USING ({columns})"
            self._con.execute(f"CREATE OR REPLACE TEMP TABLE lake_new AS {novel}", list(params))
            try:
                added = self._con.execute("SELECT count(*) FROM lake_new").fetchone()[0]
                if added:
                    target = self.lake.table_dir(table) / f"{uuid.uuid4().hex}.parquet"
                    self._write(target, self._conformed(table, "SELECT * FROM lake_new"))
            finally:
                self._con.execute("DROP TABLE IF EXISTS lake_new")
        self.refresh(table)
        return int(added)


@contextmanager
def connect_lake(lake: Lake, ddl: str) -> Iterator[LakeConnection]:
    con = LakeConnection(lake, ddl)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def dbt_scratch(lake: Lake, ddl: str, name: str) -> Iterator[Path]:
    """A scratch DuckDB file for one dbt build: the raw sources as views over the lake and the
    dbt tables as copies of their lake files, so dbt's incremental models and tests see what
    they would see in the embedded warehouse. Deleted afterwards; `export_dbt_months` moves
    the months a build made into the lake."""
    lake.scratch_dir.mkdir(parents=True, exist_ok=True)
    path = lake.scratch_dir / f"dbt-{name}.duckdb"
    path.unlink(missing_ok=True)
    try:
        with connect_lake(lake, ddl) as view, duckdb.connect(str(path)) as scratch:
            for table in (*DBT_SOURCES, *DBT_TABLES):
                query = view.relation_sql(table)
                if query is None:
                    continue
                scratch.execute(f"CREATE SCHEMA IF NOT EXISTS {table.partition('.')[0]}")
                # The sources' file lists are fixed now; dbt only reads them.
                kind = "VIEW" if table in DBT_SOURCES else "TABLE"
                template = _typed_name(table)
                if table in view.typed_tables:
                    # The template lives in the view connection only: carry its types here.
                    columns = view.execute(f"DESCRIBE {template}").fetchall()
                    ddl_columns = ", ".join(f'"{c[0]}" {c[1]}' for c in columns)
                    scratch.execute(f"CREATE TABLE {template} ({ddl_columns})")
                scratch.execute(f"CREATE {kind} {table} AS {query}")
        yield path
    finally:
        path.unlink(missing_ok=True)
        path.with_suffix(".duckdb.wal").unlink(missing_ok=True)


# A staging file older than this belongs to a writer that died: a month file takes seconds.
STALE_STAGING_S = 3600.0


def leftovers(lake: Lake, is_active: Callable[[str], bool], now: float) -> list[Path]:
    """What killed writers left in the lake: dbt scratch databases of runs no longer active
    (`is_active(run_id)`), and hidden staging files and folders older than STALE_STAGING_S.
    Readers never see either; they only take disk."""
    found = []
    if lake.scratch_dir.is_dir():
        for path in lake.scratch_dir.iterdir():
            if path.name.startswith("dbt-") and path.name.endswith((".duckdb", ".duckdb.wal")):
                run_id = path.name[len("dbt-") : len("dbt-") + RUN_ID_LENGTH]
                if not is_active(run_id):
                    found.append(path)
            elif now - path.stat().st_mtime > STALE_STAGING_S:
                found.append(path)
    for table in lake.tables():
        folder = lake.table_dir(table)
        found += [
            path
            for path in folder.iterdir()
            if path.name.startswith(".")
            and path.name != LOCK_FILE
            and now - path.stat().st_mtime > STALE_STAGING_S
        ]
    return sorted(found)


def export_dbt_months(lake: Lake, scratch: Path, months: Sequence[date]) -> dict[str, int]:
    """Write `months` of the dbt tables from `scratch` into the lake, one file per month
    (a month with no rows gets an empty file, replacing rows that vanished upstream).
    Returns the rows written per table."""
    written = {}
    with duckdb.connect(str(scratch), read_only=True) as con:
        for table in DBT_TABLES:
            total = 0
            for month in months:
                total += copy_to_parquet(
                    con,
                    f"SELECT * FROM {table} WHERE month = DATE '{month.isoformat()}'",
                    lake.month_file(table, month),
                )
            written[table] = total
    return written


def dbt_months(lake: Lake, scratch: Path) -> list[date]:
    """Every month a full rebuild covers: those staged in `scratch` and those already in the
    lake's dbt tables (a month whose rows all vanished must be emptied too)."""
    with duckdb.connect(str(scratch), read_only=True) as con:
        staged = {row[0] for row in con.execute("SELECT DISTINCT month FROM raw.tweets").fetchall()}
    for table in DBT_TABLES:
        staged |= set(lake.months(table))
    return sorted(m for m in staged if m is not None)
