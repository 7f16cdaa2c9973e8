"""ONNX Runtime serving against torch, on the real bundled MiniLM (CPU)."""

from __future__ import annotations

import json
import shutil
import threading
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from sentiment_assets.lib.encoding import onnx_encoder
from sentiment_assets.lib.encoding.encoder import TextEncoder
from sentiment_assets.lib.encoding.encoder_choice import ServingRuntime, serving_encoder
from sentiment_assets.lib.encoding.encoder_precision import same_vectors
from sentiment_assets.lib.encoding.onnx_encoder import OnnxExportError, OnnxTextEncoder
from sentiment_assets.lib.models.finetune import WEIGHTS_FILE, FinetunedClassifier
from sentiment_assets.lib.models.model_bundle import ModelCard, load_predictor, save_bundle
from sentiment_assets.lib.models.onnx_finetuned import OnnxFinetunedClassifier, serving_finetuned
from sentiment_assets.lib.models.params import FinetuneParams
from sentiment_assets.lib.models.training import FINETUNED_TRANSFORMER
from tests.unit.test_encoder import TEXTS


@pytest.fixture(scope="module")
def torch_encoder() -> TextEncoder:
    return TextEncoder(device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def onnx(onnx_cache: Path) -> OnnxTextEncoder:
    return OnnxTextEncoder(cache_dir=onnx_cache, batch_size=4, threads=1)


def january_card(family: str, **fields: str) -> ModelCard:
    return ModelCard(
        family=family,
        trained_through=date(2024, 1, 1),
        window_start=date(2024, 1, 1),
        params={},
        data_fingerprint="test",
        **fields,
    )


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


def test_fp32_fingerprints_name_the_runtime_but_give_the_same_vectors(
    onnx: OnnxTextEncoder, torch_encoder: TextEncoder
) -> None:
    assert onnx.fingerprint == f"{torch_encoder.base_fingerprint}|onnx-fp32"
    assert torch_encoder.fingerprint == f"{torch_encoder.base_fingerprint}|torch-fp32"
    # Parity-checked to 1e-4: a model trained on either is served by either.
    assert same_vectors(onnx.fingerprint, torch_encoder.fingerprint)
    assert (onnx.device, onnx.runtime) == ("cpu", "onnxruntime")
    assert onnx.encode([]).shape == (0, 384)


def test_export_is_cached_with_a_manifest_and_reused(onnx: OnnxTextEncoder) -> None:
    manifest = json.loads(onnx.model_path.with_suffix(".json").read_text())
    assert manifest["identity"] == onnx.base_fingerprint
    assert manifest["max_abs_difference_vs_torch"] < onnx_encoder.PARITY_TOLERANCE
    stamp = onnx.model_path.stat().st_mtime_ns
    again = OnnxTextEncoder(cache_dir=onnx.model_path.parent)
    assert again.model_path == onnx.model_path
    assert onnx.model_path.stat().st_mtime_ns == stamp  # not exported a second time


def test_the_encoder_is_exported_with_plain_attention(onnx: OnnxTextEncoder) -> None:
    # Eager attention: scores + mask, then Softmax. SDPA's export adds a Where and an IsNaN
    # pass over every layer's scores, about 6% of the int8 graph's time.
    import onnx as onnx_format

    ops = [node.op_type for node in onnx_format.load(str(onnx.model_path)).graph.node]
    assert ops.count("Softmax") == 6
    assert "IsNaN" not in ops


def test_a_damaged_cached_file_is_rebuilt_not_trusted(onnx_cache: Path, tmp_path: Path) -> None:
    cache = _copy(onnx_cache, tmp_path)
    model = cache / OnnxTextEncoder(cache_dir=onnx_cache).model_path.name
    with model.open("r+b") as handle:
        handle.truncate(1000)
    encoder = OnnxTextEncoder(cache_dir=cache)
    assert encoder.model_path == model
    assert model.stat().st_size > 1_000_000
    assert encoder.encode(["back in one piece"]).shape == (1, 384)
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_a_cached_graph_with_an_unreadable_manifest_is_rebuilt(
    onnx_cache: Path, tmp_path: Path
) -> None:
    cache = _copy(onnx_cache, tmp_path)
    model = cache / OnnxTextEncoder(cache_dir=onnx_cache).model_path.name
    model.with_suffix(".json").write_text('{"sha256": ')  # cut off mid-write
    assert onnx_encoder.graph_problem(model).startswith("unreadable manifest")
    encoder = OnnxTextEncoder(cache_dir=cache)
    assert encoder.model_path == model and onnx_encoder.is_cached(model)


def test_an_export_that_disagrees_with_torch_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Any real export differs from torch by a little; a negative tolerance rejects them all.
    monkeypatch.setattr(onnx_encoder, "PARITY_TOLERANCE", -1.0)
    cache = tmp_path / "cache"
    with pytest.raises(OnnxExportError, match="differs from torch"):
        serving_encoder("all-MiniLM-L6-v2", "cpu", ServingRuntime("onnx", cache))
    assert list(cache.iterdir()) == []  # nothing half-written is left to be picked up later


def test_auto_falls_back_to_torch_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The refusal itself is tested above on a real export; here only the fallback wiring.
    def refuse(encoder: TextEncoder, path: Path) -> dict:
        raise OnnxExportError("differs from torch by 1e+00")

    monkeypatch.setattr(onnx_encoder, "export_encoder", refuse)
    reasons: list[str] = []
    runtime = ServingRuntime("auto", tmp_path, on_fallback=reasons.append)
    fallback = serving_encoder("all-MiniLM-L6-v2", "cpu", runtime)
    assert type(fallback) is TextEncoder
    assert reasons == ["differs from torch by 1e+00"]


def test_serving_encoder_picks_the_runtime(onnx_cache: Path, tmp_path: Path) -> None:
    cache = _copy(onnx_cache, tmp_path)
    auto = serving_encoder("all-MiniLM-L6-v2", "cpu", ServingRuntime("auto", cache))
    assert isinstance(auto, OnnxTextEncoder)
    torch_only = serving_encoder("all-MiniLM-L6-v2", "cpu", ServingRuntime("torch"))
    assert type(torch_only) is TextEncoder
    with pytest.raises(ValueError, match="one of"):
        serving_encoder("all-MiniLM-L6-v2", "cpu", ServingRuntime("tensorrt"))
    with pytest.raises(ValueError, match="CPU only"):
        serving_encoder("all-MiniLM-L6-v2", "cuda", ServingRuntime("onnx", cache))


def test_a_fine_tuned_classifier_on_onnx_runtime_gives_torch_probabilities(
    tmp_path: Path,
) -> None:
    classifier = FinetunedClassifier(device="cpu")
    params = FinetuneParams(max_steps=2, batch_size=4, max_train_samples=None, device="cpu")
    classifier.fit(TEXTS[:8], [1, 0, 0, 1, 1, 0, 0, 1], params)
    saved = classifier.save(tmp_path / "bundle")
    loaded = FinetunedClassifier.load(saved, device="cpu")

    served = serving_finetuned(loaded, saved / WEIGHTS_FILE, ServingRuntime("auto", tmp_path))
    assert isinstance(served, OnnxFinetunedClassifier)
    assert served.runtime == "onnxruntime"
    np.testing.assert_allclose(
        served.predict_proba(TEXTS), loaded.predict_proba(TEXTS), atol=onnx_encoder.PARITY_TOLERANCE
    )
    assert served.predict_proba([]).shape == (0,)
    # Another load of the same weights reuses the graph; torch-only leaves the model alone.
    again = serving_finetuned(loaded, saved / WEIGHTS_FILE, ServingRuntime("auto", tmp_path))
    assert again.model_path == served.model_path
    torch_only = serving_finetuned(loaded, saved / WEIGHTS_FILE, ServingRuntime("torch"))
    assert torch_only is loaded

    # Batches side by side (the app's batch workers): the serial probabilities, bit for bit.
    side_by_side = serving_finetuned(
        loaded, saved / WEIGHTS_FILE, ServingRuntime("auto", tmp_path, threads=1, batch_workers=3)
    )
    assert side_by_side.batch_workers == 3
    ran_on: list[str] = []
    forward = side_by_side._batch_proba

    def recorded(input_ids, mask) -> np.ndarray:
        ran_on.append(threading.current_thread().name)
        return forward(input_ids, mask)

    side_by_side._batch_proba = recorded
    many = TEXTS * 3
    np.testing.assert_array_equal(
        side_by_side.predict_proba(many, batch_size=4), served.predict_proba(many, batch_size=4)
    )
    assert len(ran_on) == -(-len(many) // 4)
    assert all(name.startswith("classifier-batch") for name in ran_on)


def test_the_serving_predictor_puts_a_fine_tuned_bundle_on_onnx_runtime(tmp_path: Path) -> None:
    classifier = FinetunedClassifier(device="cpu")
    params = FinetuneParams(max_steps=1, batch_size=4, max_train_samples=None, device="cpu")
    classifier.fit(TEXTS[:4], [1, 0, 0, 1], params)
    card = january_card(FINETUNED_TRANSFORMER)
    bundle = save_bundle(tmp_path / "bundle", card, classifier)
    on_torch = load_predictor(bundle, device="cpu")
    served = load_predictor(bundle, device="cpu", runtime=ServingRuntime("auto", tmp_path))
    assert (on_torch.runtime, served.runtime) == ("torch", "onnxruntime")
    np.testing.assert_allclose(
        served.predict_proba(TEXTS), on_torch.predict_proba(TEXTS), atol=1e-4
    )


def test_one_runtime_loads_one_encoder_for_every_champion(onnx_cache: Path, tmp_path: Path) -> None:
    runtime = ServingRuntime("onnx", cache_dir=_copy(onnx_cache, tmp_path), threads=1)
    first = runtime.encoder("all-MiniLM-L6-v2", "cpu", None)
    assert first.runtime == "onnxruntime"
    assert runtime.encoder("all-MiniLM-L6-v2", "cpu", first.fingerprint) is first
    # Weights that changed under the same name are loaded again, not served stale.
    assert runtime.encoder("all-MiniLM-L6-v2", "cpu", "other-weights") is not first


def test_a_model_trained_on_another_encoder_is_refused(
    torch_encoder: TextEncoder, tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    from sentiment_assets.lib.models.training import EMBEDDING_LOGREG

    vectors = torch_encoder.encode(TEXTS)
    model = LogisticRegression().fit(vectors, np.arange(len(TEXTS)) % 2)
    card = january_card(
        EMBEDDING_LOGREG, encoder=torch_encoder.name, encoder_fingerprint="some-other-encoder"
    )
    predictor = load_predictor(save_bundle(tmp_path / "bundle", card, model))
    with pytest.raises(RuntimeError, match="trained on encoder 'some-other-encoder'"):
        predictor.predict_proba(["any tweet"])
