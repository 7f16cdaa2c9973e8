"""Test-session environment: small synthetic data, offline models, no state outside tmp.

The monthly partitions are fixed when `sentiment_assets.partitions` is first imported, so
the synthetic size knobs are set here, before any test module imports the package.
"""

import os
import tempfile
from pathlib import Path

import pytest

SESSION_HOME = Path(tempfile.mkdtemp(prefix="sentiment-tests-"))

os.environ.update(
    {
        "SENTIMENT_SOURCE": "synthetic",
        "SENTIMENT_SYNTHETIC_MONTHS": "3",
        "SENTIMENT_SYNTHETIC_TWEETS_PER_MONTH": "240",
        "SENTIMENT_SYNTHETIC_SEED": "7",
        "SENTIMENT_SYNTHETIC_DRIFT_MONTH": "2",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        # `make test` exports the demo's paths; tests must never touch them.
        "SENTIMENT_HOME": str(SESSION_HOME),
        "DUCKDB_PATH": str(SESSION_HOME / "warehouse.duckdb"),
        "DAGSTER_HOME": str(SESSION_HOME / "dagster_home"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{SESSION_HOME / 'mlflow.db'}",
    }
)
os.environ.pop("SENTIMENT_MONTHS", None)


def use_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """Point every path variable at `home` (a fresh SENTIMENT_HOME)."""
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("SENTIMENT_HOME", str(home))
    monkeypatch.setenv("DUCKDB_PATH", str(home / "warehouse.duckdb"))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    return home


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the default encoder's verified ONNX export, made once per session.

    Exporting takes seconds; tests that need a cache of their own copy this one.
    """
    from sentiment_assets.lib.onnx_serving import OnnxTextEncoder

    cache = tmp_path_factory.mktemp("onnx-cache")
    OnnxTextEncoder(cache_dir=cache)
    return cache
