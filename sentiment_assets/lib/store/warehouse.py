"""Warehouse access: the two kinds of warehouse behind one protocol, and idempotent writes.

The warehouse is a DuckDB file (the embedded profile, lib/store/duckdb_file.py) or a lake of
Parquet files (lib/store/lake.py). Both are a `Warehouse`, and their connections a
`WarehouseConnection`: code outside lib/store writes through the protocol's methods and never
asks which kind it holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from sentiment_assets.lib.store.damage import is_duckdb_damage, warehouse_damaged
from sentiment_assets.lib.store.duckdb_file import LOCK_RETRY_SECONDS, DuckDBConnection, DuckDBFile
from sentiment_assets.lib.store.lake import Lake, LakeConnection
from sentiment_assets.lib.store.schema import DDL

__all__ = ["DDL", "DuckDBFile", "Lake", "Warehouse", "WarehouseConnection"]


class WarehouseConnection(Protocol):
    """A connection that reads like DuckDB's and writes whole months or keyed rows, each kind
    the way its storage allows (a transaction in the file, an atomic file in the lake)."""

    def execute(self, query: str, parameters: object = None) -> Any: ...

    def ensure_schema(self) -> None: ...

    def transaction(self) -> AbstractContextManager[None]:
        """Writes inside the block commit together where the storage can (the DuckDB file);
        the lake replaces each file atomically, in the order written."""

    def replace_rows(
        self, table: str, frame: pd.DataFrame, where: str, params: Sequence[object]
    ) -> None: ...

    def replace_month_with(
        self, table: str, month: date, query: str, params: Sequence[object] = ()
    ) -> None:
        """Make the rows of `query` (matched to the table's columns by name) all of `month`."""

    def insert_new(self, table: str, query: str, params: Sequence[object] = ()) -> int:
        """Add the rows of `query` whose key `table` lacks; returns how many were added."""


class Warehouse(Protocol):
    @property
    def scratch_dir(self) -> Path:
        """A folder on the warehouse's own disk for a writer's staging files."""

    def connect(
        self, read_only: bool = False, lock_wait_seconds: float = LOCK_RETRY_SECONDS
    ) -> AbstractContextManager[WarehouseConnection]: ...

    def dbt_database(self, name: str) -> AbstractContextManager[Path | None]:
        """The database a dbt build named `name` writes: None for the profile's own."""

    def publish_dbt_build(
        self, database: Path | None, window: Sequence[date], full_refresh: bool
    ) -> tuple[list[date], dict[str, int]] | None:
        """Move what dbt built in `database` into the warehouse once its tests passed; the
        months and rows per table moved, or None where dbt built in place."""


def warehouse_at(location: Path | str | Warehouse) -> Warehouse:
    """The warehouse at `location`: a path is the DuckDB file there."""
    if isinstance(location, (Lake, DuckDBFile)):
        return location
    return DuckDBFile(Path(location))


def scratch_parent(location: Path | str | Warehouse) -> Path:
    """A folder on the warehouse's own disk for a writer's staging files."""
    return warehouse_at(location).scratch_dir


@contextmanager
def connect(
    location: Path | str | Warehouse,
    read_only: bool = False,
    lock_wait_seconds: float = LOCK_RETRY_SECONDS,
) -> Iterator[WarehouseConnection]:
    """A short-lived connection to the warehouse: the DuckDB file (waiting up to
    `lock_wait_seconds` for another writer's lock), or a lake connection, which never waits
    (see lib/store/lake.py).

    A damaged file (on opening, or on the first damaged block a query reads) raises
    lib.store.damage.StoreDamaged, naming the file and the next step.
    """
    store = warehouse_at(location)
    try:
        with store.connect(read_only, lock_wait_seconds) as con:
            yield con
    except duckdb.Error as error:
        if is_duckdb_damage(error):
            raise warehouse_damaged(_root(store), error) from error
        raise


def _root(store: Warehouse) -> Path:
    """The file or folder a damaged-store message names."""
    return store.root if isinstance(store, Lake) else store.path


def as_writer(con: WarehouseConnection | duckdb.DuckDBPyConnection) -> WarehouseConnection:
    """`con` with the warehouse's write methods."""
    # A plain DuckDB connection (an in-memory snapshot, a test's) writes as the file does.
    if isinstance(con, (DuckDBConnection, LakeConnection)):
        return con
    return DuckDBConnection(con)


def ensure_schema(con: WarehouseConnection | duckdb.DuckDBPyConnection) -> None:
    as_writer(con).ensure_schema()


def replace_rows(
    con: WarehouseConnection | duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    where: str,
    params: Sequence[object],
) -> None:
    """Delete the rows matching `where`, then insert `frame`, at once.

    Re-materialising a month must replace it, never append to it: counts may not double.
    """
    as_writer(con).replace_rows(table, frame, where, params)


def append_rows(
    con: WarehouseConnection | duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame
) -> None:
    """Insert `frame` by column name (for append-only history such as promotions)."""
    replace_rows(con, table, frame, "false", [])


def replace_month(
    con: WarehouseConnection | duckdb.DuckDBPyConnection,
    table: str,
    month: date,
    frame: pd.DataFrame,
) -> None:
    replace_rows(con, table, frame, "month = ?", [month])


def vectors_to_arrow(vectors: np.ndarray) -> pa.Array:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    offsets = np.arange(0, (n + 1) * dim, dim, dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(vectors.reshape(-1)))


def arrow_to_vectors(column: pa.ChunkedArray | pa.Array, dim: int | None = None) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if len(column) == 0:
        return np.zeros((0, dim or 0), dtype=np.float32)
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(len(column), -1)
