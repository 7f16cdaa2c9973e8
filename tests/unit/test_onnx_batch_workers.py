"""The ONNX encoder's batches side by side (`batch_workers`), on the real bundled MiniLM:
the same vectors, bit for bit, as one batch after another."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from sentiment_assets.lib.encoding.encoder_choice import ServingRuntime
from sentiment_assets.lib.encoding.encoder_precision import FP32, INT8, PrecisionRefused
from sentiment_assets.lib.encoding.onnx_encoder import OnnxTextEncoder
from tests.unit.test_encoder import TEXTS

# Three times the mixed-length texts: 15 batches of 4, more than the 2 queued per worker,
# so workers take batches while earlier results are still being written.
MANY = TEXTS * 3
WORKERS = 3


def _encoder(cache: Path, precision: str, batch_workers: int) -> OnnxTextEncoder:
    try:
        return OnnxTextEncoder(
            cache_dir=cache,
            batch_size=4,
            threads=1,
            precision=precision,
            batch_workers=batch_workers,
        )
    except PrecisionRefused as refused:  # measured on this CPU; fp32 still runs
        pytest.skip(f"the int8 graph fails the gate on this machine: {refused}")


@pytest.fixture(scope="module", params=[FP32, INT8])
def pair(request: pytest.FixtureRequest, onnx_cache: Path) -> tuple[OnnxTextEncoder, ...]:
    """(one worker, WORKERS workers) over the same graph, one intra-op thread each."""
    return _encoder(onnx_cache, request.param, 1), _encoder(onnx_cache, request.param, WORKERS)


def test_batches_side_by_side_give_the_serial_vectors_bit_for_bit(
    pair: tuple[OnnxTextEncoder, OnnxTextEncoder],
) -> None:
    serial, parallel = pair
    assert serial.model_path == parallel.model_path
    expected = serial.encode(MANY)
    got = parallel.encode(MANY)
    assert got.shape == (len(MANY), 384)
    # Row for row in input order: a batch written to the wrong rows would break this.
    assert np.array_equal(got, expected)
    assert np.array_equal(parallel.encode(MANY[:1]), serial.encode(MANY[:1]))


def test_progress_counts_every_text_in_order(
    pair: tuple[OnnxTextEncoder, OnnxTextEncoder],
) -> None:
    _, parallel = pair
    calls: list[tuple[int, int]] = []
    parallel.encode(MANY, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(min(b + 4, len(MANY)), len(MANY)) for b in range(0, len(MANY), 4)]


def test_only_the_forward_passes_leave_the_calling_thread_and_only_for_several_batches(
    pair: tuple[OnnxTextEncoder, OnnxTextEncoder], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, parallel = pair
    ran_on: list[str] = []
    forward = parallel._embed_batch

    def recorded(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        ran_on.append(threading.current_thread().name)
        return forward(ids, mask)

    monkeypatch.setattr(parallel, "_embed_batch", recorded)
    parallel.encode(MANY)
    assert len(ran_on) == len(MANY) // 4
    assert all(name.startswith("encoder-batch") for name in ran_on)
    assert len(set(ran_on)) <= WORKERS
    # One batch (a single tweet) runs where it was asked: no pool, no hand-over.
    ran_on.clear()
    parallel.encode(["just one tweet"])
    assert ran_on == [threading.current_thread().name]


def test_batch_workers_must_be_positive(onnx_cache: Path) -> None:
    with pytest.raises(ValueError, match="batch_workers must be >= 1"):
        OnnxTextEncoder(cache_dir=onnx_cache, batch_workers=0)


def test_the_serving_runtime_hands_its_batch_workers_to_the_encoder(
    pair: tuple[OnnxTextEncoder, OnnxTextEncoder],
) -> None:
    serial, _ = pair
    runtime = ServingRuntime("onnx", serial.cache_dir, threads=1, batch_workers=2)
    served = runtime.encoder(serial.name, "cpu", serial.fingerprint)
    assert served.fingerprint == serial.fingerprint  # the card's precision picks the graph
    assert served.batch_workers == 2
