"""The default ports of the services, named once.

`sentiment serve`, `sentiment prod up`, the app, the MLflow UI URL written into Dagster's
metadata links, and the Makefile (through the CLI's defaults) all take them from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ports:
    dagster: int = 3000
    mlflow: int = 5000
    app: int = 7860
    # The prod profile's own PostgreSQL and Redis, away from the system services' defaults
    # (5432, 6379), so one already running on this machine is left alone.
    postgres: int = 15432
    redis: int = 16379


DEFAULT_PORTS = Ports()
