"""A build waiting on a pool slot held by another live run answers SIGTERM and SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from tests.conftest import home_paths

pytestmark = pytest.mark.reliability

ANSWER_WITHIN_S = 10.0

# A real run in pool "duckdb" that holds the slot while it sleeps, in a living process.
HOLDER = """
import time
import dagster as dg
from sentiment_assets.ops.instance import prepare_environment

prepare_environment()

@dg.asset(pool="duckdb")
def slot_holder() -> None:
    print("holding", flush=True)
    time.sleep(300)

dg.materialize([slot_holder], instance=dg.DagsterInstance.get())
"""


def start(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args],
        env={**os.environ, **home_paths(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def blocked_runs(instance: dg.DagsterInstance) -> list[str]:
    """Runs with a step queued for the pool (a claimed step is pending too, but assigned)."""
    info = instance.event_log_storage.get_concurrency_info("duckdb")
    return [p.run_id for p in info.pending_steps if p.assigned_timestamp is None]


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_build_blocked_on_a_pool_stops_when_asked(
    tmp_path: Path, signo: int, record_property
) -> None:
    home = tmp_path / "home"
    holder = start(home, "-c", HOLDER)
    try:
        wait_for(lambda: holder.stdout.readline().startswith("holding"), 240, "the holder")
        build = start(
            home,
            "-m",
            "sentiment_assets.cli",
            "pipeline",
            "--month",
            "2024-01-01",
            "--select",
            "raw_tweets",
        )
        with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
            wait_for(lambda: blocked_runs(instance), 240, "the build to wait on the pool")
            (waiting,) = blocked_runs(instance)
            asked = time.monotonic()
            build.send_signal(signo)
            build.wait(timeout=60)
            answered = time.monotonic() - asked
            record_property("measured", f"stopped {answered:.1f} s after the signal")
            assert answered < ANSWER_WITHIN_S, f"took {answered:.1f} s to stop"
            assert build.returncode != 0
            run = instance.get_run_by_id(waiting)
            assert run.status in (dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.FAILURE)
            assert blocked_runs(instance) == [], "its place in the queue is given up"
            claimed = instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots
            assert [c.run_id for c in claimed] != [], "the live holder keeps its slot"
    finally:
        holder.kill()
        holder.wait()
