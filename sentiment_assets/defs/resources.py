import os
import shutil
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from sentiment_assets.defs.dbt.project import dbt_project
from sentiment_assets.defs.models.tracking import mlflow_resource_config, platform_mlflow
from sentiment_assets.lib.settings import export_environment, load_settings
from sentiment_assets.resources import EncoderResource, PlatformResource, WarehouseResource


def dbt_executable() -> str:
    # The venv's dbt, even when the venv is not activated (e.g. `.venv/bin/python -m ...`).
    beside_python = Path(sys.executable).parent / "dbt"
    return str(beside_python) if beside_python.exists() else shutil.which("dbt") or "dbt"


@dg.definitions
def resources() -> dg.Definitions:
    settings = load_settings()
    # dbt runs as a subprocess and reads DUCKDB_PATH from its environment: export the one
    # absolute path this process resolved so dbt and Dagster can never open different files.
    os.environ.update(export_environment(settings))
    return dg.Definitions(
        resources={
            "warehouse": WarehouseResource(database=str(settings.duckdb_path)),
            "platform": PlatformResource(home=str(settings.home), source=settings.source),
            "encoder": EncoderResource(name=settings.encoder, device=settings.device),
            "mlflow": platform_mlflow.configured(
                mlflow_resource_config(settings.mlflow_tracking_uri)
            ),
            "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
        }
    )
