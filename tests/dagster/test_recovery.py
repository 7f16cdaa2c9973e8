"""What a restart heals, against a real instance: only runs whose process is gone, here."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.utils import make_new_run_id

from sentiment_assets.ops.recovery import HOST_TAG, PID_TAG, Recovery, heal_instance


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def started_run(instance: dg.DagsterInstance, pid: int, host: str) -> DagsterRun:
    run = instance.add_run(
        DagsterRun(
            job_name="probe",
            run_id=make_new_run_id(),
            status=dg.DagsterRunStatus.STARTED,
            tags={PID_TAG: str(pid), HOST_TAG: host},
        )
    )
    instance.report_engine_event(
        f"Executing steps in process (pid: {pid})", run, EngineEventData.in_process(pid)
    )
    return run


def test_only_runs_whose_process_is_gone_here_are_failed_and_freed(instance) -> None:
    here = socket.gethostname()
    dead = started_run(instance, dead_pid(), here)
    alive = started_run(instance, os.getpid(), here)
    elsewhere = started_run(instance, dead_pid(), "another-machine")
    storage = instance.event_log_storage
    storage.set_concurrency_slots("duckdb", 1)
    assert storage.claim_concurrency_slot("duckdb", dead.run_id, "raw_tweets").is_claimed

    recovery = Recovery()
    heal_instance(instance, recovery)

    assert recovery.failed_runs == [dead.run_id]
    assert recovery.freed_slots_of == [dead.run_id]
    assert storage.get_concurrency_info("duckdb").claimed_slots == []
    status = {run_id: instance.get_run_by_id(run_id).status for run_id in recovery.failed_runs}
    assert status == {dead.run_id: dg.DagsterRunStatus.FAILURE}
    assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
    # /proc cannot speak for another machine's processes: Dagster's run monitoring can.
    assert instance.get_run_by_id(elsewhere.run_id).status == dg.DagsterRunStatus.STARTED


def test_a_run_marked_failed_by_hand_gives_its_slot_back(instance) -> None:
    run = started_run(instance, os.getpid(), socket.gethostname())
    storage = instance.event_log_storage
    storage.set_concurrency_slots("duckdb", 1)
    storage.claim_concurrency_slot("duckdb", run.run_id, "raw_tweets")
    instance.report_run_failed(run)  # what "Mark as failed" in the UI does
    assert storage.get_concurrency_info("duckdb").claimed_slots != []

    recovery = Recovery()
    heal_instance(instance, recovery)
    assert recovery.freed_slots_of == [run.run_id]
    assert storage.get_concurrency_info("duckdb").claimed_slots == []
