"""A runaway query cannot hog the machine (issue 24, item 6).

A cross join of two million-row ranges (10^12 rows, hours of work) goes through the real
`sentiment sql` process. It must end by itself at its timeout, and, separately, within a
second or two of Ctrl-C (SIGINT), each time with one line saying why and a non-zero status.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sentiment_assets.environment import current_settings
from sentiment_assets.lib.store.warehouse import connect, ensure_schema
from sentiment_assets.lib.versions.publish import publish_history
from tests.conftest import use_home

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(180)]

RUNAWAY = "SELECT count(*) FROM range(1000000) AS a CROSS JOIN range(1000000) AS b"
TIMEOUT_S = 3
STOP_WITHIN_S = 2.0
# Starting Python and loading the snapshot, on a loaded 2-core machine.
START_WITHIN_S = 60.0


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home with a published (empty) metric history, which `sentiment sql` reads."""
    home = use_home(monkeypatch, tmp_path / "home")
    settings = current_settings()
    with connect(settings.duckdb_path) as con:
        ensure_schema(con)
        publish_history(con, settings.published_dir)
    return home


def start_sql(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sentiment_assets.cli", "sql", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def busy_helper_threads(pid: int) -> int:
    """How many of the process's threads other than its main one are running or runnable
    (state R)."""
    count = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        if task.name == str(pid):
            continue
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        count += stat[stat.rindex(")") + 2] == "R"
    return count


def wait_until_querying(process: subprocess.Popen[str]) -> None:
    """Until DuckDB works on the query: Python's start and the snapshot's loading keep the
    main thread busy, the join one of DuckDB's (or the query's own) threads. Seen three times
    in a row, so a blip of a pool thread is not taken for it."""
    deadline = time.monotonic() + START_WITHIN_S
    seen = 0
    while seen < 3:
        assert process.poll() is None, f"sql ended first: {process.communicate()}"
        assert time.monotonic() < deadline, "the query never started"
        seen = seen + 1 if busy_helper_threads(process.pid) else 0
        time.sleep(0.1)


def stop_line(process: subprocess.Popen[str], since: float) -> tuple[str, float]:
    """The first line the process writes to stderr, and the seconds from `since` until it
    came. The process ends right after it, but Python's exit (unloading pandas, DuckDB, ...)
    takes a second or more of a loaded machine's time, which is not the query's."""
    assert process.stderr is not None
    ready, _, _ = select.select([process.stderr], [], [], 60)
    if not ready:
        process.kill()
        pytest.fail("no word on stderr within 60 s: the query was not stopped")
    return process.stderr.readline().strip(), time.monotonic() - since


def test_a_runaway_query_stops_at_its_timeout(home: Path, record_property) -> None:
    process = start_sql(RUNAWAY, "--timeout", str(TIMEOUT_S))
    wait_until_querying(process)
    line, ran = stop_line(process, time.monotonic())
    out, rest = process.communicate(timeout=60)
    record_property("measured", f"stopped {ran:.1f} s after the query started")
    assert process.returncode == 124, rest
    assert line == (
        f"error: the query ran past its {TIMEOUT_S} s timeout and was stopped "
        "(--timeout to change it)"
    )
    assert (out, rest) == ("", "")
    assert ran < TIMEOUT_S + STOP_WITHIN_S


def test_ctrl_c_stops_a_runaway_query_within_seconds(home: Path, record_property) -> None:
    process = start_sql(RUNAWAY)
    wait_until_querying(process)
    time.sleep(1)  # well into the join
    os.kill(process.pid, signal.SIGINT)
    line, took = stop_line(process, time.monotonic())
    out, rest = process.communicate(timeout=60)
    record_property("measured", f"stopped {took:.2f} s after SIGINT")
    assert process.returncode == 130, rest
    assert line == "interrupted: the query was stopped"
    assert (out, rest) == ("", "")
    assert took < STOP_WITHIN_S
