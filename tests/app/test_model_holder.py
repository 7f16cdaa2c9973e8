"""ModelHolder: atomic swaps, failures that keep the old model serving, the registry loader."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from gradio_app.model_holder import ModelHolder, NoModelError, registry_holder
from sentiment_assets.lib.encoding.encoder import TextEncoder
from sentiment_assets.lib.models.model_bundle import load_predictor
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.serving import load_champion, serving_runtime
from tests.app.champions import (
    MONTH,
    home_settings,
    register_embedding,
    set_champion,
    synthetic_corpus,
)


def info(version: str) -> registry.VersionInfo:
    return registry.VersionInfo(version, "tfidf_logreg", MONTH, None, f"file:///v{version}")


class ConstantScorer:
    """A model that answers a fixed probability, so an answer names the version that gave it."""

    def __init__(self, score: float) -> None:
        self.score = score

    def predict_proba(self, raw_texts: list[str]) -> np.ndarray:
        return np.full(len(raw_texts), self.score)


class Alias:
    def __init__(self, version: str | None) -> None:
        self.version = version

    def __call__(self) -> registry.VersionInfo | None:
        return None if self.version is None else info(self.version)


def test_slow_load_never_answers_from_a_half_loaded_model() -> None:
    alias = Alias("1")
    loading = threading.Event()
    release = threading.Event()

    def loader(version: registry.VersionInfo) -> ConstantScorer:
        if version.version == "2":
            loading.set()
            assert release.wait(10)
        return ConstantScorer({"1": 0.2, "2": 0.9}[version.version])

    holder = ModelHolder(alias, loader, reload_seconds=60)
    holder.refresh()
    alias.version = "2"
    refresher = threading.Thread(target=holder.refresh)
    refresher.start()
    assert loading.wait(10)
    # While version 2 is loading, every answer still comes whole from version 1.
    during = [holder.predict(["a", "b"]) for _ in range(50)]
    assert {(p.version, tuple(p.scores)) for p in during} == {("1", (0.2, 0.2))}
    release.set()
    refresher.join(10)
    after = holder.predict(["a"])
    assert (after.version, after.scores, after.labels) == ("2", [0.9], ["positive"])
    assert holder.status().reloads == 2


def test_failed_load_keeps_serving_and_backs_off() -> None:
    alias = Alias("1")
    attempts: list[str] = []

    def loader(version: registry.VersionInfo) -> ConstantScorer:
        attempts.append(version.version)
        if version.version == "2":
            raise OSError("bundle download failed")
        return ConstantScorer(0.3)

    failures = []
    holder = ModelHolder(
        alias, loader, reload_seconds=60, retry_failed_seconds=3600, on_failure=failures.append
    )
    assert holder.refresh() is True
    alias.version = "2"
    assert holder.refresh() is False
    status = holder.status()
    assert status.served.version == "1"
    assert status.champion.version == "2"
    assert "version 2 failed to load: bundle download failed" in status.failure.message
    assert holder.predict(["x"]).version == "1"
    # Within the back-off the broken version is not fetched again; `force` retries it.
    holder.refresh()
    assert attempts == ["1", "2"]
    holder.refresh(force=True)
    assert attempts == ["1", "2", "2"]
    assert len(failures) == 2
    # The alias going back to the served version clears the warning.
    alias.version = "1"
    holder.refresh()
    assert holder.status().failure is None


def test_warm_up_rejects_a_model_that_returns_garbage() -> None:
    alias = Alias("1")
    scorers = {"1": ConstantScorer(0.4), "2": ConstantScorer(float("nan"))}
    holder = ModelHolder(alias, lambda v: scorers[v.version], reload_seconds=60)
    holder.refresh()
    alias.version = "2"
    holder.refresh()
    assert holder.predict(["x"]).version == "1"
    assert "warm-up" in holder.status().failure.message


def test_no_champion_is_a_clear_error_and_a_lost_alias_keeps_the_model() -> None:
    alias = Alias(None)
    holder = ModelHolder(alias, lambda v: ConstantScorer(0.7), reload_seconds=60)
    holder.refresh()
    with pytest.raises(NoModelError, match="make pipeline"):
        holder.predict(["x"])
    alias.version = "5"
    holder.refresh()
    assert holder.predict(["x"]).version == "5"
    alias.version = None
    holder.refresh()
    assert holder.predict(["x"]).version == "5"
    assert "no version has the alias" in holder.status().failure.message


def test_poller_follows_the_alias_in_the_background() -> None:
    alias = Alias("1")
    holder = ModelHolder(alias, lambda v: ConstantScorer(0.1), reload_seconds=0.05)
    holder.start()
    try:
        alias.version = "2"
        deadline = time.monotonic() + 5
        while holder.predict(["x"]).version != "2":
            assert time.monotonic() < deadline, "the poller never picked up version 2"
            time.sleep(0.02)
    finally:
        holder.stop()


def test_registry_holder_serves_the_champion_and_survives_a_broken_version(
    champion_restored,
) -> None:
    home = champion_restored
    holder = registry_holder(home.settings, reload_seconds=60)
    holder.refresh()
    texts = home.corpus.texts[:20]
    prediction = holder.predict(texts)
    assert prediction.version == home.v1.version
    assert prediction.trained_through == MONTH
    # The same scores as loading version 1's bundle by hand.
    bundle = registry.download_bundle(home.v1, home.home / "manual-cache")
    expected = load_predictor(bundle).predict_proba(texts)
    np.testing.assert_allclose(prediction.scores, expected, rtol=1e-9)

    set_champion(home.settings, home.broken.version)
    assert holder.refresh() is False
    assert holder.predict(texts[:1]).version == home.v1.version
    assert f"version {home.broken.version} failed to load" in holder.status().failure.message

    set_champion(home.settings, home.v2.version)
    assert holder.refresh() is True
    assert holder.predict(texts[:1]).version == home.v2.version
    assert holder.status().failure is None


def test_an_embedding_champion_is_served_on_onnx_runtime_with_torch_scores(
    onnx_cache: Path, tmp_path: Path
) -> None:
    settings = home_settings(tmp_path / "home")
    # The session's verified export, so this test does not pay for another one.
    shutil.copytree(onnx_cache, settings.onnx_cache_dir)
    corpus = synthetic_corpus(n=200)
    version = register_embedding(settings, corpus, TextEncoder(device="cpu"))
    set_champion(settings, version.version)
    texts = corpus.texts[:40]

    served = {}
    for runtime in ("onnx", "torch"):
        holder = registry_holder(settings, reload_seconds=60, encoder_runtime=runtime)
        assert holder.refresh()
        served[runtime] = (holder.predict(texts), holder.status())
    onnx_answer, onnx_status = served["onnx"]
    torch_answer, torch_status = served["torch"]
    assert (onnx_status.runtime, torch_status.runtime) == ("onnxruntime", "torch")
    assert onnx_answer.version == torch_answer.version == version.version
    np.testing.assert_allclose(onnx_answer.scores, torch_answer.scores, atol=1e-4)
    assert onnx_answer.labels == torch_answer.labels
    # `sentiment predict` loads the champion the same way.
    loaded = load_champion(settings, serving_runtime(settings))
    assert (loaded.info.version, loaded.predictor.runtime) == (version.version, "onnxruntime")
    np.testing.assert_allclose(loaded.predictor.predict_proba(texts), onnx_answer.scores, rtol=1e-6)
