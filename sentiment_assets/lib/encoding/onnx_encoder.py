"""Transformer models on ONNX Runtime, for low-latency CPU serving.

A single tweet is a tiny workload: in eager torch most of its ~10 ms goes to per-operator
dispatch, not arithmetic. ONNX Runtime runs the same graph with fused attention and
LayerNorm kernels and almost no per-call overhead, which is what brings one-tweet latency
under the app's budget. Each graph is exported once from the torch model, checked against
torch on probe texts, and cached on disk next to a small manifest; later loads only hash the
file and open a session.

Two graphs are served this way: the sentence encoder (pooling and normalisation included)
for the embedding family, and a fine-tuned classifier (its probability of positive). Both
match torch to ~1e-6 (an export worse than `PARITY_TOLERANCE` is refused), so an fp32 ONNX
encoder serves models trained on torch fp32 embeddings and the other way round.

The sentence encoder also has an int8 graph: the fp32 one with its matrix products done in
integers, activation scales calibrated or per token, never per batch (lib/int8_graph), about
1.9x as fast as fp32 on the CPU and the same vector for a tweet (to float rounding) whatever
batch it is in. It is measured once, when it is made, against the fp32 graph on the quality
gate's probe set (lib/encoder_precision); the measurements live in its manifest, and a graph
below the gate is never used. The pipeline (`pipeline_encoder`: tweet_embeddings, hence
training) runs the same graphs as serving, and the fingerprint names the graph, so a model is
served by the graph its training vectors came from (`encoder_choice.ServingRuntime`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from sentiment_assets.lib.core.atomic import replacing, write_text
from sentiment_assets.lib.encoding.encoder import (
    DEFAULT_ENCODER,
    TextEncoder,
    load_encoder_model,
    pick_device,
    pool_embeddings,
)
from sentiment_assets.lib.encoding.encoder_precision import (
    DEFAULT_GATE,
    FP32,
    INT8,
    ONNX,
    EncoderSpec,
    GateMeasurement,
    GateProbe,
    PrecisionRefused,
    QualityGate,
    measure_gate,
    probe_set,
)

# Largest tolerated |difference| between an ONNX and a torch output component (embedding
# components are ~0.05, probabilities are in [0, 1]): far below anything that could matter.
PARITY_TOLERANCE = 1e-4
PROBE_TEXTS = (
    "i love this so much, best day ever!",
    "ugh my phone died again and i missed the bus",
    "ok",
    "not bad at all",
    "watching the game tonight with @user http://example.com #sunday",
)
RUNTIMES = ("auto", "onnx", "torch")
# The pipeline's batch sizes (`pipeline_encoder`): on the CPU small batches, one per core.
CPU_BATCH_SIZE = 16
CUDA_BATCH_SIZE = 32
_OPSET = 18
_EXPORT_FORMAT = 2  # bump when an exported graph's inputs, outputs or structure change
_INPUTS = ("input_ids", "attention_mask")
# How the int8 graph is made from the fp32 one (lib/int8_graph). Part of its cache key, so a
# change re-makes (and re-gates) it, and of the int8 fingerprint, so vectors of two recipes
# never meet in the embedding cache or in one model.
INT8_RECIPE = "int8-calibrated-smoothquant-per-token-gelu"
# The fixed texts (the synthetic probe's first) that calibrate the smoothing scales.
CALIBRATION_TEXTS = 400

_log = logging.getLogger(__name__)


class OnnxExportError(RuntimeError):
    """A model could not be exported, or the export disagrees with torch."""


def onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def use_onnx(runtime: str, device: str | None) -> bool:
    """Whether a model should be served on ONNX Runtime under `runtime` on `device`.

    "onnx" insists (CPU only), "torch" never, "auto" whenever the CPU serves and
    onnxruntime is installed.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    on_cpu = pick_device(device) == "cpu"
    if runtime == "onnx" and not on_cpu:
        raise ValueError(f"the onnx runtime runs on the CPU only, not on {device!r}")
    return runtime == "onnx" or (runtime == "auto" and on_cpu and onnx_available())


# ------------------------------------------------------------------------- the encoder
class OnnxTextEncoder(TextEncoder):
    """`TextEncoder` whose forward pass runs on ONNX Runtime (CPU).

    Tokenisation and length bucketing are inherited. `precision` "fp32" runs the exported
    graph (the torch encoder's vectors to 1e-4), "int8" its quantised copy, made and gated on
    first use; an int8 graph below `gate` raises `PrecisionRefused`. The fingerprint names
    the precision (`...|onnx-fp32`, `...|onnx-int8`). `probe` judges the int8 graph in place
    of the synthetic probe set measured when the graph was made (see `_probe_measurement`).
    `batch_workers` runs that many batches of an `encode` call side by side
    (`InferenceSession.run` is thread-safe and releases the GIL), each exactly as alone.
    """

    runtime = "onnxruntime"
    # What the quality gate measured for the int8 graph in use (None for fp32).
    gate_measurement: GateMeasurement | None = None

    def __init__(
        self,
        name: str = DEFAULT_ENCODER,
        cache_dir: Path | str | None = None,
        batch_size: int = 32,
        max_length: int = 128,
        threads: int | None = None,
        precision: str = FP32,
        gate: QualityGate = DEFAULT_GATE,
        probe: GateProbe | None = None,
        batch_workers: int = 1,
    ) -> None:
        if threads is not None and threads < 1:
            raise ValueError("threads must be >= 1 or None")
        if batch_workers < 1:
            raise ValueError("batch_workers must be >= 1")
        self.cache_dir = graph_cache_dir(cache_dir)
        self._threads = threads
        self._gate = gate
        self._probe = probe
        self.batch_workers = batch_workers
        super().__init__(
            name, device="cpu", batch_size=batch_size, max_length=max_length, precision=precision
        )

    @staticmethod
    def precisions(device: str) -> tuple[str, ...]:
        return (FP32, INT8)

    @property
    def spec(self) -> EncoderSpec:
        recipe = INT8_RECIPE if self.precision == INT8 else None
        return replace(super().spec, runtime=ONNX, recipe=recipe)

    def _load_model(self) -> int:
        path = graph_path(self.cache_dir, self.name, self.base_fingerprint)
        if not is_cached(path):
            export_encoder(self, path)
        if self.precision == INT8:
            path = self._int8_graph(fp32_path=path)
        self._session = open_session(path, self._threads)
        self.model_path = path
        return int(self._session.get_outputs()[0].shape[-1])

    def _int8_graph(self, fp32_path: Path) -> Path:
        """The int8 graph's path once it is made and has passed the gate (else raises)."""
        path = graph_path(self.cache_dir, self.name, self.spec.graph)
        if is_cached(path):
            manifest = read_manifest(path)
        else:
            self._open_for_gate(fp32_path)
            manifest = quantize_encoder(self, path)
        self.gate_measurement = GateMeasurement(**manifest["gate"])
        if self._probe is not None:
            self.gate_measurement = self._probe_measurement(path, manifest["sha256"], fp32_path)
        refusal = self._gate.verdict(self.gate_measurement)
        if refusal is not None:
            raise PrecisionRefused(
                f"the int8 graph of {self.base_fingerprint} fails the quality gate "
                f"({refusal}; {self.gate_measurement.heldout_texts} held-out of "
                f"{self.gate_measurement.probe_texts} probe texts, "
                f"{self.gate_measurement.probe})"
            )
        return path

    def _open_for_gate(self, fp32_path: Path) -> None:
        # The gate encodes probe texts through the fp32 graph before __init__ is done.
        self._session = open_session(fp32_path, self._threads)
        self.model_path = fp32_path
        self.dim = int(self._session.get_outputs()[0].shape[-1])

    def _probe_measurement(self, path: Path, int8_sha256: str, fp32_path: Path) -> GateMeasurement:
        """The gate measured on `self._probe`: once per (int8 graph, probe), kept in a small
        file beside the graph, since every process start asks again."""
        record_path = path.with_name(f"{path.stem}.probe-{self._probe.digest[:16]}.json")
        if record_path.is_file():
            record = json.loads(record_path.read_text())
            if record.get("int8_sha256") == int8_sha256:
                return GateMeasurement(**record["measurement"])
        self._open_for_gate(fp32_path)
        measured = measure_gate(
            self.encode_with(open_session(fp32_path, GATE_THREADS), GATE_BATCH_SIZE),
            self.encode_with(open_session(path, GATE_THREADS), GATE_BATCH_SIZE),
            list(self._probe.texts),
            np.asarray(self._probe.labels, dtype=int),
            train=self._probe.train,
            probe=self._probe.name,
        )
        record = {"int8_sha256": int8_sha256, "measurement": measured.as_dict()}
        write_text(record_path, json.dumps(record, indent=2, sort_keys=True))
        _log.info("int8 graph %s judged on %s: %s", path.name, self._probe.name, measured)
        return measured

    def encode_with(
        self, session, batch_size: int | None = None
    ) -> Callable[[list[str]], np.ndarray]:
        """`encode` through another ONNX Runtime session of the same graph's inputs, in
        batches of `batch_size` (default: this encoder's)."""

        def encode(texts: list[str]) -> np.ndarray:
            current = self._session, self.batch_size
            self._session, self.batch_size = session, batch_size or self.batch_size
            try:
                return self.encode(texts)
            finally:
                self._session, self.batch_size = current

        return encode

    def _embed_batch(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)}
        return self._session.run(None, feeds)[0].astype(np.float32, copy=False)


def export_encoder(encoder: TextEncoder, path: Path) -> dict:
    """Export `encoder` (torch weights + pooling) to `path`, verified; returns the manifest."""
    import torch

    # Eager attention exports as scores + mask, Softmax: SDPA's export adds a Where and an
    # IsNaN pass over every score tensor (the int8 graph ran 6% faster without them).
    model = load_encoder_model(encoder.path, attention="eager")
    pooling, normalize = encoder._pooling, encoder._normalize

    class PooledEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask)[0]
            return pool_embeddings(hidden, attention_mask, pooling, normalize)

    batch = encoder._tokenizer(
        list(PROBE_TEXTS),
        padding=True,
        truncation=True,
        max_length=encoder.max_length,
        return_tensors="pt",
        return_token_type_ids=False,
    )
    inputs = (batch["input_ids"], batch["attention_mask"])
    owner = {"kind": "encoder", "encoder": encoder.name}
    return export_verified(PooledEncoder().eval(), inputs, path, encoder.base_fingerprint, owner)


# The gate runs both graphs on one thread, in batches of a fixed size: who first loads a graph
# must not decide its verdict. (With one activation scale per batch, an earlier int8 recipe
# measured agreement 0.9917 in batches of 32 and 0.9876, refused, in batches of 16; scales
# that never depend on the batch leave only float rounding to padding and threads.)
GATE_THREADS = 1
GATE_BATCH_SIZE = 32


def quantize_encoder(encoder: OnnxTextEncoder, path: Path) -> dict:
    """Make `encoder`'s int8 graph at `path` from its loaded fp32 graph, and measure the
    quality gate on the synthetic probe set.

    The measurements go into the manifest whether or not they pass: the gate is computed
    once per graph, and each load judges them against its thresholds.
    """
    import onnxruntime as ort

    from sentiment_assets.lib.encoding.int8_graph import activation_ranges, quantize_graph

    calibration = probe_set()[0][:CALIBRATION_TEXTS]
    feeds = []
    for start in range(0, len(calibration), GATE_BATCH_SIZE):
        batch = encoder._tokenizer(
            calibration[start : start + GATE_BATCH_SIZE],
            padding=True,
            truncation=True,
            max_length=encoder.max_length,
            return_tensors="np",
            return_token_type_ids=False,
        )
        feeds.append({name: batch[name].astype(np.int64) for name in _INPUTS})
    with replacing(path, suffix=".onnx") as staging:
        rewrite = quantize_graph(
            encoder.model_path, staging, activation_ranges(encoder.model_path, feeds)
        )
        texts, labels = probe_set()
        measured = measure_gate(
            encoder.encode_with(open_session(encoder.model_path, GATE_THREADS), GATE_BATCH_SIZE),
            encoder.encode_with(open_session(staging, GATE_THREADS), GATE_BATCH_SIZE),
            texts,
            labels,
        )
        record = {
            "kind": "encoder",
            "encoder": encoder.name,
            "identity": encoder.spec.graph,
            "quantized_from": encoder.model_path.name,
            "recipe": INT8_RECIPE,
            "rewrite": rewrite,
            "calibration_texts": len(calibration),
            "onnxruntime": ort.__version__,
            "gate": measured.as_dict(),
            "sha256": sha256_of(staging),
        }
    write_text(path.with_suffix(".json"), json.dumps(record, indent=2, sort_keys=True))
    _log.info("made int8 graph %s: %s", path.name, measured)
    return record


# ------------------------------------------------------------------- shared machinery
# Also used by the fine-tuned classifier's graph (lib/models/onnx_finetuned.py).
def export_verified(
    module, inputs: tuple, path: Path, identity: str, owner: dict[str, str] | None = None
) -> dict:
    """Export `module(*inputs)` to `path` and keep it only if ONNX Runtime matches torch.

    The file appears atomically, after the check, with a manifest holding its sha256 and
    `owner` (what the graph was made from: see `cache_pruning`); a mismatch raises
    `OnnxExportError` and leaves nothing behind.
    """
    import onnxruntime as ort
    import torch

    output = "output"
    with replacing(path, suffix=".onnx") as staging:
        with warnings.catch_warnings(), torch.inference_mode():
            # The tracer warns about Python-level branches in the attention code; they depend
            # on shapes the exported graph keeps dynamic, which the parity check confirms.
            warnings.simplefilter("ignore")
            expected = module(*inputs).numpy()
            torch.onnx.export(
                module,
                inputs,
                str(staging),
                input_names=list(_INPUTS),
                output_names=[output],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "sequence"},
                    "attention_mask": {0: "batch", 1: "sequence"},
                    output: {0: "batch"},
                },
                opset_version=_OPSET,
                dynamo=False,
            )
        session = ort.InferenceSession(str(staging), providers=["CPUExecutionProvider"])
        feeds = {
            name: tensor.numpy().astype(np.int64)
            for name, tensor in zip(_INPUTS, inputs, strict=True)
        }
        error = float(np.abs(session.run(None, feeds)[0] - expected).max())
        if not np.isfinite(error) or error > PARITY_TOLERANCE:
            raise OnnxExportError(
                f"ONNX export of {identity} differs from torch by {error:.2e} "
                f"(tolerance {PARITY_TOLERANCE:.0e}); serve with the torch runtime instead"
            )
        record = {
            **(owner or {}),
            "identity": identity,
            "torch": torch.__version__,
            "onnxruntime": ort.__version__,
            "opset": _OPSET,
            "max_abs_difference_vs_torch": error,
            "sha256": sha256_of(staging),
        }
    write_text(path.with_suffix(".json"), json.dumps(record, indent=2, sort_keys=True))
    return record


def graph_path(cache_dir: Path, name: str, identity: str) -> Path:
    """Where the graph for `identity` (under this torch) lives in the cache."""
    import torch

    key = f"{identity}|torch={torch.__version__}|format={_EXPORT_FORMAT}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[-40:]
    return cache_dir / f"{stem}-{digest}.onnx"


def graph_cache_dir(value: Path | str | None) -> Path:
    """Where exports go; without a configured folder, the system's temp folder."""
    return Path(value) if value is not None else Path(tempfile.gettempdir())


def is_cached(path: Path) -> bool:
    """True when `path` and its manifest exist and the file still has the recorded hash.

    A truncated or edited file is rebuilt rather than trusted.
    """
    return graph_problem(path) is None


def graph_problem(path: Path) -> str | None:
    """Why the cached graph at `path` cannot be used (None when it can): missing, without a
    readable manifest, or not the bytes the manifest recorded (truncated or edited)."""
    if not path.is_file():
        return "no such graph"
    if not path.with_suffix(".json").is_file():
        return "no manifest beside it"
    try:
        recorded = read_manifest(path).get("sha256")
    except (OSError, ValueError, AttributeError) as error:
        return f"unreadable manifest ({error})"
    if recorded != sha256_of(path):
        return (
            f"{path.stat().st_size} bytes whose sha256 is not the manifest's: truncated or edited"
        )
    return None


def cached_graphs(cache_dir: Path) -> list[Path]:
    """The graphs in the cache (not the hidden staging files of an export in progress)."""
    if not cache_dir.is_dir():
        return []
    return sorted(p for p in cache_dir.glob("*.onnx") if not p.name.startswith("."))


def read_manifest(path: Path) -> dict:
    return json.loads(path.with_suffix(".json").read_text())


def open_session(path: Path, threads: int | None):  # -> onnxruntime.InferenceSession
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.inter_op_num_threads = 1
    if threads is not None:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
