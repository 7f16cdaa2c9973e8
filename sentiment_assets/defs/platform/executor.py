"""The executor of every job: Celery workers in the prod profile, the run's own process
otherwise.

Embedded profile: every step runs in the run's process. Dagster's default executor starts a
process per step, and each imports the whole stack (torch, transformers, dbt, MLflow: about
20 s on 2 busy cores), which made a month launched from the UI several times slower than the
same month built by `sentiment pipeline` (bench/bench_ui_launch.py measures both). The steps
of one month gain nothing from running side by side here: the warehouse's writers take pool
"duckdb" one at a time, and in-process steps still claim their pools.

Prod profile: a run's process only orchestrates; each step is a task on the broker,
executed by whichever worker (`sentiment_assets.lib.hosting.celery_workers.celery_worker_command`)
takes it, on this machine or another one that shares the storage.
"""

import dagster as dg
from dagster_celery import celery_executor

from sentiment_assets.environment import current_settings
from sentiment_assets.lib.hosting.celery_workers import executor_config
from sentiment_assets.lib.settings import PROD


@dg.definitions
def executor() -> dg.Definitions:
    settings = current_settings()
    if settings.profile != PROD:
        return dg.Definitions(executor=dg.in_process_executor)
    return dg.Definitions(executor=celery_executor.configured(executor_config(settings)))
