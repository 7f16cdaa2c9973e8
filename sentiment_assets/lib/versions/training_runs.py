"""A registered training run, and the metrics.training_runs row that records it."""

from __future__ import annotations

from dataclasses import dataclass

from sentiment_assets.lib.core.clock import utc_now
from sentiment_assets.lib.models.fitting import TrainingData
from sentiment_assets.lib.models.model_bundle import ModelCard
from sentiment_assets.lib.models.training import FitResult
from sentiment_assets.lib.versions.registry import VersionInfo


@dataclass(frozen=True)
class TrainedVersion:
    family: str
    fit: FitResult
    version: VersionInfo
    card: ModelCard
    run_id: str
    latency_ms: float


def training_row(trained: TrainedVersion, data: TrainingData, dagster_run_id: str) -> dict:
    fit = trained.fit
    return {
        "model_family": trained.family,
        "model_version": trained.version.version,
        "trained_through": data.month,
        "window_start": data.window[0],
        "n_train": fit.n_train,
        "n_validation": fit.n_validation,
        "val_accuracy": fit.validation.get("accuracy"),
        "val_macro_f1": fit.validation.get("macro_f1"),
        "train_seconds": fit.train_seconds,
        "inference_ms_per_tweet": trained.latency_ms,
        "model_uri": trained.version.source,
        "mlflow_run_id": trained.run_id,
        "bundle_version": trained.card.version,
        "calibration_method": trained.card.calibration.get("method"),
        "temperature": trained.card.calibration.get("temperature"),
        "ece_before": trained.card.calibration.get("ece_before"),
        "ece_after": trained.card.calibration.get("ece_after"),
        "reliability": trained.card.metrics.get("reliability"),
        "dagster_run_id": dagster_run_id,
        "created_at": utc_now(),
    }
