"""Where the platform keeps its state, read once from the environment.

Every process (Dagster, dbt, the CLI, the app) derives its paths from the same variables so
that they all agree on one absolute DuckDB file: two relative paths resolved from different
working directories would silently give two warehouses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DEFAULT_HOME = REPO_ROOT / ".sentiment"
SYNTHETIC_SOURCE = "synthetic"


# The app appends corrections here (under HomeLayout.feedback_dir); `user_feedback` reads them.
FEEDBACK_FILE = "feedback.jsonl"


class HomeLayout:
    """Where each kind of state lives under the platform's home folder (`self.home`).

    Mixed into `Settings` and into the Dagster `PlatformResource`, so every process derives
    the same folders from the same home.
    """

    @property
    def dagster_home(self) -> Path:
        return Path(self.home) / "dagster_home"

    @property
    def landing_dir(self) -> Path:
        return Path(self.home) / "landing"

    @property
    def published_dir(self) -> Path:
        return Path(self.home) / "published"

    @property
    def registry_cache_dir(self) -> Path:
        return Path(self.home) / "registry_cache"

    @property
    def onnx_cache_dir(self) -> Path:
        return Path(self.home) / "onnx_cache"

    @property
    def feedback_dir(self) -> Path:
        return Path(self.home) / "feedback"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return Path(self.home) / "mlartifacts"


@dataclass(frozen=True)
class Settings(HomeLayout):
    home: Path
    duckdb_path: Path
    source: str
    mlflow_tracking_uri: str
    encoder: str
    device: str | None

    @property
    def is_synthetic(self) -> bool:
        return self.source == SYNTHETIC_SOURCE


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    home = Path(env.get("SENTIMENT_HOME") or DEFAULT_HOME).expanduser().resolve()
    duckdb_path = Path(env.get("DUCKDB_PATH") or home / "warehouse.duckdb").expanduser().resolve()
    source = env.get("SENTIMENT_SOURCE") or SYNTHETIC_SOURCE
    if source != SYNTHETIC_SOURCE:
        # A relative path means "relative to where the user typed the command", not to
        # whichever directory a Dagster subprocess happens to start in.
        source = str(Path(source).expanduser().absolute())
    return Settings(
        home=home,
        duckdb_path=duckdb_path,
        source=source,
        mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}",
        encoder=env.get("SENTIMENT_ENCODER") or "all-MiniLM-L6-v2",
        device=env.get("SENTIMENT_DEVICE") or None,
    )


def export_environment(settings: Settings) -> dict[str, str]:
    """The variables child processes (dbt, the webserver, the daemon) need to see."""
    return {
        "SENTIMENT_HOME": str(settings.home),
        "DUCKDB_PATH": str(settings.duckdb_path),
        "SENTIMENT_SOURCE": settings.source,
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "DAGSTER_HOME": str(settings.dagster_home),
        "HF_HUB_OFFLINE": "1",
    }
