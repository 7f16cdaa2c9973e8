"""stg_tweets and tweets_clean: the dbt models, built one month window at a time."""

import json
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from sentiment_assets.defs.dbt.project import dbt_project
from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.lib.core.months import next_month
from sentiment_assets.lib.store.warehouse import warehouse_at
from sentiment_assets.partitions import WAREHOUSE_WRITERS, monthly_asset, monthly_definitions


class SentimentDbtTranslator(DagsterDbtTranslator):
    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            # The raw tables are written by Python assets; point dbt's sources at them.
            return spec.replace_attributes(key=dg.AssetKey(f"raw_{props['name']}"))
        # Keys are the bare model names (the warehouse schema is an implementation detail).
        return spec.replace_attributes(key=dg.AssetKey(props["name"]), group_name="dbt")

    def get_asset_check_spec(
        self,
        asset_spec: dg.AssetSpec,
        manifest: Mapping[str, Any],
        unique_id: str,
        project: DbtProject | None,
    ) -> dg.AssetCheckSpec | None:
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None or spec.description:
            return spec
        # dagster-dbt reads a check's description only from the test's meta; ours are written
        # as dbt's own `description:` of each data test (in the models' .yml, where dbt docs
        # show them too), so the Dagster UI says what each check guarantees.
        description = manifest["nodes"][unique_id].get("description") or None
        return spec._replace(description=description) if description else spec


class DbtConfig(dg.Config):
    # A full refresh rebuilds tweets_clean from every month in raw.tweets, ignoring the
    # partition window: the escape hatch after a change to the cleaning rules.
    full_refresh: bool = False


# A test runs only when every model it reads is selected: every_staged_row_accounted_for
# reads tweets_clean and tweets_dropped, and a selection of tweets_clean alone must not run
# it against a table that this build did not make (dbt's default, "eager", would).
INDIRECT_SELECTION = ["--indirect-selection", "cautious"]


def dbt_build_args(
    window_start: str, window_end: str, full_refresh: bool, duckdb_path: str | None = None
) -> list[str]:
    """dbt's arguments for one window; `duckdb_path` overrides the database dbt builds in
    (the lake's scratch file; profiles.yml reads the var)."""
    target = {"duckdb_path": duckdb_path} if duckdb_path else {}
    if full_refresh:
        refresh = ["--vars", json.dumps(target)] if target else []
        return ["build", "--full-refresh", *refresh, *INDIRECT_SELECTION]
    return [
        "build",
        "--vars",
        json.dumps({"min_month": window_start, "max_month": window_end, **target}),
        *INDIRECT_SELECTION,
    ]


@contextmanager
def run_target(root: Path, run_id: str, month: date) -> Iterator[Path]:
    """dbt's target folder for one step (artifacts and logs, ~2 MB), under the home and
    removed when the step ends, failed or not; recovery reclaims those of killed steps by
    the run id the name starts with. dagster-dbt's default was a new folder in the
    repository's dbt_project/target/ per step, never removed."""
    path = root / f"{run_id}-{month.isoformat()}"
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def window_months(start: date, end: date) -> list[date]:
    months = [start]
    while next_month(months[-1]) < end:
        months.append(next_month(months[-1]))
    return months


# Built with the backfill policy every monthly asset shares: dagster-dbt would default to
# single_run, which the Python assets cannot share, and a run over both kinds
# (new_data_sensor's) would warn of varying policies (partitions.py).
@monthly_asset(
    decorator=dbt_assets,
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=SentimentDbtTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
    ),
    pool=WAREHOUSE_WRITERS,
)
def dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    config: DbtConfig,
    warehouse: WarehouseResource,
    platform: PlatformResource,
):
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    store = warehouse_at(warehouse.location)
    target_root = platform.settings.dbt_target_dir
    # The lake's dbt builds in a scratch DuckDB of this run's own (so months build in parallel),
    # and the months it made replace theirs in the lake only once the build and its tests passed.
    with (
        store.dbt_database(f"{context.run_id}-{start.isoformat()}") as database,
        run_target(target_root, context.run_id, start) as target,
    ):
        scratch = str(database) if database is not None else None
        args = dbt_build_args(start.isoformat(), end.isoformat(), config.full_refresh, scratch)
        yield from dbt.cli(args, context=context, target_path=target).stream()
        published = store.publish_dbt_build(
            database, window_months(start, end), config.full_refresh
        )
    if published is not None:
        months, written = published
        context.log.info(f"lake: wrote {len(months)} month(s) of {written}")


@dg.definitions
def defs() -> dg.Definitions:
    return monthly_definitions(dbt_models)
