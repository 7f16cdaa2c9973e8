"""sentiment_model (every family, each month) and model_evaluation (forward chaining).

Each trained model is an MLflow run nested under the Dagster run's MLflow run, and a version
of the registered model `tweet-sentiment` tagged with its family and month.
"""

import os
import time
from datetime import date
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import dagster as dg
import mlflow as mlflow_api
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from sentiment_assets.defs.models.tracking import MLFLOW_UI_URL_ENV, tracked_step
from sentiment_assets.lib import registry
from sentiment_assets.lib.embedding_store import load_tweets
from sentiment_assets.lib.metrics import classification_metrics
from sentiment_assets.lib.model_bundle import (
    ModelCard,
    Predictor,
    data_fingerprint,
    load_predictor,
    save_bundle,
)
from sentiment_assets.lib.months import previous_month, trailing_window
from sentiment_assets.lib.publish import publish_history
from sentiment_assets.lib.training import (
    EMBEDDING_LOGREG,
    FAMILIES,
    HOLDOUT_FRACTION,
    TFIDF_LOGREG,
    FitResult,
    LogRegParams,
    fit_embedding_logreg,
    fit_finetuned_transformer,
    fit_tfidf_logreg,
    holdout_mask,
)
from sentiment_assets.lib.warehouse import replace_rows
from sentiment_assets.partitions import (
    DUCKDB_POOL,
    GPU_POOL,
    MONTHS,
    monthly_partitions,
    partition_month,
)
from sentiment_assets.resources import EncoderResource, PlatformResource, WarehouseResource

# Lineage only: the window a model reads is config, the graph shows the default three months.
TRAINING_WINDOW_MAPPING = dg.TimeWindowPartitionMapping(
    start_offset=-2, end_offset=0, allow_nonexistent_upstream_partitions=True
)
PREVIOUS_MONTH_MAPPING = dg.TimeWindowPartitionMapping(
    start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
)
NEXT_MONTH_EVAL = "next_month"
LATENCY_SAMPLE = 200


class TrainConfig(dg.Config):
    families: list[str] = list(FAMILIES)  # noqa: RUF012 (pydantic copies it)
    window_months: int = 3
    seed: int = 0
    C: float = 1.0
    # The fine-tuned transformer's budget: small by default so a CPU demo month takes
    # about a minute; raise it (or run on a GPU) for real quality.
    finetune_epochs: int = 1
    finetune_max_train_samples: int = 800
    finetune_max_length: int = 48
    finetune_learning_rate: float = 1e-4
    finetune_freeze_layers: int = 2
    finetune_batch_size: int = 32


def code_version() -> str:
    return package_version("sentiment-assets")


def mlflow_ui_url(experiment_id: str, run_id: str) -> str:
    return registry.run_url(
        os.environ.get(MLFLOW_UI_URL_ENV, "http://127.0.0.1:5000"), experiment_id, run_id
    )


def _fit(
    family: str,
    frame: pd.DataFrame,
    vectors: np.ndarray | None,
    holdout: np.ndarray,
    config: TrainConfig,
    encoder_path: str,
    device: str | None,
    log: Any,
) -> tuple[FitResult, dict]:
    labels = frame["label"].to_numpy(dtype=int)
    if family == TFIDF_LOGREG:
        params = LogRegParams(C=config.C, seed=config.seed)
        return fit_tfidf_logreg(frame["text"].tolist(), labels, holdout, params), params.as_dict()
    if family == EMBEDDING_LOGREG:
        params = LogRegParams(C=config.C, seed=config.seed)
        return fit_embedding_logreg(vectors, labels, holdout, params), params.as_dict()
    # torch loads only when this family trains, not whenever the code location loads.
    from sentiment_assets.lib.finetune import FinetuneParams

    finetune = FinetuneParams(
        epochs=config.finetune_epochs,
        max_train_samples=config.finetune_max_train_samples,
        max_length=config.finetune_max_length,
        learning_rate=config.finetune_learning_rate,
        freeze_layers=config.finetune_freeze_layers,
        batch_size=config.finetune_batch_size,
        seed=config.seed,
        device=device,
    )

    def progress(step: dict) -> None:
        if step["step"] % 10 == 0 or step["step"] == step["total_steps"]:
            log.info(
                f"fine-tuning step {step['step']}/{step['total_steps']} loss {step['loss']:.3f}"
            )

    fit = fit_finetuned_transformer(
        frame["text"].tolist(), labels, holdout, finetune, encoder_path, progress=progress
    )
    return fit, {k: v for k, v in finetune.__dict__.items() if v is not None}


@dg.asset(
    partitions_def=monthly_partitions,
    deps=[
        dg.AssetDep("tweets_clean", partition_mapping=TRAINING_WINDOW_MAPPING),
        dg.AssetDep("tweet_embeddings", partition_mapping=TRAINING_WINDOW_MAPPING),
        # The month's drift is measured before its model is trained, so a drift report is
        # never newer than the model built in the same run (drift_sensor treats it as stale).
        "drift_report",
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
    unknown = sorted(set(config.families) - set(FAMILIES))
    if unknown or not config.families:
        raise dg.Failure(f"families must be a non-empty subset of {list(FAMILIES)}: {unknown}")
    window = trailing_window(month, config.window_months, earliest=MONTHS[0])
    text_encoder = encoder.get()
    frame, vectors = load_tweets(
        warehouse.path,
        window,
        text_encoder.fingerprint if EMBEDDING_LOGREG in config.families else None,
    )
    if frame.empty:
        raise dg.Failure(f"no labelled tweets in {[str(m) for m in window]}: nothing to train on")
    labels = frame["label"].to_numpy(dtype=int)
    holdout = holdout_mask(frame["tweet_id"].tolist(), HOLDOUT_FRACTION)
    fingerprint = data_fingerprint(frame["tweet_id"].tolist(), labels)
    client = MlflowClient()

    metadata: dict[str, object] = {
        "window": ", ".join(f"{m:%Y-%m}" for m in window),
        "n_labelled": len(frame),
        "n_holdout": int(holdout.sum()),
        "positive_share": float(labels.mean()),
    }
    training_rows = []
    with tracked_step(mlflow, context) as parent_run_id:
        experiment_id = mlflow_api.get_run(parent_run_id).info.experiment_id
        metadata["mlflow_parent_run"] = dg.MetadataValue.url(
            mlflow_ui_url(experiment_id, parent_run_id)
        )
        for family in config.families:
            with mlflow_api.start_run(run_name=f"{family} {month:%Y-%m}", nested=True) as run:
                fit, params = _fit(
                    family,
                    frame,
                    vectors,
                    holdout,
                    config,
                    text_encoder.path,
                    text_encoder.device,
                    context.log,
                )
                uses_encoder = family != TFIDF_LOGREG
                card = ModelCard(
                    family=family,
                    trained_through=month.isoformat(),
                    window_start=window[0].isoformat(),
                    params=params,
                    data_fingerprint=fingerprint,
                    encoder=text_encoder.name if uses_encoder else None,
                    encoder_fingerprint=text_encoder.fingerprint
                    if family == EMBEDDING_LOGREG
                    else None,
                    metrics={"validation": fit.validation, "train_seconds": fit.train_seconds},
                )
                # The bundle is staged inside the registry cache and, once registered, moved
                # in as that version's local copy: no second copy to download or to keep.
                # Registration comes last, so a version always has its run's numbers.
                with registry.staging_dir(platform.registry_cache_dir, family) as staging:
                    directory = save_bundle(staging / "bundle", card, fit.estimator)
                    predictor = load_predictor(directory, encoder=text_encoder)
                    sample = frame["text"].iloc[:LATENCY_SAMPLE].tolist()
                    started = time.perf_counter()
                    predictor.predict_proba_clean(sample)
                    latency_ms = 1000 * (time.perf_counter() - started) / max(len(sample), 1)
                    mlflow_api.log_params(
                        {**params, "family": family, "window_months": len(window)}
                    )
                    mlflow_api.log_params(
                        {
                            "encoder": text_encoder.fingerprint if uses_encoder else "none",
                            "device": str(text_encoder.device),
                            "window_start": window[0].isoformat(),
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
                            "family": family,
                            "partition_key": context.partition_key,
                            "trained_through": month.isoformat(),
                            "dagster_run_id": context.run_id,
                            "code_version": code_version(),
                            "rows_labelled": str(len(frame)),
                            "data_fingerprint": fingerprint,
                            "bundle_version": card.version,
                        }
                    )
                    version = registry.register_bundle(
                        client, run.info.run_id, run.info.artifact_uri, directory, card
                    )
                    registry.adopt_bundle(directory, version, platform.registry_cache_dir)
            context.log.info(
                f"{family} through {month:%Y-%m}: registered version {version.version}, "
                f"validation {fit.validation}"
            )
            metadata[f"{family}/registered_version"] = version.version
            metadata[f"{family}/val_accuracy"] = fit.validation.get("accuracy", float("nan"))
            metadata[f"{family}/val_macro_f1"] = fit.validation.get("macro_f1", float("nan"))
            metadata[f"{family}/train_seconds"] = round(fit.train_seconds, 3)
            metadata[f"{family}/inference_ms_per_tweet"] = round(latency_ms, 3)
            metadata[f"{family}/mlflow_run"] = dg.MetadataValue.url(
                mlflow_ui_url(experiment_id, run.info.run_id)
            )
            training_rows.append(
                {
                    "model_family": family,
                    "model_version": version.version,
                    "trained_through": month,
                    "window_start": window[0],
                    "n_train": fit.n_train,
                    "n_validation": fit.n_validation,
                    "val_accuracy": fit.validation.get("accuracy"),
                    "val_macro_f1": fit.validation.get("macro_f1"),
                    "train_seconds": fit.train_seconds,
                    "inference_ms_per_tweet": latency_ms,
                    "model_uri": version.source,
                    "mlflow_run_id": run.info.run_id,
                    "bundle_version": card.version,
                    "dagster_run_id": context.run_id,
                    "created_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
                }
            )
    with warehouse.connect() as con:
        replace_rows(
            con,
            "metrics.training_runs",
            pd.DataFrame(training_rows),
            "dagster_run_id = ? AND trained_through = ?",
            [context.run_id, month],
        )
    return dg.MaterializeResult(metadata=metadata)


def load_version(info: registry.VersionInfo, cache_dir: Path, text_encoder: Any) -> Predictor:
    """A registered version, ready to score; embedding models share `text_encoder`."""
    return load_predictor(registry.download_bundle(info, cache_dir), encoder=text_encoder)


def score_version(
    predictor: Predictor,
    duckdb_path: Path,
    frame: pd.DataFrame,
    months: list[date],
    keep: np.ndarray | None = None,
) -> tuple[dict, float]:
    """Metrics of one loaded version on `frame` (rows of `months`, optionally masked)."""
    embeddings = None
    if predictor.card.encoder_fingerprint:
        _, embeddings = load_tweets(duckdb_path, months, predictor.card.encoder_fingerprint)
        if keep is not None:
            embeddings = embeddings[keep]
    texts = frame["text"].tolist()
    started = time.perf_counter()
    scores = predictor.predict_proba_clean(texts, embeddings)
    ms_per_tweet = 1000 * (time.perf_counter() - started) / max(len(texts), 1)
    return classification_metrics(
        frame["label"].to_numpy(dtype=int), np.asarray(scores)
    ), ms_per_tweet


@dg.asset(
    partitions_def=monthly_partitions,
    deps=[
        dg.AssetDep("sentiment_model", partition_mapping=PREVIOUS_MONTH_MAPPING),
        "tweets_clean",
        "tweet_embeddings",
    ],
    pool=DUCKDB_POOL,
    group_name="models",
    kinds={"duckdb", "mlflow"},
    description="Forward chaining: the newest version of each family trained through the "
    "previous month is scored on this month; rows go to metrics.model_evaluations (one per "
    "version and month) and the scores are logged to the version's MLflow run.",
)
def model_evaluation(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    encoder: EncoderResource,
    platform: PlatformResource,
) -> dg.MaterializeResult:
    month = partition_month(context)
    if month == MONTHS[0]:
        return dg.MaterializeResult(
            metadata={"evaluated": 0, "note": "first month: no model was trained before it"}
        )
    trained_through = previous_month(month)
    client = MlflowClient()
    versions = registry.latest_versions_trained_through(client, trained_through.isoformat())
    if not versions:
        raise dg.Failure(
            f"no registered model trained through {trained_through:%Y-%m}: materialize "
            f"sentiment_model for {trained_through.isoformat()} first"
        )
    frame, _ = load_tweets(warehouse.path, [month])
    if frame.empty:
        raise dg.Failure(f"{month:%Y-%m} has no labelled tweets to evaluate on")

    rows = []
    metadata: dict[str, object] = {"eval_month": month.isoformat(), "n": len(frame)}
    for info in versions:
        predictor = load_version(info, platform.registry_cache_dir, encoder.get())
        result, ms_per_tweet = score_version(predictor, warehouse.path, frame, [month])
        if info.run_id:
            for name in ("accuracy", "macro_f1"):
                client.log_metric(info.run_id, f"next_month_{name}", result[name])
            client.log_metric(info.run_id, "next_month_inference_ms_per_tweet", ms_per_tweet)
        metadata[f"{info.family}/version"] = info.version
        metadata[f"{info.family}/accuracy"] = result["accuracy"]
        metadata[f"{info.family}/macro_f1"] = result["macro_f1"]
        rows.append(
            {
                "model_family": info.family,
                "model_version": info.version,
                "trained_through": trained_through,
                "eval_month": month,
                "eval_set": NEXT_MONTH_EVAL,
                **result,
                "dagster_run_id": context.run_id,
                "created_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
            }
        )
    evaluations = pd.DataFrame(rows)
    with warehouse.connect() as con:
        replace_rows(
            con,
            "metrics.model_evaluations",
            evaluations,
            "eval_month = ? AND eval_set = ? AND model_version IN (SELECT unnest(?::VARCHAR[]))",
            [month, NEXT_MONTH_EVAL, evaluations["model_version"].tolist()],
        )
        publish_history(con, platform.published_dir)
    metadata["evaluated"] = len(rows)
    metadata["results"] = dg.MetadataValue.md(
        evaluations[["model_family", "model_version", "n", "accuracy", "macro_f1"]].to_markdown(
            index=False
        )
    )
    return dg.MaterializeResult(metadata=metadata)
