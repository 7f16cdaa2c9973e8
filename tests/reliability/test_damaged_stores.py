"""A truncated or scribbled warehouse.duckdb or mlflow.db, as a full disk, a crash of the
machine or a bad block leaves it: every start stops with one line naming the file and the
next step, `sentiment doctor` reports it, `sentiment restore` brings back every row and
every version from the backup, and no healthy registry version is deleted on the way.

"Scribbled" is random bytes written into a block the store uses (for DuckDB, a block of
metrics.promotions, which every start reads; for SQLite, a page of a freshly vacuumed file,
where every page is in use): damage that matters, not bytes nobody reads.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import duckdb
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from tests.conftest import home_paths
from tests.reliability.conftest import (
    champion,
    copy_home,
    sentiment,
    succeeds,
    versions,
    warehouse_rows,
)

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

DUCKDB_HEADER_BYTES = 3 * 4096  # the file header and the two database headers
SQLITE_PAGE = 4096
SERVE_TIMEOUT_S = 600


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def scribble_warehouse(path: Path) -> None:
    with closing(duckdb.connect(str(path), read_only=True)) as con:
        block = con.execute(
            "SELECT min(block_id) FROM pragma_storage_info('metrics.promotions') "
            "WHERE block_id >= 0"
        ).fetchone()[0]
        block_size = con.execute("SELECT block_size FROM pragma_database_size()").fetchone()[0]
    with path.open("r+b") as handle:
        handle.seek(DUCKDB_HEADER_BYTES + block * block_size + 1000)
        handle.write(os.urandom(4096))


def scribble_sqlite(path: Path) -> None:
    with closing(sqlite3.connect(path)) as con:
        con.execute("VACUUM")
    pages = path.stat().st_size // SQLITE_PAGE
    with path.open("r+b") as handle:
        handle.seek((pages // 2) * SQLITE_PAGE)
        handle.write(os.urandom(SQLITE_PAGE))


DAMAGE = {
    ("warehouse.duckdb", "truncated"): truncate,
    ("warehouse.duckdb", "scribbled"): scribble_warehouse,
    ("mlflow.db", "truncated"): truncate,
    ("mlflow.db", "scribbled"): scribble_sqlite,
}


@pytest.mark.parametrize(("store", "damage"), list(DAMAGE), ids=["-".join(k) for k in DAMAGE])
def test_a_damaged_store_fails_in_one_line_and_is_restored_whole(
    january_home: Path, tmp_path: Path, store: str, damage: str, record_property
) -> None:
    home = copy_home(january_home, tmp_path / "home")
    succeeds(home, "backup")
    rows, registered, served = warehouse_rows(home), versions(home), champion(home)
    DAMAGE[store, damage](home / store)

    started = sentiment(home, "prepare")
    assert started.returncode == 2
    errors = [line for line in started.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, started.stderr[-3000:]
    assert str(home / store) in errors[0] and "sentiment restore" in errors[0]
    assert "Traceback" not in started.stdout + started.stderr
    verbose = sentiment(home, "--verbose", "prepare")
    assert verbose.returncode == 2 and "Traceback" in verbose.stderr

    diagnosed = sentiment(home, "doctor")
    assert diagnosed.returncode == 1
    damaged = [line for line in diagnosed.stdout.splitlines() if line.startswith("DAMAGED")]
    assert len(damaged) == 1 and str(home / store) in damaged[0], diagnosed.stdout

    restored = succeeds(home, "restore")
    record_property("measured", restored.strip().splitlines()[-1][:120])
    assert sentiment(home, "doctor").returncode == 0
    succeeds(home, "prepare")
    assert warehouse_rows(home) == rows
    assert versions(home) == registered, "no version lost, none deleted by recovery"
    assert champion(home) == served
    # Nothing is lost by the restore either: the damaged file is kept aside.
    aside = [p for p in (home / "backups").glob(f"*-replaced/{store}")]
    assert len(aside) == 1


def free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def predict_once_loaded(client: Client, text: str, timeout_s: float = 300) -> tuple:
    """The app answers before the champion has loaded ("is loading; try again"): ask again."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return client.predict(text, api_name="/predict")
        except AppError as error:
            if "loading" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(2)


def test_a_damaged_warehouse_does_not_stop_serving(january_home: Path, tmp_path: Path) -> None:
    """The app serves from the registry and the published snapshot, never the warehouse: a
    damaged warehouse is a warning for `sentiment serve`, and the app answers predictions."""
    home = copy_home(january_home, tmp_path / "home")
    truncate(home / "warehouse.duckdb")
    app_port = free_port()
    env = {
        **os.environ,
        **home_paths(home),
        "MLFLOW_UI_URL": f"http://127.0.0.1:{free_port()}",
    }
    serve = subprocess.Popen(
        [
            *(sys.executable, "-m", "sentiment_assets.cli", "serve"),
            *("--dagster-port", str(free_port()), "--app-port", str(app_port)),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while time.monotonic() < deadline and serve.poll() is None:
            line = serve.stdout.readline()
            seen.append(line)
            if "Gradio app: http" in line:
                break
        assert serve.poll() is None, "".join(seen)[-3000:]
        text = "".join(seen)
        assert "warning:" in text and str(home / "warehouse.duckdb") in text
        client = Client(f"http://127.0.0.1:{app_port}", verbose=False)
        label, _, version, *_ = predict_once_loaded(client, "what a lovely day")
        assert label and version == champion(home)
    finally:
        serve.send_signal(signal.SIGINT)
        serve.communicate(timeout=120)
