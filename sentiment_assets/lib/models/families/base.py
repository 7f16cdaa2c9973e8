"""What a model family is, and the one registry of them.

A family is everything the platform needs to know about one kind of model: what it reads
(raw text, or the encoder's stored vectors), when a retrain trains it (in the fast first run
or the follow-up), how it turns a run's knobs into its parameters, how it fits, what it
searches when tuned, what it logs, and how its bundle's weights are written and read back.
Training, tuning, serving, the retrain policy and promotion ask the registry, never a name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    import optuna

    from sentiment_assets.lib.encoding.encoder_choice import ServingRuntime
    from sentiment_assets.lib.models.training import FitResult

# Called with {"step", "total_steps", "loss"} as a family that trains in steps goes along.
Progress = Callable[[dict], None]
# A tuning trial's score: (optuna trial, the parameters it tries) -> validation score.
Objective = Callable[["optuna.Trial", dict[str, Any]], float]


@dataclass(frozen=True)
class TrainingRows:
    """The labelled rows a family fits on; the `holdout` rows are scored, never trained on."""

    texts: list[str]
    labels: np.ndarray
    holdout: np.ndarray
    # The encoder's stored vectors of the same rows, loaded when a family needs them.
    vectors: np.ndarray | None = None
    # The encoder's weights folder, for a family that starts from them (None: the bundled one).
    encoder_dir: str | None = None

    def training_part(self, validation: np.ndarray) -> TrainingRows:
        """The rows outside the holdout, with ``validation`` (a mask over them) held out
        instead: what a tuning trial fits on and is scored on."""
        train = ~np.asarray(self.holdout, dtype=bool)
        return TrainingRows(
            texts=np.asarray(self.texts, dtype=object)[train].tolist(),
            labels=np.asarray(self.labels)[train],
            holdout=np.asarray(validation, dtype=bool),
            vectors=self.vectors[train] if self.vectors is not None else None,
            encoder_dir=self.encoder_dir,
        )


class Family(Protocol):
    """One kind of model. The three built-in ones live beside this module."""

    # The registry key, the card's `family` and the MLflow `family` tag.
    name: str
    # For metadata keys short enough to read in Dagster's partition view.
    short_name: str
    # Fit and predict take the encoder's vectors of the texts (stored at training time,
    # computed when serving).
    needs_vectors: bool
    # Built on the text encoder (its vectors or its weights): the card names the encoder.
    uses_encoder: bool
    # Trained in a retrain's first run; a family that is not fast trains in a follow-up run.
    fast: bool
    # The parameters `search_space` sets: trial 0 runs their current values.
    searched_knobs: tuple[str, ...]

    def params(self, knobs: Mapping[str, Any]) -> Any:
        """The family's parameters (a frozen dataclass): its defaults, with the run's knobs
        that apply to it (``seed``, ``device`` and its own); other knobs are ignored."""
        ...

    def card_params(self, params: Any) -> dict[str, Any]:
        """What the card records; part of the version's content-derived id."""
        ...

    def mlflow_params(self, params: Any) -> dict[str, Any]:
        """What the family's MLflow run logs as parameters: only the ones it uses."""
        ...

    def search_space(self, trial: optuna.Trial) -> dict[str, Any]: ...

    def objective(self, train: TrainingRows, base: Any, metric: str) -> Objective:
        """A tuning trial: fit ``base`` with the trial's parameters on ``train`` outside its
        holdout, and return its ``metric`` (a classification_metrics key) on the holdout."""
        ...

    def fit(self, rows: TrainingRows, params: Any, progress: Progress | None) -> FitResult: ...

    def save(self, estimator: Any, directory: Path) -> None:
        """Write the fitted estimator's weights into a bundle folder (no pickle)."""
        ...

    def load(self, directory: Path, device: str | None, runtime: ServingRuntime | None) -> Any:
        """Read a bundle's weights back: the model `predict_proba` takes."""
        ...

    def predict_proba(
        self, model: Any, cleaned_texts: list[str], vectors: np.ndarray | None
    ) -> np.ndarray:
        """P(positive) for cleaned texts (and their vectors when the family needs them)."""
        ...

    def runtime(self, model: Any, encoder: Any) -> str:
        """What computes the scores, for the app and the logs."""
        ...


_REGISTRY: dict[str, Family] = {}


def register_family(new: Family) -> Family:
    """Make a family trainable and servable under its name; registration order is the
    default training order."""
    if new.name in _REGISTRY:
        raise ValueError(f"a model family named {new.name!r} is already registered")
    _REGISTRY[new.name] = new
    return new


def unregister_family(name: str) -> None:
    """Forget a family (a test's own, once the test is done)."""
    _REGISTRY.pop(name, None)


def family(name: str) -> Family:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model family {name!r}; known: {family_names()}") from None


def families() -> tuple[Family, ...]:
    return tuple(_REGISTRY.values())


def family_names(fast: bool | None = None) -> list[str]:
    """Every registered family's name, or only the fast (True) or follow-up (False) ones."""
    return [f.name for f in _REGISTRY.values() if fast is None or f.fast == fast]
