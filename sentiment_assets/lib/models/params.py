"""The model families' hyperparameters: what a card records and the Launchpad edits."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class LogRegParams:
    C: float = 1.0
    max_iter: int = 2000
    seed: int = 0
    # TF-IDF only: word uni+bigrams catch negation ("not good"); min_df drops one-off noise.
    ngram_max: int = 2
    min_df: int = 2
    max_features: int = 100_000

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FinetuneParams:
    """Fine-tuning knobs. The defaults are the pipeline's: a short CPU run (about a minute
    for a demo month); raise them, or train on a GPU, for real quality."""

    epochs: int = 1
    # Hard cap on optimizer steps; training stops when reached even mid-epoch.
    max_steps: int | None = None
    # CPU budget: larger inputs are subsampled deterministically, stratified by label.
    max_train_samples: int | None = 800
    batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 48
    seed: int = 0
    # Freeze the embeddings and the first N transformer layers (0 = train everything).
    freeze_layers: int = 2
    # None: CUDA when available, else CPU.
    device: str | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError("epochs must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("max_steps must be >= 1 or None")
        if self.max_train_samples is not None and self.max_train_samples < 2:
            raise ValueError("max_train_samples must be >= 2 or None")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError("warmup_ratio must be in [0, 1)")
        if self.max_length < 2:
            raise ValueError("max_length must be >= 2")
        if self.freeze_layers < 0:
            raise ValueError("freeze_layers must be >= 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneParams:
        """Rebuild from JSON, ignoring keys a newer/older version may have added."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
