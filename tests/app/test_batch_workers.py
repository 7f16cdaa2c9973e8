"""The app scores a request's batches side by side (SENTIMENT_APP_BATCH_WORKERS) while a
single tweet keeps its one intra-op thread."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from gradio_app.config import AppConfig, ConfigError, load_config
from gradio_app.model_holder import registry_holder
from gradio_app.server import create_app
from sentiment_assets.lib.encoding.onnx_encoder import OnnxTextEncoder
from tests.app.champions import home_settings, register_embedding, set_champion, synthetic_corpus


def test_the_default_fills_the_cores_at_the_configured_threads() -> None:
    assert AppConfig().batch_workers is None
    assert AppConfig().serving_batch_workers(cores=4) == 4  # one thread each (the default)
    assert AppConfig(threads=2).serving_batch_workers(cores=4) == 2
    assert AppConfig(threads=4).serving_batch_workers(cores=2) == 1
    # "auto" threads: one batch already takes every core.
    assert AppConfig(threads=None).serving_batch_workers(cores=4) == 1
    assert AppConfig(batch_workers=3).serving_batch_workers(cores=2) == 3


def test_batch_workers_come_from_the_environment() -> None:
    assert load_config({"SENTIMENT_APP_BATCH_WORKERS": "3"}).batch_workers == 3
    assert load_config({"SENTIMENT_APP_BATCH_WORKERS": "auto"}).batch_workers is None
    assert load_config({}).batch_workers is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [("0", "SENTIMENT_APP_BATCH_WORKERS must be positive"), ("two", "is not a valid int")],
)
def test_bad_batch_workers_name_the_variable(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config({"SENTIMENT_APP_BATCH_WORKERS": raw})


def test_the_app_scores_batches_side_by_side_with_the_serial_scores(
    onnx_cache: Path, tmp_path: Path
) -> None:
    import torch

    settings = home_settings(tmp_path / "home")
    shutil.copytree(onnx_cache, settings.onnx_cache_dir)
    corpus = synthetic_corpus(n=200)
    encoder = OnnxTextEncoder(cache_dir=settings.onnx_cache_dir, threads=1)
    version = register_embedding(settings, corpus, encoder)
    set_champion(settings, version.version)
    texts = corpus.texts[:100]  # 4 batches of the served encoder's 32

    # The app's own defaults: one intra-op thread, batch workers resolved for this machine.
    config = AppConfig(reload_seconds=60)
    torch_threads = torch.get_num_threads()  # process-wide: put back for the later tests
    app = create_app(settings, config, wait_for_model=True)
    try:
        served = app.holder.current()
        served_encoder = served.scorer._encoder
        assert served_encoder.batch_workers == config.serving_batch_workers()
        assert served_encoder.fingerprint == encoder.fingerprint
        got = served.predict(texts)

        serial = registry_holder(settings, reload_seconds=60, threads=1, batch_workers=1)
        assert serial.refresh()
        assert serial.current().scorer._encoder.batch_workers == 1
        expected = serial.predict(texts)
    finally:
        app.close()
        torch.set_num_threads(torch_threads)
    assert got.version == expected.version == version.version
    assert np.array_equal(got.scores, expected.scores)
    assert got.labels == expected.labels
