"""model_challenger (scored against the champion, behind a blocking check) and model_champion.

The challenger and the champion are scored on the same rows: the fixed hash holdout of the
challenger's training window, which no model ever trains on. If the challenger is worse by
more than the margin, the blocking check fails, the run stops there and model_champion is
not materialized, so the `champion` alias cannot move. Every decision is a row in
metrics.promotions.
"""

from datetime import date

import dagster as dg
import pandas as pd
from mlflow.tracking import MlflowClient

from sentiment_assets.defs.models.assets import score_version
from sentiment_assets.lib import registry
from sentiment_assets.lib.embedding_store import load_tweets
from sentiment_assets.lib.months import trailing_window
from sentiment_assets.lib.promotion import REJECTED, decide, promotion_row
from sentiment_assets.lib.publish import publish_champion, publish_history
from sentiment_assets.lib.training import HOLDOUT_FRACTION, holdout_mask
from sentiment_assets.lib.warehouse import append_rows
from sentiment_assets.partitions import DUCKDB_POOL, MONTHS, monthly_partitions, partition_month
from sentiment_assets.resources import EncoderResource, PlatformResource, WarehouseResource

GATE_CHECK = "challenger_not_worse_than_champion"


class PromotionConfig(dg.Config):
    # None: the family whose validation macro-F1 is best this month.
    family: str | None = None
    metric: str = "macro_f1"
    margin: float = 0.0
    window_months: int = 3


def pick_challenger(
    client: MlflowClient, month: date, family: str | None
) -> tuple[registry.VersionInfo, dict[str, float]]:
    candidates = registry.latest_versions_trained_through(client, month.isoformat())
    if family:
        candidates = [c for c in candidates if c.family == family]
    if not candidates:
        raise dg.Failure(
            f"no registered model{' of family ' + family if family else ''} trained through "
            f"{month:%Y-%m}: materialize sentiment_model for {month.isoformat()} first"
        )
    validation = {
        c.version: client.get_run(c.run_id).data.metrics.get("val_macro_f1", float("-inf"))
        for c in candidates
    }
    best = max(candidates, key=lambda c: (validation[c.version], -int(c.version)))
    return best, validation


@dg.asset(
    partitions_def=monthly_partitions,
    # After drift_report: the month's drift is judged against the champion it had before
    # this month's promotion, not against a champion trained on the month itself.
    deps=["sentiment_model", "drift_report"],
    pool=DUCKDB_POOL,
    group_name="models",
    kinds={"mlflow"},
    check_specs=[dg.AssetCheckSpec(GATE_CHECK, asset="model_challenger", blocking=True)],
    description="The month's best new version, scored against the current champion on the "
    "same holdout rows; the blocking check is the promotion gate.",
)
def model_challenger(
    context: dg.AssetExecutionContext,
    config: PromotionConfig,
    warehouse: WarehouseResource,
    encoder: EncoderResource,
    platform: PlatformResource,
) -> dg.MaterializeResult:
    month = partition_month(context)
    client = MlflowClient()
    challenger, validation = pick_challenger(client, month, config.family)
    current = registry.champion(client)

    window = trailing_window(month, config.window_months, earliest=MONTHS[0])
    labelled, _ = load_tweets(warehouse.path, window)
    keep = holdout_mask(labelled["tweet_id"].tolist(), HOLDOUT_FRACTION)
    frame = labelled[keep].reset_index(drop=True)
    if len(frame) < 10 or frame["label"].nunique() < 2:
        raise dg.Failure(
            f"only {len(frame)} holdout rows in {[str(m) for m in window]}: too few to compare "
            "models; widen window_months or ingest more data"
        )
    text_encoder = encoder.get()

    def score(info: registry.VersionInfo) -> float:
        result, _ = score_version(
            info, platform.registry_cache_dir, warehouse.path, frame, window, text_encoder, keep
        )
        return result[config.metric]

    challenger_score = score(challenger)
    champion_score = score(current) if current else None
    decision = decide(
        challenger.version,
        challenger_score,
        current.version if current else None,
        champion_score,
        config.margin,
    )
    context.log.info(
        f"promotion of version {challenger.version}: {decision.decision}: {decision.reason}"
    )
    details = {
        "model_version": challenger.version,
        "model_family": challenger.family,
        "trained_through": month,
        "decision": decision.decision,
        "champion_version": current.version if current else None,
        "champion_score": champion_score,
        "challenger_score": challenger_score,
        "metric": config.metric,
        "margin": config.margin,
        "eval_month": month,
        "n_eval": len(frame),
        "reason": decision.reason,
        "dagster_run_id": context.run_id,
    }
    if decision.decision == REJECTED:
        # The gate stops the run before model_champion, so the rejection is recorded here.
        with warehouse.connect() as con:
            append_rows(con, "metrics.promotions", promotion_row(**details))
            publish_history(con, platform.published_dir)
    metadata = {
        "challenger_version": challenger.version,
        "challenger_family": challenger.family,
        "challenger_score": challenger_score,
        "champion_version": current.version if current else "none",
        "champion_score": champion_score if champion_score is not None else float("nan"),
        "decision": decision.decision,
        "reason": decision.reason,
        "metric": config.metric,
        "margin": config.margin,
        "n_eval": len(frame),
        "validation_macro_f1_by_version": dg.MetadataValue.json(validation),
    }
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=GATE_CHECK,
                passed=decision.passes,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={k: metadata[k] for k in ("challenger_score", "champion_score", "margin")},
                description=decision.reason,
            )
        ],
    )


@dg.asset(
    partitions_def=monthly_partitions,
    deps=["model_challenger"],
    pool=DUCKDB_POOL,
    group_name="models",
    kinds={"mlflow"},
    description="Moves the registry alias `champion` to the challenger that passed the gate "
    "and records the decision in metrics.promotions.",
)
def model_champion(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    platform: PlatformResource,
) -> dg.MaterializeResult:
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("model_challenger"), asset_partitions=[context.partition_key]
        ),
        limit=1,
    ).records
    if not records:
        raise dg.Failure(f"model_challenger has no materialization for {context.partition_key}")
    meta = {k: v.value for k, v in records[0].asset_materialization.metadata.items()}
    if meta["decision"] == REJECTED:
        raise dg.Failure(f"the latest challenger was rejected: {meta['reason']}")
    client = MlflowClient()
    info = registry.set_champion(client, str(meta["challenger_version"]))
    champion_score = meta["champion_score"]
    with warehouse.connect() as con:
        append_rows(
            con,
            "metrics.promotions",
            promotion_row(
                model_version=info.version,
                model_family=info.family,
                trained_through=date.fromisoformat(info.trained_through),
                decision=meta["decision"],
                champion_version=None
                if meta["champion_version"] == "none"
                else meta["champion_version"],
                champion_score=None if pd.isna(champion_score) else champion_score,
                challenger_score=meta["challenger_score"],
                metric=meta["metric"],
                margin=meta["margin"],
                eval_month=partition_month(context),
                n_eval=meta["n_eval"],
                reason=meta["reason"],
                dagster_run_id=context.run_id,
            ),
        )
        publish_history(con, platform.published_dir)
    published = publish_champion(platform.published_dir, info, meta["decision"])
    context.log.info(
        f"champion is now version {info.version} ({info.family}, {info.trained_through})"
    )
    return dg.MaterializeResult(
        metadata={
            "champion_version": info.version,
            "family": info.family,
            "trained_through": info.trained_through,
            "decision": meta["decision"],
            "published": dg.MetadataValue.path(str(published)),
        }
    )
