"""Whether a process seen at some moment is still the same, living process (Linux /proc).

A pid alone is not enough: after a crash the number can be reused by an unrelated process.
The process that held it at `seen_at` must have started before then, and a zombie (killed,
not yet reaped) is dead.
"""

from __future__ import annotations

import os
from pathlib import Path

# Clock skew between the event's timestamp and /proc's start time (jiffies, boot time).
START_TIME_SLACK_S = 2.0


def _boot_time(proc: Path) -> float:
    for line in (proc / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise RuntimeError(f"{proc / 'stat'} has no btime line")


def process_started_at(pid: int, proc: Path = Path("/proc")) -> float | None:
    """Epoch seconds at which process `pid` started; None if there is none, or a zombie."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    start_ticks = int(fields[19])
    return _boot_time(proc) + start_ticks / os.sysconf("SC_CLK_TCK")


def still_running(pid: int, seen_at: float, proc: Path = Path("/proc")) -> bool:
    """Whether the process that was `pid` at epoch `seen_at` is alive now."""
    started = process_started_at(pid, proc)
    return started is not None and started <= seen_at + START_TIME_SLACK_S
