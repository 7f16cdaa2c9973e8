"""raw_tweets: one month of tweets from the configured source, validated, bad rows quarantined."""

import dagster as dg
import pandas as pd

from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.lib.landing import landing_files, quarantine
from sentiment_assets.lib.sources import load_month
from sentiment_assets.lib.warehouse import replace_month
from sentiment_assets.lineage import RAW_TWEETS
from sentiment_assets.partitions import DUCKDB_POOL, monthly_partitions, partition_month

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
    check_specs=[dg.AssetCheckSpec(REJECT_RATE_CHECK, asset=RAW_TWEETS)],
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
    settings = platform.settings
    results = [
        load_month(
            settings.source,
            month,
            max_text_chars=config.max_text_chars,
            synthetic=settings.synthetic,
        )
    ]
    broken = []
    for path in landing_files(settings.landing_dir):
        try:
            results.append(load_month(str(path), month, max_text_chars=config.max_text_chars))
        except Exception as error:  # any unreadable file: quarantine it, report it, go on
            moved = quarantine(path, f"{type(error).__name__}: {error}")
            broken.append(f"{path.name}: {error} (moved to {moved})")
    if broken:
        raise dg.Failure(
            "landing files could not be read and were quarantined: " + "; ".join(broken),
            metadata={"quarantined": dg.MetadataValue.json(broken)},
        )
    ingested_at = pd.Timestamp.now(tz="UTC").tz_localize(None)
    accepted = pd.concat([r.accepted for r in results], ignore_index=True).assign(
        ingested_at=ingested_at
    )
    rejected = pd.concat([r.rejected for r in results], ignore_index=True).assign(
        ingested_at=ingested_at
    )
    rows_in = sum(r.rows_in for r in results)
    with warehouse.connect() as con:
        replace_month(con, "raw.tweets", month, accepted)
        replace_month(con, "raw.rejected_tweets", month, rejected)

    reject_rate = len(rejected) / rows_in if rows_in else 0.0
    reasons = rejected["reason"].value_counts().sort_index().to_dict() if len(rejected) else {}
    labelled = int(accepted["label_raw"].notna().sum())
    context.log.info(
        f"{month:%Y-%m}: {rows_in} rows in, {len(accepted)} accepted, "
        f"{len(rejected)} rejected {reasons}"
    )
    return dg.MaterializeResult(
        metadata={
            "rows_in": rows_in,
            "rows_accepted": len(accepted),
            "rows_rejected": len(rejected),
            "rows_labelled": labelled,
            "reject_rate": reject_rate,
            "rejects_by_reason": dg.MetadataValue.json({k: int(v) for k, v in reasons.items()}),
            "source": settings.source,
            "landing_files": len(results) - 1,
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
