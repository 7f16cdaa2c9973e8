"""The dbt CLI resource, running the venv's dbt against the project prepared by `make setup`."""

import shutil
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from sentiment_assets.defs.dbt.project import dbt_project


def dbt_executable() -> str:
    # The venv's dbt, even when the venv is not activated (e.g. `.venv/bin/python -m ...`).
    beside_python = Path(sys.executable).parent / "dbt"
    return str(beside_python) if beside_python.exists() else shutil.which("dbt") or "dbt"


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={"dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())}
    )
