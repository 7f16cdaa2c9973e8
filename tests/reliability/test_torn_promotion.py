"""A process killed between moving the `champion` alias and recording the move: the next
start writes the missing row (decision `recovered`) and publishes champion.json again, so
the app's History tab names the version it serves.

The kill point is reproduced exactly: a process moves the alias with the registry API, as
`record_champion_change` does first, and is killed with SIGKILL right after.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from sentiment_assets.lib.settings import load_settings
from tests.reliability.conftest import (
    champion,
    copy_home,
    published_rows,
    succeeds,
    versions,
)

pytestmark = [pytest.mark.reliability, pytest.mark.slow]


def promotions(home: Path) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(
            "SELECT model_version, decision, champion_version FROM metrics.promotions "
            "ORDER BY created_at"
        ).fetchall()


def move_alias_and_die(home: Path, version: str) -> None:
    """What record_champion_change does first, in a process that ends right after it."""
    script = (
        "import os, signal, sys\n"
        "from mlflow.tracking import MlflowClient\n"
        "from sentiment_assets.lib.versions import registry\n"
        "registry.set_champion(MlflowClient(sys.argv[1]), sys.argv[2])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    uri = load_settings({"SENTIMENT_HOME": str(home)}).mlflow_tracking_uri
    done = subprocess.run([sys.executable, "-c", script, uri, version], timeout=120)
    assert done.returncode == -signal.SIGKILL


def test_an_alias_moved_without_its_record_is_recorded_at_the_next_start(
    january_home: Path, tmp_path: Path
) -> None:
    home = copy_home(january_home, tmp_path / "home")
    before = champion(home)
    moved_to = next(v for v in versions(home) if v != before)
    move_alias_and_die(home, moved_to)
    recorded_before = promotions(home)
    published_before = published_rows(home)["promotions"]

    succeeds(home, "prepare")

    assert champion(home) == moved_to, "the alias is what serves: it is never moved back"
    assert promotions(home) == [*recorded_before, (moved_to, "recovered", before)]
    assert published_rows(home)["promotions"] == published_before + 1
    published = json.loads((home / "published" / "champion.json").read_text())
    assert published["version"] == moved_to

    succeeds(home, "prepare")
    assert len(promotions(home)) == len(recorded_before) + 1, "a second start repairs nothing"
    # The champion it replaced stays the rollback target.
    assert f"-> {before} (" in succeeds(home, "rollback")
