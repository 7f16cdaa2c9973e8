"""The process environment, read in one place: `lib/` never looks at it (ruff enforces that).

Entry points (the CLI, the code location, the app, the drift demo) call `current_settings()`
and hand the result down; `export` makes child processes (dbt, the webserver, the daemon)
see the same resolved settings.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

from sentiment_assets.lib.settings import PASSED_ON, SYNTHETIC_PREFIX, Settings, load_settings

# Everything load_settings reads, for the cache key.
_READ = (
    "SENTIMENT_HOME",
    "DUCKDB_PATH",
    "SENTIMENT_SOURCE",
    "MLFLOW_TRACKING_URI",
    "SENTIMENT_ONNX_CACHE",
    "SENTIMENT_PROFILE",
    "SENTIMENT_WAREHOUSE",
    "SENTIMENT_LAKE_DIR",
    *PASSED_ON,
)


def current_settings() -> Settings:
    """The settings of this process's environment, built once per distinct environment
    (tests point one process at several homes in turn)."""
    relevant = tuple(
        sorted(
            (name, value)
            for name, value in os.environ.items()
            if name in _READ or name.startswith(SYNTHETIC_PREFIX)
        )
    )
    return _settings_of(relevant)


def settings_of(variables: Mapping[str, str]) -> Settings:
    """The settings these variables describe, parsed once per distinct set (a resource asks
    for its settings at every step; parsing and validating them each time is waste)."""
    return _settings_of(tuple(sorted(variables.items())))


@functools.lru_cache(maxsize=8)
def _settings_of(variables: tuple[tuple[str, str], ...]) -> Settings:
    return load_settings(dict(variables))


def export(settings: Settings) -> None:
    """Make this process's environment, and so its children's, describe `settings`."""
    os.environ.update(settings.environment())
