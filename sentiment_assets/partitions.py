"""The monthly partitions every asset shares, and the pools that keep writers apart.

Only months with data can be launched: the partitions run from the first month
(SENTIMENT_EARLIEST_MONTH, else the source's first plausible month) to the last month that
holds a row, in the source (the synthetic generator's configured months) or in a landing
file. Both are read from the settings when the definitions load (`load_months`, called by
the root definitions), never at import: every process loads them, the code server behind the
UI, each run, and the daemon, which loads them again every minute. So a landing file that
brings a new month is requested by new_data_sensor within about a minute, without a restart
(the UI lists the month once its code location is reloaded). The partitions stay time
windows, so the previous-month and training-window mappings keep their arithmetic. Dates
before the first month or in the future are rejected rows (`date_out_of_range`), never
months of their own. SENTIMENT_MONTHS instead fixes an explicit range.

The assets are therefore declared with `monthly_asset` and built with their partitions and
pool by their module's `@dg.definitions` (`monthly_definitions`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import dagster as dg

from sentiment_assets.environment import current_settings
from sentiment_assets.lib.core.months import month_start, next_month
from sentiment_assets.lib.settings import Settings

# Every step that writes the DuckDB warehouse takes this pool (size 1: DuckDB admits one
# writer). The lake has no such lock (lib/store/lake.py), so there its writers take no pool:
# declare them with `pool=WAREHOUSE_WRITERS` and the loaded settings decide.
DUCKDB_POOL_NAME = "duckdb"
WAREHOUSE_WRITERS = "warehouse writers"
# Training takes this one: one job at a time on the accelerator.
GPU_POOL = "gpu"

# One month per run for every monthly asset, so a run over several assets never mixes
# policies. The Python assets build one month each; dbt could take a range, but pool
# "duckdb" runs one warehouse writer at a time anyway, so its temp tables never collide.
MONTHLY_BACKFILL = dg.BackfillPolicy.multi_run(1)


def current_month() -> date:
    """The latest plausible month: called per use, so a long-lived daemon moves with time."""
    return month_start(date.today())


@dataclass(frozen=True)
class Months:
    """The months the loaded definitions offer, and the pools their settings call for."""

    first: date
    # The last month with data when the definitions loaded (the explicit range's end, if any).
    last: date
    uses_lake: bool

    @property
    def partitions(self) -> dg.MonthlyPartitionsDefinition:
        # Equal months give equal definitions: the assets of one load share their partitions.
        return dg.MonthlyPartitionsDefinition(
            start_date=self.first.isoformat(), end_date=next_month(self.last).isoformat()
        )

    @classmethod
    def of(cls, settings: Settings) -> Months:
        """Read from the settings: the source's and the landing files' months."""
        now = current_month()
        return cls(
            first=settings.first_month(latest=now),
            last=settings.last_month(latest=now),
            uses_lake=settings.uses_lake,
        )

    def pool(self, declared: str | None) -> str | None:
        if declared == WAREHOUSE_WRITERS:
            return None if self.uses_lake else DUCKDB_POOL_NAME
        return declared


# The months of the last definitions load, per settings (equal settings, however built, are
# the same environment): what the assets, sensors and builds of this process read back, so
# they agree with the partitions they were loaded with. A few: tests visit several homes.
_LOADED: list[tuple[Settings, Months]] = []
_KEPT = 8


def load_months(settings: Settings | None = None) -> Months:
    """Read the months afresh for a definitions load and keep them for `loaded_months`."""
    settings = settings or current_settings()
    months = Months.of(settings)
    _LOADED[:] = [(settings, months), *[kept for kept in _LOADED if kept[0] != settings]]
    del _LOADED[_KEPT:]
    return months


def loaded_months(settings: Settings | None = None) -> Months:
    """The months the definitions of this process were loaded with (read now if they were
    not loaded yet under these settings)."""
    settings = settings or current_settings()
    for kept, months in _LOADED:
        if kept == settings:
            return months
    return load_months(settings)


def latest_plausible_month(settings: Settings) -> date:
    """The newest month a row may be dated in (the explicit range's end, else the current
    month): a row of a month after the partitions is a month still to come, not a reject."""
    return settings.months[-1] if settings.months is not None else current_month()


def partition_month(context: dg.AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


def first_partition_month(context: dg.AssetExecutionContext) -> date:
    """The first month of the partitions this asset was loaded with."""
    partitions = context.assets_def.partitions_def
    return date.fromisoformat(partitions.get_first_partition_key())


@dataclass(frozen=True)
class MonthlyAsset:
    """An asset with one partition per month, declared at import and built when the
    definitions load, as its partitions and pool follow the settings then."""

    compute: Callable[..., Any]
    pool: str | None
    asset_args: dict[str, Any]
    # `dg.asset`, or another asset decorator taking the same partition arguments (dbt_assets).
    decorator: Callable[..., Callable[[Callable[..., Any]], dg.AssetsDefinition]] = dg.asset

    def build(self, months: Months) -> dg.AssetsDefinition:
        return self.decorator(
            partitions_def=months.partitions,
            backfill_policy=MONTHLY_BACKFILL,
            pool=months.pool(self.pool),
            **self.asset_args,
        )(self.compute)


def monthly_asset(
    *, pool: str | None = None, decorator: Callable[..., Any] = dg.asset, **asset_args: Any
) -> Callable[[Callable[..., Any]], MonthlyAsset]:
    """`@dg.asset` (or `decorator`) for a monthly asset: the same arguments, less the
    partitions and the backfill policy, which every monthly asset shares."""

    def declare(compute: Callable[..., Any]) -> MonthlyAsset:
        return MonthlyAsset(compute, pool, asset_args, decorator)

    return declare


def monthly_definitions(*assets: MonthlyAsset, **definitions: Any) -> dg.Definitions:
    """A defs module's definitions: its monthly assets built on the loaded months, and the
    module's other definitions (sensors, checks, jobs) as given."""
    months = loaded_months()
    return dg.Definitions(assets=[asset.build(months) for asset in assets], **definitions)
