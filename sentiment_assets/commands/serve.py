"""`sentiment serve`: the Dagster UI (webserver + daemon), the MLflow UI and the app, supervised.

Why a supervisor and not three `&` in the Makefile:
- a URL is printed only once its service answers HTTP (on a loaded 2-core machine the Dagster
  UI takes minutes), with the time it took, and a line every WAIT_NOTICE_S while waiting;
- the MLflow UI is served on the port of MLFLOW_UI_URL, the very URL Dagster's `mlflow_run`
  metadata links point at, so the links work;
- Ctrl-C, SIGTERM or SIGHUP, or any service dying, stops all of them: each child runs in a
  process group of its own (so a terminal's Ctrl-C reaches only the supervisor, which then
  stops the children in order), the groups get SIGTERM, then SIGKILL after STOP_GRACE_S.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from sentiment_assets.lib.hosting.services import group_members
from sentiment_assets.lib.settings import REPO_ROOT, Settings, is_tracking_server

PREFIX = "[serve]"
POLL_S = 0.5
PROBE_TIMEOUT_S = 3.0
# Say what is still awaited this often: a silent minute looks like a hang.
WAIT_NOTICE_S = 30.0
# How long the children get to exit after SIGTERM before their groups are killed.
STOP_GRACE_S = 15.0
KILL_WAIT_S = 5.0
DEFAULT_MLFLOW_PORT = 5000

# The Dagster UI is only useful once the code location has loaded (until then it shows a
# spinner), so "ready" means: the workspace lists every location and none is still loading.
WORKSPACE_QUERY = (
    "{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus "
    "locationOrLoadError { __typename } } } } }"
)


def _get(url: str) -> int:
    """HTTP status of GET `url` (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ValueError):
        return 0


def answers(url: str) -> bool:
    return 200 <= _get(url) < 400


def dagster_ready(base: str) -> bool:
    """True once the webserver answers and every code location is loaded (or failed to load,
    which the UI then shows: waiting on would never end)."""
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": WORKSPACE_QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S) as response:
            workspace = json.load(response)["data"]["workspaceOrError"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    entries = workspace.get("locationEntries") or []
    return bool(entries) and all(entry["loadStatus"] == "LOADED" for entry in entries)


@dataclass
class Service:
    name: str
    url: str
    argv: list[str]
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    ready_after_s: float | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def mlflow_port(settings: Settings) -> int:
    return urlsplit(settings.mlflow_ui_url).port or DEFAULT_MLFLOW_PORT


def serves_mlflow(settings: Settings) -> bool:
    """Only a local tracking store is served here; a remote tracking server has its own UI."""
    return not is_tracking_server(settings.mlflow_tracking_uri)


def services(settings: Settings, host: str, dagster_port: int, app_port: int) -> list[Service]:
    """The services in start order: MLflow first, as it is the quickest to answer."""
    python = sys.executable
    found: list[Service] = []
    if serves_mlflow(settings):
        port = mlflow_port(settings)
        artifacts = settings.mlflow_artifacts_dir
        artifacts.mkdir(parents=True, exist_ok=True)
        url = f"http://{host}:{port}"
        found.append(
            Service(
                "MLflow UI",
                url,
                [
                    *(python, "-m", "mlflow", "server"),
                    *("--backend-store-uri", settings.mlflow_tracking_uri),
                    # New experiments' artifacts go where the pipeline puts them.
                    *("--default-artifact-root", artifacts.as_uri()),
                    *("--artifacts-destination", artifacts.as_uri()),
                    *("--host", host, "--port", str(port)),
                    # One worker: the default 4 would take memory and CPU from the other two.
                    *("--workers", "1"),
                ],
                lambda: answers(f"{url}/health"),
                # Its GenAI job runner (7 huey processes, slow to stop) serves nothing we use.
                env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            )
        )
    dagster_url = f"http://{host}:{dagster_port}"
    # The venv's own dg, next to this interpreter, whether or not the venv is activated.
    dg = Path(python).with_name("dg")
    if not dg.exists():
        dg = Path(shutil.which("dg") or "dg")
    found.append(
        Service(
            "Dagster UI",
            dagster_url,
            [str(dg), "dev", "--host", host, "--port", str(dagster_port)],
            lambda: dagster_ready(dagster_url),
        )
    )
    app_url = f"http://{host}:{app_port}"
    found.append(
        Service(
            "Gradio app",
            app_url,
            [python, "-m", "gradio_app"],
            lambda: answers(f"{app_url}/metrics"),
            env={"SENTIMENT_APP_HOST": host, "SENTIMENT_APP_PORT": str(app_port)},
        )
    )
    return found


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


class Supervisor:
    def __init__(
        self,
        chosen: Sequence[Service],
        log_dir: Path | None = None,
        out: IO[str] = sys.stdout,
        started: float | None = None,
    ) -> None:
        self.services = list(chosen)
        self.log_dir = log_dir
        self.out = out
        self.stop_requested = threading.Event()
        # time.monotonic() of the command's start, so reported times include its setup.
        self.started = time.monotonic() if started is None else started

    def say(self, message: str) -> None:
        print(f"{PREFIX} {message}", file=self.out, flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def request_stop(self, signum: int, _frame: object) -> None:
        self.say(f"{signal.Signals(signum).name}: stopping every service")
        self.stop_requested.set()

    def start(self) -> None:
        for service in self.services:
            output = None
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                slug = service.name.split()[0].lower()
                output = (self.log_dir / f"{slug}.log").open("ab")
            service.process = subprocess.Popen(
                service.argv,
                cwd=REPO_ROOT,  # dg dev finds the project from pyproject.toml here
                env={**os.environ, **service.env},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
                # A group of its own: stopped as a whole, with whatever it starts.
                start_new_session=True,
            )
            if output is not None:
                output.close()  # the child holds its own descriptor
            self.say(f"starting {service.name} (pid {service.process.pid})")

    def wait_until_ready(self) -> bool:
        """Print each URL as its service answers; False when stopped or a service died."""
        last_notice = self.elapsed()
        while not self.stop_requested.is_set():
            if self._dead():
                return False
            for service in self.services:
                if service.ready_after_s is None and service.ready():
                    service.ready_after_s = self.elapsed()
                    self.say(
                        f"{service.name}: {service.url}  "
                        f"(answered after {service.ready_after_s:.1f} s)"
                    )
            waiting = [s.name for s in self.services if s.ready_after_s is None]
            if not waiting:
                self.say(
                    f"all {len(self.services)} services answer after {self.elapsed():.1f} s; "
                    "Ctrl-C stops them all"
                )
                return True
            if self.elapsed() - last_notice >= WAIT_NOTICE_S:
                last_notice = self.elapsed()
                self.say(f"still waiting for {', '.join(waiting)} ({last_notice:.0f} s)")
            self.stop_requested.wait(POLL_S)
        return False

    def watch(self) -> bool:
        """Block until a stop is requested (True) or a service dies (False)."""
        while not self.stop_requested.wait(1.0):
            if self._dead():
                return False
        return True

    def _dead(self) -> bool:
        for service in self.services:
            if not service.running:
                code = service.process.returncode if service.process else None
                self.say(f"{service.name} exited (code {code}); stopping the others")
                return True
        return False

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM every group, wait for them to empty, then SIGKILL what is left."""
        groups = {service.name: service.process.pid for service in self.services if service.process}
        for pgid in groups.values():
            _signal_group(pgid, signal.SIGTERM)
        self._wait_for_groups(groups.values(), grace_s)
        for name, pgid in groups.items():
            left = group_members(pgid)
            if left:
                self.say(f"{name} still running after {grace_s:.0f} s: killing {left}")
                _signal_group(pgid, signal.SIGKILL)
        # SIGKILL is delivered asynchronously: return only once the groups are really gone.
        self._wait_for_groups(groups.values(), KILL_WAIT_S)
        for service in self.services:
            if service.process is not None:
                service.process.wait()
        self.say("all services stopped")

    def _wait_for_groups(self, pgids: Iterable[int], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._reap()
            if not any(group_members(pgid) for pgid in pgids):
                return
            time.sleep(0.2)

    def _reap(self) -> None:
        for service in self.services:
            if service.process is not None:
                service.process.poll()


def serve(
    settings: Settings,
    host: str,
    dagster_port: int,
    app_port: int,
    log_dir: Path | None = None,
    started: float | None = None,
) -> int:
    """Run the services until Ctrl-C/SIGTERM/SIGHUP (exit 0) or until one dies (exit 1)."""
    chosen = services(settings, host, dagster_port, app_port)
    supervisor = Supervisor(chosen, log_dir, started=started)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, supervisor.request_stop)
    if not serves_mlflow(settings):
        supervisor.say(
            f"MLflow: tracking at {settings.mlflow_tracking_uri}, not served here "
            f"(UI: {settings.mlflow_ui_url})"
        )
    elif urlsplit(settings.mlflow_ui_url).hostname not in (host, "localhost", "127.0.0.1"):
        supervisor.say(
            f"note: MLFLOW_UI_URL={settings.mlflow_ui_url} names another host than {host}: "
            "Dagster's MLflow links will not reach the MLflow UI served here"
        )
    try:
        supervisor.start()
        healthy = supervisor.wait_until_ready() and supervisor.watch()
    finally:
        # Also on an exception of our own: never leave the children behind.
        supervisor.stop()
    return 0 if healthy or supervisor.stop_requested.is_set() else 1
