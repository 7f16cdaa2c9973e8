"""Only months with data are partitions; a new month enters when the definitions load again
(no restart); implausible dates never become months."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date

import dagster as dg
import pytest

from sentiment_assets.defs.ingest.landing_sensor import new_data_sensor
from sentiment_assets.defs.platform.resources import PlatformResource
from sentiment_assets.environment import current_settings
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.lineage import RAW_TWEETS
from sentiment_assets.ops.build import months_with_data
from sentiment_assets.partitions import current_month, load_months, loaded_months
from tests import loaded
from tests.conftest import use_home

pytestmark = pytest.mark.reliability

# The session's synthetic source covers 2024-01..2024-03; May is a month it never had.
MAY_ROWS = (
    "text,created_at,label\n"
    "the new update is lovely,2024-05-10 10:00:00,positive\n"
    "worst commute ever,2024-05-11 09:30:00,negative\n"
)


def tick(instance: dg.DagsterInstance, cursor: str | None = None):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"platform": PlatformResource.of(current_settings())},
    )
    result = new_data_sensor(context)
    return list(result.run_requests or []), result.cursor


def test_the_partitions_run_from_the_first_month_to_the_last_with_data() -> None:
    keys = loaded.asset(RAW_TWEETS).partitions_def.get_partition_keys()
    assert keys == ["2024-01-01", "2024-02-01", "2024-03-01"]
    months = loaded_months()
    assert keys[0] == months.first.isoformat() and keys[-1] == months.last.isoformat()
    assert current_month().isoformat() not in keys, "no launchable month without data"


# What the daemon does every minute: load the definitions in a new process. There, May is a
# partition, new_data_sensor requests it and raw_tweets builds it. (The script imports nothing
# from tests/: tests/conftest.py would point the process at the session's home.)
RELOADED = """
import json
import dagster as dg
from sentiment_assets.definitions import defs
from sentiment_assets.defs.ingest.landing_sensor import new_data_sensor
from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.environment import current_settings

raw_tweets = defs().get_assets_def("raw_tweets")

settings = current_settings()
platform = PlatformResource.of(settings)
with dg.instance_for_test() as instance:
    context = dg.build_sensor_context(instance=instance, resources={"platform": platform})
    requests = new_data_sensor(context).run_requests or []
    result = dg.materialize(
        [raw_tweets],
        partition_key="2024-05-01",
        resources={
            "warehouse": WarehouseResource(database=str(settings.duckdb_path)),
            "platform": platform,
        },
        instance=instance,
    )
print(json.dumps({
    "last": raw_tweets.partitions_def.get_last_partition_key(),
    "requested": [r.partition_key for r in requests],
    "built": result.success,
}))
"""


def test_a_file_with_a_new_month_is_built_once_the_definitions_load_again(
    tmp_path, monkeypatch
) -> None:
    use_home(monkeypatch, tmp_path / "home")
    settings = current_settings()
    load_months(settings)  # this process loaded its definitions before the file came
    settings.landing_dir.mkdir(parents=True)
    may = settings.landing_dir / "may.csv"
    may.write_text(MAY_ROWS)
    assert "2024-05-01" not in months_with_data(settings), "not a partition in this process"
    with dg.instance_for_test() as instance:
        requests, _ = tick(instance)
    assert requests == [] and may.exists(), "it waits: neither requested nor quarantined"
    reloaded = subprocess.run(
        [sys.executable, "-c", RELOADED],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert reloaded.returncode == 0, reloaded.stderr[-2000:]
    outcome = json.loads(reloaded.stdout.strip().splitlines()[-1])
    assert outcome == {"last": "2024-05-01", "requested": ["2024-05-01"], "built": True}
    with connect(settings.duckdb_path, read_only=True) as con:
        months = con.execute(
            "SELECT DISTINCT month FROM raw.tweets WHERE source LIKE '%may.csv'"
        ).fetchall()
    assert months == [(date(2024, 5, 1),)]


def test_a_file_dated_only_outside_the_partitions_is_quarantined(tmp_path, monkeypatch) -> None:
    use_home(monkeypatch, tmp_path / "home")
    settings = current_settings()
    settings.landing_dir.mkdir(parents=True)
    typos = settings.landing_dir / "typos.csv"
    typos.write_text(
        "text,created_at,label\n"
        "party like it is,1999-12-31 23:59:00,positive\n"
        "greetings from the future,2099-01-01 00:00:00,negative\n"
    )
    with dg.instance_for_test() as instance:
        requests, _ = tick(instance)
    assert requests == []
    assert not typos.exists()
    reason = (settings.landing_dir / "quarantine" / "typos.csv.reason.txt").read_text()
    assert "no row dated within the partitions" in reason and "1999-12" in reason
