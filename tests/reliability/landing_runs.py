"""Executing new_data_sensor's run requests for real, as far as the month's clean tables.

A request is executed as the run the daemon would launch, cut to raw_tweets and the dbt
models (what decides whether a landing file reached tweets_clean), in this process or, to be
killed mid-way, in a child (`python -m tests.reliability.landing_runs MONTH TAGS_JSON`, with
the home's variables in its environment). Deliberately no import of tests.conftest: a child
must keep the home it was given.
"""

from __future__ import annotations

import json
import sys

import dagster as dg
from dagster_dbt import DbtCliResource

from sentiment_assets.defs.dbt.project import dbt_project
from sentiment_assets.defs.dbt.resources import dbt_executable
from sentiment_assets.defs.ingest.landing_sensor import new_data_sensor
from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.environment import current_settings
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lineage import RAW_TWEETS, STG_TWEETS, TWEETS_CLEAN, TWEETS_DROPPED
from sentiment_assets.ops.instance import instance_template
from sentiment_assets.ops.recovery import this_process_tags
from tests import loaded

TO_CLEAN = [dg.AssetKey(k) for k in (RAW_TWEETS, STG_TWEETS, TWEETS_CLEAN, TWEETS_DROPPED)]


def prepare_landing_home(settings: Settings) -> None:
    """The landing folder, and the home's instance as every `sentiment` start writes it
    (pools of one slot)."""
    settings.landing_dir.mkdir(parents=True)
    settings.dagster_home.mkdir(parents=True)
    (settings.dagster_home / "dagster.yaml").write_text(instance_template(settings).read_text())


def tick(instance: dg.DagsterInstance, settings: Settings, cursor: str | None):
    """One new_data_sensor tick against the real instance: its run requests and new cursor."""
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"platform": PlatformResource.of(settings)}
    )
    result = new_data_sensor(context)
    return list(result.run_requests or []), result.cursor


def resources(settings: Settings) -> dict:
    return {
        "warehouse": WarehouseResource(database=str(settings.duckdb_path)),
        "platform": PlatformResource.of(settings),
        "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
    }


def execute(
    instance: dg.DagsterInstance, settings: Settings, partition_key: str, tags: dict[str, str]
) -> dg.ExecuteInProcessResult:
    """The requested run, tagged like one a `sentiment` process executes (so recovery can
    tell when its process is gone)."""
    return dg.materialize(
        [loaded.asset(RAW_TWEETS), loaded.asset(STG_TWEETS)],
        selection=TO_CLEAN,
        partition_key=partition_key,
        instance=instance,
        resources=resources(settings),
        tags={**tags, **this_process_tags()},
        raise_on_error=False,
    )


if __name__ == "__main__":
    month, tags = sys.argv[1], json.loads(sys.argv[2])
    settings = current_settings()
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as home_instance:
        execute(home_instance, settings, month, tags)
