"""The Dagster webserver and daemon as two supervised services, and how to tell they serve.

Two processes rather than one `dg dev`: `dg dev` shuts every Dagster service when its daemon
dies, so the supervisor could only stop or restart all of Dagster at once; apart, a dead
daemon is restarted alone while the UI (and everything else) keeps serving. `serve` and
`prod up` start them the same way.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import dagster as dg

from sentiment_assets.lib.settings import REPO_ROOT
from sentiment_assets.ops.supervisor import DEFAULT_RESTARTS, Service

PROBE_TIMEOUT_S = 3.0
WEBSERVER = "Dagster webserver"
DAEMON = "Dagster daemon"

# The Dagster UI is only useful once the code location has loaded (until then it shows a
# spinner), so "ready" means: the workspace lists every location and none is still loading.
WORKSPACE_QUERY = (
    "{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus "
    "locationOrLoadError { __typename } } } } }"
)


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


def daemon_beats(dagster_home: Path, since: float = 0.0) -> bool:
    """True once a daemon has written a heartbeat (time.time()) at or after `since` to the
    instance's storage: a restarted daemon is back only once it beats again."""
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        beats = instance.get_daemon_heartbeats().values()
    return any(beat.timestamp >= since for beat in beats)


def _script(name: str) -> str:
    """The venv's own script, next to this interpreter, whether or not the venv is active."""
    return str(Path(sys.executable).with_name(name))


def webserver(host: str, port: int, env: dict[str, str] | None = None) -> Service:
    url = f"http://{host}:{port}"
    return Service(
        WEBSERVER,
        url,
        [
            _script("dagster-webserver"),
            *("-h", host, "-p", str(port)),
            *("-w", str(REPO_ROOT / "workspace.yaml")),
        ],
        lambda: dagster_ready(url),
        env=env or {},
        restarts=DEFAULT_RESTARTS,
    )


def daemon(dagster_home: Path, env: dict[str, str] | None = None) -> Service:
    service = Service(
        DAEMON,
        f"heartbeats in {dagster_home}",
        [_script("dagster-daemon"), "run", "-w", str(REPO_ROOT / "workspace.yaml")],
        lambda: False,
        env=env or {},
        restarts=DEFAULT_RESTARTS,
    )
    service.ready = lambda: daemon_beats(dagster_home, since=service.launched_at)
    return service
