"""The prod profile's services and Dagster instance, on real processes.

PostgreSQL, Redis and the MLflow server answer (and refuse clients without the password);
an instance made from deploy/dagster.prod.yaml keeps its runs in PostgreSQL, where a second
instance object and a plain SQL query find them, with the queued coordinator's limits; and
`sentiment prod up`, `status`, `down` leave no process behind.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import redis
from mlflow.tracking import MlflowClient

from sentiment_assets.commands.prod import ENV_FILE
from sentiment_assets.commands.prod_up import worker_answers
from sentiment_assets.lib.hosting import lifecycle, services
from sentiment_assets.lib.settings import REPO_ROOT, load_settings
from sentiment_assets.ops.instance import instance_template, prepare_environment
from sentiment_assets.ops.orchestrator import daemon_beats
from tests.conftest import use_home
from tests.prod.conftest import ProdServices, service_folder, skip_without_services

# Loading the code location in the webserver, the daemon and a worker on 2 busy cores.
UP_TIMEOUT_S = 420


def test_services_answer_and_require_the_password(prod_services: ProdServices) -> None:
    con = prod_services.postgres.connect()
    try:
        with con.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database")
            assert {services.DAGSTER_DB, services.MLFLOW_DB} <= {row[0] for row in cur}
    finally:
        con.close()
    wrong = services.Postgres(
        prod_services.postgres.host, prod_services.postgres.port, services.PG_SUPERUSER, "wrong"
    )
    assert not wrong.answers()

    assert redis.Redis.from_url(prod_services.redis_url).ping()
    port = int(prod_services.redis_url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host=services.LOOPBACK, port=port).ping()

    assert services.http_answers(f"{prod_services.mlflow_url}/health")
    client = MlflowClient(prod_services.mlflow_url)
    experiment_id = client.create_experiment("prod-services-check")
    # Stored by the server in PostgreSQL, its artifacts under the server's own root.
    assert client.get_experiment(experiment_id).artifact_location.startswith("mlflow-artifacts:")
    con = prod_services.postgres.connect(services.MLFLOW_DB)
    try:
        with con.cursor() as cur:
            cur.execute("SELECT name FROM experiments WHERE experiment_id = %s", (experiment_id,))
            assert cur.fetchone() == ("prod-services-check",)
    finally:
        con.close()


def test_embedded_profile_keeps_the_repo_template() -> None:
    assert instance_template(load_settings({})) == REPO_ROOT / "dagster.yaml"
    prod = load_settings({"SENTIMENT_PROFILE": "prod"})
    assert instance_template(prod) == REPO_ROOT / "deploy" / "dagster.prod.yaml"


@dg.asset
def probe() -> int:
    return 1


def test_prod_instance_keeps_runs_in_postgres(
    prod_services: ProdServices, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_home(monkeypatch, tmp_path / "home")
    for name, value in prod_services.variables(dagster_db="dagster_instance_test").items():
        monkeypatch.setenv(name, value)
    prod_services.database("dagster_instance_test")
    settings = prepare_environment()
    written = (settings.dagster_home / "dagster.yaml").read_text()
    assert written == (REPO_ROOT / "deploy" / "dagster.prod.yaml").read_text()

    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        result = dg.materialize([probe], instance=instance)
        assert result.success
        coordinator = instance.run_coordinator
        assert type(coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 8
        limits = {
            (limit["key"], str(limit.get("value"))): limit["limit"]
            for limit in queue.tag_concurrency_limits
        }
        assert limits[("sentiment/job", "retrain")] == 1
        assert limits[("dagster/backfill", "{'applyLimitPerUniqueValue': True}")] == 4
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 4
        assert instance.run_monitoring_enabled

    # A second instance object, as another process would open it, finds the run.
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as other:
        stored = other.get_run_by_id(result.run_id)
        assert stored is not None and stored.status == dg.DagsterRunStatus.SUCCESS
    # And it is in PostgreSQL, not in a file under DAGSTER_HOME.
    con = prod_services.postgres.connect("dagster_instance_test")
    try:
        with con.cursor() as cur:
            cur.execute("SELECT status FROM runs WHERE run_id = %s", (result.run_id,))
            assert cur.fetchone() == ("SUCCESS",)
    finally:
        con.close()
    assert not list(settings.dagster_home.rglob("*.db"))


def sentiment(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sentiment_assets.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
    )


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((services.LOOPBACK, port)) == 0


def test_prod_up_status_down_leaves_nothing_behind() -> None:
    skip_without_services()
    home = service_folder("sentiment-prod-up-")
    folder = home / "prod"
    ports = {
        name: services.free_port()
        for name in ("pg-port", "redis-port", "mlflow-port", "dagster-port")
    }
    env = {**os.environ, "SENTIMENT_HOME": str(home)}
    for name in ("DUCKDB_PATH", "DAGSTER_HOME", "MLFLOW_TRACKING_URI", "MLFLOW_UI_URL"):
        env.pop(name, None)  # derived from SENTIMENT_HOME, as for someone starting afresh
    flags = [f"--{name}={port}" for name, port in ports.items()]
    try:
        up = sentiment("prod", "up", "--workers=1", *flags, env=env, timeout=UP_TIMEOUT_S)
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"http://{services.LOOPBACK}:{ports['dagster-port']}" in up.stdout
        assert f"http://{services.LOOPBACK}:{ports['mlflow-port']}" in up.stdout

        status = sentiment("prod", "status", env=env, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        started = lifecycle.recorded(folder)
        names = [s.name for s in started]
        assert names == [
            "postgres",
            "redis",
            "mlflow",
            "supervisor",
            "dagster-webserver",
            "dagster-daemon",
            "celery-worker-1",
        ]
        assert all(s.alive for s in started)
        assert all(f"{name} " in status.stdout for name in names)
        supervisor_log = lifecycle.log_path(folder, "supervisor")

        # The env file points a shell at the running profile, and only its owner reads it.
        env_file = folder / ENV_FILE
        assert env_file.stat().st_mode & 0o077 == 0
        shown = subprocess.run(
            ["bash", "-c", f"source {env_file} && echo $SENTIMENT_PROFILE $MLFLOW_TRACKING_URI"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert shown == ["prod", f"http://{services.LOOPBACK}:{ports['mlflow-port']}"]
        exported = {
            name: shlex.split(value)[0]
            for name, value in (
                line.removeprefix("export ").split("=", 1)
                for line in env_file.read_text().splitlines()
                if line.startswith("export ")
            )
        }
        # Pools "gpu" (one training step per accelerator) and "duckdb" (one writer, should
        # the prod profile keep the DuckDB warehouse) were limited to 1 in the instance.
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.setenv("DAGSTER_PG_URL", exported["DAGSTER_PG_URL"])
            with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
                for pool in ("gpu", "duckdb"):
                    assert instance.event_log_storage.get_concurrency_info(pool).slot_count == 1
            # A daemon killed with -9 is restarted by the supervisor, and beats again, while
            # the webserver keeps running.
            killed = lifecycle.find(folder, "dagster-daemon")
            os.kill(killed.pid, signal.SIGKILL)
            deadline = time.monotonic() + UP_TIMEOUT_S
            while (back := lifecycle.find(folder, "dagster-daemon")).pid == killed.pid or not (
                back.alive and daemon_beats(home / "dagster_home", since=back.started_at)
            ):
                assert time.monotonic() < deadline, lifecycle.log_tail(supervisor_log)
                assert lifecycle.find(folder, "dagster-webserver").alive
                time.sleep(1)
        assert "Dagster daemon killed by SIGKILL: restart 1 of" in supervisor_log.read_text()
        started = lifecycle.recorded(folder)

        # One more worker, as another machine adds one from the same variables; recorded
        # in the folder, so `prod down` stops it with the rest.
        extra = lifecycle.start_process(
            folder,
            "celery-worker-extra",
            [str(Path(sys.executable).parent / "sentiment"), "prod", "worker", "--name=extra"],
            {**env, **exported},
            url=f"extra@{socket.gethostname()}",
            cwd=REPO_ROOT,
        )
        lifecycle.wait_until(
            extra, lambda: worker_answers(load_settings(exported), extra.url), UP_TIMEOUT_S
        )
        started.append(extra)

        down = sentiment("prod", "down", env=env, timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
        # The extra worker is this process's child: collect its exit status.
        os.waitpid(extra.pid, 0)
        for process in started:
            # No live process of its group is left (zombies, about to be collected by
            # init, hold nothing).
            assert lifecycle.group_members(process.pid) == [], process
        assert not any(listening(port) for port in ports.values())
        assert lifecycle.recorded(folder) == []
        assert not env_file.exists()
        assert sentiment("prod", "status", env=env, timeout=60).returncode == 1
    finally:
        lifecycle.stop_all(folder)
        shutil.rmtree(home, ignore_errors=True)
