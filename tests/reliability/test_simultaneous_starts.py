"""Processes started at once on a fresh home never corrupt DAGSTER_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from tests.conftest import home_paths

pytestmark = pytest.mark.reliability

# What every entry point does first (sentiment pipeline, make serve, the drift demo), then a
# first use of the instance, as a run would.
START = """
import dagster as dg
from sentiment_assets.ops.instance import prepare_environment
prepare_environment()
instance = dg.DagsterInstance.get()
instance.report_runless_asset_event(dg.AssetMaterialization("started"))
print(len(instance.get_runs()), instance.fetch_materializations(dg.AssetKey("started"), limit=9)
      .records[0].storage_id)
"""
PROCESSES = 3
TRIALS = 5


def start_together(home: Path) -> list[subprocess.CompletedProcess]:
    env = {**os.environ, **home_paths(home)}
    started = [
        subprocess.Popen(
            [sys.executable, "-c", START],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    return [
        subprocess.CompletedProcess(p.args, p.wait(timeout=240), *p.communicate()) for p in started
    ]


@pytest.mark.parametrize("trial", range(TRIALS))
def test_simultaneous_first_starts_share_one_healthy_instance(tmp_path: Path, trial: int) -> None:
    home = tmp_path / f"home-{trial}"
    for finished in start_together(home):
        assert finished.returncode == 0, finished.stderr[-3000:]
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        records = instance.fetch_materializations(dg.AssetKey("started"), limit=10).records
        assert len(records) == PROCESSES
