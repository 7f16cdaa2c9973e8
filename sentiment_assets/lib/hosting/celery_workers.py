"""The prod profile's Celery side: the executor's configuration and the workers' command.

In the prod profile every step of a run is a Celery task (dagster-celery's `celery_executor`):
the run's own process only orchestrates, and whichever worker takes a task from the broker
executes the step, in the worker's pool child, in-process (dagster_celery.tasks). The executor
and the workers must agree on one broker and one result backend, so both are derived here
from the same `Settings`; nothing here imports Dagster.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from sentiment_assets.lib.settings import Settings

# Where SENTIMENT_CELERY_BROKER is unset: a Redis on loopback, its default port and database.
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
# dagster-celery's only queue (dagster_celery.make_app routes every task to it).
QUEUE = "dagster"
# The worker's config file, under the home: `dagster-celery worker start -y` reads it.
WORKER_CONFIG = "celery/worker.yaml"


def broker_url(settings: Settings) -> str:
    return settings.celery_broker or DEFAULT_BROKER


def executor_config(settings: Settings) -> dict:
    """`celery_executor`'s config: the broker doubles as the result backend (Redis holds
    both), so one variable describes the whole topology."""
    broker = broker_url(settings)
    return {
        "broker": broker,
        "backend": broker,
        "config_source": {
            # A worker reserves no task beyond the one it runs (early acknowledgement would
            # let it hold one more): a step queued behind a long one stays in the broker,
            # free for an idle worker to take.
            "worker_prefetch_multiplier": 1,
            "task_acks_late": True,
            # Celery 5.3+ warns on every start without it; retrying is what we want anyway
            # when a worker comes up before the broker.
            "broker_connection_retry_on_startup": True,
        },
    }


def write_worker_config(settings: Settings) -> Path:
    """The workers' config file (same broker and backend as the executor), replaced
    atomically so a worker starting meanwhile never reads half of it. Owner-only: the
    broker's URL carries its password."""
    path = settings.home / WORKER_CONFIG
    path.parent.mkdir(parents=True, exist_ok=True)
    # JSON is YAML: no YAML writer needed for a file only machines read.
    text = json.dumps({"execution": {"config": executor_config(settings)}}, indent=2)
    fd, staging = tempfile.mkstemp(prefix=f".{path.stem}-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return path


def celery_worker_command(settings: Settings, name: str) -> list[str]:
    """The argv that starts one worker named `name` (`name@<host>` in Celery), taking one
    task at a time. Run it with `celery_worker_environment`: dagster-celery starts `celery`
    by name, and the worker loads the code location from SENTIMENT_* and DAGSTER_HOME."""
    config = write_worker_config(settings)
    return [
        str(Path(sys.executable).parent / "dagster-celery"),
        "worker",
        "start",
        "--app",
        "dagster_celery.app",
        "--config-yaml",
        str(config),
        "--name",
        name,
        "--queue",
        QUEUE,
        "--",
        # One step at a time per worker: parallelism comes from more workers, which is
        # also how it scales to other machines.
        "--concurrency=1",
        "--pool=prefork",
        # Steps are long and few: no heartbeats between idle workers on a small machine.
        "--without-gossip",
        "--without-mingle",
    ]


def celery_worker_environment(base: Mapping[str, str], settings: Settings) -> dict[str, str]:
    """`base` (the caller's environment) plus the settings' variables, with this
    interpreter's scripts folder first on PATH, where dagster-celery looks for `celery`."""
    scripts = str(Path(sys.executable).parent)
    path = base.get("PATH", "")
    return {
        **base,
        **settings.environment(),
        "PATH": scripts + (os.pathsep + path if path else ""),
    }
