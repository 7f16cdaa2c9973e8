"""`sentiment serve` idle is silent (issue 26): each service's output, HTTP access logs and the
daemon's sensor ticks included, goes to SENTIMENT_HOME/logs/<service>.log, and the console
keeps the URLs and the services' status.

The real command on an empty home, all four services awaited, then 20 s in which the app and
MLflow are asked for pages and the daemon ticks: the logs grow, the console does not.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import home_paths
from tests.serve.test_serve_browser import ALL_READY, READY_LINE, READY_TIMEOUT_S, Output, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(READY_TIMEOUT_S + 240)]

IDLE_S = 20
SERVICE_LOGS = ("mlflow-ui", "dagster-webserver", "dagster-daemon", "gradio-app")


def log_sizes(folder: Path) -> dict[str, int]:
    return {name: (folder / f"{name}.log").stat().st_size for name in SERVICE_LOGS}


def test_idle_serve_prints_nothing_and_its_services_log_to_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, **home_paths(home), "MLFLOW_UI_URL": f"http://127.0.0.1:{free_port()}"}
    serve = subprocess.Popen(
        [
            *(sys.executable, "-m", "sentiment_assets.cli", "serve"),
            *("--dagster-port", str(free_port()), "--app-port", str(free_port())),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a failing test can still kill the whole group
    )
    output = Output(serve)
    try:
        output.wait_for(ALL_READY, READY_TIMEOUT_S, serve)
        urls = {m["name"]: m["url"] for line in output.lines if (m := READY_LINE.match(line))}
        logs = home / "logs"
        assert f"[serve] each service's output: {logs}/<service>.log" in output.lines
        ready_console = list(output.lines)
        before = log_sizes(logs)

        for _ in range(IDLE_S // 2):
            assert httpx.get(f"{urls['Gradio app']}/metrics", timeout=30).status_code == 200
            assert httpx.get(f"{urls['MLflow UI']}/health", timeout=30).status_code == 200
            time.sleep(2)

        assert output.lines == ready_console, "\n".join(output.lines[len(ready_console) :])
        after = log_sizes(logs)
        assert after["gradio-app"] > before["gradio-app"]  # its HTTP access log
        assert after["dagster-daemon"] > before["dagster-daemon"]  # its sensor ticks
        assert all(size > 0 for size in after.values()), after
        # Everything said so far fits a screen: the URLs and the services' starts.
        assert len(ready_console) <= 15, "\n".join(ready_console)
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
    assert serve.returncode == 0, output.text()
