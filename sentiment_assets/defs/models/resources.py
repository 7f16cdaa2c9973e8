"""The MLflow resource: dagster-mlflow's tracking run, on the platform's store."""

from pathlib import Path

import dagster as dg
from dagster_mlflow import mlflow_tracking
from dagster_mlflow.resources import CONFIG_SCHEMA

from sentiment_assets.environment import current_settings
from sentiment_assets.lib.versions.registry import EXPERIMENT_NAME, configure


@dg.resource(
    config_schema={
        **CONFIG_SCHEMA,
        "artifacts_dir": dg.Field(str, description="where the experiment's artifacts go"),
    }
)
def platform_mlflow(init_context: dg.InitResourceContext):
    """dagster-mlflow's tracking resource, with the experiment created under SENTIMENT_HOME.

    Without this, `mlflow.set_experiment` on a SQLite store would put artifacts in ./mlruns
    relative to whichever directory the process started in.
    """
    config = init_context.resource_config
    configure(config["mlflow_tracking_uri"], Path(config["artifacts_dir"]))
    return mlflow_tracking.resource_fn(init_context)


@dg.definitions
def resources() -> dg.Definitions:
    settings = current_settings()
    return dg.Definitions(
        resources={
            "mlflow": platform_mlflow.configured(
                {
                    "experiment_name": EXPERIMENT_NAME,
                    "mlflow_tracking_uri": settings.mlflow_tracking_uri,
                    "artifacts_dir": str(settings.mlflow_artifacts_dir),
                }
            )
        }
    )
