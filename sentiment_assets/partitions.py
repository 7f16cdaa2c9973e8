"""The monthly partitions every asset shares, and the pools that keep writers apart.

The range is fixed when the code location loads: `SENTIMENT_MONTHS=YYYY-MM-01..YYYY-MM-01`
wins; otherwise the synthetic generator's months, or the months found in the source files
(a quick scan of the dates, done once per process).
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from sentiment_assets.environment import current_settings
from sentiment_assets.lib.months import next_month

# Every step that writes the warehouse takes this pool (size 1: DuckDB admits one writer).
DUCKDB_POOL = "duckdb"
# Training takes this one: one job at a time on the accelerator.
GPU_POOL = "gpu"

MONTHS = current_settings().partition_months()

monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date=MONTHS[0].isoformat(),
    end_date=next_month(MONTHS[-1]).isoformat(),
)


def partition_month(context: dg.AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)
