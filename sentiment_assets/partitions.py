"""The monthly partitions every asset shares, and the pools that keep writers apart.

The months grow with the calendar, not with a restart: the partitions run from the first
month (SENTIMENT_EARLIEST_MONTH, else the source's first plausible month, read once when the
code location loads) up to and including the current month, so a file that brings a new
month finds its partition already there. Dates before the first month or in the future are
rejected rows (`date_out_of_range`), never months of their own. SENTIMENT_MONTHS instead
fixes an explicit range.
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from sentiment_assets.environment import current_settings
from sentiment_assets.lib.core.months import month_start, next_month

_SETTINGS = current_settings()

# Every step that writes the DuckDB warehouse takes this pool (size 1: DuckDB admits one
# writer). The lake has no such lock (lib/store/lake.py), so there its writers take no pool.
DUCKDB_POOL_NAME = "duckdb"
DUCKDB_POOL = None if _SETTINGS.uses_lake else DUCKDB_POOL_NAME
# Training takes this one: one job at a time on the accelerator.
GPU_POOL = "gpu"


# One month per run for every monthly asset, so a run over several assets never mixes
# policies. The Python assets build one month each; dbt could take a range, but pool
# "duckdb" runs one warehouse writer at a time anyway, so its temp tables never collide.
MONTHLY_BACKFILL = dg.BackfillPolicy.multi_run(1)


def current_month() -> date:
    """The latest plausible month: called per use, so a long-lived daemon moves with time."""
    return month_start(date.today())


FIRST_MONTH = _SETTINGS.first_month(latest=current_month())

if _SETTINGS.months is not None:
    monthly_partitions = dg.MonthlyPartitionsDefinition(
        start_date=FIRST_MONTH.isoformat(), end_date=next_month(_SETTINGS.months[-1]).isoformat()
    )
else:
    # end_offset=1: the current, still open month is a partition too.
    monthly_partitions = dg.MonthlyPartitionsDefinition(
        start_date=FIRST_MONTH.isoformat(), end_offset=1
    )


def last_month() -> date:
    """The last partition (the explicit range's end, else the current month)."""
    return _SETTINGS.months[-1] if _SETTINGS.months is not None else current_month()


def partition_month(context: dg.AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)
