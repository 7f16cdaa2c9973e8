"""MLflow plumbing shared by the model assets.

dagster-mlflow's `mlflow_tracking` opens (or resumes) one MLflow run per Dagster run, but it
only ends that run through `end_mlflow_on_run_finished`, a hook that runs on jobs carrying
it, not on runs started for a bare asset selection by a sensor or the UI. So each step that
uses MLflow ends the parent run itself: FINISHED when the step succeeds, FAILED when it
raises. A later step of the same Dagster run resumes it and ends it again.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import mlflow
from dagster_mlflow import mlflow_tracking
from dagster_mlflow.resources import CONFIG_SCHEMA
from mlflow.entities import RunStatus

from sentiment_assets.lib.registry import EXPERIMENT_NAME, configure
from sentiment_assets.lib.settings import load_settings

MLFLOW_UI_URL_ENV = "MLFLOW_UI_URL"


@dg.resource(config_schema=CONFIG_SCHEMA)
def platform_mlflow(init_context: dg.InitResourceContext):
    """dagster-mlflow's tracking resource, with the experiment created under SENTIMENT_HOME.

    Without this, `mlflow.set_experiment` on a SQLite store would put artifacts in ./mlruns
    relative to whichever directory the process started in.
    """
    settings = load_settings()
    configure(
        init_context.resource_config.get("mlflow_tracking_uri") or settings.mlflow_tracking_uri,
        settings.mlflow_artifacts_dir,
    )
    return mlflow_tracking.resource_fn(init_context)


def mlflow_resource_config(tracking_uri: str) -> dict:
    return {"experiment_name": EXPERIMENT_NAME, "mlflow_tracking_uri": tracking_uri}


@contextmanager
def tracked_step(mlflow_handle, context: dg.AssetExecutionContext) -> Iterator[str]:
    """Make the Dagster run's MLflow run active for this step and end it when the step ends."""
    run_id = mlflow_handle.mlflow_run_id
    active = mlflow.active_run()
    if active is None or (run_id and active.info.run_id != run_id):
        mlflow.start_run(run_id=run_id)
    parent = mlflow.active_run().info.run_id
    mlflow.set_tags(
        {
            "dagster_run_id": context.run_id,
            "partition_key": context.partition_key if context.has_partition_key else "",
        }
    )
    try:
        yield parent
    except BaseException:
        _end_all(RunStatus.to_string(RunStatus.FAILED))
        raise
    _end_all(RunStatus.to_string(RunStatus.FINISHED))


def _end_all(status: str) -> None:
    while mlflow.active_run() is not None:
        mlflow.end_run(status=status)
