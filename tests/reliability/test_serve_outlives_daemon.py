"""Serving outlives the orchestrator (issue 24): with `sentiment serve` running on a fresh
home, the Dagster daemon is killed with SIGKILL. The app must answer HTTP throughout, and a
new daemon must be beating again within DAEMON_BACK_S; `serve` itself keeps running, says
what died, and still stops every child on SIGINT.

Before the runtime layer, `dg dev` shut the whole of Dagster when its daemon died and
`serve` then stopped the app too: this failed with the app refusing connections.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest

from sentiment_assets.lib.core.processes import process_started_at
from tests.conftest import home_paths
from tests.serve.test_serve_browser import ALL_READY, Output, descendants, free_port

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

# Four servers starting at once on a loaded 2-core machine: the Dagster UI takes minutes.
READY_TIMEOUT_S = 600
# The daemon loads the code location again before it beats: about a minute on 2 busy cores.
DAEMON_BACK_S = 240
PROBE_EVERY_S = 0.5


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return []


def is_daemon(pid: int) -> bool:
    """`dagster-daemon run` (a script of its own), or `python -m dagster._daemon run`."""
    words = cmdline(pid)
    named = any(w.endswith("dagster-daemon") or w == "dagster._daemon" for w in words)
    return named and "run" in words


def daemon_of(serve: subprocess.Popen) -> int | None:
    """The daemon's top process among serve's descendants (not a child it started)."""
    below = descendants(serve.pid)
    found = [pid for pid in below if is_daemon(pid)]
    tops = [pid for pid in found if not any(pid in descendants(other) for other in found)]
    return tops[0] if tops else None


def beats_since(home: Path, since: float) -> bool:
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        return any(b.timestamp >= since for b in instance.get_daemon_heartbeats().values())


class Prober:
    """GETs `url` every PROBE_EVERY_S on a thread; remembers every failed answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answered = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probe, daemon=True)
        self._thread.start()

    def _probe(self) -> None:
        while not self._stop.wait(PROBE_EVERY_S):
            try:
                status = httpx.get(self.url, timeout=10).status_code
            except httpx.HTTPError as error:
                self.failures.append(f"{time.strftime('%X')} {type(error).__name__}")
                continue
            if status == 200:
                self.answered += 1
            else:
                self.failures.append(f"{time.strftime('%X')} HTTP {status}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Output, Path, str]]:
    home = tmp_path / "home"
    env = {**os.environ, **home_paths(home), "MLFLOW_UI_URL": f"http://127.0.0.1:{free_port()}"}
    app_url = f"http://127.0.0.1:{free_port()}"
    serve = subprocess.Popen(
        [
            *(sys.executable, "-m", "sentiment_assets.cli", "serve"),
            *("--dagster-port", str(free_port()), "--app-port", app_url.rsplit(":", 1)[1]),
            *("--log-dir", str(tmp_path / "logs")),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = Output(serve)
    try:
        yield serve, output, home, app_url
    finally:
        children = descendants(serve.pid)
        if serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                serve.wait(timeout=90)
        for pid in children | descendants(serve.pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def test_a_killed_daemon_is_restarted_while_the_app_keeps_answering(serving) -> None:
    serve, output, home, app_url = serving
    output.wait_for(ALL_READY, READY_TIMEOUT_S, serve)
    daemon = daemon_of(serve)
    assert daemon is not None, output.text()
    children = descendants(serve.pid)

    app = Prober(f"{app_url}/metrics")
    try:
        time.sleep(2)
        killed_at = time.time()
        os.kill(daemon, signal.SIGKILL)
        began = time.monotonic()
        while True:
            back = daemon_of(serve)
            if back not in (None, daemon) and beats_since(home, killed_at):
                break
            assert serve.poll() is None, "sentiment serve exited:\n" + output.text()
            assert time.monotonic() - began < DAEMON_BACK_S, (
                f"no daemon beating {DAEMON_BACK_S} s after the kill:\n" + output.text()
            )
            time.sleep(1)
        back_after_s = time.monotonic() - began
        time.sleep(2)  # the app still answers after the restart too
    finally:
        app.stop()
    print(f"\ndaemon back after {back_after_s:.1f} s; app answered {app.answered} probes")
    assert not app.failures, f"the app failed {len(app.failures)} probes: {app.failures[:5]}"
    assert app.answered >= back_after_s / PROBE_EVERY_S / 4  # it was really probed
    assert re.search(r"Dagster daemon killed by SIGKILL: restart 1 of \d+", output.text())

    children |= descendants(serve.pid)
    serve.send_signal(signal.SIGINT)
    assert serve.wait(timeout=120) == 0, output.text()
    left = {pid for pid in children if process_started_at(pid) is not None}
    assert not left, f"left running after SIGINT: {left}\n{output.text()}"
