"""sentiment_model (one model per family per month) and model_evaluation (forward chaining)."""

from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from sentiment_assets.lib.embedding_store import load_labelled
from sentiment_assets.lib.metrics import classification_metrics
from sentiment_assets.lib.model_bundle import (
    ModelCard,
    data_fingerprint,
    load_predictor,
    save_bundle,
)
from sentiment_assets.lib.months import previous_month, trailing_window
from sentiment_assets.lib.training import (
    EMBEDDING_LOGREG,
    FAMILIES,
    TFIDF_LOGREG,
    LogRegParams,
    fit_embedding_logreg,
    fit_tfidf_logreg,
)
from sentiment_assets.lib.warehouse import replace_rows
from sentiment_assets.partitions import (
    DUCKDB_POOL,
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


class TrainConfig(dg.Config):
    families: list[str] = [TFIDF_LOGREG, EMBEDDING_LOGREG]  # noqa: RUF012 (pydantic copies it)
    window_months: int = 3
    C: float = 1.0
    seed: int = 0
    validation_fraction: float = 0.1


def bundle_dir(models_dir: Path, family: str, month: date) -> Path:
    return models_dir / family / f"{month:%Y-%m}"


@dg.asset(
    partitions_def=monthly_partitions,
    deps=[
        dg.AssetDep("tweets_clean", partition_mapping=TRAINING_WINDOW_MAPPING),
        dg.AssetDep("tweet_embeddings", partition_mapping=TRAINING_WINDOW_MAPPING),
    ],
    pool=DUCKDB_POOL,
    group_name="models",
    kinds={"scikitlearn"},
    description="One model per family trained on the trailing window of months ending with "
    "this one; saved as a bundle under SENTIMENT_HOME/models/<family>/<YYYY-MM>.",
)
def sentiment_model(
    context: dg.AssetExecutionContext,
    config: TrainConfig,
    warehouse: WarehouseResource,
    encoder: EncoderResource,
    platform: PlatformResource,
) -> dg.MaterializeResult:
    month = partition_month(context)
    unknown = sorted(set(config.families) - set(FAMILIES))
    if unknown:
        raise dg.Failure(f"unknown model families {unknown}; choose from {list(FAMILIES)}")
    window = trailing_window(month, config.window_months, earliest=MONTHS[0])
    params = LogRegParams(
        C=config.C, seed=config.seed, validation_fraction=config.validation_fraction
    )
    needs_embeddings = EMBEDDING_LOGREG in config.families
    text_encoder = encoder.get() if needs_embeddings else None
    frame, vectors = load_labelled(
        warehouse.path, window, text_encoder.fingerprint if text_encoder else None
    )
    if frame.empty:
        raise dg.Failure(f"no labelled tweets in {[str(m) for m in window]}: nothing to train on")
    labels = frame["label"].to_numpy(dtype=int)
    fingerprint = data_fingerprint(frame["tweet_id"].tolist(), labels)

    metadata: dict[str, object] = {
        "window": ", ".join(f"{m:%Y-%m}" for m in window),
        "n_labelled": len(frame),
        "positive_share": float(labels.mean()),
    }
    training_rows = []
    for family in config.families:
        if family == TFIDF_LOGREG:
            fit = fit_tfidf_logreg(frame["text"].tolist(), labels, params)
        elif family == EMBEDDING_LOGREG:
            fit = fit_embedding_logreg(vectors, labels, params)
        else:
            raise dg.Failure(f"model family {family!r} is not trainable by this asset yet")
        card = ModelCard(
            family=family,
            trained_through=month.isoformat(),
            window_start=window[0].isoformat(),
            params=params.as_dict(),
            data_fingerprint=fingerprint,
            encoder=text_encoder.name if family == EMBEDDING_LOGREG else None,
            encoder_fingerprint=text_encoder.fingerprint if family == EMBEDDING_LOGREG else None,
            metrics={"validation": fit.validation, "train_seconds": fit.train_seconds},
        )
        directory = save_bundle(bundle_dir(platform.models_dir, family, month), card, fit.estimator)
        context.log.info(
            f"{family} through {month:%Y-%m}: validation {fit.validation} ({card.version})"
        )
        metadata[f"{family}/version"] = card.version
        metadata[f"{family}/val_accuracy"] = fit.validation.get("accuracy", float("nan"))
        metadata[f"{family}/val_macro_f1"] = fit.validation.get("macro_f1", float("nan"))
        metadata[f"{family}/train_seconds"] = round(fit.train_seconds, 3)
        metadata[f"{family}/path"] = dg.MetadataValue.path(str(directory))
        training_rows.append(
            {
                "model_family": family,
                "model_version": card.version,
                "trained_through": month,
                "window_start": window[0],
                "n_train": fit.n_train,
                "n_validation": fit.n_validation,
                "val_accuracy": fit.validation.get("accuracy"),
                "val_macro_f1": fit.validation.get("macro_f1"),
                "train_seconds": fit.train_seconds,
                "model_uri": str(directory),
                "dagster_run_id": context.run_id,
                "created_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
            }
        )
    with warehouse.connect() as con:
        replace_rows(
            con,
            "metrics.training_runs",
            pd.DataFrame(training_rows),
            "trained_through = ? AND model_family IN (SELECT unnest(?::VARCHAR[]))",
            [month, list(config.families)],
        )
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    partitions_def=monthly_partitions,
    deps=[
        dg.AssetDep("sentiment_model", partition_mapping=PREVIOUS_MONTH_MAPPING),
        "tweets_clean",
        "tweet_embeddings",
    ],
    pool=DUCKDB_POOL,
    group_name="models",
    kinds={"duckdb"},
    description="Forward chaining: every model trained through the previous month is scored "
    "on this month; rows go to metrics.model_evaluations (one per model and month).",
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
    bundles = sorted(
        d
        for family_dir in platform.models_dir.glob("*")
        if (d := family_dir / f"{trained_through:%Y-%m}").joinpath("card.json").exists()
    )
    if not bundles:
        raise dg.Failure(
            f"no model trained through {trained_through:%Y-%m}: materialize sentiment_model "
            f"for {trained_through.isoformat()} first"
        )
    frame, _ = load_labelled(warehouse.path, [month])
    if frame.empty:
        raise dg.Failure(f"{month:%Y-%m} has no labelled tweets to evaluate on")
    labels = frame["label"].to_numpy(dtype=int)

    rows = []
    metadata: dict[str, object] = {"eval_month": month.isoformat(), "n": len(frame)}
    for directory in bundles:
        predictor = load_predictor(directory)
        embeddings = None
        if predictor.card.encoder_fingerprint:
            _, embeddings = load_labelled(
                warehouse.path, [month], predictor.card.encoder_fingerprint
            )
        scores = predictor.predict_proba_clean(frame["text"].tolist(), embeddings)
        result = classification_metrics(labels, np.asarray(scores))
        family = predictor.card.family
        metadata[f"{family}/accuracy"] = result["accuracy"]
        metadata[f"{family}/macro_f1"] = result["macro_f1"]
        rows.append(
            {
                "model_family": family,
                "model_version": predictor.version,
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
    metadata["evaluated"] = len(rows)
    metadata["results"] = dg.MetadataValue.md(
        evaluations[["model_family", "model_version", "n", "accuracy", "macro_f1"]].to_markdown(
            index=False
        )
    )
    return dg.MaterializeResult(metadata=metadata)
