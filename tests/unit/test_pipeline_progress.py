"""The pipeline's quiet console (commands/progress.py) on real file descriptors: what this
process and its children print goes to the log file, the progress lines to the console, and
both are put back as they were, also when the build fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sentiment_assets.commands.progress import duration, quiet_console

MONTHS = ["2024-01-01", "2024-02-01"]
CHILD = "import sys; print('child says out'); print('child says err', file=sys.stderr)"


def log_named_in(first_line: str) -> Path:
    return Path(first_line.rsplit("the full log: ", 1)[1])


def test_output_goes_to_the_log_and_progress_to_the_console(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with quiet_console(tmp_path, MONTHS, "synthetic") as progress:
        for month in MONTHS:
            with progress.stage(month, "data"):
                subprocess.run([sys.executable, "-c", CHILD], check=True)
                print("a DEBUG line of this process")
    print("after the build")
    out, err = capfd.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("building 2 months of synthetic; the full log: ")
    assert lines[1].startswith("month 1 of 2 · 2024-01 · data … 0 s · about ")
    assert lines[1].endswith(" left")
    assert lines[2] == "month 2 of 2 · 2024-02 · data … 0 s"  # nothing left to estimate
    assert lines[3].startswith("built 2 months in ")
    assert lines[4:] == ["after the build"] and err == ""
    log = log_named_in(lines[0])
    assert log.parent == tmp_path / "logs"
    assert log.read_text().count("child says out") == 2
    assert log.read_text().count("child says err") == 2
    assert "a DEBUG line of this process" in log.read_text()


def test_a_failed_build_says_so_and_gives_the_console_back(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with (
        pytest.raises(SystemExit, match="the build of 2024-01-01 failed"),
        quiet_console(tmp_path, MONTHS, "synthetic") as progress,
        progress.stage(MONTHS[0], "data"),
    ):
        print("the step's traceback")
        raise SystemExit("the build of 2024-01-01 failed")
    print("the error, as the interpreter prints it")
    out, _ = capfd.readouterr()
    lines = out.splitlines()
    assert lines[1].startswith("stopped after 0 s; the full log: ")
    assert lines[2:] == ["the error, as the interpreter prints it"]
    assert "the step's traceback" in log_named_in(lines[0]).read_text()


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0.4, "0 s"), (41, "41 s"), (190, "3 min 10 s"), (3900, "1 h 5 min")],
)
def test_durations_read_as_a_person_says_them(seconds: float, words: str) -> None:
    assert duration(seconds) == words
