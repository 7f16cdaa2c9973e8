"""The published snapshot: what readers outside the pipeline (the app) may open.

The app must never open the live warehouse: DuckDB admits one writing process, and a reader
holding the file would block the pipeline. After every write to the metric history the
pipeline copies the history tables to Parquet files under SENTIMENT_HOME/published/history,
each written atomically (lib/core/atomic.py), so a reader sees the previous snapshot or the new
one, never a torn file.

`open_history` / `query_history` are the reading side for people (`sentiment sql`): the same
`metrics.<table>` names as in the warehouse, answered from the snapshot, so a query never
meets the pipeline's lock. The row-accounting tables the README queries (`raw.ingested_files`,
`raw.rejected_tweets`, `clean.tweets_dropped`) are published beside the history, for people
only: the app reads the history alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sentiment_assets.lib.core.atomic import copy_to_parquet, write_text
from sentiment_assets.lib.core.clock import utc_now
from sentiment_assets.lib.core.months import iso_or_empty
from sentiment_assets.lib.store.warehouse import WarehouseConnection, append_rows, as_writer

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # registry imports MLflow: seconds that `sentiment sql` need not wait
    from sentiment_assets.lib.versions.registry import VersionInfo

# Every table of the warehouse's `metrics` schema (lib/store/warehouse.py DDL); a table missing here
# would be invisible to the app and to `sentiment sql` (tests/unit/test_publish.py checks).
HISTORY_TABLES = {
    "model_evaluations": "metrics.model_evaluations",
    "training_runs": "metrics.training_runs",
    "promotions": "metrics.promotions",
    "drift_reports": "metrics.drift_reports",
    "slice_evaluations": "metrics.slice_evaluations",
    "training_decisions": "metrics.training_decisions",
}

# Published when the warehouse has them (a home whose first month is not built yet has none).
ACCOUNTING_TABLES = {
    "raw_ingested_files": "raw.ingested_files",
    "raw_rejected_tweets": "raw.rejected_tweets",
    "clean_tweets_dropped": "clean.tweets_dropped",
}
PUBLISHED_TABLES = {**HISTORY_TABLES, **ACCOUNTING_TABLES}


def history_dir(published_dir: Path) -> Path:
    return published_dir / "history"


def published_rows(path: Path) -> int | None:
    """Rows of a published table, from its footer (None: absent or unreadable)."""
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (OSError, pa.ArrowException):
        return None


@dataclass(frozen=True)
class HistoryRows:
    """Rows for one metrics table. They replace the rows `where` matches: a month's report
    or evaluation is replaced when it is made again; by default nothing matches, so the rows
    are appended (decisions and promotions are history: each one is kept)."""

    table: str
    frame: pd.DataFrame
    where: str = "false"
    params: Sequence[object] = ()


def record_history(
    con: WarehouseConnection | duckdb.DuckDBPyConnection, published_dir: Path, *rows: HistoryRows
) -> None:
    """Write `rows` together, then publish the snapshot: the one way the metric history grows,
    so the app and `sentiment sql` never lack a row the warehouse holds."""
    writer = as_writer(con)
    with writer.transaction():
        for each in rows:
            writer.replace_rows(each.table, each.frame, each.where, each.params)
    publish_history(con, published_dir)


def publish_history(
    con: duckdb.DuckDBPyConnection, published_dir: Path, allow_shrink: bool = False
) -> dict[str, int]:
    """Copy every history table to the snapshot; returns the rows each snapshot file holds.

    A history table with fewer rows than its published file is not published unless
    `allow_shrink`: a warehouse moved aside, rebuilt or restored from an old backup holds less
    history than the app has shown, and the snapshot is then the only copy of the rest. The
    row-accounting tables are always published: they are rebuilt with the data they count.
    """
    target_dir = history_dir(published_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    present = _tables_present(con)
    counts = {}
    for name, table in PUBLISHED_TABLES.items():
        if name not in HISTORY_TABLES and table not in present:
            continue
        target = target_dir / f"{name}.parquet"
        before = published_rows(target) if name in HISTORY_TABLES else None
        if before and not allow_shrink:
            rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            if rows < before:
                log.warning(
                    "%s kept: %s holds %d rows, the snapshot %d (`sentiment publish "
                    "--allow-shrink` publishes the smaller table)",
                    target,
                    table,
                    rows,
                    before,
                )
                counts[name] = before
                continue
        counts[name] = copy_to_parquet(con, f"SELECT * FROM {table}", target)
    return counts


def _tables_present(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables"
    ).fetchall()
    return {name for (name,) in rows}


class HistoryError(Exception):
    """The published history could not answer: the message says why, for a person."""


class NoPublishedHistoryError(HistoryError):
    """No snapshot has been published yet (the pipeline has not written any metrics)."""


class HistoryQueryError(HistoryError):
    """A query against the snapshot failed (syntax, unknown table or column, ...)."""


class QueryMemoryError(HistoryQueryError):
    """A query needed more memory than open_history's memory_limit allowed."""


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[object, ...]]


def _load_table(path: Path) -> pa.Table:
    # One open() reads the whole file: if the pipeline renames a new snapshot in meanwhile,
    # this handle still reads the old inode, whole. Scanning by path (read_parquet) could open
    # the file more than once (schema, then data) and mix two snapshots in one query.
    with path.open("rb") as handle:
        data = handle.read()
    return pq.read_table(pa.BufferReader(data))


def open_history(published_dir: Path, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the published snapshot as `metrics.<table>` (and the
    accounting tables under their warehouse names), each schema on the search path, so
    `SHOW TABLES` lists them and `FROM promotions` finds `metrics.promotions`.

    Never touches the live warehouse. Each table is loaded once, so a query sees one
    consistent version of it. External access is switched off and the configuration locked
    afterwards, so a query cannot ATTACH the live file, write files, or lift `memory_limit`
    (a DuckDB size such as "2GB"; with it, a query that needs more fails rather than spill to
    disk). The caller closes the connection. Raises NoPublishedHistoryError when nothing has
    been published yet, HistoryError when a published file cannot be read.
    """
    folder = history_dir(published_dir)
    con = duckdb.connect(":memory:")
    try:
        schemas = _load_snapshot(con, folder)
        if not schemas:
            raise NoPublishedHistoryError(
                f"no published metric history under {folder} yet: build the pipeline first "
                "(`sentiment pipeline` or `make pipeline`)"
            )
        con.execute(f"SET search_path = '{','.join(schemas)}'")
        # DuckDB draws its progress bar on stdout, in the middle of a CSV or JSON answer.
        con.execute("SET enable_progress_bar = false")
        if memory_limit is not None:
            con.execute(f"SET memory_limit = '{memory_limit}'")
            con.execute("SET temp_directory = ''")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _load_snapshot(con: duckdb.DuckDBPyConnection, folder: Path) -> list[str]:
    """Copy every published file into `con`; returns the schemas loaded, in order."""
    schemas: list[str] = []
    for name, qualified in PUBLISHED_TABLES.items():
        path = folder / f"{name}.parquet"
        try:
            table = _load_table(path)
        except FileNotFoundError:
            continue  # published by an older version that lacked this table, or not yet
        except (OSError, pa.ArrowException) as error:
            raise HistoryError(f"{path} could not be read: {error}") from error
        schema, _, table_name = qualified.partition(".")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.register("snapshot_rows", table)
        con.execute(f"CREATE TABLE {schema}.{table_name} AS SELECT * FROM snapshot_rows")
        con.unregister("snapshot_rows")
        if schema not in schemas:
            schemas.append(schema)
    return schemas


def run_query(con: duckdb.DuckDBPyConnection, sql: str) -> QueryResult:
    """Run `sql` on `con` (an open_history connection); a bad query raises HistoryQueryError."""
    try:
        cursor = con.execute(sql)
        description: Sequence[Sequence[object]] | None = cursor.description
        if description is None:  # a statement without a result (SET, CREATE, ...)
            return QueryResult([], [])
        return QueryResult([str(column[0]) for column in description], cursor.fetchall())
    except duckdb.OutOfMemoryException as error:
        raise QueryMemoryError(str(error)) from error
    except duckdb.Error as error:
        raise HistoryQueryError(str(error)) from error


def query_history(published_dir: Path, sql: str) -> QueryResult:
    """Run `sql` against the published snapshot (see open_history).

    Raises NoPublishedHistoryError without a snapshot, HistoryQueryError for a bad query.
    """
    con = open_history(published_dir)
    try:
        return run_query(con, sql)
    finally:
        con.close()


def restore_history_from_snapshot(
    con: duckdb.DuckDBPyConnection, published_dir: Path
) -> dict[str, int]:
    """Into a warehouse whose history is empty (new, or moved aside and rebuilt), bring back
    the published snapshot's rows; returns the rows per table (empty: nothing to do).

    The snapshot is then the only copy of that history; without this the rebuild would
    publish its own, shorter history and the rest would be gone. Raises HistoryError when a
    published file cannot be read.
    """
    tables = HISTORY_TABLES.values()
    if any(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables):
        return {}
    restored = {}
    for name, table in HISTORY_TABLES.items():
        path = history_dir(published_dir) / f"{name}.parquet"
        try:
            frame = _load_table(path).to_pandas()
        except FileNotFoundError:
            continue
        except (OSError, pa.ArrowException) as error:
            raise HistoryError(f"{path} could not be read: {error}") from error
        columns = {
            column[0] for column in con.execute(f"SELECT * FROM {table} LIMIT 0").description
        }
        frame = frame[[column for column in frame.columns if column in columns]]
        if len(frame):
            append_rows(con, table, frame)
            restored[name] = len(frame)
    return restored


def champion_file(published_dir: Path) -> Path:
    return published_dir / "champion.json"


def read_champion_file(published_dir: Path) -> dict | None:
    """champion.json as published (None: absent or unreadable, so republishing is due)."""
    try:
        return json.loads(champion_file(published_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def publish_champion(published_dir: Path, info: VersionInfo, decision: str) -> Path:
    """Write champion.json atomically: readers see the old file or the new one, never half."""
    published_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "version": info.version,
        "family": info.family,
        "trained_through": iso_or_empty(info.trained_through),
        "promoted_at": utc_now().tz_localize(UTC).isoformat(),
        "decision": decision,
    }
    return write_text(champion_file(published_dir), json.dumps(payload, indent=2))
