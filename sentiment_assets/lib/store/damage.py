"""The home's stores, damaged or healthy: telling which file is broken and what to do next.

A truncated or scribbled store surfaces as whatever error its driver raises on the first
page it cannot read (DuckDB: "Corrupt database file", "Could not read enough bytes";
SQLite: "database disk image is malformed", "file is not a database"), deep in a traceback
that often names no file. `StoreDamaged` is that error for a person: one line naming the
file and the next step. `damage_in` recognises a driver's error as damage and finds the
file: the warehouse for DuckDB, and for SQLite the first of the home's SQLite files that
fails its own integrity check.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import duckdb


class Home(Protocol):
    """What these checks read of lib.settings.Settings (a room above this one)."""

    @property
    def home(self) -> Path: ...
    @property
    def dagster_home(self) -> Path: ...
    @property
    def warehouse_path(self) -> Path: ...
    @property
    def mlflow_tracking_uri(self) -> str: ...


# What DuckDB says when a file's bytes are not what it wrote (checked against DuckDB 1.x-2.x
# by tests/reliability/test_damaged_stores.py, which truncates and scribbles real files).
DUCKDB_DAMAGE = (
    "corrupt database file",
    "could not read enough bytes",
    "not a valid duckdb database file",
    "no magic bytes found",
    "too small to be a parquet file",
)
SQLITE_DAMAGE = ("database disk image is malformed", "file is not a database")

RESTORE_HINT = "`sentiment restore` brings back the latest backup (`sentiment doctor` checks all)"


class StoreDamaged(Exception):
    """A store that cannot be read; str() is one line: the file, what is wrong, what next."""

    def __init__(self, path: Path, problem: str, next_step: str) -> None:
        super().__init__(path, problem, next_step)
        self.path = path
        self.problem = problem
        self.next_step = next_step

    def __str__(self) -> str:
        return f"{self.path} is damaged ({self.problem}): {self.next_step}"


class StoreBusy(Exception):
    """A store another process holds (a running pipeline): the message says which."""


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_duckdb_damage(error: BaseException) -> bool:
    return isinstance(error, duckdb.Error) and any(
        sign in str(error).lower() for sign in DUCKDB_DAMAGE
    )


def is_sqlite_damage(error: BaseException) -> bool:
    # sqlite3's own error, or SQLAlchemy's and MLflow's wrappings of it (matched by text).
    return any(sign in str(error).lower() for sign in SQLITE_DAMAGE)


WAREHOUSE_NEXT_STEP = (
    f"{RESTORE_HINT}; or move it aside and rebuild with `sentiment pipeline` "
    "(the published history and the registry's versions are kept)"
)


def warehouse_damaged(path: Path, error: BaseException) -> StoreDamaged:
    return StoreDamaged(path, first_line(error), WAREHOUSE_NEXT_STEP)


def sqlite_path(tracking_uri: str) -> Path | None:
    """The file of a `sqlite:///...` MLflow store; None for any other store."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    return Path(unquote(urlsplit(tracking_uri[len(prefix) :]).path))


def sqlite_problem(path: Path) -> str | None:
    """What SQLite's own quick check finds wrong with `path` (None: healthy or absent).

    Opened read-only through a URI, so checking never creates or changes the file."""
    if not path.exists():
        return None
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as con:
            rows = con.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as error:
        return first_line(error)
    # Its findings span lines ("*** in database main ***\nPage 117: ..."): one line here.
    found = [" ".join(str(row[0]).split()) for row in rows if row[0] != "ok"]
    return "; ".join(found[:2]) if found else None


def instance_files(dagster_home: Path) -> list[Path]:
    """The SQLite files of a Dagster instance on its default storage (runs, event logs,
    schedules); empty for an instance on PostgreSQL."""
    return sorted(p for p in dagster_home.rglob("*.db") if p.is_file())


INSTANCE_NEXT_STEP = (
    "stop every `sentiment` process, then move dagster_home aside: the next start makes a "
    "fresh instance (run history is lost; data, models and metrics are not)"
)


def sqlite_stores(settings: Home) -> list[tuple[Path, str]]:
    """Each SQLite file of the home with the next step if it is damaged."""
    found = []
    mlflow_db = sqlite_path(settings.mlflow_tracking_uri)
    if mlflow_db is not None:
        found.append((mlflow_db, RESTORE_HINT))
    found += [(path, INSTANCE_NEXT_STEP) for path in instance_files(settings.dagster_home)]
    return found


def damage_in(error: BaseException, settings: Home) -> StoreDamaged | None:
    """The damaged store behind `error` (or an error it was raised from), if any."""
    for link in _chain(error):
        if isinstance(link, StoreDamaged):
            return link
        if is_duckdb_damage(link):
            return warehouse_damaged(settings.warehouse_path, link)
        if is_sqlite_damage(link):
            for path, next_step in sqlite_stores(settings):
                problem = sqlite_problem(path)
                if problem:
                    return StoreDamaged(path, problem, next_step)
            return StoreDamaged(settings.home, first_line(link), "run `sentiment doctor`")
    return None


@dataclass(frozen=True)
class TableCount:
    table: str
    rows: int


def scan_duckdb(path: Path) -> list[TableCount]:
    """Read every value of every table of a DuckDB file (read-only): a checksum error in
    any block shows up here, not only in the blocks a cheap count would touch."""
    counts = []
    with closing(duckdb.connect(str(path), read_only=True)) as con:
        tables = con.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables() ORDER BY 1"
        ).fetchall()
        for (table,) in tables:
            # hash() of each column forces every column's blocks to be read and verified.
            row = con.execute(f"SELECT count(*), sum(hash(COLUMNS(*))) FROM {table}").fetchone()
            counts.append(TableCount(table, int(row[0])))
    return counts
