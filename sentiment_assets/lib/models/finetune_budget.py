"""How much the fine-tuned family trains on: the whole window on CUDA, a time budget on CPU.

The CPU budget is converted into a number of sample passes (tweets x epochs) with a
*calibrated* cost per pass, not with a rate measured during the run: a measured rate moves
with the machine's load (two cores shared with other work run 2x slower or more), so two runs
on the same data would train on different samples and give different metrics, even with the
rate rounded to a coarse grid (a run near a grid boundary flips). With a calibrated cost the
size depends on the inputs and the settings alone: same data + same seed = same model. What
the run really measured is recorded beside the size (`measured_passes_per_second`), so a
machine that is much slower or faster than the calibration shows on the card and can be
recalibrated (FinetuneParams.cpu_passes_per_second).

Within the budget, more distinct tweets beat more epochs over fewer: the window is used
whole when it fits once, with extra epochs (up to `budget_max_epochs`) only while every pass
still fits; otherwise a label-stratified subsample of the size that fits is trained once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from sentiment_assets.lib.models.params import FinetuneParams

FIXED = "fixed"
WHOLE_WINDOW = "whole window"
CPU_BUDGET = "cpu budget"


@dataclass(frozen=True)
class TrainingSize:
    """What one fit trains on: at most `samples` tweets (None: all offered), `epochs` times."""

    samples: int | None
    epochs: int
    basis: str
    # Seconds the calibrated cost predicts for the passes (CPU budget only).
    predicted_seconds: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def training_size(offered: int, params: FinetuneParams, device_type: str) -> TrainingSize:
    """The size of a fit on `offered` labelled tweets on a device of `device_type`."""
    if offered < 1:
        raise ValueError("no training data")
    if params.cpu_budget_seconds is None:
        return TrainingSize(params.max_train_samples, params.epochs, FIXED)
    if device_type == "cuda":
        return TrainingSize(None, params.epochs, WHOLE_WINDOW)
    passes = math.floor(params.cpu_budget_seconds * params.cpu_passes_per_second)
    if passes < offered:
        samples, epochs = max(passes, 2), 1
    else:
        samples, epochs = offered, max(1, min(params.budget_max_epochs, passes // offered))
    predicted = samples * epochs / params.cpu_passes_per_second
    return TrainingSize(samples, epochs, CPU_BUDGET, round(predicted, 1))
