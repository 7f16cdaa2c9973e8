"""The months and pools are read when the definitions load, never at import: importing the code
location reads no settings, and loading it again sees the months that arrived since."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg

from sentiment_assets.definitions import defs
from sentiment_assets.environment import current_settings
from sentiment_assets.lineage import RAW_TWEETS, SENTIMENT_MODEL, STG_TWEETS
from tests.conftest import use_home

# Every defs module imported, then the definitions loaded: with a source that holds no tweet,
# the import must pass and only the load may fail, naming the source.
IMPORT_THEN_LOAD = """
import importlib, pkgutil
import sentiment_assets.defs as package
for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(module.name)
import sentiment_assets.partitions
from sentiment_assets.definitions import defs
print("imported", flush=True)
defs()
"""


def test_importing_the_code_location_reads_no_settings(tmp_path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("text,created_at,label\n")
    env = {
        **os.environ,
        "SENTIMENT_SOURCE": str(empty),
        "SENTIMENT_HOME": str(tmp_path / "home"),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    for name in ("DUCKDB_PATH", "DAGSTER_HOME", "MLFLOW_TRACKING_URI", "SENTIMENT_EARLIEST_MONTH"):
        env.pop(name, None)
    ran = subprocess.run(
        [sys.executable, "-c", IMPORT_THEN_LOAD], env=env, capture_output=True, text=True
    )
    assert ran.stdout.strip() == "imported", ran.stderr[-2000:]
    assert ran.returncode != 0
    assert f"SENTIMENT_SOURCE={str(empty)!r} holds no row" in ran.stderr


def last_partition(definitions: dg.Definitions, key: str) -> str:
    return definitions.get_assets_def(key).partitions_def.get_last_partition_key()


def test_a_second_load_sees_a_new_month_and_every_asset_shares_it(tmp_path, monkeypatch) -> None:
    use_home(monkeypatch, tmp_path / "home")
    settings = current_settings()
    first = defs()
    assert last_partition(first, RAW_TWEETS) == "2024-03-01"
    settings.landing_dir.mkdir(parents=True)
    (settings.landing_dir / "may.csv").write_text(
        "text,created_at,label\nthe new update is lovely,2024-05-10 10:00:00,positive\n"
    )
    assert last_partition(first, RAW_TWEETS) == "2024-03-01", "a loaded definition stays put"
    again = defs()
    assert {last_partition(again, key) for key in (RAW_TWEETS, STG_TWEETS, SENTIMENT_MODEL)} == {
        "2024-05-01"
    }
    job = again.resolve_job_def("month_build_job")
    assert job.partitions_def.get_last_partition_key() == "2024-05-01"


def test_the_lake_takes_no_duckdb_pool_and_training_keeps_its_own(tmp_path, monkeypatch) -> None:
    use_home(monkeypatch, tmp_path / "home")
    on_duckdb = defs()
    assert on_duckdb.get_assets_def(RAW_TWEETS).op.pool == "duckdb"
    assert on_duckdb.get_assets_def(STG_TWEETS).op.pool == "duckdb"
    monkeypatch.setenv("SENTIMENT_WAREHOUSE", "lake")
    on_lake = defs()
    assert on_lake.get_assets_def(RAW_TWEETS).op.pool is None
    assert on_lake.get_assets_def(STG_TWEETS).op.pool is None
    assert on_lake.get_assets_def(SENTIMENT_MODEL).op.pool == "gpu"
