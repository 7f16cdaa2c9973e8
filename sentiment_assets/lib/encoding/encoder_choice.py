"""Which encoder a process runs: the pipeline's (the graph its vectors, and so its models,
come from) and a serving process's (the graph a model card names)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sentiment_assets.lib.encoding.encoder import (
    TextEncoder,
    pick_device,
    workers_filling_cores,
)
from sentiment_assets.lib.encoding.encoder_precision import (
    DEFAULT_GATE,
    FP16,
    FP32,
    INT8,
    ONNX,
    TORCH,
    EncoderSpec,
    PrecisionRefused,
    QualityGate,
    check_precision,
    same_vectors,
    source_probe,
)
from sentiment_assets.lib.encoding.onnx_encoder import (
    CPU_BATCH_SIZE,
    CUDA_BATCH_SIZE,
    OnnxExportError,
    OnnxTextEncoder,
    use_onnx,
)

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingRuntime:
    """How a serving process runs transformer models: see `use_onnx` for `name`.

    Exports are cached in `cache_dir`; `threads` is ONNX Runtime's intra-op thread count
    (None = one per core) and `batch_workers` how many batches of one call an ONNX encoder
    or fine-tuned classifier runs side by side (a single text is one batch); under "auto" a
    failed export falls back to torch after telling `on_fallback` why. One runtime keeps the last sentence encoder it
    loaded: loading MiniLM takes seconds and ~100 MB, and consecutive embedding champions
    almost always share it, so a champion swap then costs only the small logistic-regression
    head.
    """

    name: str = "auto"
    cache_dir: Path | None = None
    threads: int | None = None
    batch_workers: int = 1
    on_fallback: Callable[[str], None] | None = None
    _encoders: dict = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def fallback(self, error: OnnxExportError) -> None:
        """Re-raise where ONNX was insisted on; otherwise report and let torch serve."""
        if self.name == "onnx":
            raise error
        if self.on_fallback is not None:
            self.on_fallback(str(error))

    def encoder(self, name: str, device: str | None, fingerprint: str | None) -> TextEncoder:
        """The sentence encoder `name` giving the vectors `fingerprint` names: the one
        already loaded when it matches, else a fresh load (the folder's weights may have
        changed). The fingerprint's precision picks the graph (`serving_encoder`)."""
        with self._lock:
            encoder = self._encoders.get((name, device))
            if encoder is None or not same_vectors(encoder.fingerprint, fingerprint):
                precision = EncoderSpec.parse(fingerprint).precision if fingerprint else FP32
                encoder = serving_encoder(name, device, self, precision)
                self._encoders.clear()
                self._encoders[name, device] = encoder
            return encoder


def serving_encoder(
    name: str, device: str | None, runtime: ServingRuntime, precision: str = FP32
) -> TextEncoder:
    """The sentence encoder a serving process should use for `name` at `precision`.

    The precision comes from the model card and is not negotiable: an int8 model is served
    by the int8 graph (on ONNX Runtime whatever `runtime` says; a graph refused by the gate
    raises), an fp16 one by torch autocast on CUDA (elsewhere it raises). Only fp32, which
    both runtimes compute alike, follows `runtime`.
    """
    if precision == INT8:
        return OnnxTextEncoder(
            name,
            cache_dir=runtime.cache_dir,
            threads=runtime.threads,
            precision=INT8,
            batch_workers=runtime.batch_workers,
        )
    if precision == FP16:
        return TextEncoder(name, device=device, precision=FP16)
    if use_onnx(runtime.name, device):
        try:
            return OnnxTextEncoder(
                name,
                cache_dir=runtime.cache_dir,
                threads=runtime.threads,
                batch_workers=runtime.batch_workers,
            )
        except OnnxExportError as error:
            runtime.fallback(error)
    return TextEncoder(name, device=device)


def card_runtime(fingerprint: str | None, cache_dir: Path | None) -> ServingRuntime:
    """A runtime that scores a card as it was trained: torch for a torch fingerprint (and
    for fingerprints written before runtimes were named), ONNX Runtime for an ONNX one
    wherever the CPU serves (an fp32 card on CUDA: torch fp32, the same vectors)."""
    trained_on = EncoderSpec.parse(fingerprint).runtime if fingerprint else TORCH
    return ServingRuntime("auto" if trained_on == ONNX else TORCH, cache_dir=cache_dir)


def pipeline_encoder(
    name: str,
    device: str | None,
    precision: str,
    cache_dir: Path | str | None,
    batch_size: int | None = None,
    threads: int | None = None,
    gate: QualityGate = DEFAULT_GATE,
    probe_source: str | None = None,
    batch_workers: int | None = None,
) -> TextEncoder:
    """The encoder the pipeline embeds (and so trains) with, for the precision setting.

    On CUDA: torch, fp32 ("auto", "fp32") or fp16 autocast ("fp16"). On the CPU: ONNX
    Runtime; "auto" takes the int8 graph when it passes `gate` and otherwise the fp32 graph,
    logging why; "int8" insists (a refused graph raises `PrecisionRefused`: the user asked
    for int8, and quietly giving fp32 vectors would change every fingerprint downstream);
    "fp32" takes the fp32 graph. The gate judges int8 on the first labelled tweets of
    `probe_source` (the pipeline's SENTIMENT_SOURCE) when it has enough, else on the
    synthetic probe set. A failed fp32 export falls back to torch fp32, logged. The
    encoder's `precision_note` says why it is not what was asked for, when it is not.

    `batch_size` None: 16 on the CPU, 32 on CUDA. On the CPU each batch runs on `threads`
    intra-op threads (None: one) and `batch_workers` batches run side by side (None: as many
    as fill the cores). One thread per batch and one batch per core was measured here
    (2,000 real tweets, 2 cores) at 1.2x the throughput of one batch on every core, int8 and
    fp32 alike: a tweet batch is too small to split across cores without waiting.
    """
    check_precision(precision)
    on_cpu = pick_device(device) == "cpu"
    if not on_cpu:
        if precision == INT8:
            raise ValueError("int8 is an ONNX Runtime CPU graph: on CUDA use fp32 or fp16")
        return TextEncoder(
            name,
            device=device,
            batch_size=batch_size or CUDA_BATCH_SIZE,
            precision=FP16 if precision == FP16 else FP32,
        )
    if precision == FP16:
        raise ValueError("fp16 runs on CUDA only; on the CPU use auto, fp32 or int8")
    batch_size = batch_size or CPU_BATCH_SIZE
    threads = threads or 1
    if batch_workers is None:
        batch_workers = workers_filling_cores(threads)
    onnx_options = {"threads": threads, "batch_workers": batch_workers}
    note = None
    try:
        if precision in ("auto", INT8):
            probe = source_probe(probe_source) if probe_source else None
            try:
                return OnnxTextEncoder(
                    name,
                    cache_dir,
                    batch_size,
                    precision=INT8,
                    gate=gate,
                    probe=probe,
                    **onnx_options,
                )
            except PrecisionRefused as refused:
                if precision == INT8:
                    raise
                note = f"{refused}; using the fp32 graph"
                _log.warning(note)
        encoder: TextEncoder = OnnxTextEncoder(name, cache_dir, batch_size, **onnx_options)
    except OnnxExportError as error:
        if precision == INT8:
            raise
        note = f"{error}; using torch fp32"
        _log.warning(note)
        encoder = TextEncoder(name, device="cpu", batch_size=batch_size)
    encoder.precision_note = note
    return encoder
