"""The monthly partitions every asset shares, derived from the configured source.

The range is fixed when the code location loads: `SENTIMENT_MONTHS=YYYY-MM-01..YYYY-MM-01`
wins; otherwise the synthetic generator's months, or the months found in the source files
(a quick scan of the dates, done once per process).
"""

from __future__ import annotations

import os
from datetime import date

import dagster as dg

from sentiment_assets.lib import synthetic
from sentiment_assets.lib.months import next_month, parse_month_range
from sentiment_assets.lib.settings import load_settings
from sentiment_assets.lib.sources import months_in_source

DUCKDB_POOL = "duckdb"
GPU_POOL = "gpu"


def configured_months() -> list[date]:
    explicit = os.environ.get("SENTIMENT_MONTHS")
    if explicit:
        return parse_month_range(explicit)
    settings = load_settings()
    if settings.is_synthetic:
        return synthetic.months(synthetic.config_from_env(os.environ))
    months = months_in_source(settings.source)
    if not months:
        raise ValueError(f"SENTIMENT_SOURCE={settings.source!r} holds no row with a usable date")
    return months


MONTHS = configured_months()

monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date=MONTHS[0].isoformat(),
    end_date=next_month(MONTHS[-1]).isoformat(),
)


def partition_month(context: dg.AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)
