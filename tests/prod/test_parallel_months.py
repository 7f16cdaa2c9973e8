"""Two months' data sides built at once on the prod profile, on real services, then each
month's models in order: the runs, the registry, the champion and the metrics tables.

PostgreSQL holds Dagster's storage (deploy/dagster.prod.yaml), Redis is the Celery broker,
two Celery workers execute the steps, the daemon dequeues the runs (QueuedRunCoordinator)
and the webserver takes them over GraphQL, as when a person launches two months from the
UI. PostgreSQL and Redis are the session's (`prod_services`, tests/prod/conftest.py); the
code server, the workers, the daemon and the webserver are this module's, started through
`sentiment_assets.lib.hosting.lifecycle` and stopped at its end, failed or not.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient
from mlflow.tracking import MlflowClient

from sentiment_assets.commands.prod_up import worker_answers
from sentiment_assets.lib.hosting import lifecycle, services
from sentiment_assets.lib.hosting.celery_workers import (
    celery_worker_command,
    celery_worker_environment,
)
from sentiment_assets.lib.settings import REPO_ROOT, Settings, load_settings
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.publish import query_history
from sentiment_assets.ops.instance import prepare_environment
from sentiment_assets.ops.orchestrator import daemon_beats, dagster_ready
from tests.conftest import home_paths

pytestmark = [pytest.mark.prod, pytest.mark.slow]

MONTHS = ["2024-01-01", "2024-02-01"]
TWEETS_PER_MONTH = 240
WORKERS = ("worker-a", "worker-b")
LOCATION = "sentiment_assets"
# Loading the code location in each service takes minutes on 2 busy cores.
START_TIMEOUT_S = 300.0
# Two small months, each three steps on a worker, once everything is up.
RUNS_TIMEOUT_S = 420.0
CELERY_EVENT = "in celery worker"
DATABASE = "dagster_parallel_months"


def port_answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((services.LOOPBACK, port)) == 0


def descendants(pid: int) -> set[int]:
    """`pid` and every process below it (Linux /proc), to tie a step's pid to a worker."""
    found, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except FileNotFoundError:  # the thread ended meanwhile
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    frontier.append(child)
    return found


@dataclass
class Cluster:
    settings: Settings
    instance: dg.DagsterInstance
    postgres: services.Postgres
    database: str
    folder: Path
    workers: dict[str, lifecycle.Started]
    client: DagsterGraphQLClient


def workspace_of(home: Path, grpc_port: int) -> Path:
    """A workspace naming the one code server that the webserver, the daemon and the run
    launcher share: the code location is loaded once, not once per service."""
    location = {"host": services.LOOPBACK, "port": grpc_port, "location_name": LOCATION}
    workspace = home / "workspace.yaml"
    workspace.write_text(json.dumps({"load_from": [{"grpc_server": location}]}))
    return workspace


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, onnx_cache, prod_services) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("prod-home")
    # This test's processes, stopped at its end (the services are the session's).
    folder = tmp_path_factory.mktemp("prod-processes")
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            variables = {
                **home_paths(home),
                # A Dagster database of its own: the runs found there are this test's.
                **prod_services.variables(DATABASE),
                "SENTIMENT_SYNTHETIC_MONTHS": str(len(MONTHS)),
                "SENTIMENT_SYNTHETIC_TWEETS_PER_MONTH": str(TWEETS_PER_MONTH),
                "SENTIMENT_ONNX_CACHE": str(onnx_cache),
                # Every month trains, so the model side of each is exercised on the workers.
                "SENTIMENT_RETRAIN_POLICY": "always",
            }
            prod_services.database(DATABASE)
            for name, value in variables.items():
                monkeypatch.setenv(name, value)
            # prepare_environment exports the settings' variables: set them here first, so
            # the monkeypatch takes them back afterwards.
            for name, value in load_settings(os.environ).environment().items():
                monkeypatch.setenv(name, value)
            settings = prepare_environment()
            env = celery_worker_environment(os.environ, settings)
            bin_dir = Path(sys.executable).parent
            grpc_port = services.free_port()
            code_server = lifecycle.start_process(
                folder,
                "code-server",
                [
                    str(bin_dir / "dagster"),
                    *("code-server", "start", "-h", services.LOOPBACK, "-p", str(grpc_port)),
                    *("-m", "sentiment_assets.definitions", "-a", "defs"),
                    *("--location-name", LOCATION),
                ],
                env,
                cwd=REPO_ROOT,
            )
            workers = {
                name: lifecycle.start_process(
                    folder,
                    name,
                    celery_worker_command(settings, name),
                    env,
                    url=f"{name}@{socket.gethostname()}",
                    cwd=REPO_ROOT,
                )
                for name in WORKERS
            }
            workspace = workspace_of(home, grpc_port)
            lifecycle.wait_until(code_server, lambda: port_answers(grpc_port), START_TIMEOUT_S)
            daemon = lifecycle.start_process(
                folder,
                "daemon",
                [str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace)],
                env,
                cwd=REPO_ROOT,
            )
            web_port = services.free_port()
            webserver = lifecycle.start_process(
                folder,
                "webserver",
                [
                    str(bin_dir / "dagster-webserver"),
                    *("-w", str(workspace), "-h", services.LOOPBACK, "-p", str(web_port)),
                ],
                env,
                cwd=REPO_ROOT,
            )
            url = f"http://{services.LOOPBACK}:{web_port}"
            lifecycle.wait_until(webserver, lambda: dagster_ready(url), START_TIMEOUT_S)
            lifecycle.wait_until(
                daemon, lambda: daemon_beats(settings.dagster_home), START_TIMEOUT_S
            )
            for worker in workers.values():
                lifecycle.wait_until(
                    worker, lambda w=worker: worker_answers(settings, w.url), START_TIMEOUT_S
                )
            with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
                yield Cluster(
                    settings=settings,
                    instance=instance,
                    postgres=prod_services.postgres,
                    database=DATABASE,
                    folder=folder,
                    workers=workers,
                    client=DagsterGraphQLClient(services.LOOPBACK, port_number=web_port),
                )
    finally:
        lifecycle.stop_all(folder)


@dataclass(frozen=True)
class StepSpan:
    run_id: str
    step: str
    worker: str
    pid: int
    start: float
    end: float


def step_spans(instance: dg.DagsterInstance, run_id: str) -> list[StepSpan]:
    """Each step of the run: the worker the Celery task ran on (dagster-celery's engine
    event names it), the pid that executed it, and when it ran (task start to step end)."""
    starts: dict[str, tuple[str, float]] = {}
    pids: dict[str, int] = {}
    ends: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or entry.step_key is None:
            continue
        if event.is_engine_event and CELERY_EVENT in (event.message or ""):
            worker = event.engine_event_data.metadata["Celery worker"].value
            starts[entry.step_key] = (worker, entry.timestamp)
        elif event.event_type == dg.DagsterEventType.STEP_START:
            pids[entry.step_key] = event.pid
        elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
            ends[entry.step_key] = entry.timestamp
    return [
        StepSpan(run_id, step, worker, pids[step], started, ends[step])
        for step, (worker, started) in starts.items()
    ]


def submit(cluster: Cluster, job: str, month: str, tags: dict[str, str] | None = None) -> str:
    return cluster.client.submit_job_execution(
        job,
        repository_location_name=LOCATION,
        tags={**(tags or {}), "dagster/partition": month},
    )


def wait_finished(cluster: Cluster, run_ids: list[str]) -> None:
    deadline = time.monotonic() + RUNS_TIMEOUT_S
    while not all(cluster.instance.get_run_by_id(r).is_finished for r in run_ids):
        if time.monotonic() > deadline:
            raise AssertionError(f"runs not finished after {RUNS_TIMEOUT_S:.0f} s: {run_ids}")
        time.sleep(1.0)


def submit_and_wait(cluster: Cluster) -> dict[str, str]:
    """Both months submitted back to back (the queue takes both at once); their run ids
    once both have finished."""
    run_ids = {month: submit(cluster, "month_data_job", month) for month in MONTHS}
    wait_finished(cluster, list(run_ids.values()))
    return run_ids


@pytest.fixture(scope="module")
def built(cluster) -> dict[str, str]:
    run_ids = submit_and_wait(cluster)
    statuses = {m: cluster.instance.get_run_by_id(r).status for m, r in run_ids.items()}
    if any(status != dg.DagsterRunStatus.SUCCESS for status in statuses.values()):
        logs = "\n".join(
            f"--- {name}\n{lifecycle.log_tail(lifecycle.log_path(cluster.folder, name))}"
            for name in ("daemon", *WORKERS)
        )
        pytest.fail(f"runs did not succeed: {statuses}\n{logs}")
    return run_ids


def test_both_months_succeed_through_the_queue(cluster, built):
    for month, run_id in built.items():
        run = cluster.instance.get_run_by_id(run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == month
        kinds = [
            entry.dagster_event.event_type
            for entry in cluster.instance.all_logs(run_id)
            if entry.dagster_event is not None
        ]
        # Queued by the webserver's submission, then started (by the daemon, the only
        # process that takes runs off the queue).
        enqueued = kinds.index(dg.DagsterEventType.RUN_ENQUEUED)
        assert enqueued < kinds.index(dg.DagsterEventType.RUN_STARTING)


def test_runs_are_stored_in_postgres(cluster, built):
    run_ids = list(built.values())
    con = cluster.postgres.connect(cluster.database)
    try:
        with con.cursor() as cur:
            cur.execute("SELECT run_id, status FROM runs WHERE run_id = ANY(%s)", (run_ids,))
            assert dict(cur.fetchall()) == dict.fromkeys(run_ids, "SUCCESS")
            cur.execute("SELECT count(*) FROM event_logs WHERE run_id = ANY(%s)", (run_ids,))
            assert cur.fetchone()[0] > 0
    finally:
        con.close()


def test_every_step_ran_on_a_celery_worker(cluster, built):
    # The worker's processes: dagster-celery's wrapper, Celery's main process and its pool
    # child; a step runs in the pool child.
    pool_children = {
        worker.url: descendants(worker.pid) - {worker.pid} for worker in cluster.workers.values()
    }
    for run_id in built.values():
        spans = step_spans(cluster.instance, run_id)
        # raw_tweets, its landing-files check, the dbt models, tweet_embeddings: each its own
        # Celery task.
        assert sorted(span.step for span in spans) == [
            "dbt_models",
            "raw_tweets",
            "raw_tweets_landing_files_built",
            "tweet_embeddings",
        ], spans
        for span in spans:
            assert span.worker in pool_children, span
            # Executed by that worker's processes, not by the run's own process.
            assert span.pid in pool_children[span.worker], span


def test_the_two_months_ran_in_parallel_on_two_workers(cluster, built):
    first, second = (step_spans(cluster.instance, run_id) for run_id in built.values())
    overlapping = [(a, b) for a in first for b in second if a.start < b.end and b.start < a.end]
    assert overlapping, f"no step of {MONTHS[0]} overlapped one of {MONTHS[1]}: {first} {second}"
    # A worker runs one step at a time, so steps that overlap ran on two workers.
    assert all(a.worker != b.worker for a, b in overlapping)
    assert {span.worker for span in first + second} == {
        worker.url for worker in cluster.workers.values()
    }


def test_both_months_data_is_in_the_warehouse(cluster, built):
    counts = {}
    with connect(cluster.settings.warehouse, read_only=True) as con:
        for table in ("raw.tweets", "clean.tweets_clean", "features.tweet_embeddings"):
            rows = con.execute(f"SELECT month, count(*) FROM {table} GROUP BY month").fetchall()
            counts[table] = {month.isoformat(): n for month, n in rows}
    for table, per_month in counts.items():
        assert sorted(per_month) == MONTHS, table
    for month in MONTHS:
        # Cleaning drops duplicates and contradictions, never adds rows; every clean tweet
        # gets its embedding.
        clean = counts["clean.tweets_clean"][month]
        assert 0 < clean <= counts["raw.tweets"][month]
        assert counts["features.tweet_embeddings"][month] == clean


# A month's build decides; training_decision_sensor then requests the retrain and
# follow_up_sensor the fine-tuned family, all through the daemon's queue and the workers.
MONTH_JOBS = ("month_build_job", "retrain_job", "follow_up_job")


def month_runs(cluster: Cluster, month: str) -> dict[str, dg.DagsterRun]:
    runs = cluster.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": month}))
    return {run.job_name: run for run in reversed(runs) if run.job_name in MONTH_JOBS}


def wait_for_month(cluster: Cluster, month: str) -> list[dg.DagsterRun]:
    """The month's build and the training its decision requested, once all have finished."""
    deadline = time.monotonic() + 3 * RUNS_TIMEOUT_S
    while time.monotonic() < deadline:
        runs = month_runs(cluster, month)
        if len(runs) == len(MONTH_JOBS) and all(r.is_finished for r in runs.values()):
            return [runs[job] for job in MONTH_JOBS]
        time.sleep(1.0)
    raise AssertionError(f"{month}: {MONTH_JOBS} not all finished: {month_runs(cluster, month)}")


@pytest.fixture(scope="module")
def models_built(cluster, built) -> dict[str, list[dg.DagsterRun]]:
    """The rest of each month (drift, evaluation, the decision, then its training and the
    gate), oldest month first as a month is judged against the champion before it."""
    runs = {}
    for month in MONTHS:
        submit(cluster, "month_build_job", month)
        runs[month] = wait_for_month(cluster, month)
    return runs


def test_the_model_side_ran_and_recorded_everything(cluster, models_built):
    for month, runs in models_built.items():
        # A challenger that loses to the champion is a decision: every run stays green.
        assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS] * len(runs), month
    settings = cluster.settings
    client = MlflowClient(settings.mlflow_tracking_uri)
    versions = client.search_model_versions(f"name = '{registry.REGISTERED_MODEL}'")
    champion = client.get_model_version_by_alias(registry.REGISTERED_MODEL, "champion")
    with connect(settings.warehouse, read_only=True) as con:
        trained = con.execute(
            "SELECT DISTINCT trained_through FROM metrics.training_runs ORDER BY 1"
        ).fetchall()
        recorded = {
            v for (v,) in con.execute("SELECT model_version FROM metrics.training_runs").fetchall()
        }
        decisions = con.execute("SELECT count(*) FROM metrics.promotions").fetchone()[0]
        evaluated = con.execute(
            "SELECT count(*) FROM metrics.model_evaluations WHERE eval_set <> 'estimated'"
        ).fetchone()[0]
    assert [t.isoformat() for (t,) in trained] == MONTHS
    # Every registered version has its training row in the lake, the champion among them.
    assert {str(v.version) for v in versions} == recorded
    assert str(champion.version) in recorded
    assert decisions >= len(MONTHS) and evaluated > 0
    # `sentiment sql` answers from the published snapshot of the lake's history.
    published = query_history(settings.published_dir, "SELECT count(*) FROM metrics.promotions")
    assert published.rows == [(decisions,)]
    # The MLflow server's artifacts, not the home, hold the versions.
    assert not (settings.home / "mlartifacts").exists()
    assert all(v.source.startswith("mlflow-artifacts:/") for v in versions)


def run_span(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float]:
    stats = instance.get_run_stats(run_id)
    return stats.start_time, stats.end_time


def test_the_queue_runs_one_retrain_at_a_time(cluster, models_built):
    """deploy/dagster.prod.yaml allows one run tagged sentiment/job=retrain at once: two
    submitted together run one after the other, while untagged months ran side by side."""
    tags = {"sentiment/job": "retrain"}
    run_ids = [submit(cluster, "month_data_job", month, tags) for month in MONTHS]
    wait_finished(cluster, run_ids)
    assert [cluster.instance.get_run_by_id(r).status for r in run_ids] == [
        dg.DagsterRunStatus.SUCCESS
    ] * 2
    first, second = sorted(run_span(cluster.instance, r) for r in run_ids)
    assert first[1] <= second[0], f"two retrain-tagged runs overlapped: {first} {second}"
