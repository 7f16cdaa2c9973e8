"""`sentiment pipeline`'s console (issue 26): one line per month and stage with the time left,
the full Dagster/dbt/MLflow log in a file under the home.

Two synthetic months of 150 tweets, built by the real command in a child process, whose
stdout and stderr are what a person's terminal would show.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import home_paths

pytestmark = pytest.mark.slow

MONTHS = ("2024-01", "2024-02")
BUILD_TIMEOUT_S = 1200
PROGRESS = re.compile(
    r"^month (?P<n>\d) of 2 · (?P<month>\d{4}-\d\d) · (?P<stage>\w+) … \d+ (s|min)"
)


def test_the_console_shows_progress_and_the_log_file_holds_the_rest(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {
        **os.environ,
        **home_paths(home),
        "SENTIMENT_SYNTHETIC_MONTHS": str(len(MONTHS)),
        "SENTIMENT_SYNTHETIC_TWEETS_PER_MONTH": "150",
    }
    built = subprocess.run(
        [sys.executable, "-m", "sentiment_assets.cli", "pipeline"],
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    console = (built.stdout + built.stderr).splitlines()
    assert built.returncode == 0, "\n".join(console)

    first = console[0]
    assert first.startswith("building 2 months of synthetic; the full log: "), first
    log = Path(first.rsplit(": ", 1)[1])
    assert log.parent == home / "logs" and log.name.startswith("pipeline-")

    progress = [m for line in console if (m := PROGRESS.match(line))]
    assert [(m["n"], m["month"]) for m in progress] == [("1", MONTHS[0]), ("2", MONTHS[1])]
    # One line per month and stage: no stage of a month is reported twice.
    assert len({(m["month"], m["stage"]) for m in progress}) == len(progress)
    assert progress[0].string.endswith(" left")  # an estimate from month 1 on
    assert f"built {len(MONTHS)} months in " in built.stdout
    assert "metrics.model_evaluations" in built.stdout  # the evaluations stay on the console

    assert not [line for line in console if "DEBUG" in line or "STEP_START" in line]
    # Fits on two screens for six months: at most 10 lines per month and 10 more.
    assert len(console) <= 10 * len(MONTHS) + 10, "\n".join(console)

    # What left the console is in the log: Dagster's events for both months, dbt's output.
    detailed = log.read_text()
    for month in MONTHS:
        assert f"== building {month}-01" in detailed
    assert detailed.count("STEP_SUCCESS") >= 2 * len(MONTHS)
    assert " - DEBUG - " in detailed
    assert "dbt" in detailed and "Completed successfully" in detailed
