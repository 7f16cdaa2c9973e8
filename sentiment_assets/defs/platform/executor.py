"""The executor of every job: Celery workers in the prod profile, Dagster's default otherwise.

In the prod profile a run's process only orchestrates; each step is a task on the broker,
executed by whichever worker (`sentiment_assets.lib.hosting.celery_workers.celery_worker_command`)
takes it, on this machine or another one that shares the storage. Jobs that name their own
executor (the retrain jobs run in-process) keep it.
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
        # The embedded profile keeps Dagster's default (multiprocess) executor.
        return dg.Definitions()
    return dg.Definitions(executor=celery_executor.configured(executor_config(settings)))
