"""`sentiment pipeline`'s console: one line per month and stage, the full log in a file.

Dagster's event log (a DEBUG line for every output and check of every step), dbt's and
MLflow's output are what one reads when something went wrong, not while waiting: they go
whole to <home>/logs/pipeline-<time>.log. The capture is of file descriptors 1 and 2, not
of `sys.stdout` alone, so what child processes such as dbt print lands there too. The console
keeps what a person waits for: which month of how many, each stage's time, and the time
left as the months so far predict it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

from sentiment_assets.lib.core.clock import utc_now

LOG_FOLDER = "logs"
SEPARATOR = " · "


def pipeline_log_path(home: Path, now: datetime) -> Path:
    """Where one `sentiment pipeline` run writes its full log (one file per run)."""
    return home / LOG_FOLDER / f"pipeline-{now:%Y-%m-%dT%H-%M-%S}.log"


def duration(seconds: float) -> str:
    """A duration as a person reads it: "41 s", "3 min 10 s", "1 h 5 min"."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


class MonthProgress:
    """Times each stage of each month and prints one line when the stage ends, e.g.
    `month 3 of 6 · 2024-03 · build … 41 s · about 2 min 3 s left`."""

    def __init__(self, months: Sequence[str], console: TextIO) -> None:
        self.months = list(months)
        self.console = console
        self.began = time.monotonic()

    @contextlib.contextmanager
    def stage(self, month: str, name: str) -> Iterator[None]:
        """Time the stage `name` of `month` (a partition key among `months`)."""
        began = time.monotonic()
        yield
        self.say(self.stage_line(month, name, time.monotonic() - began))

    def stage_line(self, month: str, name: str, seconds: float) -> str:
        position = self.months.index(month) + 1
        total = len(self.months)
        parts = [f"month {position} of {total}", month[:7], f"{name} … {duration(seconds)}"]
        left = total - position
        if left:
            # The months so far, this one counted as done: the first estimate comes after
            # the first month, and a month built in several stages is over-counted only
            # until its last stage ends.
            per_month = self.elapsed() / position
            parts.append(f"about {duration(per_month * left)} left")
        return SEPARATOR.join(parts)

    def elapsed(self) -> float:
        return time.monotonic() - self.began

    def say(self, line: str) -> None:
        print(line, file=self.console, flush=True)


@contextlib.contextmanager
def quiet_console(home: Path, months: Sequence[str], source: str) -> Iterator[MonthProgress]:
    """Send everything printed (by this process and its children) to a new log file under
    `home` for the duration; the console gets the log's path first, then the progress
    lines, then whether the build ended and how long it took."""
    log_path = pipeline_log_path(home, utc_now())
    log_path.parent.mkdir(parents=True, exist_ok=True)
    console = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    progress = MonthProgress(months, console)
    progress.say(f"building {len(months)} months of {source}; the full log: {log_path}")
    try:
        with _output_to(log_path):
            yield progress
    except BaseException:
        progress.say(f"stopped after {duration(progress.elapsed())}; the full log: {log_path}")
        raise
    else:
        progress.say(f"built {len(months)} months in {duration(progress.elapsed())}")
    finally:
        console.close()


@contextlib.contextmanager
def _output_to(log_path: Path) -> Iterator[None]:
    """File descriptors 1 and 2 (what children inherit) and sys.stdout and sys.stderr (what
    this process prints through, even where they were replaced) write to `log_path` for the
    duration, then go back."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with log_path.open("ab") as log, open(os.dup(log.fileno()), "w", buffering=1) as text:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
                yield
        finally:
            text.flush()
            for fd, original in zip((1, 2), saved, strict=True):
                os.dup2(original, fd)
                os.close(original)
