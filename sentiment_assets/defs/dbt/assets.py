"""stg_tweets and tweets_clean: the dbt models, built one month window at a time."""

import json
from collections.abc import Mapping
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
from sentiment_assets.partitions import DUCKDB_POOL, MONTHLY_BACKFILL, monthly_partitions


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


def dbt_build_args(window_start: str, window_end: str, full_refresh: bool) -> list[str]:
    if full_refresh:
        return ["build", "--full-refresh", *INDIRECT_SELECTION]
    return [
        "build",
        "--vars",
        json.dumps({"min_month": window_start, "max_month": window_end}),
        *INDIRECT_SELECTION,
    ]


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    partitions_def=monthly_partitions,
    dagster_dbt_translator=SentimentDbtTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
    ),
    # dagster-dbt would default to single_run, which the Python assets cannot share, and a
    # run over both kinds (new_data_sensor's) would warn of varying policies (partitions.py).
    backfill_policy=MONTHLY_BACKFILL,
    pool=DUCKDB_POOL,
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtConfig):
    window = context.partition_time_window
    args = dbt_build_args(
        window.start.date().isoformat(), window.end.date().isoformat(), config.full_refresh
    )
    yield from dbt.cli(args, context=context).stream()
