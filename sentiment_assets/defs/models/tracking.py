"""MLflow plumbing shared by the model assets.

dagster-mlflow's `mlflow_tracking` opens (or resumes) one MLflow run per Dagster run, but it
only ends that run through `end_mlflow_on_run_finished`, a hook that runs on jobs carrying
it, not on runs started for a bare asset selection by a sensor or the UI. So each step that
uses MLflow ends the parent run itself: FINISHED when the step succeeds, FAILED when it
raises. A later step of the same Dagster run resumes it and ends it again.

dagster-mlflow also names that run after the Dagster job, which for a sensor's or the UI's
asset selection is `__ephemeral_asset_job__` (or `__ASSET_JOB`), and renames it so each time
its resource starts. So each step names it again, for people: `retrain 2009-06`,
`sentiment_model 2024-02`.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from importlib.metadata import version as package_version

import dagster as dg
import mlflow
from mlflow.entities import RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

from sentiment_assets.lib.versions.registry import run_url


def code_version() -> str:
    return package_version("sentiment-assets")


def run_link(ui_base: str, run_id: str) -> dg.MetadataValue:
    """A clickable link to an MLflow run, for Dagster metadata."""
    experiment_id = mlflow.get_run(run_id).info.experiment_id
    return dg.MetadataValue.url(run_url(ui_base, experiment_id, run_id))


# A job's tag naming it for people (retrain_job carries `retrain`).
JOB_LABEL_TAG = "sentiment/job"


def parent_run_name(
    job_name: str, run_tags: Mapping[str, str], step_assets: list[str], partition_key: str | None
) -> str:
    """The MLflow name of a Dagster run's parent run: the job (its label tag, else its name
    without `_job`), or for Dagster's own jobs (names starting `__`, a bare asset selection)
    the assets of the step that tracks, then the month."""
    if job_name.startswith("__"):
        label = "+".join(sorted(step_assets)) or job_name
    else:
        label = run_tags.get(JOB_LABEL_TAG) or job_name.removesuffix("_job")
    if not partition_key:
        return label
    return f"{label} {date.fromisoformat(partition_key):%Y-%m}"


def _step_run_name(context: dg.AssetExecutionContext) -> str:
    run = context.dagster_run
    return parent_run_name(
        run.job_name,
        run.tags,
        [key.path[-1] for key in context.selected_asset_keys],
        context.partition_key if context.has_partition_key else None,
    )


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
            MLFLOW_RUN_NAME: _step_run_name(context),
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
