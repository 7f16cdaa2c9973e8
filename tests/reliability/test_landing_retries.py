"""A landing file is done only when its rows reached the month's clean tables (issue 24).

new_data_sensor is evaluated tick by tick against the home's real Dagster instance, and each
run it requests is executed for real (raw_tweets, then dbt). Its first run dies mid-way, as
when the daemon or `sentiment serve` is stopped under it: the sensor must ask again, without
a human, until the file's rows are in clean.tweets_clean; and a file whose runs keep failing
is quarantined with the reason after the last attempt, never left stranded in silence.
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
