"""The prod profile's services for the tests in this folder, and the `prod` marker on each.

`prod_services` starts real PostgreSQL, Redis and an MLflow tracking server (PostgreSQL
backend store, artifacts served over HTTP) on free loopback ports, once per session, through
the platform's own `sentiment_assets.lib.hosting.services`, and stops them at the end. Tests are
skipped, saying why, only where PostgreSQL or redis-server is not installed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sentiment_assets.lib.hosting import lifecycle, services

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.prod)


def skip_without_services() -> None:
    if services.postgres_bindir() is None:
        pytest.skip("PostgreSQL (initdb, postgres) is not installed: run `make setup-prod`")
    if services.redis_server() is None:
        pytest.skip("redis-server is not installed: run `make setup-prod`")


def service_folder(prefix: str) -> Path:
    """A folder PostgreSQL can enter: not under pytest's tmp folder, which only its owner may
    enter, while PostgreSQL, refusing to run as root, runs as another user there."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder


@dataclass(frozen=True)
class ProdServices:
    folder: Path
    postgres: services.Postgres
    redis_url: str
    mlflow_url: str

    def database(self, name: str) -> str:
        """A database of its own for one test (created if missing): its SQLAlchemy URL."""
        self.postgres.create_databases([name])
        return self.postgres.url(name)

    def variables(self, dagster_db: str = services.DAGSTER_DB) -> dict[str, str]:
        """The prod profile's variables pointing at these services."""
        return {
            "SENTIMENT_PROFILE": "prod",
            # Empty: the profile's own default warehouse (the lake), whatever an earlier test
            # left in the environment.
            "SENTIMENT_WAREHOUSE": "",
            "DAGSTER_PG_URL": self.postgres.url(dagster_db),
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "MLFLOW_UI_URL": self.mlflow_url,
            "SENTIMENT_CELERY_BROKER": self.redis_url,
        }


@pytest.fixture(scope="session")
def prod_services() -> Iterator[ProdServices]:
    skip_without_services()
    folder = service_folder("sentiment-prod-services-")
    try:
        password = services.secret(folder)
        _, postgres = services.start_postgres(folder, services.free_port(), password)
        redis_port = services.free_port()
        services.start_redis(folder, redis_port, password)
        mlflow = services.start_mlflow(
            folder, services.free_port(), postgres.url(services.MLFLOW_DB), os.environ
        )
        yield ProdServices(folder, postgres, services.redis_url(redis_port, password), mlflow.url)
    finally:
        lifecycle.stop_all(folder)
        shutil.rmtree(folder, ignore_errors=True)
