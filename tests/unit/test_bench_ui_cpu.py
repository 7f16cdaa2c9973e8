"""bench-ui's CPU count: every process under the services is found, sorted by kind, and its
CPU seconds add up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.bench_ui_launch import ServiceCpu

# A service whose child busies one core for 2.5 s; the child's command line marks it the way
# a run's process is marked (a multiprocessing spawn).
GRANDCHILD = "import time\nt = time.time()\nwhile time.time() - t < 2.5: pass"
SERVICE = (
    "import subprocess, sys\n"
    # The mark is joined at run time, or the service's own command line would carry it too.
    f"subprocess.run([sys.executable, '-c', {GRANDCHILD!r}, 'spawn' + '_main'], check=True)"
)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_a_run_under_a_service_is_counted_with_its_cpu() -> None:
    service = subprocess.Popen([sys.executable, "-c", SERVICE])
    with ServiceCpu([service.pid]) as cpu:
        service.wait(timeout=60)
    totals = cpu.totals()
    assert totals["run processes"]["processes"] == 1
    assert totals["run processes"]["cpu_s"] >= 0.5
    assert totals["other"]["processes"] == 1  # the service itself, by its command line
