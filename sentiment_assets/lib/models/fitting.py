"""One family trained on a month's window: the window's rows, the opt-in search, the fit,
the card it is registered with, and the temperature fitted on its holdout.

Whatever family it is, the steps are the same; what differs is asked of the family.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sentiment_assets.lib.models.families import Family, Progress, TrainingRows
from sentiment_assets.lib.models.model_bundle import (
    ModelCard,
    Predictor,
    code_fingerprint,
    data_fingerprint,
    write_card,
)
from sentiment_assets.lib.models.training import FitResult
from sentiment_assets.lib.models.tuning import (
    TrialRecord,
    TuneSettings,
    TuningResult,
    tune,
    tuning_split,
)
from sentiment_assets.lib.stats.calibration import (
    Calibration,
    ReliabilityBin,
    calibration_sample,
    fit_temperature,
    reliability_bins,
    reliability_json,
)


@dataclass(frozen=True)
class TrainingData:
    """The window's labelled rows, the holdout among them, and their embeddings if needed."""

    month: date
    window: list[date]
    frame: pd.DataFrame
    vectors: np.ndarray | None
    holdout: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        return self.frame["label"].to_numpy(dtype=int)

    @property
    def fingerprint(self) -> str:
        return data_fingerprint(self.frame["tweet_id"].tolist(), self.labels)

    def rows(self, encoder_dir: str | None = None) -> TrainingRows:
        return TrainingRows(
            texts=self.frame["text"].tolist(),
            labels=self.labels,
            holdout=self.holdout,
            vectors=self.vectors,
            encoder_dir=encoder_dir,
        )


def tune_family(
    family: Family,
    data: TrainingData,
    knobs: Mapping[str, Any],
    settings: TuneSettings,
    encoder_dir: str | None = None,
    on_trial: Callable[[TrialRecord], None] | None = None,
) -> TuningResult:
    """Search ``family``'s space on the window's training rows: trials are scored on a
    seeded share of them (the tuning split), never on the platform's holdout."""
    validation = tuning_split(
        data.frame["tweet_id"].tolist(), data.holdout, settings.validation_fraction, settings.seed
    )[~data.holdout]
    train = data.rows(encoder_dir).training_part(validation)
    return tune(family, train, family.params(knobs), settings, on_trial)


@dataclass(frozen=True)
class FamilyFit:
    fit: FitResult
    # The card's params: the family's, plus how they were tuned when they were.
    card_params: dict[str, Any]
    # What the family's MLflow run logs: the parameters the family uses, and the tuning.
    mlflow_params: dict[str, Any]


def fit_family(
    family: Family,
    data: TrainingData,
    knobs: Mapping[str, Any],
    encoder_dir: str | None = None,
    tuned: tuple[TuningResult, TuneSettings] | None = None,
    progress: Progress | None = None,
) -> FamilyFit:
    """Fit ``family`` on the window (holdout rows out) with the run's knobs, or with the
    best trial's parameters when it was tuned."""
    params = family.params(knobs)
    tuning: dict[str, Any] = {}
    if tuned is not None:
        result, settings = tuned
        params = dataclasses.replace(params, **result.best_params)
        # On the card, so a tuned model's version differs from the default one's.
        tuning = result.card_params(settings)
    fit = family.fit(data.rows(encoder_dir), params, progress)
    return FamilyFit(
        fit,
        {**family.card_params(params), **tuning},
        {**family.mlflow_params(params), **tuning},
    )


def model_card(
    family: Family,
    data: TrainingData,
    fitted: FamilyFit,
    encoder_name: str,
    encoder_fingerprint: str,
) -> ModelCard:
    return ModelCard(
        family=family.name,
        trained_through=data.month,
        window_start=data.window[0],
        params=fitted.card_params,
        data_fingerprint=data.fingerprint,
        encoder=encoder_name if family.uses_encoder else None,
        encoder_fingerprint=encoder_fingerprint if family.needs_vectors else None,
        metrics={"validation": fitted.fit.validation, "train_seconds": fitted.fit.train_seconds},
        code=code_fingerprint(),
    )


@dataclass(frozen=True)
class HoldoutCalibration:
    calibration: Calibration
    before: list[ReliabilityBin]
    after: list[ReliabilityBin]
    n: int


def calibrate_bundle(
    card: ModelCard, data: TrainingData, directory: Path, predictor: Predictor
) -> tuple[ModelCard, HoldoutCalibration]:
    """Fit the version's temperature on its holdout rows and put it on the bundle's card (so
    whatever loads the version can calibrate). Returns the card as rewritten."""
    holdout = np.flatnonzero(data.holdout)
    holdout = holdout[calibration_sample(len(holdout))]
    texts = data.frame["text"].iloc[holdout].tolist()
    vectors = data.vectors[holdout] if data.vectors is not None else None
    proba = predictor.predict_proba_clean(texts, vectors)
    labels = data.labels[holdout]
    calibration = fit_temperature(proba, labels)
    before = reliability_bins(proba, labels)
    after = reliability_bins(calibration.apply(proba), labels)
    card = dataclasses.replace(
        card,
        calibration=calibration.as_dict(),
        metrics={**card.metrics, "reliability": reliability_json(before, after)},
    )
    write_card(directory, card)
    return card, HoldoutCalibration(calibration, before, after, len(labels))
