"""A newcomer's first minute: the app answers while its model loads, and says so.

The holders here are real ModelHolders whose loader waits on a threading.Event before loading
the real champion, so the test decides how long "loading" lasts instead of racing a timer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from mlflow.tracking import MlflowClient

from gradio_app.config import AppConfig
from gradio_app.model_holder import ModelHolder, ModelLoadingError, NoModelError, Scorer
from sentiment_assets.lib.models.model_bundle import load_predictor
from sentiment_assets.lib.versions import registry
from tests.app.conftest import RegistryHome
from tests.app.server_helpers import running_app

TWEET = "what a great day, loving the sunshine and the new album"


@dataclass
class Gate:
    """Holds a loader at its start: `started` says a load began, `release` lets it finish."""

    started: threading.Event
    release: threading.Event


def gated_registry_holder(home: RegistryHome, cache: Path, gate: Gate) -> ModelHolder:
    """The registry's champion, looked up and loaded for real, the load held at the gate."""
    client = MlflowClient(home.settings.mlflow_tracking_uri)

    def lookup() -> registry.VersionInfo | None:
        return registry.champion(client)

    def loader(info: registry.VersionInfo) -> Scorer:
        gate.started.set()
        if not gate.release.wait(60):
            raise TimeoutError("the test never released the load")
        return load_predictor(registry.download_bundle(info, cache))

    return ModelHolder(lookup, loader, reload_seconds=60)


@pytest.fixture
def gate() -> Iterator[Gate]:
    gate = Gate(threading.Event(), threading.Event())
    try:
        yield gate
    finally:
        gate.release.set()  # a failed test must not leave the poller waiting for a minute


def wait_for_healthy(url: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(f"{url}/healthz", timeout=10)
        if response.status_code == 200:
            return response.json()
        assert time.monotonic() < deadline, f"not healthy after {timeout} s: {response.text}"
        time.sleep(0.1)


class Constant:
    def predict_proba(self, raw_texts: list[str]) -> np.ndarray:
        return np.full(len(raw_texts), 0.75)


def version(number: str) -> registry.VersionInfo:
    return registry.VersionInfo(number, "tfidf_logreg", date(2024, 1, 1), None, "file:///")


def test_a_background_start_returns_at_once_and_says_which_version_loads(gate: Gate) -> None:
    looked_up = threading.Event()

    def lookup() -> registry.VersionInfo:
        assert looked_up.wait(10)
        return version("4")

    def loader(info: registry.VersionInfo) -> Scorer:
        gate.started.set()
        assert gate.release.wait(10)
        return Constant()

    holder = ModelHolder(lookup, loader, reload_seconds=60)
    started = time.monotonic()
    holder.start(wait=False)
    try:
        # Neither the registry lookup nor the load happens on the caller's thread.
        assert time.monotonic() - started < 1
        with pytest.raises(ModelLoadingError, match="looking up the champion"):
            holder.predict(["x"])
        assert holder.status().starting and holder.status().pending
        looked_up.set()
        assert gate.started.wait(10)
        with pytest.raises(ModelLoadingError, match="model v4 is loading"):
            holder.current()
        status = holder.status()
        assert status.pending and status.loading == version("4") and status.served is None
        gate.release.set()
        deadline = time.monotonic() + 10
        while holder.status().pending:
            assert time.monotonic() < deadline, "version 4 never finished loading"
            time.sleep(0.01)
        assert holder.predict(["x"]).version == "4"
        status = holder.status()
        assert (status.loading, status.starting, status.pending) == (None, False, False)
    finally:
        holder.stop()


def test_a_background_start_without_a_champion_still_says_build_the_pipeline() -> None:
    holder = ModelHolder(lambda: None, lambda info: Constant(), reload_seconds=60)
    holder.start(wait=False)
    try:
        deadline = time.monotonic() + 10
        while holder.status().starting:
            assert time.monotonic() < deadline, "the first registry check never finished"
            time.sleep(0.01)
        with pytest.raises(NoModelError, match="make pipeline") as raised:
            holder.predict(["x"])
        # "No champion" is not "loading": nothing is on its way, so no "try again".
        assert not isinstance(raised.value, ModelLoadingError)
        assert not holder.status().pending
    finally:
        holder.stop()


def test_the_app_answers_while_the_model_loads_and_serves_once_loaded(
    registry_home: RegistryHome, gate: Gate, tmp_path: Path
) -> None:
    champion = registry_home.v1.version
    holder = gated_registry_holder(registry_home, tmp_path / "cache", gate)
    config = AppConfig(reload_seconds=60)
    with running_app(registry_home.settings, config, holder=holder, wait_for_model=False) as app:
        assert gate.started.wait(30), "the poller never started loading the champion"
        page = httpx.get(app.url, timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()

        health = httpx.get(f"{app.url}/healthz", timeout=10)
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "loading"
        assert (body["loading_version"], body["champion_version"]) == (champion, champion)
        assert body["model_version"] is None

        api = httpx.post(f"{app.url}/api/predict", json={"texts": [TWEET]}, timeout=10)
        assert api.status_code == 503
        assert f"model v{champion} is loading" in api.json()["error"]
        assert api.headers["retry-after"] == "5"

        client = Client(app.url, verbose=False)
        try:
            with pytest.raises(AppError, match=f"model v{champion} is loading"):
                client.predict(TWEET, api_name="/predict")
            status = client.predict(api_name="/check_registry")
        finally:
            client.close()
        # "Check the registry now" answers at once during the load instead of waiting on it.
        assert f"Loading model v{champion}…" in status

        gate.release.set()
        health = wait_for_healthy(app.url)
        assert (health["status"], health["model_version"]) == ("ok", champion)
        assert health["loading_version"] is None
        served = httpx.post(f"{app.url}/api/predict", json={"texts": [TWEET]}, timeout=10)
        assert served.status_code == 200
        assert served.json()["model_version"] == champion
