"""`sentiment serve`: the MLflow UI, the Dagster webserver and daemon, and the app, supervised.

Why a supervisor (ops/supervisor.py) and not three `&` in the Makefile: each URL is printed
once its service answers; a service that dies is restarted alone, with backoff, while the
others keep serving (predictions do not stop because the daemon died); Ctrl-C, SIGTERM or
SIGHUP stops them all. Each service's output goes to its log file (SENTIMENT_HOME/logs unless
--log-dir says otherwise), so the console keeps to the URLs, the services' starts, deaths and
restarts, and errors: idle, it stays silent. The MLflow UI is served on the port of
MLFLOW_UI_URL, the very URL Dagster's `mlflow_run` metadata links point at, so the links work.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from sentiment_assets.environment import current_settings
from sentiment_assets.lib.core.ports import DEFAULT_PORTS
from sentiment_assets.lib.hosting import lifecycle
from sentiment_assets.lib.hosting.lifecycle import ServiceError
from sentiment_assets.lib.hosting.services import http_answers
from sentiment_assets.lib.settings import Settings, is_tracking_server
from sentiment_assets.ops import orchestrator
from sentiment_assets.ops.instance import prepare_environment
from sentiment_assets.ops.supervisor import DEFAULT_RESTARTS, Service, Supervisor

# Exit statuses: stopped on request, a service lost for good, the services could not start.
STOPPED = 0
SERVICE_LOST = 1
NOT_STARTED = 2
# This process's own record in the folder: one `serve` per home.
SUPERVISOR = "supervisor"


def serve_folder(settings: Settings) -> Path:
    """Where the supervised processes are recorded (pids/) while `serve` runs."""
    return settings.home / "serve"


def service_logs(settings: Settings) -> Path:
    """Where each service's output goes (logs/<service>.log): the console keeps the URLs,
    the services' starts, deaths and restarts, and errors."""
    return settings.home / "logs"


def claim(folder: Path) -> None:
    """Make this process the home's one `serve`: a second one is refused, and what a killed
    one left running (its children have sessions of their own) is stopped first."""
    previous = lifecycle.find(folder, SUPERVISOR)
    if previous is not None and previous.alive:
        raise ServiceError(f"`sentiment serve` already runs on this home (pid {previous.pid})")
    lifecycle.stop_all(folder)
    lifecycle.record(folder, SUPERVISOR, os.getpid())


def mlflow_port(settings: Settings) -> int:
    return urlsplit(settings.mlflow_ui_url).port or DEFAULT_PORTS.mlflow


def with_port(url: str, port: int) -> str:
    """`url` on another port: `serve --mlflow-port` moves MLFLOW_UI_URL there, which sets both
    the port served and the links in Dagster's metadata."""
    parts = urlsplit(url)
    return parts._replace(netloc=f"{parts.hostname}:{port}").geturl()


def serves_mlflow(settings: Settings) -> bool:
    """Only a local tracking store is served here; a remote tracking server has its own UI."""
    return not is_tracking_server(settings.mlflow_tracking_uri)


def services(settings: Settings, host: str, dagster_port: int, app_port: int) -> list[Service]:
    """The services in start order: MLflow first, as it is the quickest to answer."""
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
                    *(sys.executable, "-m", "mlflow", "server"),
                    *("--backend-store-uri", settings.mlflow_tracking_uri),
                    # New experiments' artifacts go where the pipeline puts them.
                    *("--default-artifact-root", artifacts.as_uri()),
                    *("--artifacts-destination", artifacts.as_uri()),
                    *("--host", host, "--port", str(port)),
                    # One worker: the default 4 would take memory and CPU from the other two.
                    *("--workers", "1"),
                ],
                lambda: http_answers(f"{url}/health"),
                # Its GenAI job runner (7 huey processes, slow to stop) serves nothing we use.
                env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                restarts=DEFAULT_RESTARTS,
            )
        )
    found.append(orchestrator.webserver(host, dagster_port))
    found.append(orchestrator.daemon(settings.dagster_home))
    app_url = f"http://{host}:{app_port}"
    found.append(
        Service(
            "Gradio app",
            app_url,
            [sys.executable, "-m", "gradio_app"],
            lambda: http_answers(f"{app_url}/metrics"),
            env={"SENTIMENT_APP_HOST": host, "SENTIMENT_APP_PORT": str(app_port)},
            restarts=DEFAULT_RESTARTS,
        )
    )
    return found


def serve(
    settings: Settings,
    host: str,
    dagster_port: int,
    app_port: int,
    log_dir: Path | None = None,
    started: float | None = None,
) -> int:
    """Run the services until Ctrl-C/SIGTERM/SIGHUP (STOPPED) or until one is lost for good
    (SERVICE_LOST, the reason on stderr); NOT_STARTED when they could not be started."""
    folder = serve_folder(settings)
    chosen = services(settings, host, dagster_port, app_port)
    supervisor = Supervisor(chosen, folder, log_dir, started=started)
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
        claim(folder)
    except ServiceError as error:
        print(f"error: {error}", file=sys.stderr)
        return NOT_STARTED
    if log_dir is not None:
        supervisor.say(f"each service's output: {log_dir}/<service>.log")
    try:
        supervisor.start()
        healthy = supervisor.wait_until_ready() and supervisor.watch()
    finally:
        # Also on an exception of our own: never leave the children behind.
        supervisor.stop()
        lifecycle.pid_path(folder, SUPERVISOR).unlink(missing_ok=True)
    if healthy or supervisor.stop_requested.is_set():
        return STOPPED
    print(f"error: {supervisor.failure}", file=sys.stderr)
    return SERVICE_LOST


def command_serve(args: argparse.Namespace) -> int:
    """The MLflow UI, the Dagster webserver and daemon, and the app until Ctrl-C."""
    started = time.monotonic()  # the times printed count from here, setup included
    if args.mlflow_port is not None:
        # Before the settings are resolved and exported: the children link to this URL.
        os.environ["MLFLOW_UI_URL"] = with_port(current_settings().mlflow_ui_url, args.mlflow_port)
    settings = prepare_environment(serving=True)
    log_dir = Path(args.log_dir) if args.log_dir else service_logs(settings)
    return serve(settings, args.host, args.dagster_port, args.app_port, log_dir, started)
