"""Damaged stores named in one line, a snapshot that never shrinks unless told, and the
history a new warehouse takes back from it: on real DuckDB, SQLite and Parquet files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from sentiment_assets.lib.settings import load_settings
from sentiment_assets.lib.store.damage import StoreBusy, StoreDamaged, damage_in, sqlite_problem
from sentiment_assets.lib.store.warehouse import append_rows, connect, ensure_schema
from sentiment_assets.lib.versions.backup import list_backups, make_backup, restore_backup
from sentiment_assets.lib.versions.promotion import versions_named
from sentiment_assets.lib.versions.publish import (
    open_history,
    publish_history,
    published_rows,
    restore_history_from_snapshot,
)


def promotion(version: str, champion: str | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model_version": [version],
            "decision": ["promoted"],
            "champion_version": [champion],
            "created_at": [datetime(2024, 3, 5, 12, 30)],
        }
    )


def warehouse_with(path: Path, *versions: str) -> None:
    with connect(path) as con:
        ensure_schema(con)
        for version in versions:
            append_rows(con, "metrics.promotions", promotion(version))


def test_a_truncated_warehouse_raises_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    warehouse_with(path, "1")
    os.truncate(path, path.stat().st_size // 2)
    with pytest.raises(StoreDamaged) as raised, connect(path, read_only=True) as con:
        con.execute("SELECT * FROM metrics.promotions").fetchall()
    message = str(raised.value)
    assert "\n" not in message and str(path) in message and "sentiment restore" in message


def test_a_damaged_sqlite_file_is_found_by_its_own_check(tmp_path: Path) -> None:
    settings = load_settings({"SENTIMENT_HOME": str(tmp_path)})
    mlflow_db = tmp_path / "mlflow.db"
    with closing(sqlite3.connect(mlflow_db)) as con:
        con.execute("CREATE TABLE t (x TEXT)")
        con.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
        con.commit()
    assert sqlite_problem(mlflow_db) is None
    os.truncate(mlflow_db, mlflow_db.stat().st_size // 2)
    error = sqlite3.DatabaseError("database disk image is malformed")
    damage = damage_in(RuntimeError("while reading the registry"), settings)
    assert damage is None, "an error that is no damage is left alone"
    try:
        raise RuntimeError("MLflow failed") from error
    except RuntimeError as wrapped:
        damage = damage_in(wrapped, settings)
    assert damage is not None and damage.path == mlflow_db


def test_publishing_never_shrinks_a_table_unless_told(tmp_path: Path) -> None:
    published = tmp_path / "published"
    old, new = tmp_path / "old.duckdb", tmp_path / "new.duckdb"
    warehouse_with(old, "1", "2", "3")
    warehouse_with(new, "4")
    with connect(old) as con:
        publish_history(con, published)
    target = published / "history" / "promotions.parquet"
    with connect(new) as con:
        assert publish_history(con, published)["promotions"] == 3
        assert published_rows(target) == 3
        assert publish_history(con, published, allow_shrink=True)["promotions"] == 1
    assert published_rows(target) == 1


def test_a_new_warehouse_takes_the_published_history_back(tmp_path: Path) -> None:
    published = tmp_path / "published"
    old, new = tmp_path / "old.duckdb", tmp_path / "new.duckdb"
    warehouse_with(old, "1", "2")
    with connect(old) as con:
        append_rows(con, "metrics.promotions", promotion("3", champion="2"))
        publish_history(con, published)
    with connect(new) as con:
        ensure_schema(con)
        assert restore_history_from_snapshot(con, published) == {"promotions": 3}
        assert restore_history_from_snapshot(con, published) == {}, "only into an empty one"
        assert versions_named(con) == {"1", "2", "3"}
    with closing(open_history(published)) as snapshot:
        assert versions_named(snapshot) == {"1", "2", "3"}


def test_backup_and_restore_bring_back_the_warehouse_and_keep_the_damaged_one(
    tmp_path: Path,
) -> None:
    settings = load_settings({"SENTIMENT_HOME": str(tmp_path / "home")})
    warehouse_with(settings.duckdb_path, "1", "2")
    backup = make_backup(settings)
    assert backup.manifest["warehouse_rows"]["metrics.promotions"] == 2
    os.truncate(settings.duckdb_path, 100)
    with pytest.raises(StoreDamaged):
        make_backup(settings)
    assert [b.name for b in list_backups(settings)] == [backup.name], "no half backup"

    aside = restore_backup(settings, backup)
    with connect(settings.duckdb_path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM metrics.promotions").fetchone()[0] == 2
    assert (aside / "warehouse.duckdb").stat().st_size == 100


def test_restore_refuses_while_another_process_holds_the_warehouse(tmp_path: Path) -> None:
    settings = load_settings({"SENTIMENT_HOME": str(tmp_path / "home")})
    warehouse_with(settings.duckdb_path, "1")
    backup = make_backup(settings)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
            " time.sleep(60)",
            str(settings.duckdb_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreBusy, match=f"pid {holder.pid}"):
            restore_backup(settings, backup)
    finally:
        holder.kill()
        holder.wait()
    assert settings.duckdb_path.exists(), "a refused restore moved nothing"


def test_automatic_backups_are_pruned_manual_ones_kept(tmp_path: Path) -> None:
    settings = load_settings({"SENTIMENT_HOME": str(tmp_path / "home")})
    warehouse_with(settings.duckdb_path, "1")
    manual = make_backup(settings)
    for _ in range(3):
        make_backup(settings, "automatic", keep_automatic=2)
    kinds = [b.manifest["kind"] for b in list_backups(settings)]
    assert kinds == ["manual", "automatic", "automatic"]
    assert list_backups(settings)[0].name == manual.name
