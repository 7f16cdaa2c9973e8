"""sentiment_model: every family trained on a month's trailing window, tracked and registered.

Each trained model is an MLflow run nested under the Dagster run's MLflow run, and a version
of the registered model `tweet-sentiment` tagged with its family and month. Its window is
on its card: drift and promotion read it from there.
"""

import dataclasses
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import mlflow as mlflow_api
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from sentiment_assets.defs.embeddings.resources import EncoderResource
from sentiment_assets.defs.models.tracking import code_version, run_link, tracked_step
from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.lib.core.clock import utc_now
from sentiment_assets.lib.core.months import trailing_window
from sentiment_assets.lib.data.sampling import in_holdout
from sentiment_assets.lib.encoding.embedding_store import load_tweets
from sentiment_assets.lib.encoding.encoder import TextEncoder
from sentiment_assets.lib.models.model_bundle import (
    ModelCard,
    Predictor,
    data_fingerprint,
    load_predictor,
    save_bundle,
    write_card,
)
from sentiment_assets.lib.models.params import FinetuneParams, LogRegParams
from sentiment_assets.lib.models.training import (
    DEFAULT_MAX_WINDOW_ROWS,
    DEFAULT_WINDOW_MONTHS,
    EMBEDDING_LOGREG,
    FAMILIES,
    FINETUNED_TRANSFORMER,
    TFIDF_LOGREG,
    FitResult,
    fit_embedding_logreg,
    fit_finetuned_transformer,
    fit_tfidf_logreg,
)
from sentiment_assets.lib.models.tuning import (
    TUNING_METRIC,
    MlflowTrialLogger,
    TrialRecord,
    TuneSettings,
    TuningResult,
    tune_finetuned,
    tune_logreg,
    tuning_split,
)
from sentiment_assets.lib.stats.calibration import (
    calibration_sample,
    fit_temperature,
    reliability_bins,
    reliability_figure,
    reliability_json,
)
from sentiment_assets.lib.store.warehouse import replace_rows
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.publish import publish_history
from sentiment_assets.lineage import DRIFT_REPORT, TWEET_EMBEDDINGS, TWEETS_CLEAN
from sentiment_assets.partitions import (
    FIRST_MONTH,
    GPU_POOL,
    MONTHLY_BACKFILL,
    monthly_partitions,
    partition_month,
)

# The lineage graph shows the default window; a run may configure another (a drift retrain
# does), and the model's card records the one it used.
TRAINING_WINDOW_MAPPING = dg.TimeWindowPartitionMapping(
    start_offset=1 - DEFAULT_WINDOW_MONTHS, end_offset=0, allow_nonexistent_upstream_partitions=True
)
LATENCY_SAMPLE = 200
# TrainConfig's finetune_<name> fields, each defaulting to FinetuneParams' <name>.
FINETUNE_KNOBS = (
    "epochs",
    "max_train_samples",
    "max_length",
    "learning_rate",
    "freeze_layers",
    "batch_size",
)


class TuneConfig(dg.Config):
    """Opt-in hyperparameter search (optuna, seeded TPE) before each listed family is fitted:
    trials are scored on a share of the training rows (never the holdout), each is an MLflow
    run nested under the family's run, and the model is trained with the best trial's
    parameters (the first trial is the defaults, so the search never picks worse on it)."""

    enabled: bool = False
    n_trials: int = 20
    # None: no limit; a timeout makes the number of trials depend on the machine.
    timeout_seconds: float | None = None
    seed: int = 0
    families: list[str] = [TFIDF_LOGREG, EMBEDDING_LOGREG]  # noqa: RUF012 (pydantic copies it)
    validation_fraction: float = TuneSettings.validation_fraction

    def settings(self) -> TuneSettings:
        return TuneSettings(
            n_trials=self.n_trials,
            timeout_seconds=self.timeout_seconds,
            seed=self.seed,
            validation_fraction=self.validation_fraction,
        )


class TrainConfig(dg.Config):
    families: list[str] = list(FAMILIES)  # noqa: RUF012 (pydantic copies it)
    window_months: int = DEFAULT_WINDOW_MONTHS
    seed: int = 0
    C: float = LogRegParams.C
    # The fine-tuned transformer's budget: the library's CPU-sized defaults; raise it (or
    # run on a GPU) for real quality.
    finetune_epochs: int = FinetuneParams.epochs
    finetune_max_train_samples: int = FinetuneParams.max_train_samples
    finetune_max_length: int = FinetuneParams.max_length
    finetune_learning_rate: float = FinetuneParams.learning_rate
    finetune_freeze_layers: int = FinetuneParams.freeze_layers
    finetune_batch_size: int = FinetuneParams.batch_size
    # Labelled window rows loaded at most (a label-stratified, seeded sample beyond it), so a
    # million-tweet window trains in bounded memory; 0 loads every row.
    max_window_rows: int = DEFAULT_MAX_WINDOW_ROWS
    tune: TuneConfig = TuneConfig()

    def logreg(self) -> LogRegParams:
        return LogRegParams(C=self.C, seed=self.seed)

    def finetune(self, device: str | None) -> FinetuneParams:
        knobs = {name: getattr(self, f"finetune_{name}") for name in FINETUNE_KNOBS}
        return FinetuneParams(**knobs, seed=self.seed, device=device)


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


@dataclass(frozen=True)
class TrainedVersion:
    family: str
    fit: FitResult
    version: registry.VersionInfo
    card: ModelCard
    run_id: str
    latency_ms: float


def _tune(
    family: str, data: TrainingData, config: TrainConfig, text_encoder: TextEncoder, log: Any
) -> TuningResult | None:
    """The opt-in search for one family, inside the family's MLflow run (trials nest there)."""
    if not config.tune.enabled or family not in config.tune.families:
        return None
    settings = config.tune.settings()
    train = ~data.holdout
    validation = tuning_split(
        data.frame["tweet_id"].tolist(), data.holdout, settings.validation_fraction, settings.seed
    )[train]
    labels = data.labels[train]
    texts = data.frame["text"][train].tolist()
    mlflow_log = MlflowTrialLogger(MlflowClient(), mlflow_api.active_run().info.run_id)

    def on_trial(record: TrialRecord) -> None:
        mlflow_log(record)
        log.info(
            f"{family} trial {record.number} {record.state}: {record.params} "
            f"validation {TUNING_METRIC} {record.value}"
        )

    if family == FINETUNED_TRANSFORMER:
        base = config.finetune(text_encoder.device)
        result = tune_finetuned(
            texts, labels, validation, base, settings, text_encoder.path, on_trial
        )
    else:
        features = texts if family == TFIDF_LOGREG else data.vectors[train]
        result = tune_logreg(
            family, features, labels, validation, config.logreg(), settings, on_trial
        )
    mlflow_api.log_metrics(
        {
            f"tune_best_val_{TUNING_METRIC}": result.best_value,
            f"tune_default_val_{TUNING_METRIC}": result.default_value,
        }
    )
    log.info(
        f"{family}: best of {len(result.trials)} trials is #{result.best_trial} "
        f"{result.best_params} ({TUNING_METRIC} {result.best_value:.4f}, "
        f"defaults {result.default_value:.4f})"
    )
    return result


def _fit(
    family: str, data: TrainingData, config: TrainConfig, text_encoder: TextEncoder, log: Any
) -> tuple[FitResult, dict]:
    tuned = _tune(family, data, config, text_encoder, log)
    best = tuned.best_params if tuned else {}
    # On the card, so a tuned model's version differs from the default one's.
    tuning = tuned.card_params(config.tune.settings()) if tuned else {}
    if family == TFIDF_LOGREG:
        params = dataclasses.replace(config.logreg(), **best)
        fit = fit_tfidf_logreg(data.frame["text"].tolist(), data.labels, data.holdout, params)
        return fit, {**params.as_dict(), **tuning}
    if family == EMBEDDING_LOGREG:
        params = dataclasses.replace(config.logreg(), **best)
        return fit_embedding_logreg(data.vectors, data.labels, data.holdout, params), {
            **params.as_dict(),
            **tuning,
        }
    finetune = dataclasses.replace(config.finetune(text_encoder.device), **best)

    def progress(step: dict) -> None:
        if step["step"] % 10 == 0 or step["step"] == step["total_steps"]:
            log.info(
                f"fine-tuning step {step['step']}/{step['total_steps']} loss {step['loss']:.3f}"
            )

    fit = fit_finetuned_transformer(
        data.frame["text"].tolist(),
        data.labels,
        data.holdout,
        finetune,
        text_encoder.path,
        progress=progress,
    )
    return fit, {**{k: v for k, v in finetune.__dict__.items() if v is not None}, **tuning}


def _model_card(
    family: str, data: TrainingData, fit: FitResult, params: dict, text_encoder: TextEncoder
) -> ModelCard:
    return ModelCard(
        family=family,
        trained_through=data.month.isoformat(),
        window_start=data.window[0].isoformat(),
        params=params,
        data_fingerprint=data.fingerprint,
        encoder=text_encoder.name if family != TFIDF_LOGREG else None,
        encoder_fingerprint=text_encoder.fingerprint if family == EMBEDDING_LOGREG else None,
        metrics={"validation": fit.validation, "train_seconds": fit.train_seconds},
    )


def _log_run(
    context: dg.AssetExecutionContext,
    data: TrainingData,
    card: ModelCard,
    fit: FitResult,
    params: dict,
    text_encoder: TextEncoder,
    latency_ms: float,
) -> None:
    uses_encoder = card.family != TFIDF_LOGREG
    mlflow_api.log_params({**params, "family": card.family, "window_months": len(data.window)})
    mlflow_api.log_params(
        {
            "encoder": text_encoder.fingerprint if uses_encoder else "none",
            "device": str(text_encoder.device),
            "window_start": card.window_start,
        }
    )
    mlflow_api.log_metrics(
        {
            "val_accuracy": fit.validation.get("accuracy", float("nan")),
            "val_macro_f1": fit.validation.get("macro_f1", float("nan")),
            "train_seconds": fit.train_seconds,
            "inference_ms_per_tweet": latency_ms,
            "n_train": fit.n_train,
            "n_validation": fit.n_validation,
        }
    )
    mlflow_api.set_tags(
        {
            "family": card.family,
            "partition_key": context.partition_key,
            "trained_through": card.trained_through,
            "dagster_run_id": context.run_id,
            "code_version": code_version(),
            "rows_labelled": str(len(data.frame)),
            "data_fingerprint": card.data_fingerprint,
            "bundle_version": card.version,
        }
    )


def _calibrate(
    card: ModelCard, data: TrainingData, directory: Path, predictor: Predictor
) -> ModelCard:
    """Fit the version's temperature on its holdout rows, put it on the bundle's card (so
    whatever loads the version can calibrate), and log ECE before/after and the reliability
    diagram to the active MLflow run. Returns the card as rewritten."""
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
    if calibration.ece_before is not None:
        mlflow_api.log_metrics(
            {
                "ece_before": calibration.ece_before,
                "ece_after": calibration.ece_after,
                "calibration_temperature": calibration.temperature,
            }
        )
        title = f"{card.family} through {card.trained_through[:7]}: {len(labels)} holdout rows"
        mlflow_api.log_figure(
            reliability_figure(before, after, calibration, title), "calibration/reliability.png"
        )
    return card


def _train_and_register(
    context: dg.AssetExecutionContext,
    family: str,
    data: TrainingData,
    config: TrainConfig,
    text_encoder: TextEncoder,
    platform: PlatformResource,
) -> TrainedVersion:
    """Fit one family and register it; the bundle is staged inside the registry cache and,
    once registered, moved in as that version's local copy (no second copy to download).
    Registration comes last, so a version always has its run's numbers."""
    with mlflow_api.start_run(run_name=f"{family} {data.month:%Y-%m}", nested=True) as run:
        fit, params = _fit(family, data, config, text_encoder, context.log)
        card = _model_card(family, data, fit, params, text_encoder)
        cache_dir = platform.settings.registry_cache_dir
        with registry.staging_dir(cache_dir, family) as staging:
            directory = save_bundle(staging / "bundle", card, fit.estimator)
            predictor = load_predictor(directory, encoder=text_encoder)
            card = _calibrate(card, data, directory, predictor)
            sample = data.frame["text"].iloc[:LATENCY_SAMPLE].tolist()
            started = time.perf_counter()
            predictor.predict_proba_clean(sample)
            latency_ms = 1000 * (time.perf_counter() - started) / max(len(sample), 1)
            _log_run(context, data, card, fit, params, text_encoder, latency_ms)
            version = registry.register_bundle(
                MlflowClient(), run.info.run_id, run.info.artifact_uri, directory, card
            )
            registry.adopt_bundle(directory, version, cache_dir)
    context.log.info(
        f"{family} through {data.month:%Y-%m}: registered version {version.version}, "
        f"validation {fit.validation}"
    )
    return TrainedVersion(family, fit, version, card, run.info.run_id, latency_ms)


def _training_row(trained: TrainedVersion, data: TrainingData, run_id: str) -> dict:
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
        "dagster_run_id": run_id,
        "created_at": utc_now(),
    }


# Short names for the per-family metadata keys: long keys such as
# `finetuned_transformer/inference_ms_per_tweet` overlap their values in the partition view.
SHORT_FAMILY = {
    TFIDF_LOGREG: "tfidf",
    EMBEDDING_LOGREG: "embedding",
    FINETUNED_TRANSFORMER: "finetuned",
}
FAMILY_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("family", "string"),
        dg.TableColumn("version", "string", description="registered version of tweet-sentiment"),
        dg.TableColumn("val_accuracy", "float"),
        dg.TableColumn("val_macro_f1", "float"),
        dg.TableColumn("train_seconds", "float"),
        dg.TableColumn("inference_ms_per_tweet", "float"),
        dg.TableColumn("mlflow_run_id", "string"),
    ]
)


def _score(fit: FitResult, name: str) -> float | None:
    value = fit.validation.get(name)
    return None if value is None or np.isnan(value) else round(float(value), 4)


def _families_metadata(trained: list[TrainedVersion], ui_url: str) -> dict[str, object]:
    """The families as one table, plus short float keys: floats are what Dagster plots
    across partitions, so the month's scores and the best of the month become plots."""
    metadata: dict[str, object] = {
        "families": dg.MetadataValue.table(
            [
                dg.TableRecord(
                    {
                        "family": t.family,
                        "version": t.version.version,
                        "val_accuracy": _score(t.fit, "accuracy"),
                        "val_macro_f1": _score(t.fit, "macro_f1"),
                        "train_seconds": round(t.fit.train_seconds, 3),
                        "inference_ms_per_tweet": round(t.latency_ms, 3),
                        "mlflow_run_id": t.run_id,
                    }
                )
                for t in trained
            ],
            schema=FAMILY_SCHEMA,
        )
    }
    for t in trained:
        short = SHORT_FAMILY[t.family]
        f1 = _score(t.fit, "macro_f1")
        metadata[f"val_f1_{short}"] = float("nan") if f1 is None else f1
        metadata[f"ms_per_tweet_{short}"] = round(t.latency_ms, 3)
        metadata[f"version_{short}"] = t.version.version
        metadata[f"mlflow_run_{short}"] = run_link(ui_url, t.run_id)
    scored = [t for t in trained if _score(t.fit, "macro_f1") is not None]
    if scored:
        # The same choice model_challenger makes before its behaviour floor: best macro-F1.
        best = max(scored, key=lambda t: _score(t.fit, "macro_f1"))
        metadata["best_val_f1"] = _score(best.fit, "macro_f1")
        accuracy = _score(best.fit, "accuracy")
        metadata["best_val_accuracy"] = float("nan") if accuracy is None else accuracy
        metadata["best_family"] = best.family
    return metadata


@dg.asset(
    partitions_def=monthly_partitions,
    backfill_policy=MONTHLY_BACKFILL,
    deps=[
        dg.AssetDep(TWEETS_CLEAN, partition_mapping=TRAINING_WINDOW_MAPPING),
        dg.AssetDep(TWEET_EMBEDDINGS, partition_mapping=TRAINING_WINDOW_MAPPING),
        # The month's drift is measured before its model is trained, so a drift report is
        # never newer than the model built in the same run (drift_sensor treats it as stale).
        DRIFT_REPORT,
    ],
    # Training is the GPU work: one job at a time on the accelerator. Its warehouse access is
    # two short connections, which wait for the DuckDB lock instead of holding the pool.
    pool=GPU_POOL,
    group_name="models",
    kinds={"scikitlearn", "pytorch", "mlflow"},
    description="One model per family trained on the trailing window ending with this month, "
    "rows of the fixed hash holdout excluded; logged to MLflow and registered as a version "
    "of `tweet-sentiment`.",
)
def sentiment_model(
    context: dg.AssetExecutionContext,
    config: TrainConfig,
    warehouse: WarehouseResource,
    encoder: EncoderResource,
    platform: PlatformResource,
    mlflow: dg.ResourceParam[Any],
) -> dg.MaterializeResult:
    month = partition_month(context)
    unknown = sorted((set(config.families) | set(config.tune.families)) - set(FAMILIES))
    if unknown or not config.families:
        raise dg.Failure(f"families must be a non-empty subset of {list(FAMILIES)}: {unknown}")
    window = trailing_window(month, config.window_months, earliest=FIRST_MONTH)
    text_encoder = encoder.get()
    frame, vectors = load_tweets(
        warehouse.location,
        window,
        text_encoder.fingerprint if EMBEDDING_LOGREG in config.families else None,
        max_rows=config.max_window_rows or None,
        sample_seed=config.seed,
    )
    if frame.empty:
        raise dg.Failure(f"no labelled tweets in {[str(m) for m in window]}: nothing to train on")
    data = TrainingData(month, window, frame, vectors, in_holdout(frame["tweet_id"].tolist()))
    ui_url = platform.settings.mlflow_ui_url
    metadata: dict[str, object] = {
        "window": ", ".join(f"{m:%Y-%m}" for m in window),
        "n_labelled": len(frame),
        "max_window_rows": config.max_window_rows,
        "n_holdout": int(data.holdout.sum()),
        "positive_share": float(data.labels.mean()),
    }
    trained: list[TrainedVersion] = []
    with tracked_step(mlflow, context) as parent_run_id:
        metadata["mlflow_parent_run"] = run_link(ui_url, parent_run_id)
        for family in config.families:
            trained.append(
                _train_and_register(context, family, data, config, text_encoder, platform)
            )
        metadata.update(_families_metadata(trained, ui_url))
    rows = [_training_row(t, data, context.run_id) for t in trained]
    with warehouse.connect() as con:
        replace_rows(
            con,
            "metrics.training_runs",
            pd.DataFrame(rows),
            "dagster_run_id = ? AND trained_through = ?",
            [context.run_id, month],
        )
        # Readers outside the pipeline (the app, `sentiment sql`) see only the snapshot.
        publish_history(con, platform.settings.published_dir)
    return dg.MaterializeResult(metadata=metadata)
