"""The monthly partitions every asset shares, and the pools that keep writers apart.

Only months with data can be launched: the partitions run from the first month
(SENTIMENT_EARLIEST_MONTH, else the source's first plausible month) to the last month that
holds a row, in the source (the synthetic generator's configured months) or in a landing
file. Both are read when the definitions load, which every process does: the code server
behind the UI, each run, and the daemon, which loads them again every minute. So a landing
file that brings a new month is requested by new_data_sensor within about a minute, without
a restart (the UI lists the month once its code location is reloaded). The partitions stay
time windows, so the previous-month and training-window mappings keep their arithmetic.
Dates before the first month or in the future are rejected rows (`date_out_of_range`), never
months of their own. SENTIMENT_MONTHS instead fixes an explicit range.
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
# The last month with data when the definitions loaded (the explicit range's end, if any).
LAST_MONTH = _SETTINGS.last_month(latest=current_month())

monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date=FIRST_MONTH.isoformat(), end_date=next_month(LAST_MONTH).isoformat()
)


def last_month() -> date:
    """The last partition: the last month with data when the definitions loaded."""
    return LAST_MONTH


def latest_plausible_month() -> date:
    """The newest month a row may be dated in (the explicit range's end, else the current
    month): a row of a month after the partitions is a month still to come, not a reject."""
    return _SETTINGS.months[-1] if _SETTINGS.months is not None else current_month()


def partition_month(context: dg.AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)
