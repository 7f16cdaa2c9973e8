"""kill -9 while dbt builds a month into the lake, then a plain rerun: the dead run's scratch
database (a copy of the clean tables, too big to leave behind) is removed, the month is built,
and the lake holds exactly one file per table and month."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from sentiment_assets.lib.store.lake import Lake
from sentiment_assets.lib.store.warehouse import connect
from tests.reliability.test_crash_recovery import RERUN_TIMEOUT_S, finish, pipeline

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

MONTH = "2024-01-01"


def test_a_rerun_after_kill_9_during_dbt_removes_the_scratch_and_builds_the_month(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record_property
) -> None:
    monkeypatch.setenv("SENTIMENT_WAREHOUSE", "lake")
    home = tmp_path / "home"
    lake = Lake(home / "lake")
    process = pipeline(home, MONTH)
    deadline = time.time() + RERUN_TIMEOUT_S
    while time.time() < deadline and process.poll() is None:
        if list(lake.scratch_dir.glob("dbt-*.duckdb")):
            break
        time.sleep(0.1)
    assert process.poll() is None, "the build ended before dbt could be interrupted"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert list(lake.scratch_dir.glob("dbt-*.duckdb")), "the killed build left its scratch"

    started = time.monotonic()
    output = finish(pipeline(home, MONTH))
    record_property("measured", f"healed and rebuilt in {time.monotonic() - started:.0f} s")
    assert "file(s) of dead lake writers removed" in output
    assert list(lake.scratch_dir.glob("dbt-*")) == []
    assert not (home / "warehouse.duckdb").exists()
    for table in ("raw.tweets", "clean.tweets_clean", "features.tweet_embeddings"):
        assert [m.isoformat() for m in lake.months(table)] == [MONTH], table
    with connect(lake, read_only=True) as con:
        clean, embedded = con.execute(
            "SELECT (SELECT count(*) FROM clean.tweets_clean), "
            "(SELECT count(*) FROM features.tweet_embeddings)"
        ).fetchone()
        trained = con.execute("SELECT count(*) FROM metrics.training_runs").fetchone()[0]
    assert clean > 0 and embedded == clean and trained > 0
