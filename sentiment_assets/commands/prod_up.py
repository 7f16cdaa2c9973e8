"""`sentiment prod up` (and `supervise`, `worker`): starting the prod profile's services.

What runs where is told in commands/prod.py, which also stops them and says which run.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn

import dagster as dg
from celery import Celery

from sentiment_assets.commands.prod import (
    ENV_FILE,
    PREFIX,
    SUPERVISOR,
    WORKER_PREFIX,
    Options,
    print_line,
)
from sentiment_assets.environment import current_settings
from sentiment_assets.lib.hosting import lifecycle, services
from sentiment_assets.lib.hosting.celery_workers import (
    broker_url,
    celery_worker_command,
    celery_worker_environment,
)
from sentiment_assets.lib.settings import PROD, Settings
from sentiment_assets.ops import orchestrator
from sentiment_assets.ops.instance import prepare_environment
from sentiment_assets.ops.supervisor import DEFAULT_RESTARTS, Service, Supervisor
from sentiment_assets.partitions import DUCKDB_POOL_NAME, GPU_POOL


def up(options: Options, say: Callable[[str], None] = print_line) -> dict[str, str]:
    """Start everything; returns the variables written to env.sh. On any failure what was
    started is stopped again before the error propagates."""
    folder = options.folder
    folder.mkdir(parents=True, exist_ok=True)
    # PostgreSQL runs as another user when we are root: it must be able to enter the folder.
    folder.chmod(0o755)
    running = [s for s in lifecycle.recorded(folder) if s.alive]
    if running:
        names = ", ".join(s.name for s in running)
        raise lifecycle.ServiceError(f"already up under {folder} ({names}): `prod down` first")
    # Leftovers of a crashed `up` (dead records, orphaned children) go first.
    lifecycle.stop_all(folder)
    began = time.monotonic()
    try:
        variables = _start(options, say)
    except BaseException:
        say("start failed: stopping what was started")
        lifecycle.stop_all(folder)
        raise
    say(f"all up after {time.monotonic() - began:.1f} s; `source {folder / ENV_FILE}`")
    return variables


def _start(options: Options, say: Callable[[str], None]) -> dict[str, str]:
    folder = options.folder
    password = services.secret(folder)

    def started(what: str, url: str, since: float) -> None:
        say(f"{what}: {url}  ({time.monotonic() - since:.1f} s)")

    t = time.monotonic()
    _, postgres = services.start_postgres(folder, options.pg_port, password)
    started("PostgreSQL", f"{postgres.host}:{postgres.port}", t)
    t = time.monotonic()
    redis = services.start_redis(folder, options.redis_port, password)
    started("Redis", redis.url, t)
    t = time.monotonic()
    mlflow = services.start_mlflow(
        folder, options.mlflow_port, postgres.url(services.MLFLOW_DB), os.environ
    )
    started("MLflow", mlflow.url, t)

    # From here on this process is the prod profile: prepare_environment reads these, writes
    # DAGSTER_HOME/dagster.yaml from the prod template and creates Dagster's tables.
    os.environ.update(
        {
            "SENTIMENT_PROFILE": PROD,
            "DAGSTER_PG_URL": postgres.url(services.DAGSTER_DB),
            "MLFLOW_TRACKING_URI": mlflow.url,
            "MLFLOW_UI_URL": mlflow.url,
            "SENTIMENT_CELERY_BROKER": services.redis_url(options.redis_port, password),
        }
    )
    settings = prepare_environment(serving=True)
    limit_pools(settings)
    variables = {**settings.environment(), "DAGSTER_PG_URL": os.environ["DAGSTER_PG_URL"]}
    env_file = write_env_file(folder / ENV_FILE, variables)
    say(f"environment: {env_file}")
    children = {**os.environ, **variables}

    t = time.monotonic()
    supervisor = lifecycle.start_process(
        folder,
        SUPERVISOR,
        [
            *(sys.executable, "-m", "sentiment_assets.cli", "prod", "supervise"),
            *("--folder", str(folder)),
            *("--dagster-port", str(options.dagster_port)),
            *("--workers", str(options.workers)),
        ],
        children,
    )
    dagster_url = f"http://{services.LOOPBACK}:{options.dagster_port}"
    # The supervisor starts them; its death (with the end of its log) ends the wait.
    lifecycle.wait_until(
        supervisor, lambda: orchestrator.dagster_ready(dagster_url), options.timeout_s
    )
    started("Dagster UI", dagster_url, t)
    lifecycle.wait_until(
        supervisor, lambda: orchestrator.daemon_beats(settings.dagster_home), options.timeout_s
    )
    started("Dagster daemon", "heartbeat in PostgreSQL", t)
    for name in worker_names(options.workers):
        url = worker_url(name)
        lifecycle.wait_until(
            supervisor, lambda u=url: worker_answers(settings, u), options.timeout_s
        )
        started(f"Celery worker {name}", broker_url_shown(options.redis_port), t)
    return variables


def worker_names(count: int) -> list[str]:
    return [f"{WORKER_PREFIX}{i}" for i in range(1, count + 1)]


def worker_url(name: str) -> str:
    """The worker's name in Celery (`name@<host>`), which a ping addresses."""
    return f"{name}@{socket.gethostname()}"


def supervised(settings: Settings, dagster_port: int, workers: int) -> list[Service]:
    """What the prod supervisor keeps running: the Dagster webserver and daemon, the workers."""
    return [
        orchestrator.webserver(services.LOOPBACK, dagster_port),
        orchestrator.daemon(settings.dagster_home),
        *(worker_service(settings, name) for name in worker_names(workers)),
    ]


def worker_service(settings: Settings, name: str) -> Service:
    url = worker_url(name)
    return Service(
        name,
        url,
        celery_worker_command(settings, name),
        lambda: worker_answers(settings, url),
        env=celery_worker_environment(os.environ, settings),
        restarts=DEFAULT_RESTARTS,
    )


def supervise(folder: Path, dagster_port: int, workers: int) -> int:
    """Run the supervisor over `supervised` until SIGTERM (what `prod down` sends): the
    process `up` starts, in the prod environment it prepared."""
    settings = current_settings()
    supervisor = Supervisor(
        supervised(settings, dagster_port, workers), folder, folder / "logs", prefix=PREFIX
    )
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, supervisor.request_stop)
    try:
        supervisor.start()
        healthy = supervisor.wait_until_ready() and supervisor.watch()
    finally:
        supervisor.stop()
    if healthy or supervisor.stop_requested.is_set():
        return 0
    print(f"error: {supervisor.failure}", file=sys.stderr)
    return 1


def broker_url_shown(port: int) -> str:
    """The broker's URL without its password, for printing."""
    return f"redis://{services.LOOPBACK}:{port}/0"


def limit_pools(settings: Settings) -> None:
    """Pools "gpu" and "duckdb" to 1: deploy/dagster.prod.yaml's default_limit lets data
    steps of several months run at once, but training shares one accelerator, and a prod
    profile that keeps the DuckDB warehouse (SENTIMENT_WAREHOUSE=duckdb) still has one
    writer (the lake's steps take no pool). Dagster keeps explicit pool limits in its
    storage, not in dagster.yaml."""
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        for pool in (GPU_POOL, DUCKDB_POOL_NAME):
            instance.event_log_storage.set_concurrency_slots(pool, 1)


def worker_answers(settings: Settings, url: str) -> bool:
    """True once the worker `url` (`name@host`) answers a ping over the broker (so it takes
    tasks)."""
    app = Celery(broker=broker_url(settings))
    try:
        replies = app.control.ping(destination=[url], timeout=1.0)
    finally:
        app.close()
    return any(url in reply for reply in replies)


def write_env_file(path: Path, variables: Mapping[str, str]) -> Path:
    """`export NAME=value` lines to `source`: readable by its owner only, as the database
    URL carries the password."""
    lines = [
        "# Written by `sentiment prod up`: `source` this file to point `sentiment` (pipeline,",
        "# sql, rollback, predict) and Dagster's CLI at the running prod profile.",
        *(f"export {name}={shlex.quote(value)}" for name, value in sorted(variables.items())),
    ]
    path.unlink(missing_ok=True)
    # Created owner-only, never readable by others even for a moment.
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write("\n".join(lines) + "\n")
    return path


def worker(name: str) -> NoReturn:
    """Replace this process with one Celery worker: what each worker container runs
    (docker-compose.yml, deploy/helm), with the environment's broker and storage."""
    settings = prepare_environment()
    argv = celery_worker_command(settings, name)
    os.execve(argv[0], argv, celery_worker_environment(os.environ, settings))
