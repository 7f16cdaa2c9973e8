"""raw_tweets: one month of tweets from the configured source, validated, bad rows quarantined."""

import dagster as dg
import pandas as pd

from sentiment_assets.lib.sources import load_month
from sentiment_assets.lib.warehouse import replace_month
from sentiment_assets.partitions import DUCKDB_POOL, monthly_partitions, partition_month
from sentiment_assets.resources import PlatformResource, WarehouseResource

REJECT_RATE_CHECK = "reject_rate_below_threshold"


class IngestConfig(dg.Config):
    max_text_chars: int = 1000
    # Above this share of rejected rows the month still loads, but the check warns: a source
    # whose format silently changed shows up here first.
    max_reject_rate: float = 0.05


@dg.asset(
    partitions_def=monthly_partitions,
    pool=DUCKDB_POOL,
    group_name="ingest",
    kinds={"python", "duckdb"},
    check_specs=[dg.AssetCheckSpec(REJECT_RATE_CHECK, asset="raw_tweets")],
    description="Tweets of one month from SENTIMENT_SOURCE; rejected rows go to "
    "raw.rejected_tweets with their reason. Re-materialising a month replaces it.",
)
def raw_tweets(
    context: dg.AssetExecutionContext,
    config: IngestConfig,
    warehouse: WarehouseResource,
    platform: PlatformResource,
) -> dg.MaterializeResult:
    month = partition_month(context)
    result = load_month(platform.source, month, max_text_chars=config.max_text_chars)
    ingested_at = pd.Timestamp.now(tz="UTC").tz_localize(None)
    accepted = result.accepted.assign(ingested_at=ingested_at)
    rejected = result.rejected.assign(ingested_at=ingested_at)
    with warehouse.connect() as con:
        replace_month(con, "raw.tweets", month, accepted)
        replace_month(con, "raw.rejected_tweets", month, rejected)

    reject_rate = len(rejected) / result.rows_in if result.rows_in else 0.0
    reasons = rejected["reason"].value_counts().sort_index().to_dict() if len(rejected) else {}
    labelled = int(accepted["label_raw"].notna().sum())
    context.log.info(
        f"{month:%Y-%m}: {result.rows_in} rows in, {len(accepted)} accepted, "
        f"{len(rejected)} rejected {reasons}"
    )
    return dg.MaterializeResult(
        metadata={
            "rows_in": result.rows_in,
            "rows_accepted": len(accepted),
            "rows_rejected": len(rejected),
            "rows_labelled": labelled,
            "reject_rate": reject_rate,
            "rejects_by_reason": dg.MetadataValue.json({k: int(v) for k, v in reasons.items()}),
            "source": platform.source,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=REJECT_RATE_CHECK,
                passed=reject_rate <= config.max_reject_rate,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "reject_rate": reject_rate,
                    "threshold": config.max_reject_rate,
                    "rows_rejected": len(rejected),
                },
                description="Share of rows quarantined in raw.rejected_tweets for this month.",
            )
        ],
    )
