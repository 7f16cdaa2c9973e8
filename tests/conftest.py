"""Test-session environment: small synthetic data, offline models, no state outside tmp.

The settings come from the environment (and with them the monthly partitions, read at each
definitions load), so the synthetic size knobs are set here, once for the whole session.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from sentiment_assets.lib.settings import load_settings

SESSION_HOME = Path(tempfile.mkdtemp(prefix="sentiment-tests-"))
# One ONNX graph cache for every home of the session: the encoder is exported, quantised and
# gated (~20 s together) once per session, not once per test that builds a pipeline. Each
# xdist worker has its own session home and cache (tests copy the cache while pipelines write
# graphs into it); `onnx_cache` seeds them from one made once per run.
SESSION_ONNX_CACHE = SESSION_HOME / "onnx-cache-shared"
XDIST_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID")

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

    Exporting and gating take ~20 s; tests that change a cache copy this one first. Under
    xdist the first worker makes the graphs in a folder of the run, under a lock, and every
    worker copies them into its own cache.
    """
    if XDIST_RUN is None:
        make_encoder_graphs(SESSION_ONNX_CACHE)
        return SESSION_ONNX_CACHE
    from sentiment_assets.lib.core.atomic import exclusive_lock

    run_cache = Path(tempfile.gettempdir()) / f"sentiment-tests-onnx-{XDIST_RUN}"
    with exclusive_lock(run_cache.with_name(run_cache.name + ".lock")):
        make_encoder_graphs(run_cache)
        shutil.copytree(run_cache, SESSION_ONNX_CACHE, dirs_exist_ok=True)
    return SESSION_ONNX_CACHE


def make_encoder_graphs(cache: Path) -> None:
    from sentiment_assets.lib.encoding.encoder_choice import pipeline_encoder

    # "auto": an int8 graph that fails the gate on this machine leaves the fp32 one in use.
    pipeline_encoder("all-MiniLM-L6-v2", "cpu", "auto", cache)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make test`: `--dist loadfile --no-loadscope-reorder`) the modules
    holding `slow` tests go first.

    loadfile keeps each module on one worker, so a module-scoped fixture (a built home,
    started servers) is made once. Sent in this order, the longest builds start at once and
    the short modules fill the other worker, instead of one worker finishing alone at the end.
    """
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return
    slow_modules = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_modules)
