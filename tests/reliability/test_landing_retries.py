"""A landing file is done only when its rows reached the month's clean tables (issue 24).

new_data_sensor is evaluated tick by tick against the home's real Dagster instance, and each
run it requests is executed for real (raw_tweets, then dbt). Its first run dies mid-way, as
when the daemon or `sentiment serve` is stopped under it: the sensor must ask again, without
a human, until the file's rows are in clean.tweets_clean; and a file whose runs keep failing
is quarantined with the reason after the last attempt, never left stranded in silence. A run
that never reaches the instance (a dropped request, a deleted run) counts as failed after a
timeout, and a warehouse held by a run's process never loses a state the sensor records.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType

from sentiment_assets.defs.ingest.landing_sensor import ATTEMPT_TAG, FILE_TAG
from sentiment_assets.environment import current_settings
from sentiment_assets.lib.settings import REPO_ROOT, Settings
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.ops.recovery import recover
from tests.conftest import use_home
from tests.reliability.landing_runs import execute, prepare_landing_home, tick

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(1200)]

# The session's synthetic source covers 2024-01..2024-03.
MONTH = "2024-02-01"
TWEETS = 200
KILL_TIMEOUT_S = 300
# How long a requested run may be missing from the instance before its attempt failed.
LOST_AFTER_S = 2.0


def landing_csv(n: int = TWEETS) -> str:
    rows = [
        f"landing tweet number {i} about the new phone,2024-02-{1 + i % 28:02d} 10:00:00,"
        f"{'positive' if i % 2 else 'negative'}"
        for i in range(n)
    ]
    return "text,created_at,label\n" + "\n".join(rows) + "\n"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    use_home(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("SENTIMENT_LANDING_RETRY_SECONDS", "0")
    monkeypatch.setenv("SENTIMENT_LANDING_MAX_ATTEMPTS", "2")
    settings = current_settings()
    prepare_landing_home(settings)
    return settings


@pytest.fixture
def instance(settings: Settings):
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as home_instance:
        yield home_instance


def ledger(settings: Settings, name: str) -> list[tuple]:
    with connect(settings.duckdb_path, read_only=True) as con:
        return con.execute(
            "SELECT state, attempts, reason FROM raw.landing_files WHERE file = ? "
            "ORDER BY updated_at",
            [name],
        ).fetchall()


def clean_rows_of(settings: Settings, path: Path) -> int:
    with connect(settings.duckdb_path, read_only=True) as con:
        return con.execute(
            "SELECT count(*) FROM clean.tweets_clean WHERE source = ?", [str(path)]
        ).fetchone()[0]


def state_of(settings: Settings, name: str) -> tuple:
    """The file's last recorded (state, attempts, reason)."""
    return ledger(settings, name)[-1]


def materialized(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    return {
        entry.asset_materialization.asset_key.path[-1]
        for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    }


def kill_after_raw_tweets(instance: dg.DagsterInstance, request: dg.RunRequest) -> str:
    """Execute the request in a child process and SIGKILL it (and its dbt) as soon as
    raw_tweets is written: the run dies between raw and clean. Returns the run id."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.reliability.landing_runs",
            request.partition_key,
            json.dumps(request.tags),
        ],
        cwd=REPO_ROOT,
        env=os.environ.copy(),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + KILL_TIMEOUT_S
    run_id = None
    while time.monotonic() < deadline and child.poll() is None:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={FILE_TAG: request.tags[FILE_TAG]}))
        if runs and "raw_tweets" in materialized(instance, runs[0].run_id):
            run_id = runs[0].run_id
            break
        time.sleep(0.1)
    if run_id is None:
        output = child.communicate(timeout=60)[0] if child.poll() is not None else ""
        pytest.fail(f"the run ended or stalled before raw_tweets was written: {output[-3000:]}")
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    return run_id


def test_a_run_killed_mid_way_is_requested_again_until_the_rows_are_clean(
    settings: Settings, instance: dg.DagsterInstance, record_property
) -> None:
    path = settings.landing_dir / "february.csv"
    path.write_text(landing_csv())
    (request,), cursor = tick(instance, settings, None)
    assert request.partition_key == MONTH

    killed = kill_after_raw_tweets(instance, request)
    assert "tweets_clean" not in materialized(instance, killed), "killed too late"
    # What every `sentiment` start does first: the dead run is marked failed.
    assert killed in recover(instance, settings).failed_runs
    started = time.monotonic()

    retries, cursor = tick(instance, settings, cursor)
    assert [r.partition_key for r in retries] == [MONTH], "the file must be requested again"
    (retry,) = retries
    assert retry.run_key != request.run_key, "a reused run_key is never launched again"
    assert retry.tags[ATTEMPT_TAG] == "2"
    state, attempts, reason = ledger(settings, path.name)[-1]
    assert (state, attempts) == ("requested", 2)
    assert "its process is gone" in reason

    assert execute(instance, settings, retry.partition_key, retry.tags).success
    assert tick(instance, settings, cursor)[0] == []
    record_property("measured", f"clean {time.monotonic() - started:.0f} s after the restart")
    assert ledger(settings, path.name)[-1][:2] == ("built", 2)
    assert clean_rows_of(settings, path) == TWEETS


def test_a_file_whose_runs_keep_failing_is_quarantined_with_the_reason(
    settings: Settings, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    path = settings.landing_dir / "february.csv"
    path.write_text(landing_csv(20))
    # A warehouse that cannot be opened (a folder where the file should be) fails every run.
    (tmp_path / "not-a-file").mkdir()
    broken = dataclasses.replace(settings, duckdb_path=tmp_path / "not-a-file")
    (request,), cursor = tick(instance, settings, None)
    for attempt in (1, 2):
        assert request.tags[ATTEMPT_TAG] == str(attempt)
        assert not execute(instance, broken, request.partition_key, request.tags).success
        requests, cursor = tick(instance, settings, cursor)
        if attempt == 1:
            (request,) = requests
    assert requests == [], "two attempts, then no more"
    assert not path.exists()
    reason = (settings.landing_dir / "quarantine" / "february.csv.reason.txt").read_text()
    assert "2 attempts failed" in reason and "raw_tweets" in reason
    state, attempts, recorded = ledger(settings, path.name)[-1]
    assert (state, attempts) == ("quarantined", 2) and recorded == reason.strip()


def test_a_requested_run_that_never_appears_is_requested_again_then_quarantined(
    settings: Settings,
    instance: dg.DagsterInstance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SENTIMENT_LANDING_REQUEST_TIMEOUT_SECONDS", str(LOST_AFTER_S))
    settings = current_settings()
    path = settings.landing_dir / "february.csv"
    path.write_text(landing_csv(20))
    (dropped,), cursor = tick(instance, settings, None)
    requests, cursor = tick(instance, settings, cursor)
    assert requests == [] and state_of(settings, path.name)[:2] == ("requested", 1)

    time.sleep(LOST_AFTER_S)
    (retry,), cursor = tick(instance, settings, cursor)
    assert retry.tags[ATTEMPT_TAG] == "2" and retry.run_key != dropped.run_key
    assert "never appeared in the instance" in state_of(settings, path.name)[2]

    # The second attempt's run exists for a moment, then is deleted from the instance.
    broken = dataclasses.replace(settings, duckdb_path=tmp_path)
    deleted = execute(instance, broken, retry.partition_key, retry.tags).run_id
    instance.delete_run(deleted)
    time.sleep(LOST_AFTER_S)
    requests, cursor = tick(instance, settings, cursor)
    assert requests == [], "two attempts, then no more"
    state, attempts, reason = state_of(settings, path.name)
    assert (state, attempts) == ("quarantined", 2) and "never appeared" in reason
    assert (settings.landing_dir / "quarantine" / path.name).exists()


def hold_warehouse(settings: Settings) -> subprocess.Popen:
    """Another process with the warehouse open read-write, as a run's step holds it."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
            " time.sleep(120)",
            str(settings.duckdb_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_tick_while_a_run_holds_the_warehouse_loses_no_state(
    settings: Settings, instance: dg.DagsterInstance, record_property
) -> None:
    with connect(settings.duckdb_path) as con:
        con.ensure_schema()
    path = settings.landing_dir / "february.csv"
    path.write_text(landing_csv(20))
    holder = hold_warehouse(settings)
    try:
        started = time.monotonic()
        (request,), cursor = tick(instance, settings, None)
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert request.partition_key == MONTH, "the run is requested though the ledger is busy"
    assert ledger(settings, path.name) == [], "nothing could be written meanwhile"
    assert waited < 30, f"the tick waited {waited:.0f} s for the warehouse"
    record_property("measured", f"the busy tick took {waited:.1f} s")

    requests, cursor = tick(instance, settings, cursor)
    assert requests == [], "the file is not requested twice"
    assert state_of(settings, path.name)[:2] == ("requested", 1)
