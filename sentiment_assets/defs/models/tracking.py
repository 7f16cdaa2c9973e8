"""MLflow plumbing shared by the model assets.

dagster-mlflow's `mlflow_tracking` opens (or resumes) one MLflow run per Dagster run, but it
only ends that run through `end_mlflow_on_run_finished`, a hook that runs on jobs carrying
it, not on runs started for a bare asset selection by a sensor or the UI. So each step that
uses MLflow ends the parent run itself: FINISHED when the step succeeds, FAILED when it
raises. A later step of the same Dagster run resumes it and ends it again.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version as package_version

import dagster as dg
import mlflow
from mlflow.entities import RunStatus

from sentiment_assets.lib.registry import run_url


def code_version() -> str:
    return package_version("sentiment-assets")


def run_link(ui_base: str, run_id: str) -> dg.MetadataValue:
    """A clickable link to an MLflow run, for Dagster metadata."""
    experiment_id = mlflow.get_run(run_id).info.experiment_id
    return dg.MetadataValue.url(run_url(ui_base, experiment_id, run_id))


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
