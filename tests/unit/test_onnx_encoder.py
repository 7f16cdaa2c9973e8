"""The ONNX Runtime encoder against the torch one, on the real bundled MiniLM (CPU)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sentiment_assets.lib import onnx_encoder
from sentiment_assets.lib.encoder import TextEncoder
from sentiment_assets.lib.onnx_encoder import (
    OnnxExportError,
    OnnxTextEncoder,
    serving_encoder,
)
from tests.unit.test_encoder import TEXTS


@pytest.fixture(scope="module")
def torch_encoder() -> TextEncoder:
    return TextEncoder(device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def onnx(onnx_cache: Path) -> OnnxTextEncoder:
    return OnnxTextEncoder(cache_dir=onnx_cache, batch_size=4, threads=1)


def _copy(cache: Path, tmp_path: Path) -> Path:
    target = tmp_path / "cache"
    shutil.copytree(cache, target)
    return target


def test_embeddings_match_torch_row_for_row(
    onnx: OnnxTextEncoder, torch_encoder: TextEncoder
) -> None:
    # Mixed lengths in batches of 4: padded and unpadded batches, truncation, emoji.
    got = onnx.encode(TEXTS)
    expected = torch_encoder.encode(TEXTS)
    assert got.shape == expected.shape == (len(TEXTS), 384)
    assert got.dtype == np.float32
    assert np.abs(got - expected).max() < onnx_encoder.PARITY_TOLERANCE
    # Each text alone (no padding at all) gives its batched embedding back.
    for i in (0, 6, 18):
        np.testing.assert_allclose(onnx.encode([TEXTS[i]])[0], got[i], atol=1e-5)


def test_same_fingerprint_so_models_trained_on_torch_embeddings_accept_it(
    onnx: OnnxTextEncoder, torch_encoder: TextEncoder
) -> None:
    assert onnx.fingerprint == torch_encoder.fingerprint
    assert (onnx.device, onnx.runtime) == ("cpu", "onnxruntime")
    assert onnx.encode([]).shape == (0, 384)


def test_export_is_cached_with_a_manifest_and_reused(onnx: OnnxTextEncoder) -> None:
    manifest = json.loads(onnx.model_path.with_suffix(".json").read_text())
    assert manifest["fingerprint"] == onnx.fingerprint
    assert manifest["max_abs_difference_vs_torch"] < onnx_encoder.PARITY_TOLERANCE
    stamp = onnx.model_path.stat().st_mtime_ns
    again = OnnxTextEncoder(cache_dir=onnx.model_path.parent)
    assert again.model_path == onnx.model_path
    assert onnx.model_path.stat().st_mtime_ns == stamp  # not exported a second time


def test_a_damaged_cached_file_is_rebuilt_not_trusted(onnx_cache: Path, tmp_path: Path) -> None:
    cache = _copy(onnx_cache, tmp_path)
    (model,) = cache.glob("*.onnx")
    with model.open("r+b") as handle:
        handle.truncate(1000)
    encoder = OnnxTextEncoder(cache_dir=cache)
    assert encoder.model_path == model
    assert model.stat().st_size > 1_000_000
    assert encoder.encode(["back in one piece"]).shape == (1, 384)
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_an_export_that_disagrees_with_torch_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Any real export differs from torch by a little; a negative tolerance rejects them all.
    monkeypatch.setattr(onnx_encoder, "PARITY_TOLERANCE", -1.0)
    cache = tmp_path / "cache"
    with pytest.raises(OnnxExportError, match="differs from torch"):
        serving_encoder("all-MiniLM-L6-v2", "cpu", runtime="onnx", cache_dir=cache)
    assert list(cache.iterdir()) == []  # nothing half-written is left to be picked up later


def test_auto_falls_back_to_torch_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The refusal itself is tested above on a real export; here only the fallback wiring.
    def refuse(encoder: TextEncoder, path: Path) -> dict:
        raise OnnxExportError("differs from torch by 1e+00")

    monkeypatch.setattr(onnx_encoder, "export_encoder", refuse)
    reasons: list[str] = []
    fallback = serving_encoder(
        "all-MiniLM-L6-v2", "cpu", runtime="auto", cache_dir=tmp_path, on_fallback=reasons.append
    )
    assert type(fallback) is TextEncoder
    assert reasons == ["differs from torch by 1e+00"]


def test_serving_encoder_picks_the_runtime(onnx_cache: Path, tmp_path: Path) -> None:
    cache = _copy(onnx_cache, tmp_path)
    assert isinstance(serving_encoder("all-MiniLM-L6-v2", "cpu", cache_dir=cache), OnnxTextEncoder)
    assert type(serving_encoder("all-MiniLM-L6-v2", "cpu", runtime="torch")) is TextEncoder
    with pytest.raises(ValueError, match="one of"):
        serving_encoder("all-MiniLM-L6-v2", "cpu", runtime="tensorrt")
    with pytest.raises(ValueError, match="CPU only"):
        serving_encoder("all-MiniLM-L6-v2", "cuda", runtime="onnx", cache_dir=cache)
