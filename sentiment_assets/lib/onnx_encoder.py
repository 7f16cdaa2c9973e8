"""The sentence encoder on ONNX Runtime, for low-latency CPU serving.

A single tweet is a tiny workload: in eager torch most of its ~10 ms goes to per-operator
dispatch, not arithmetic. ONNX Runtime runs the same graph with fused attention and
LayerNorm kernels and almost no per-call overhead, which is what brings one-tweet latency
under the app's budget. The graph is exported once from the torch model (pooling and
normalisation included), checked against torch on probe texts, and cached on disk next to a
small manifest; later loads only hash the file and open a session.

The embeddings match torch's to ~1e-6 (the export refuses anything worse than
`PARITY_TOLERANCE`), so an ONNX encoder reports the same fingerprint as the torch one and
serves models trained on torch embeddings. Training and the embedding asset keep torch, which
also covers CUDA.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sentiment_assets.lib.encoder import (
    DEFAULT_ENCODER,
    TextEncoder,
    load_encoder_model,
    pool_embeddings,
)

# Largest tolerated |difference| between an ONNX and a torch embedding component (embeddings
# are unit vectors with components of ~0.05): far below anything a classifier could notice.
PARITY_TOLERANCE = 1e-4
PROBE_TEXTS = (
    "i love this so much, best day ever!",
    "ugh my phone died again and i missed the bus",
    "ok",
    "not bad at all",
    "watching the game tonight with @user http://example.com #sunday",
)
_OPSET = 18
_EXPORT_FORMAT = 1  # bump when the exported graph's inputs/outputs change


class OnnxExportError(RuntimeError):
    """The encoder could not be exported, or the export disagrees with torch."""


def onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class OnnxTextEncoder(TextEncoder):
    """`TextEncoder` whose forward pass runs on ONNX Runtime (CPU).

    Tokenisation, length bucketing and the fingerprint are inherited, so both encoders
    produce interchangeable embeddings for the same texts.
    """

    runtime = "onnxruntime"

    def __init__(
        self,
        name: str = DEFAULT_ENCODER,
        cache_dir: Path | str | None = None,
        batch_size: int = 32,
        max_length: int = 128,
        threads: int | None = None,
    ) -> None:
        if threads is not None and threads < 1:
            raise ValueError("threads must be >= 1 or None")
        self._cache_dir = Path(cache_dir) if cache_dir is not None else Path(tempfile.gettempdir())
        self._threads = threads
        super().__init__(name, device="cpu", batch_size=batch_size, max_length=max_length)

    def _load_model(self) -> int:
        import onnxruntime as ort

        model_path = ensure_exported(self)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.inter_op_num_threads = 1
        if self._threads is not None:
            options.intra_op_num_threads = self._threads
        self._session = ort.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        self.model_path = model_path
        return int(self._session.get_outputs()[0].shape[-1])

    def _embed_batch(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)}
        return self._session.run(None, feeds)[0].astype(np.float32, copy=False)


def export_path(encoder: TextEncoder, cache_dir: Path) -> Path:
    """Where the graph for this encoder (and this torch) lives in the cache."""
    import torch

    key = f"{encoder.fingerprint}|torch={torch.__version__}|format={_EXPORT_FORMAT}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in encoder.name)[-40:]
    return cache_dir / f"{stem}-{digest}.onnx"


def ensure_exported(encoder: OnnxTextEncoder) -> Path:
    """The cached graph for `encoder`, exporting (and verifying) it on first use."""
    path = export_path(encoder, encoder._cache_dir)
    manifest = path.with_suffix(".json")
    if path.is_file() and manifest.is_file():
        recorded = json.loads(manifest.read_text()).get("sha256")
        if recorded == _sha256(path):
            return path
        # A truncated or edited file is rebuilt rather than trusted.
    export_encoder(encoder, path)
    return path


def export_encoder(encoder: TextEncoder, path: Path) -> dict:
    """Export `encoder` (torch weights + pooling) to `path`, verify it, and write a manifest.

    The file appears atomically, and only after it matched torch on `PROBE_TEXTS`; a
    mismatch raises `OnnxExportError` and leaves nothing behind.
    """
    import onnxruntime as ort
    import torch

    model = load_encoder_model(encoder.path)
    pooled = _pooled_module(model, encoder._pooling, encoder._normalize).eval()
    batch = encoder._tokenizer(
        list(PROBE_TEXTS),
        padding=True,
        truncation=True,
        max_length=encoder.max_length,
        return_tensors="pt",
        return_token_type_ids=False,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staging_name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".onnx", dir=path.parent)
    os.close(fd)
    staging = Path(staging_name)
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            # The tracer warns about Python-level branches in the attention code; they depend
            # on shapes the exported graph keeps dynamic, which the parity check confirms.
            warnings.simplefilter("ignore")
            expected = pooled(batch["input_ids"], batch["attention_mask"]).numpy()
            torch.onnx.export(
                pooled,
                (batch["input_ids"], batch["attention_mask"]),
                str(staging),
                input_names=["input_ids", "attention_mask"],
                output_names=["sentence_embedding"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "sequence"},
                    "attention_mask": {0: "batch", 1: "sequence"},
                    "sentence_embedding": {0: "batch"},
                },
                opset_version=_OPSET,
                dynamo=False,
            )
        session = ort.InferenceSession(str(staging), providers=["CPUExecutionProvider"])
        feeds = {k: batch[k].numpy().astype(np.int64) for k in ("input_ids", "attention_mask")}
        got = session.run(None, feeds)[0]
        error = float(np.abs(got - expected).max())
        if not np.isfinite(error) or error > PARITY_TOLERANCE:
            raise OnnxExportError(
                f"ONNX export of {encoder.fingerprint} differs from torch by {error:.2e} "
                f"(tolerance {PARITY_TOLERANCE:.0e}); serve with the torch runtime instead"
            )
        record = {
            "fingerprint": encoder.fingerprint,
            "torch": torch.__version__,
            "onnxruntime": ort.__version__,
            "opset": _OPSET,
            "max_abs_difference_vs_torch": error,
            "sha256": _sha256(staging),
        }
        # mkstemp makes the file private; the cache is shared with e.g. a container's user.
        os.chmod(staging, 0o644)
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    manifest = path.with_suffix(".json")
    staged_manifest = manifest.with_name(f".{manifest.name}.{os.getpid()}")
    staged_manifest.write_text(json.dumps(record, indent=2, sort_keys=True))
    os.replace(staged_manifest, manifest)
    return record


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pooled_module(model, pooling: str, normalize: bool):
    """The transformer plus pooling as one module, so the exported graph returns embeddings."""
    import torch

    class PooledEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask)[0]
            return pool_embeddings(hidden, attention_mask, pooling, normalize)

    return PooledEncoder()


RUNTIMES = ("auto", "onnx", "torch")


def serving_encoder(
    name: str,
    device: str | None,
    runtime: str = "auto",
    cache_dir: Path | str | None = None,
    threads: int | None = None,
    on_fallback: Callable[[str], None] | None = None,
) -> TextEncoder:
    """The encoder a serving process should use for `name`.

    "onnx" insists on ONNX Runtime (CPU only), "torch" never uses it, and "auto" takes ONNX
    Runtime on the CPU when it is installed and the export verifies, torch otherwise (on a
    GPU, or after telling `on_fallback` why ONNX was not used).
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"encoder runtime must be one of {RUNTIMES}, got {runtime!r}")
    from sentiment_assets.lib.encoder import pick_device

    on_cpu = pick_device(device) == "cpu"
    if runtime == "onnx" and not on_cpu:
        raise ValueError(f"the onnx encoder runtime runs on the CPU only, not on {device!r}")
    if runtime == "onnx" or (runtime == "auto" and on_cpu and onnx_available()):
        try:
            return OnnxTextEncoder(name, cache_dir=cache_dir, threads=threads)
        except OnnxExportError as error:
            if runtime == "onnx":
                raise
            if on_fallback is not None:
                on_fallback(str(error))
    return TextEncoder(name, device=device)
