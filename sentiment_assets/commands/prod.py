"""`sentiment prod up|down|status`: the prod profile's services on this machine.

`up` starts, under a folder of its own (default `$SENTIMENT_HOME/prod/`), in this order:
PostgreSQL (Dagster's storage and MLflow's backend store), Redis (the Celery broker), the
MLflow tracking server, then a supervisor process (`prod supervise`, ops/supervisor.py,
the same one `sentiment serve` runs in) which starts the Dagster webserver and daemon
(DAGSTER_HOME prepared from deploy/dagster.prod.yaml) and N Celery workers and restarts
any of them that dies, with backoff, while the others keep running. `up` returns once each
one answers, prints their URLs, and writes `env.sh`, which points the CLI (`sentiment
pipeline`, `sql`, `rollback`, `predict`) at them when sourced. The processes outlive the
command; `down` stops the supervisor first (so nothing is restarted), then the rest, newest
first, and `status` says which still run.

The same topology in containers: docker-compose.yml; on Kubernetes: deploy/helm/values.yaml.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sentiment_assets.environment import current_settings
from sentiment_assets.lib.core.ports import DEFAULT_PORTS
from sentiment_assets.lib.hosting import lifecycle
from sentiment_assets.lib.settings import Settings

PREFIX = "[prod]"
DEFAULT_WORKERS = 2
# Loading the code location on a busy 2-core machine takes minutes.
DEFAULT_TIMEOUT_S = 600.0
ENV_FILE = "env.sh"
SUPERVISOR = "supervisor"
WORKER_PREFIX = "celery-worker-"


def prod_folder(settings: Settings) -> Path:
    return settings.home / "prod"


@dataclass(frozen=True)
class Options:
    folder: Path
    pg_port: int = DEFAULT_PORTS.postgres
    redis_port: int = DEFAULT_PORTS.redis
    mlflow_port: int = DEFAULT_PORTS.mlflow
    dagster_port: int = DEFAULT_PORTS.dagster
    workers: int = DEFAULT_WORKERS
    timeout_s: float = DEFAULT_TIMEOUT_S


def print_line(message: str) -> None:
    print(f"{PREFIX} {message}", flush=True)


def down(folder: Path, say: Callable[[str], None] = print_line) -> int:
    stopped = []
    supervisor = lifecycle.find(folder, SUPERVISOR)
    if supervisor is not None:
        # First, or it would restart what is stopped next. It stops its own children (all
        # get SIGTERM at once), hence the longer grace.
        stopped.append((SUPERVISOR, lifecycle.stop(supervisor, 2 * lifecycle.STOP_GRACE_S)))
    stopped += lifecycle.stop_all(folder)
    for name, outcome in stopped:
        say(f"{name}: {outcome}")
    if not stopped:
        say(f"nothing recorded under {folder}")
    (folder / ENV_FILE).unlink(missing_ok=True)
    return 0


def status(folder: Path, say: Callable[[str], None] = print_line) -> int:
    """One line a process; 0 when every recorded process runs (and there is one)."""
    found = lifecycle.recorded(folder)
    for process in found:
        state = "running" if process.alive else "NOT running"
        say(f"{process.name:<22} {state:<12} pid {process.pid:<8} {process.url}")
    if not found:
        say(f"nothing recorded under {folder}")
    return 0 if found and all(p.alive for p in found) else 1


def command(args: argparse.Namespace) -> int:
    folder = Path(args.folder).resolve() if args.folder else prod_folder(current_settings())
    if args.action == "down":
        try:
            return down(folder)
        except lifecycle.ServiceError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    if args.action == "status":
        return status(folder)
    # Only `up`, `supervise` and `worker` need Dagster, Celery and the definitions: `status`
    # and `down` must answer at once, also while the profile's processes load the code on a
    # busy machine: with those imports `status` took 18 s here (over 60 s in tests/prod),
    # without them 4 s.
    from sentiment_assets.commands import prod_up

    if args.action == "worker":
        return prod_up.worker(args.name)
    given = {
        "pg_port": args.pg_port,
        "redis_port": args.redis_port,
        "mlflow_port": args.mlflow_port,
        "dagster_port": args.dagster_port,
        "workers": args.workers,
        "timeout_s": args.timeout,
    }
    # Options holds the defaults of what was not given.
    options = Options(folder, **{name: value for name, value in given.items() if value is not None})
    if args.action == "supervise":
        return prod_up.supervise(folder, options.dagster_port, options.workers)
    try:
        prod_up.up(options)
    except lifecycle.ServiceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
