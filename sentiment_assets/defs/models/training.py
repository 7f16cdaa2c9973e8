"""sentiment_model: every family trained on a month's trailing window, tracked and registered.

Each trained model is an MLflow run nested under the Dagster run's MLflow run, and a version
of the registered model `tweet-sentiment` tagged with its family and month. Its window is
on its card: drift and promotion read it from there.
"""

import time
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
from sentiment_assets.lib.core.months import trailing_window
from sentiment_assets.lib.core.numbers import rounded
from sentiment_assets.lib.data.sampling import in_holdout
from sentiment_assets.lib.encoding.embedding_store import load_tweets
from sentiment_assets.lib.encoding.encoder import TextEncoder
from sentiment_assets.lib.models.families import Family, family, family_names
from sentiment_assets.lib.models.families.finetuned import FINETUNE_KNOBS
from sentiment_assets.lib.models.fitting import (
    FamilyFit,
    TrainingData,
    calibrate_bundle,
    fit_family,
    model_card,
    tune_family,
)
from sentiment_assets.lib.models.model_bundle import (
    ModelCard,
    Predictor,
    load_predictor,
    save_bundle,
)
from sentiment_assets.lib.models.params import FinetuneParams, LogRegParams
from sentiment_assets.lib.models.training import (
    DEFAULT_MAX_WINDOW_ROWS,
    DEFAULT_WINDOW_MONTHS,
    EMBEDDING_LOGREG,
    TFIDF_LOGREG,
    FitResult,
)
from sentiment_assets.lib.models.tuning import (
    TUNING_METRIC,
    MlflowTrialLogger,
    TrialRecord,
    TuneSettings,
    TuningResult,
)
from sentiment_assets.lib.stats.calibration import reliability_figure
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.publish import HistoryRows, record_history
from sentiment_assets.lib.versions.training_runs import TrainedVersion, training_row
from sentiment_assets.lineage import DRIFT_REPORT, TWEET_EMBEDDINGS, TWEETS_CLEAN
from sentiment_assets.partitions import (
    GPU_POOL,
    first_partition_month,
    monthly_asset,
    monthly_definitions,
    partition_month,
)

# The lineage graph shows the default window; a run may configure another (a drift retrain
# does), and the model's card records the one it used.
TRAINING_WINDOW_MAPPING = dg.TimeWindowPartitionMapping(
    start_offset=1 - DEFAULT_WINDOW_MONTHS, end_offset=0, allow_nonexistent_upstream_partitions=True
)
LATENCY_SAMPLE = 200
# On the MLflow run of a retrain whose bundle an earlier version already holds.
REUSED_VERSION_TAG = "reused_version"


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
    families: list[str] = family_names()
    window_months: int = DEFAULT_WINDOW_MONTHS
    seed: int = 0
    C: float = LogRegParams.C
    # The fine-tuned transformer's budget (finetune_<name> sets FinetuneParams' <name>): the
    # library's CPU-sized defaults; raise it (or run on a GPU) for real quality.
    finetune_epochs: int = FinetuneParams.epochs
    finetune_max_train_samples: int = FinetuneParams.max_train_samples
    finetune_max_length: int = FinetuneParams.max_length
    finetune_learning_rate: float = FinetuneParams.learning_rate
    finetune_freeze_layers: int = FinetuneParams.freeze_layers
    finetune_batch_size: int = FinetuneParams.batch_size
    # Seconds of CPU training that size the fine-tuned family's fit (the whole window on
    # CUDA; lib/models/finetune_budget.py); None: the fixed finetune_max_train_samples.
    finetune_cpu_budget_seconds: float | None = FinetuneParams.cpu_budget_seconds
    # Labelled window rows loaded at most (a label-stratified, seeded sample beyond it), so a
    # million-tweet window trains in bounded memory; 0 loads every row.
    max_window_rows: int = DEFAULT_MAX_WINDOW_ROWS
    tune: TuneConfig = TuneConfig()

    def knobs(self, device: str | None) -> dict[str, Any]:
        """What each family builds its parameters from (it takes the ones it knows)."""
        finetune = {
            f"finetune_{name}": getattr(self, f"finetune_{name}") for name in FINETUNE_KNOBS
        }
        return {"seed": self.seed, "device": device, "C": self.C, **finetune}


def _tune(
    chosen: Family, data: TrainingData, config: TrainConfig, text_encoder: TextEncoder, log: Any
) -> tuple[TuningResult, TuneSettings] | None:
    """The opt-in search for one family, inside the family's MLflow run (trials nest there)."""
    if not config.tune.enabled or chosen.name not in config.tune.families:
        return None
    settings = config.tune.settings()
    # Trials nest in the family's run: log them to the store that run lives in.
    client = MlflowClient(mlflow_api.get_tracking_uri())
    mlflow_log = MlflowTrialLogger(client, mlflow_api.active_run().info.run_id)

    def on_trial(record: TrialRecord) -> None:
        mlflow_log(record)
        log.info(
            f"{chosen.name} trial {record.number} {record.state}: {record.params} "
            f"validation {TUNING_METRIC} {record.value}"
        )

    knobs = config.knobs(text_encoder.device)
    result = tune_family(chosen, data, knobs, settings, text_encoder.path, on_trial)
    mlflow_api.log_metrics(
        {
            f"tune_best_val_{TUNING_METRIC}": result.best_value,
            f"tune_default_val_{TUNING_METRIC}": result.default_value,
        }
    )
    log.info(
        f"{chosen.name}: best of {len(result.trials)} trials is #{result.best_trial} "
        f"{result.best_params} ({TUNING_METRIC} {result.best_value:.4f}, "
        f"defaults {result.default_value:.4f})"
    )
    return result, settings


def _fit(
    chosen: Family, data: TrainingData, config: TrainConfig, text_encoder: TextEncoder, log: Any
) -> FamilyFit:
    tuned = _tune(chosen, data, config, text_encoder, log)

    def progress(step: dict) -> None:
        if step["step"] % 10 == 0 or step["step"] == step["total_steps"]:
            log.info(
                f"fine-tuning step {step['step']}/{step['total_steps']} loss {step['loss']:.3f}"
            )

    knobs = config.knobs(text_encoder.device)
    return fit_family(chosen, data, knobs, text_encoder.path, tuned, progress)


def _log_run(
    context: dg.AssetExecutionContext,
    data: TrainingData,
    card: ModelCard,
    fitted: FamilyFit,
    text_encoder: TextEncoder,
    latency_ms: float,
) -> None:
    fit = fitted.fit
    mlflow_api.log_params(
        {**fitted.mlflow_params, "family": card.family, "window_months": len(data.window)}
    )
    mlflow_api.log_params(
        {
            "encoder": text_encoder.fingerprint if family(card.family).uses_encoder else "none",
            "device": str(text_encoder.device),
            "window_start": card.window_start.isoformat(),
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
            "trained_through": card.trained_through.isoformat(),
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
    """Calibrate the bundle on its holdout rows, and log ECE before/after and the
    reliability diagram to the active MLflow run. Returns the card as rewritten."""
    card, fitted = calibrate_bundle(card, data, directory, predictor)
    calibration = fitted.calibration
    if calibration.ece_before is not None:
        mlflow_api.log_metrics(
            {
                "ece_before": calibration.ece_before,
                "ece_after": calibration.ece_after,
                "calibration_temperature": calibration.temperature,
            }
        )
        title = f"{card.family} through {card.trained_through:%Y-%m}: {fitted.n} holdout rows"
        mlflow_api.log_figure(
            reliability_figure(fitted.before, fitted.after, calibration, title),
            "calibration/reliability.png",
        )
    return card


def _register_once(
    platform: PlatformResource, run: Any, directory: Path, card: ModelCard
) -> tuple[registry.VersionInfo, bool]:
    """The version holding this bundle's content, registered now unless one already does:
    a rerun on unchanged inputs reuses it, so reruns add no version and no tie to promote.
    Returns (version, whether it is new)."""
    client = platform.mlflow_client()
    existing = registry.version_holding(client, card.version)
    if existing is not None:
        mlflow_api.set_tag(REUSED_VERSION_TAG, existing.version)
        return existing, False
    version = registry.register_bundle(
        client, run.info.run_id, run.info.artifact_uri, directory, card
    )
    registry.adopt_bundle(directory, version, platform.settings.registry_cache_dir)
    return version, True


def _train_and_register(
    context: dg.AssetExecutionContext,
    chosen: Family,
    data: TrainingData,
    config: TrainConfig,
    text_encoder: TextEncoder,
    platform: PlatformResource,
) -> TrainedVersion:
    """Fit one family and register it; the bundle is staged inside the registry cache and,
    once registered, moved in as that version's local copy (no second copy to download).
    Registration comes last, so a version always has its run's numbers."""
    name = chosen.name
    with mlflow_api.start_run(run_name=f"{name} {data.month:%Y-%m}", nested=True) as run:
        fitted = _fit(chosen, data, config, text_encoder, context.log)
        card = model_card(chosen, data, fitted, text_encoder.name, text_encoder.fingerprint)
        cache_dir = platform.settings.registry_cache_dir
        with registry.staging_dir(cache_dir, name) as staging:
            directory = save_bundle(staging / "bundle", card, fitted.fit.estimator)
            predictor = load_predictor(directory, encoder=text_encoder)
            card = _calibrate(card, data, directory, predictor)
            sample = data.frame["text"].iloc[:LATENCY_SAMPLE].tolist()
            started = time.perf_counter()
            predictor.predict_proba_clean(sample)
            latency_ms = 1000 * (time.perf_counter() - started) / max(len(sample), 1)
            _log_run(context, data, card, fitted, text_encoder, latency_ms)
            version, registered = _register_once(platform, run, directory, card)
    verb = "registered" if registered else "reused (same data, parameters and code)"
    context.log.info(
        f"{name} through {data.month:%Y-%m}: {verb} version {version.version}, "
        f"validation {fitted.fit.validation}"
    )
    return TrainedVersion(name, fitted.fit, version, card, run.info.run_id, latency_ms)


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
        # Short keys: long ones such as `finetuned_transformer/inference_ms_per_tweet`
        # overlap their values in the partition view.
        short = family(t.family).short_name
        f1 = _score(t.fit, "macro_f1")
        metadata[f"val_f1_{short}"] = float("nan") if f1 is None else f1
        metadata[f"ms_per_tweet_{short}"] = round(t.latency_ms, 3)
        metadata[f"version_{short}"] = t.version.version
        metadata[f"mlflow_run_{short}"] = run_link(ui_url, t.run_id)
        if t.fit.size_note:
            metadata[f"trained_on_{short}"] = t.fit.size_note
    scored = [t for t in trained if _score(t.fit, "macro_f1") is not None]
    if scored:
        # The same choice model_challenger makes before its behaviour floor: best macro-F1.
        best = max(scored, key=lambda t: _score(t.fit, "macro_f1"))
        metadata["best_val_f1"] = _score(best.fit, "macro_f1")
        accuracy = _score(best.fit, "accuracy")
        metadata["best_val_accuracy"] = float("nan") if accuracy is None else accuracy
        metadata["best_family"] = best.family
    return metadata


@monthly_asset(
    deps=[
        dg.AssetDep(TWEETS_CLEAN, partition_mapping=TRAINING_WINDOW_MAPPING),
        dg.AssetDep(TWEET_EMBEDDINGS, partition_mapping=TRAINING_WINDOW_MAPPING),
        # The month's drift is measured before its model is trained: a model is judged
        # against the champion it replaces.
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
    unknown = sorted((set(config.families) | set(config.tune.families)) - set(family_names()))
    if unknown or not config.families:
        raise dg.Failure(f"families must be a non-empty subset of {family_names()}: {unknown}")
    chosen = [family(name) for name in config.families]
    window = trailing_window(month, config.window_months, earliest=first_partition_month(context))
    text_encoder = encoder.get()
    frame, vectors = load_tweets(
        warehouse.location,
        window,
        text_encoder.fingerprint if any(f.needs_vectors for f in chosen) else None,
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
        for each in chosen:
            trained.append(_train_and_register(context, each, data, config, text_encoder, platform))
        metadata.update(_families_metadata(trained, ui_url))
    rows = [training_row(t, data, context.run_id) for t in trained]
    with warehouse.connect() as con:
        record_history(
            con,
            platform.settings.published_dir,
            HistoryRows(
                "metrics.training_runs",
                pd.DataFrame(rows),
                "dagster_run_id = ? AND trained_through = ?",
                (context.run_id, month),
            ),
        )
    return dg.MaterializeResult(metadata=rounded(metadata))


@dg.definitions
def defs() -> dg.Definitions:
    return monthly_definitions(sentiment_model)
