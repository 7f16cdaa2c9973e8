"""Test-session environment: small synthetic data, offline models, no state outside tmp.

The monthly partitions are fixed when `sentiment_assets.partitions` is first imported, so
the synthetic size knobs are set here, before any test module imports the package.
"""

import os
import tempfile
from pathlib import Path

import pytest

from sentiment_assets.lib.settings import load_settings

SESSION_HOME = Path(tempfile.mkdtemp(prefix="sentiment-tests-"))
# One ONNX graph cache for every home of the session: the encoder is exported, quantised and
# gated (~20 s together) once per session, not once per test that builds a pipeline.
SESSION_ONNX_CACHE = SESSION_HOME / "onnx-cache-shared"

PATH_VARIABLES = ("SENTIMENT_HOME", "DUCKDB_PATH", "DAGSTER_HOME", "MLFLOW_TRACKING_URI")
EXPORTED_CHOICES = ("SENTIMENT_PROFILE", "SENTIMENT_WAREHOUSE", "SENTIMENT_LAKE_DIR")


def home_paths(home: Path) -> dict[str, str]:
    """The path variables of a home, derived by the platform's own settings."""
    environment = load_settings({"SENTIMENT_HOME": str(home)}).environment()
    return {name: environment[name] for name in PATH_VARIABLES}


os.environ.update(
    {
        "SENTIMENT_SOURCE": "synthetic",
        "SENTIMENT_SYNTHETIC_MONTHS": "3",
        "SENTIMENT_SYNTHETIC_TWEETS_PER_MONTH": "240",
        "SENTIMENT_SYNTHETIC_SEED": "7",
        "SENTIMENT_SYNTHETIC_DRIFT_MONTH": "2",
        # Test files are written whole before anything reads them; the tests of half-written
        # files set their own interval.
        "SENTIMENT_LANDING_SETTLE_SECONDS": "0",
        # `make test` exports the demo's paths; tests must never touch them.
        **home_paths(SESSION_HOME),
        "SENTIMENT_ONNX_CACHE": str(SESSION_ONNX_CACHE),
    }
)
os.environ.pop("SENTIMENT_ENCODER_PRECISION", None)
os.environ.pop("SENTIMENT_MONTHS", None)


def use_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """Point every path variable at `home` (a fresh SENTIMENT_HOME)."""
    home.mkdir(parents=True, exist_ok=True)
    for name, value in home_paths(home).items():
        monkeypatch.setenv(name, value)
    # prepare_environment exports these too: registered here, the monkeypatch takes them
    # back, so one test's profile or warehouse never leaks into the next.
    for name in EXPORTED_CHOICES:
        monkeypatch.setenv(name, os.environ.get(name, ""))
    return home


@pytest.fixture(scope="session")
def onnx_cache() -> Path:
    """The session's ONNX cache (SENTIMENT_ONNX_CACHE) holding the default encoder's verified
    fp32 and gated int8 graphs, made once per session (or found made by the pipeline).

    Exporting and gating take ~20 s; tests that change a cache copy this one first.
    """
    from sentiment_assets.lib.onnx_serving import pipeline_encoder

    # "auto": an int8 graph that fails the gate on this machine leaves the fp32 one in use.
    pipeline_encoder("all-MiniLM-L6-v2", "cpu", "auto", SESSION_ONNX_CACHE)
    return SESSION_ONNX_CACHE
