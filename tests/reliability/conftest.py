"""A home with January built, made once per session and copied by each scenario that damages
or tears it, and the `sentiment` command run against a home as an operator runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from sentiment_assets.lib.settings import load_settings
from tests.conftest import home_paths

JANUARY = "2024-01-01"
BUILD_TIMEOUT_S = 900
COMMAND_TIMEOUT_S = 300


def sentiment(
    home: Path, *args: str, timeout: float = COMMAND_TIMEOUT_S
) -> subprocess.CompletedProcess:
    """`sentiment ARGS` in a process of its own, pointed at `home`."""
    return subprocess.run(
        [sys.executable, "-m", "sentiment_assets.cli", *args],
        env={**os.environ, **home_paths(home)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def succeeds(home: Path, *args: str, timeout: float = COMMAND_TIMEOUT_S) -> str:
    done = sentiment(home, *args, timeout=timeout)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done.stdout


@pytest.fixture(scope="session")
def january_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """January built end to end (three versions, one of them champion). Never changed:
    scenarios copy it."""
    home = tmp_path_factory.mktemp("january-template") / "home"
    succeeds(home, "pipeline", "--month", JANUARY, timeout=BUILD_TIMEOUT_S)
    return home


def copy_home(template: Path, target: Path) -> Path:
    shutil.copytree(template, target, symlinks=True)
    return target


def registry_state(home: Path) -> dict:
    """{"versions": [...], "champion": ...} of the home's registry, read by a process of its
    own: MLflow keeps its SQLite connections open for the life of a process, and this one
    must not hold mlflow.db (a restore refuses to replace a file a process holds)."""
    script = (
        "import json, sys\n"
        "from mlflow.tracking import MlflowClient\n"
        "from sentiment_assets.lib.versions import registry\n"
        "client = MlflowClient(sys.argv[1])\n"
        "champion = registry.champion(client)\n"
        "print(json.dumps({'versions': [v.version for v in registry.all_versions(client)],"
        " 'champion': champion.version if champion else None}))\n"
    )
    uri = load_settings({"SENTIMENT_HOME": str(home)}).mlflow_tracking_uri
    done = subprocess.run(
        [sys.executable, "-c", script, uri], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def versions(home: Path) -> list[str]:
    return registry_state(home)["versions"]


def champion(home: Path) -> str | None:
    return registry_state(home)["champion"]


def warehouse_rows(home: Path) -> dict[str, tuple]:
    """Each table of the home's DuckDB warehouse: its row count and a sum of each column's
    value hashes (order-free, and equal for equal NaNs, unlike comparing the rows)."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        tables = con.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables() ORDER BY 1"
        ).fetchall()
        return {
            table: con.execute(f"SELECT count(*), sum(hash(COLUMNS(*))) FROM {table}").fetchone()
            for (table,) in tables
        }


def published_rows(home: Path) -> dict[str, int]:
    """Rows of each published history table."""
    import pyarrow.parquet as pq

    folder = home / "published" / "history"
    return {path.stem: pq.ParquetFile(path).metadata.num_rows for path in folder.glob("*.parquet")}
