"""model_evaluation: forward chaining, the model trained through month M scored on M+1."""

import dagster as dg
import pandas as pd
from mlflow.tracking import MlflowClient

from sentiment_assets.defs.embeddings.resources import EncoderResource
from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.lib import registry
from sentiment_assets.lib.embedding_store import load_tweets
from sentiment_assets.lib.evaluation import NEXT_MONTH_EVAL, score_version
from sentiment_assets.lib.months import previous_month
from sentiment_assets.lib.publish import publish_history
from sentiment_assets.lib.serving import load_version
from sentiment_assets.lib.warehouse import replace_rows
from sentiment_assets.lineage import SENTIMENT_MODEL, TWEET_EMBEDDINGS, TWEETS_CLEAN
from sentiment_assets.partitions import (
    DUCKDB_POOL,
    FIRST_MONTH,
    MONTHLY_BACKFILL,
    monthly_partitions,
    partition_month,
)

PREVIOUS_MONTH_MAPPING = dg.TimeWindowPartitionMapping(
    start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
)


@dg.asset(
    partitions_def=monthly_partitions,
    backfill_policy=MONTHLY_BACKFILL,
    deps=[
        dg.AssetDep(SENTIMENT_MODEL, partition_mapping=PREVIOUS_MONTH_MAPPING),
        TWEETS_CLEAN,
        TWEET_EMBEDDINGS,
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
    if month == FIRST_MONTH:
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

    settings = platform.settings
    rows = []
    metadata: dict[str, object] = {"eval_month": month.isoformat(), "n": len(frame)}
    for info in versions:
        predictor = load_version(info, settings.registry_cache_dir, encoder=encoder.get())
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
        publish_history(con, settings.published_dir)
    metadata["evaluated"] = len(rows)
    metadata["results"] = dg.MetadataValue.md(
        evaluations[["model_family", "model_version", "n", "accuracy", "macro_f1"]].to_markdown(
            index=False
        )
    )
    return dg.MaterializeResult(metadata=metadata)
