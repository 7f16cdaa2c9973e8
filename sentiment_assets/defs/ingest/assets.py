"""raw_tweets: one month of tweets from the configured source, validated, bad rows quarantined.

Every row and every file is accounted for: each row is in raw.tweets or raw.rejected_tweets
(with its reason), each file the month took rows from has a row in raw.ingested_files, and a
file that cannot be ingested at all fails the run with its name (a landing file is also moved
to landing/quarantine/ with its reason, so it is not retried forever).
"""

import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd

from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.lib.core.clock import utc_now
from sentiment_assets.lib.core.numbers import rounded
from sentiment_assets.lib.data.landing import is_quiet, landing_files, quarantine
from sentiment_assets.lib.data.sources import (
    DEFAULT_CHUNK_ROWS,
    SourceFileError,
    StagedMonth,
    stage_month,
    write_staged_months,
)
from sentiment_assets.lib.store.warehouse import scratch_parent
from sentiment_assets.lineage import RAW_TWEETS
from sentiment_assets.partitions import (
    WAREHOUSE_WRITERS,
    first_partition_month,
    latest_plausible_month,
    monthly_asset,
    monthly_definitions,
    partition_month,
)

REJECT_RATE_CHECK = "reject_rate_below_threshold"
# Metadata: landing files left out because something wrote them within the settle interval.
STILL_CHANGING = "landing_files_still_changing"


def settled_landing_files(landing_dir: Path, settle_seconds: float) -> tuple[list[Path], list[str]]:
    """The landing files to read, and the names of those still being written: a month built
    while another file is half-written must not load (or quarantine) the half. The file's
    own run, requested by new_data_sensor once it settled, loads it whole."""
    now = time.time()
    ready, changing = [], []
    for path in landing_files(landing_dir):
        if is_quiet(path.stat(), now, settle_seconds):
            ready.append(path)
        else:
            changing.append(path.name)
    return ready, changing


def _refused(
    context: dg.AssetExecutionContext, month: date, source: str, landing_files: int
) -> dg.AssetCheckResult:
    """A month without a single row in any source is not built: a made-up month (one
    launched past the data) must not produce models, drift reports or versions."""
    reason = (
        f"{month:%Y-%m} refused: no source has a row for it (SENTIMENT_SOURCE={source}, "
        f"{landing_files} landing files); nothing written, nothing downstream runs"
    )
    context.log.warning(reason)
    return dg.AssetCheckResult(
        check_name=REJECT_RATE_CHECK,
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"refused": reason, "rows_in": 0},
        description=reason,
    )


class IngestConfig(dg.Config):
    max_text_chars: int = 1000
    # Above this share of rejected rows the month still loads, but the check warns: a source
    # whose format silently changed shows up here first.
    max_reject_rate: float = 0.05
    # Rows read, validated and staged at a time: the step's memory follows this, not the month.
    chunk_rows: int = DEFAULT_CHUNK_ROWS


@monthly_asset(
    pool=WAREHOUSE_WRITERS,
    group_name="ingest",
    kinds={"python", "duckdb"},
    output_required=False,
    check_specs=[
        dg.AssetCheckSpec(
            REJECT_RATE_CHECK,
            asset=RAW_TWEETS,
            description="Share of the month's rows quarantined in raw.rejected_tweets; warns "
            "above IngestConfig.max_reject_rate or when the month has no rows.",
        )
    ],
    description="Tweets of one month from SENTIMENT_SOURCE and the landing folder; rejected "
    "rows go to raw.rejected_tweets with their reason, per-file counts to raw.ingested_files. "
    "A file that cannot be ingested fails the run with its name. A month no source has a "
    "row for is refused: nothing is written and nothing downstream runs. Re-materialising a "
    "month replaces it.",
)
def raw_tweets(
    context: dg.AssetExecutionContext,
    config: IngestConfig,
    warehouse: WarehouseResource,
    platform: PlatformResource,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    # A generator, so that a refused month yields no materialization at all: the steps
    # downstream are skipped and the run stays green (output_required=False).
    yield _ingest(context, config, warehouse, platform)


def _ingest(
    context: dg.AssetExecutionContext,
    config: IngestConfig,
    warehouse: WarehouseResource,
    platform: PlatformResource,
) -> dg.MaterializeResult | dg.AssetCheckResult:
    month = partition_month(context)
    settings = platform.settings
    # A row dated outside the partitions could never be loaded into any month: it is a
    # `date_out_of_range` reject instead of being counted nowhere.
    earliest, latest = first_partition_month(context), latest_plausible_month(settings)

    # Each file's rows go, chunk by chunk, to Parquet next to the warehouse (not /tmp, which
    # may be memory); DuckDB then copies them in one transaction, so a month of any size
    # passes through Python one chunk at a time and the warehouse lock is held only briefly.
    staging_parent = scratch_parent(warehouse.location)
    staging_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".raw_tweets-", dir=staging_parent) as tmp:

        def load(source: str, index: int) -> StagedMonth:
            staging = Path(tmp) / f"{index:04d}"
            staging.mkdir()
            return stage_month(
                source,
                month,
                staging,
                max_text_chars=config.max_text_chars,
                synthetic=settings.synthetic,
                earliest=earliest,
                latest=latest,
                chunk_rows=config.chunk_rows,
            )

        results: list[StagedMonth] = []
        unusable: list[str] = []
        try:
            results.append(load(settings.source, 0))
        except SourceFileError as error:
            # The configured source is the user's own data: named, never moved.
            unusable += [f"{path}: {why}" for path, why in error.problems.items()]
        quarantined: list[str] = []
        ready, changing = settled_landing_files(
            settings.landing_dir, settings.landing_settle_seconds
        )
        if changing:
            context.log.info(f"left out, still being written: {', '.join(changing)}")
        for index, path in enumerate(ready, start=1):
            try:
                results.append(load(str(path), index))
            except Exception as error:  # any unreadable file: quarantine it, report it, go on
                why = (
                    error.problems.get(str(path), str(error))
                    if isinstance(error, SourceFileError)
                    else f"{type(error).__name__}: {error}"
                )
                moved = quarantine(path, why)
                quarantined.append(f"{path.name}: {why} (moved to {moved})")
        if unusable or quarantined:
            # Nothing is written: a month is replaced only by a load that accounts for every
            # file.
            parts = []
            if unusable:
                parts.append("SENTIMENT_SOURCE files could not be ingested: " + "; ".join(unusable))
            if quarantined:
                parts.append(
                    "landing files could not be read and were quarantined: "
                    + "; ".join(quarantined)
                )
            raise dg.Failure(
                " | ".join(parts),
                metadata={
                    "unusable_source_files": dg.MetadataValue.json(unusable),
                    "quarantined": dg.MetadataValue.json(quarantined),
                },
            )
        if not any(result.rows_in for result in results):
            return _refused(context, month, settings.source, len(ready))
        ingested_at = utc_now().to_pydatetime()
        with warehouse.connect() as con:
            write_staged_months(con, month, results, ingested_at)
    files = pd.concat([r.files for r in results], ignore_index=True)
    rows_in = sum(r.rows_in for r in results)
    n_accepted = sum(r.accepted for r in results)
    n_rejected = sum(r.rejected for r in results)
    reasons: dict[str, int] = {}
    for result in results:
        for reason, count in result.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
    reasons = dict(sorted(reasons.items()))
    labelled = sum(r.labelled for r in results)
    reject_rate = n_rejected / rows_in if rows_in else 0.0
    per_file = [
        {
            "file": row["file"],
            "rows": int(row["rows"]),
            "accepted": int(row["accepted"]),
            "rejected": int(row["rejected"]),
            "status": row["status"],
            "reason": row["reason"],
        }
        for row in files.to_dict("records")
    ]
    context.log.info(
        f"{month:%Y-%m}: {rows_in} rows in, {n_accepted} accepted, "
        f"{n_rejected} rejected {reasons}, from {len(per_file)} files"
    )
    return dg.MaterializeResult(
        metadata=rounded(
            {
                "rows_in": rows_in,
                "rows_accepted": n_accepted,
                "rows_rejected": n_rejected,
                "rows_labelled": labelled,
                "reject_rate": reject_rate,
                "rejects_by_reason": dg.MetadataValue.json(reasons),
                "source": settings.source,
                "landing_files": len(results) - 1,
                STILL_CHANGING: dg.MetadataValue.json(changing),
                "files": dg.MetadataValue.json(per_file),
                "plausible_months": f"{earliest:%Y-%m}..{latest:%Y-%m}",
            }
        ),
        check_results=[
            dg.AssetCheckResult(
                check_name=REJECT_RATE_CHECK,
                # A month with no row at all is not a clean month: it warns too.
                passed=rows_in > 0 and reject_rate <= config.max_reject_rate,
                severity=dg.AssetCheckSeverity.WARN,
                metadata=rounded(
                    {
                        "reject_rate": reject_rate,
                        "threshold": config.max_reject_rate,
                        "rows_rejected": n_rejected,
                        "rows_in": rows_in,
                    }
                ),
                description="Share of rows quarantined in raw.rejected_tweets for this month "
                "(fails, as a warning, above the threshold or when the month has no rows).",
            )
        ],
    )


@dg.definitions
def defs() -> dg.Definitions:
    return monthly_definitions(raw_tweets)
