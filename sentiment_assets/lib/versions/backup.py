"""Backups of the stores that cannot be rebuilt from the source: `sentiment backup/restore`.

A backup is one folder, SENTIMENT_HOME/backups/<UTC time>/, holding a consistent copy of
the warehouse (the DuckDB file, copied while a read-only connection keeps writers out, or
the lake's files), mlflow.db (SQLite's online backup), the MLflow artifacts and the
published snapshot, plus manifest.json (what it holds, counted). It is written under a
hidden name and renamed in when whole, so a half-written backup is never offered.

A damaged store is refused: a copy of it would rotate a good backup out. Restoring moves
the current files aside (backups/<UTC time>-replaced/) before copying the backup in, so a
restore loses nothing either, and refuses while a process holds the files open.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import duckdb

from sentiment_assets.lib.core.clock import utc_now
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.store.damage import (
    StoreBusy,
    StoreDamaged,
    scan_duckdb,
    sqlite_path,
    sqlite_problem,
    warehouse_damaged,
)
from sentiment_assets.lib.store.lake import SCRATCH_DIR

BACKUPS_DIR = "backups"
MANIFEST = "manifest.json"
WAREHOUSE_FILE = "warehouse.duckdb"
LAKE_DIR = "lake"
MLFLOW_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
PUBLISHED_DIR = "published"
# Backups made before each build are pruned to the newest this many; manual ones never.
AUTOMATIC = "automatic"
MANUAL = "manual"
REPLACED_SUFFIX = "-replaced"


def backups_dir(settings: Settings) -> Path:
    return settings.home / BACKUPS_DIR


@dataclass(frozen=True)
class Backup:
    path: Path
    manifest: dict

    @property
    def name(self) -> str:
        return self.path.name

    def describe(self) -> str:
        rows = sum(self.manifest.get("warehouse_rows", {}).values())
        return (
            f"{self.name} ({self.manifest.get('kind')}): {rows} warehouse rows, "
            f"{self.manifest.get('registry_versions')} registry versions"
        )


def list_backups(settings: Settings) -> list[Backup]:
    """Complete backups, oldest first (the folders set aside by a restore are not ones)."""
    found = []
    folder = backups_dir(settings)
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        manifest = path / MANIFEST
        if path.name.startswith(".") or not manifest.is_file():
            continue
        found.append(Backup(path, json.loads(manifest.read_text(encoding="utf-8"))))
    return found


def _stamp() -> str:
    return utc_now().strftime("%Y-%m-%dT%H-%M-%S.%fZ")


def _copy_warehouse(settings: Settings, target: Path) -> dict[str, int]:
    """Copy the warehouse into `target`; returns its rows per table. Refuses a damaged one."""
    if settings.uses_lake:
        lake = settings.lake_root
        if not lake.is_dir():
            return {}
        shutil.copytree(lake, target / LAKE_DIR, ignore=shutil.ignore_patterns(".*", SCRATCH_DIR))
        return {}
    source = settings.duckdb_path
    if not source.exists():
        return {}
    try:
        counts = {c.table: c.rows for c in scan_duckdb(source)}
        # A read-only connection takes the file's lock: no writer changes it while it is
        # copied (a writer's connect waits, lib/store/warehouse.py).
        with closing(duckdb.connect(str(source), read_only=True)):
            shutil.copy2(source, target / WAREHOUSE_FILE)
            wal = source.with_name(source.name + ".wal")
            if wal.exists():
                shutil.copy2(wal, target / (WAREHOUSE_FILE + ".wal"))
    except duckdb.Error as error:
        raise warehouse_damaged(source, error) from error
    return counts


def _copy_mlflow(settings: Settings, target: Path) -> int | None:
    """Copy mlflow.db with SQLite's online backup; returns its registry versions (None: the
    store is a server, which keeps its own backups)."""
    source = sqlite_path(settings.mlflow_tracking_uri)
    if source is None or not source.exists():
        return None
    problem = sqlite_problem(source)
    if problem:
        raise StoreDamaged(source, problem, "`sentiment restore` brings back the latest backup")
    copy = target / MLFLOW_FILE
    with closing(sqlite3.connect(str(source))) as live, closing(sqlite3.connect(copy)) as out:
        live.backup(out)
        try:
            return out.execute("SELECT count(*) FROM model_versions").fetchone()[0]
        except sqlite3.OperationalError:  # no model registered yet
            return 0


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(source, target)


def make_backup(settings: Settings, kind: str = MANUAL, keep_automatic: int = 0) -> Backup:
    """Back up the home's stores (module docs); prune automatic backups to the newest
    `keep_automatic` when it is positive. Raises StoreDamaged for a damaged store."""
    folder = backups_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    name = _stamp()
    staging = folder / f".{name}"
    staging.mkdir()
    try:
        manifest = {
            "kind": kind,
            "created_at": utc_now().isoformat() + "+00:00",
            "warehouse": "lake" if settings.uses_lake else "duckdb",
            "warehouse_rows": _copy_warehouse(settings, staging),
            # After the database: every artifact it names is in place by then.
            "registry_versions": _copy_mlflow(settings, staging),
        }
        if settings.mlflow_artifacts_dir.is_dir():
            # An artifact is written once and never changed: an automatic backup links the
            # files (no space, no time), a manual one copies them.
            shutil.copytree(
                settings.mlflow_artifacts_dir,
                staging / ARTIFACTS_DIR,
                copy_function=_link_or_copy if kind == AUTOMATIC else shutil.copy2,
            )
        if settings.published_dir.is_dir():
            shutil.copytree(settings.published_dir, staging / PUBLISHED_DIR)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        os.replace(staging, folder / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if keep_automatic > 0:
        automatic = [b for b in list_backups(settings) if b.manifest.get("kind") == AUTOMATIC]
        for old in automatic[:-keep_automatic]:
            shutil.rmtree(old.path, ignore_errors=True)
    return Backup(folder / name, manifest)


def open_holders(paths: list[Path], proc: Path = Path("/proc")) -> dict[int, Path]:
    """Processes (other than this one) with one of `paths` open, by pid (Linux /proc)."""
    wanted = {str(p.resolve()) for p in paths if p.exists()}
    holders: dict[int, Path] = {}
    for entry in proc.iterdir() if wanted else []:
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                opened = os.readlink(fd)
                if opened in wanted:
                    holders[int(entry.name)] = Path(opened)
        except OSError:  # gone meanwhile, or not ours to look at
            continue
    return holders


def live_files(settings: Settings) -> list[Path]:
    """The files a restore replaces that a running process keeps open."""
    files = [
        settings.duckdb_path,
        settings.duckdb_path.with_name(settings.duckdb_path.name + ".wal"),
    ]
    mlflow_db = sqlite_path(settings.mlflow_tracking_uri)
    return files + ([mlflow_db] if mlflow_db else [])


def restore_backup(settings: Settings, backup: Backup) -> Path:
    """Put `backup` in place of the current stores; returns where those were moved.

    Raises StoreBusy while another process holds the warehouse or mlflow.db open. The
    registry cache is moved aside too: after a restore a version number may name another
    model than the cached bundle of that number.
    """
    holders = open_holders(live_files(settings))
    if holders:
        named = ", ".join(f"{path.name} (pid {pid})" for pid, path in sorted(holders.items()))
        raise StoreBusy(f"in use: {named}; stop the pipeline and `sentiment serve` first")
    aside = backups_dir(settings) / f"{_stamp()}{REPLACED_SUFFIX}"
    aside.mkdir(parents=True)
    mlflow_db = sqlite_path(settings.mlflow_tracking_uri)
    current = {
        WAREHOUSE_FILE: settings.duckdb_path,
        WAREHOUSE_FILE + ".wal": settings.duckdb_path.with_name(settings.duckdb_path.name + ".wal"),
        LAKE_DIR: settings.lake_root,
        PUBLISHED_DIR: settings.published_dir,
        "registry_cache": settings.home / "registry_cache",
    }
    if mlflow_db is not None:
        current[MLFLOW_FILE] = mlflow_db
    for name, path in current.items():
        if path.exists():
            shutil.move(path, aside / name)
    for name, path in current.items():
        source = backup.path / name
        if source.is_dir():
            shutil.copytree(source, path)
        elif source.is_file():
            shutil.copy2(source, path)
    artifacts = backup.path / ARTIFACTS_DIR
    if artifacts.is_dir():
        # Artifacts are written once per run: merging keeps those of later runs as well.
        shutil.copytree(artifacts, settings.mlflow_artifacts_dir, dirs_exist_ok=True)
    return aside
