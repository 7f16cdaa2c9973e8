"""Telling a living run's process from a dead one whose pid may have been reused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sentiment_assets.lib.core.processes import process_started_at, still_running


def test_this_process_is_running_and_started_before_now() -> None:
    started = process_started_at(os.getpid())
    assert started is not None and started <= time.time()
    assert still_running(os.getpid(), time.time())


def test_a_process_that_started_after_the_event_is_not_the_one_seen() -> None:
    # A pid reused by a later process: the event saw an older one.
    assert not still_running(os.getpid(), seen_at=process_started_at(os.getpid()) - 60)


def test_killed_processes_are_dead_reaped_or_not() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    seen_at = time.time()
    assert still_running(child.pid, seen_at)
    os.kill(child.pid, signal.SIGKILL)
    deadline = time.time() + 10
    while still_running(child.pid, seen_at) and time.time() < deadline:
        time.sleep(0.05)
    assert not still_running(child.pid, seen_at), "a zombie counts as dead"
    child.wait()
    assert process_started_at(child.pid) is None
