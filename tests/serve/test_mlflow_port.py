"""`sentiment serve --mlflow-port` (issue 26 item 6): the real command serves the MLflow UI on
the port asked for, and Ctrl-C stops it. Only MLflow's readiness is awaited, not Dagster's."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import home_paths

pytestmark = pytest.mark.timeout(420)

READY_WITHIN_S = 300
MLFLOW_READY = re.compile(r"^\[serve\] MLflow UI: (?P<url>http://\S+)\s+\(answered after")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_mlflow_is_served_on_the_port_asked_for(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **home_paths(tmp_path / "home")}
    env.pop("MLFLOW_UI_URL", None)
    serve = subprocess.Popen(
        [
            *(sys.executable, "-m", "sentiment_assets.cli", "serve", "--mlflow-port", str(port)),
            *("--dagster-port", str(free_port()), "--app-port", str(free_port())),
            *("--log-dir", str(tmp_path / "logs")),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a failing test can still kill the whole group
    )
    try:
        url = wait_for_mlflow(serve)
        assert url == f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/health", timeout=30).status_code == 200
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=90)
        assert serve.returncode == 0
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()


def wait_for_mlflow(serve: subprocess.Popen[str]) -> str:
    """The MLflow UI's URL once `serve` says it answers (stdout is read line by line)."""
    assert serve.stdout is not None
    seen: list[str] = []
    timer = kill_after(READY_WITHIN_S, serve)
    try:
        for line in serve.stdout:
            seen.append(line)
            if match := MLFLOW_READY.match(line):
                return match["url"]
    finally:
        timer.cancel()
    pytest.fail("serve ended before MLflow answered:\n" + "".join(seen[-30:]))


def kill_after(seconds: float, serve: subprocess.Popen[str]) -> threading.Timer:
    """Kills `serve`'s group after `seconds`, which ends a read that would wait forever."""
    timer = threading.Timer(seconds, lambda: os.killpg(serve.pid, signal.SIGKILL))
    timer.start()
    return timer
