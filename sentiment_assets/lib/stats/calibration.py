"""Calibration of P(positive): temperature scaling, expected calibration error, reliability.

Temperature scaling divides the logit of P(positive) by one fitted number T. It is chosen over
Platt scaling (a*logit + b) because without the offset b it leaves every decision at the 0.5
threshold where it was: the calibrated version predicts the same labels as the version the
promotion gate measured and the app serves, only its confidence changes. One parameter also
fits reliably on the few hundred holdout rows of a small month, where Platt's two can chase
noise in the class balance.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize_scalar

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TEMPERATURE_SCALING = "temperature"
UNCALIBRATED = "none"
# Below this many labelled holdout rows a fitted temperature says more about the sample
# than about the model: the version keeps T = 1 (identity) and says so.
MIN_CALIBRATION_ROWS = 30
# Calibration needs scores on the holdout, which for the fine-tuned transformer means a
# forward pass per row: a seeded subsample bounds that on very large windows, and one
# parameter is pinned down long before this many rows.
MAX_CALIBRATION_ROWS = 20_000
RELIABILITY_BINS = 10
# Searched in log space: T below 0.05 or above 20 would mean a broken model, not a
# miscalibrated one.
LOG_T_BOUNDS = (np.log(0.05), np.log(20.0))
_EPS = 1e-7


def _logit(proba: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(proba, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@dataclass(frozen=True)
class Calibration:
    """How a version's raw P(positive) becomes a calibrated one; stored on its model card."""

    method: str = UNCALIBRATED
    temperature: float = 1.0
    n: int = 0
    ece_before: float | None = None
    ece_after: float | None = None

    def apply(self, proba: np.ndarray) -> np.ndarray:
        proba = np.asarray(proba, dtype=np.float64)
        if self.method == UNCALIBRATED or self.temperature == 1.0:
            return proba
        return _sigmoid(_logit(proba) / self.temperature)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> Calibration:
        """A card's calibration; a card written before calibration existed gives identity."""
        return cls(**data) if data else cls()


def _nll(log_t: float, logits: np.ndarray, labels: np.ndarray) -> float:
    z = logits / np.exp(log_t)
    # log(1 + e^z) - y*z, written stably for large |z|.
    return float(np.mean(np.logaddexp(0.0, z) - labels * z))


def fit_temperature(proba: np.ndarray, labels: np.ndarray) -> Calibration:
    """Temperature minimising the log-loss of `labels` under P(positive) = `proba`.

    Returns identity (method "none") when there are fewer than MIN_CALIBRATION_ROWS rows.
    """
    proba = np.asarray(proba, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    before = expected_calibration_error(proba, labels) if len(labels) else None
    if len(labels) < MIN_CALIBRATION_ROWS:
        return Calibration(UNCALIBRATED, 1.0, len(labels), before, before)
    logits = _logit(proba)
    result = minimize_scalar(_nll, bounds=LOG_T_BOUNDS, args=(logits, labels), method="bounded")
    calibration = Calibration(TEMPERATURE_SCALING, float(np.exp(result.x)), len(labels))
    after = expected_calibration_error(calibration.apply(proba), labels)
    return Calibration(calibration.method, calibration.temperature, len(labels), before, after)


def calibration_sample(n: int, seed: int = 0) -> np.ndarray:
    """Indices of the rows to calibrate on: all of them, or a seeded MAX_CALIBRATION_ROWS."""
    if n <= MAX_CALIBRATION_ROWS:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, MAX_CALIBRATION_ROWS, replace=False))


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    n: int
    mean_predicted: float | None
    observed_positive: float | None


def reliability_bins(
    proba: np.ndarray, labels: np.ndarray, bins: int = RELIABILITY_BINS
) -> list[ReliabilityBin]:
    """Equal-width bins of P(positive): mean predicted against the observed positive rate."""
    proba = np.asarray(proba, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # The last bin is closed on the right so that P = 1.0 is counted.
    index = np.clip(np.searchsorted(edges, proba, side="right") - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        out.append(
            ReliabilityBin(
                float(edges[b]),
                float(edges[b + 1]),
                count,
                float(proba[members].mean()) if count else None,
                float(labels[members].mean()) if count else None,
            )
        )
    return out


def expected_calibration_error(
    proba: np.ndarray, labels: np.ndarray, bins: int = RELIABILITY_BINS
) -> float:
    """ECE over equal-width bins of P(positive): the row-weighted mean of
    |mean predicted - observed positive rate| per bin."""
    total = len(labels)
    if total == 0:
        raise ValueError("ECE of an empty set")
    return float(
        sum(
            b.n / total * abs(b.mean_predicted - b.observed_positive)
            for b in reliability_bins(proba, labels, bins)
            if b.n
        )
    )


def reliability_json(before: list[ReliabilityBin], after: list[ReliabilityBin]) -> str:
    """Both diagrams' bins as one JSON text: what metrics.training_runs.reliability holds."""
    return json.dumps({"before": [asdict(b) for b in before], "after": [asdict(b) for b in after]})


def bins_from_json(text: str) -> tuple[list[ReliabilityBin], list[ReliabilityBin]]:
    data = json.loads(text)
    return (
        [ReliabilityBin(**b) for b in data["before"]],
        [ReliabilityBin(**b) for b in data["after"]],
    )


def reliability_figure(
    before: list[ReliabilityBin],
    after: list[ReliabilityBin],
    calibration: Calibration,
    title: str,
) -> Figure:
    """The reliability diagram: observed positive rate against mean P(positive) per bin,
    before and after calibration, with each bin's row count below."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2, 5.6), layout="constrained")
    top, bottom = figure.subplots(
        2, 1, gridspec_kw={"height_ratios": [3, 1]}, sharex=True, squeeze=True
    )
    top.plot([0, 1], [0, 1], ls="--", color="tab:gray", lw=1, label="perfectly calibrated")
    for bins, name, colour, ece in (
        (before, "raw", "tab:orange", calibration.ece_before),
        (after, f"T = {calibration.temperature:.2f}", "tab:blue", calibration.ece_after),
    ):
        filled = [b for b in bins if b.n]
        label = f"{name} (ECE {ece:.3f})" if ece is not None else name
        top.plot(
            [b.mean_predicted for b in filled],
            [b.observed_positive for b in filled],
            marker="o",
            color=colour,
            label=label,
        )
    top.set_ylabel("observed positive rate")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=8)
    top.set_title(title, fontsize=10, loc="left")
    centres = [(b.lower + b.upper) / 2 for b in after]
    width = after[0].upper - after[0].lower if after else 0.1
    bottom.bar(centres, [b.n for b in after], width=0.9 * width, color="tab:blue", alpha=0.6)
    bottom.set_ylabel("rows")
    bottom.set_xlabel("P(positive), calibrated bins")
    return figure
