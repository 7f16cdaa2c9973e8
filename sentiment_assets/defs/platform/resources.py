"""The resources every domain shares: the warehouse file and the platform's settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from mlflow.tracking import MlflowClient

from sentiment_assets.environment import current_settings, export, settings_of
from sentiment_assets.lib.settings import (
    DUCKDB_WAREHOUSE,
    LAKE_WAREHOUSE,
    Settings,
)
from sentiment_assets.lib.store import warehouse
from sentiment_assets.lib.store.lake import Lake


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse: the DuckDB file, or the lake's folder (kind "lake", lib/store/lake.py);
    every connection is short-lived."""

    database: str
    kind: str = DUCKDB_WAREHOUSE

    @property
    def location(self) -> Path | Lake:
        return Lake(Path(self.database)) if self.kind == LAKE_WAREHOUSE else Path(self.database)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse.connect(self.location) as con:
            warehouse.ensure_schema(con)
            yield con


class PlatformResource(dg.ConfigurableResource):
    """The process's `Settings` (folders, source, retrain policy), as the variables that
    describe them, so assets, sensors and launched runs all read the same ones."""

    variables: dict[str, str]

    @classmethod
    def of(cls, settings: Settings) -> PlatformResource:
        return cls(variables=settings.environment())

    @property
    def settings(self) -> Settings:
        return settings_of(self.variables)

    def mlflow_client(self) -> MlflowClient:
        """A client of the platform's tracking store, named explicitly: never whichever
        global URI the process was last pointed at."""
        return MlflowClient(self.settings.mlflow_tracking_uri)


@dg.definitions
def resources() -> dg.Definitions:
    settings = current_settings()
    # dbt runs as a subprocess and reads DUCKDB_PATH from its environment: export the one
    # absolute path this process resolved so dbt and Dagster can never open different files.
    export(settings)
    return dg.Definitions(
        resources={
            "warehouse": WarehouseResource(
                database=str(settings.warehouse_path),
                kind=settings.warehouse_kind,
            ),
            "platform": PlatformResource.of(settings),
        }
    )
