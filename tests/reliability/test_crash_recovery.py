"""kill -9 at each step of a month, then a plain rerun heals the home and builds the month.

A template home with January built is copied for every scenario (so each costs one month).
February is built once uninterrupted as the reference; each scenario kills a February build
when the named step runs, then reruns it and must end where the reference ended: the same
evaluation and training rows, no RUNNING MLflow run, no registry version without a training
row, no pool slot held.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType
from mlflow.tracking import MlflowClient

from sentiment_assets.lib.settings import load_settings
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.lib.versions import registry
from tests.conftest import home_paths

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

JANUARY, FEBRUARY = "2024-01-01", "2024-02-01"
RERUN_TIMEOUT_S = 600
EVALUATIONS = (
    "SELECT model_family, model_version, trained_through, eval_month, n, accuracy, macro_f1 "
    "FROM metrics.model_evaluations ORDER BY ALL"
)
# Version numbers of February's models may differ after a crash (numbers are not reused);
# the content-derived bundle version may not.
TRAININGS = (
    "SELECT model_family, trained_through, window_start, n_train, n_validation, "
    "val_accuracy, val_macro_f1, bundle_version FROM metrics.training_runs ORDER BY ALL"
)


def pipeline(home: Path, *months: str) -> subprocess.Popen:
    args = [arg for month in months for arg in ("--month", month)]
    return subprocess.Popen(
        [sys.executable, "-m", "sentiment_assets.cli", "pipeline", *args],
        # February trains too (under on_drift a quiet month keeps), so a kill can land in
        # its training.
        env={**os.environ, **home_paths(home), "SENTIMENT_RETRAIN_POLICY": "always"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = RERUN_TIMEOUT_S) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-4000:]
    return output


@pytest.fixture(scope="module")
def january(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("january") / "home"
    finish(pipeline(home, JANUARY))
    return home


def copy_home(template: Path, target: Path) -> Path:
    shutil.copytree(template, target, symlinks=True)
    return target


def rows(home: Path, sql: str) -> list[tuple]:
    with connect(home / "warehouse.duckdb", read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def reference(january: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = copy_home(january, tmp_path_factory.mktemp("reference") / "home")
    finish(pipeline(home, FEBRUARY))
    return {"evaluations": rows(home, EVALUATIONS), "trainings": rows(home, TRAININGS)}


def step_started(instance: dg.DagsterInstance, step_key: str) -> bool:
    for run in instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": FEBRUARY})):
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START):
            if entry.step_key == step_key:
                return True
    return False


def february_versions(home: Path) -> int:
    client = MlflowClient(load_settings({"SENTIMENT_HOME": str(home)}).mlflow_tracking_uri)
    february = date.fromisoformat(FEBRUARY)
    return sum(v.trained_through == february for v in registry.all_versions(client))


def kill_when(process: subprocess.Popen, home: Path, step_key: str) -> None:
    """SIGKILL the build once `step_key` runs (for training: once it registered a version)."""
    deadline = time.time() + RERUN_TIMEOUT_S
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        while time.time() < deadline and process.poll() is None:
            if step_started(instance, step_key) and (
                step_key != "sentiment_model" or february_versions(home) > 0
            ):
                break
            time.sleep(0.2)
    assert process.poll() is None, f"the build ended before {step_key} could be interrupted"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.parametrize(
    "step_key", ["raw_tweets", "dbt_models", "tweet_embeddings", "sentiment_model"]
)
def test_a_rerun_after_kill_9_heals_and_matches_the_uninterrupted_build(
    january: Path, reference: dict, tmp_path: Path, step_key: str, record_property
) -> None:
    home = copy_home(january, tmp_path / "home")
    kill_when(pipeline(home, FEBRUARY), home, step_key)

    started = time.monotonic()
    output = finish(pipeline(home, FEBRUARY))
    record_property("measured", f"healed and rebuilt in {time.monotonic() - started:.0f} s")
    assert "recovered from a crash" in output and "dead run(s) marked failed" in output

    assert rows(home, EVALUATIONS) == reference["evaluations"]
    assert rows(home, TRAININGS) == reference["trainings"]
    settings = load_settings({"SENTIMENT_HOME": str(home)})
    client = MlflowClient(settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(registry.EXPERIMENT_NAME)
    running = client.search_runs(
        [experiment.experiment_id], filter_string="attributes.status = 'RUNNING'"
    )
    assert running == []
    recorded = {
        version for (version,) in rows(home, "SELECT model_version FROM metrics.training_runs")
    }
    assert {v.version for v in registry.all_versions(client)} <= recorded
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        storage = instance.event_log_storage
        for key in storage.get_concurrency_keys():
            assert storage.get_concurrency_info(key).claimed_slots == []
        statuses = [r.status for r in instance.get_runs()]
    assert dg.DagsterRunStatus.FAILURE in statuses, "the killed run is marked failed"
    assert dg.DagsterRunStatus.STARTED not in statuses


QUERIES_DURING_BUILD = 100


def test_queries_during_a_real_build_never_fail(
    january: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record_property
) -> None:
    """`sentiment sql` 100 times while `sentiment pipeline` builds February."""
    from sentiment_assets.cli import main

    home = copy_home(january, tmp_path / "home")
    for name, value in home_paths(home).items():
        monkeypatch.setenv(name, value)
    build = pipeline(home, FEBRUARY)
    failures, answered = [], 0
    try:
        while answered < QUERIES_DURING_BUILD:
            code = main(["sql", "SELECT count(*) AS n FROM metrics.training_runs"])
            if code != 0:
                failures.append(code)
            answered += 1
            time.sleep(0.05)
        still_building = build.poll() is None
    finally:
        finish(build)
    record_property("measured", f"{len(failures)} of {answered} queries failed")
    assert failures == []
    assert still_building, "the queries must overlap the build"
