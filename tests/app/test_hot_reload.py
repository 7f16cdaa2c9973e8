"""Hot reload through the HTTP API: the alias moves while requests keep coming."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest
from gradio_client import Client

from gradio_app.config import AppConfig
from sentiment_assets.lib.models.model_bundle import load_predictor
from sentiment_assets.lib.versions import registry
from tests.app.champions import set_champion
from tests.app.conftest import RegistryHome
from tests.app.server_helpers import metric, metric_samples, running_app

REQUESTS = 100
MOVE_AT = 25
BREAK_AT = 75
RELOAD_SECONDS = 0.2


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_alias_moves_during_a_stream_of_requests(champion_restored: RegistryHome, tmp_path) -> None:
    home = champion_restored
    texts = home.corpus.texts[:25]
    expected = {
        info.version: load_predictor(registry.download_bundle(info, tmp_path)).predict_proba(texts)
        for info in (home.v1, home.v2)
    }
    # The two versions must be told apart by their scores, not only by the version they claim.
    assert np.abs(expected["1"] - expected["2"]).min() > 1e-3

    config = AppConfig(reload_seconds=RELOAD_SECONDS, retry_failed_seconds=3600)
    with running_app(home.settings, config) as running:
        client = Client(running.url, verbose=False)
        versions: list[str] = []
        moved_at = None
        switch_seconds = None
        try:
            for i in range(REQUESTS):
                if i == MOVE_AT:
                    set_champion(home.settings, home.v2.version)
                    moved_at = time.monotonic()
                if i == BREAK_AT:
                    # Make sure version 2 answered for a while before the alias moves on.
                    assert versions[-1] == home.v2.version
                    set_champion(home.settings, home.broken.version)
                    wait_for(
                        lambda: running.app.holder.status().failure is not None,
                        10,
                        "the broken version to be tried",
                    )
                text = texts[i % len(texts)]
                _, score, version, *_ = client.predict(text, api_name="/predict")
                # Every answer is whole: the score is exactly what that version says.
                assert score == pytest.approx(expected[version][i % len(texts)], abs=1e-4)
                versions.append(version)
                if version == home.v2.version and moved_at is not None and i < BREAK_AT:
                    switch_seconds = time.monotonic() - moved_at
                    moved_at = None
        finally:
            client.close()

        first_new = versions.index(home.v2.version)
        assert set(versions[:MOVE_AT]) == {home.v1.version}
        # Once switched, never back: no request is answered by the old model afterwards.
        assert set(versions[first_new:]) == {home.v2.version}
        assert first_new < BREAK_AT
        assert switch_seconds is not None and switch_seconds < 10 * RELOAD_SECONDS + 5

        health = httpx.get(f"{running.url}/healthz", timeout=10).json()
        assert health["model_version"] == home.v2.version
        assert health["champion_version"] == home.broken.version
        assert f"version {home.broken.version} failed to load" in health["last_error"]
        samples = metric_samples(running.url)
        assert metric(samples, "sentiment_model_reload_failures_total") >= 1
        assert metric(samples, "sentiment_model_version") == int(home.v2.version)
        assert (
            metric(samples, "sentiment_requests_total", endpoint="predict", outcome="ok")
            == REQUESTS
        )
        assert metric(samples, "sentiment_errors_total", endpoint="predict", kind="internal") == 0
