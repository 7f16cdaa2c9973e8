"""The real Sentiment140 sample through the CLI, Dagster and dbt (needs SENTIMENT140_CSV)."""

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from sentiment_assets.lib.store.warehouse import connect
from tests.conftest import home_paths

SAMPLE = os.environ.get("SENTIMENT140_CSV")
pytestmark = [
    pytest.mark.real_data,
    pytest.mark.skipif(not SAMPLE, reason="SENTIMENT140_CSV is not set (.ci/run sets it)"),
]
# From the data README: rows per month, and one id carried twice with contradictory labels.
EXPECTED_ROWS = {date(2009, 4, 1): 1228, date(2009, 5, 1): 7297, date(2009, 6, 1): 11475}
CONTRADICTORY_ID = "1835531233"


def test_sample_loads_three_months_through_dbt(tmp_path: Path):
    env = {**os.environ, "SENTIMENT_SOURCE": SAMPLE, **home_paths(tmp_path)}
    env.pop("SENTIMENT_MONTHS", None)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sentiment_assets.cli",
            "pipeline",
            "--select",
            "raw_tweets,stg_tweets,tweets_clean",
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    with connect(tmp_path / "warehouse.duckdb", read_only=True) as con:
        raw = dict(con.execute("SELECT month, count(*) FROM raw.tweets GROUP BY month").fetchall())
        rejected = con.execute("SELECT count(*) FROM raw.rejected_tweets").fetchone()[0]
        clean = dict(
            con.execute("SELECT month, count(*) FROM clean.tweets_clean GROUP BY month").fetchall()
        )
        contradictory = con.execute(
            "SELECT count(*) FROM clean.tweets_clean WHERE tweet_id = ?", [CONTRADICTORY_ID]
        ).fetchone()[0]
        labels = con.execute(
            "SELECT label, count(*) FROM clean.tweets_clean GROUP BY label ORDER BY label"
        ).fetchall()
    assert raw == EXPECTED_ROWS
    assert rejected == 0
    assert contradictory == 0
    # The only duplicated id is the contradictory one: both of its rows go, nothing else.
    assert sum(clean.values()) == sum(EXPECTED_ROWS.values()) - 2
    assert clean[date(2009, 4, 1)] == 1228 and clean[date(2009, 6, 1)] == 11475
    assert [label for label, _ in labels] == [0, 1]
