"""The one process supervisor: what `sentiment serve` and `sentiment prod up` run their
services under.

- A URL is printed only once its service answers (on a loaded 2-core machine the Dagster UI
  takes minutes), with the time it took, and a line every WAIT_NOTICE_S while waiting.
- A service that dies is started again when it may be (`Service.restarts`), after a backoff
  that doubles with each death, so the others (the app above all) keep serving meanwhile; a
  service that dies more than that within RESTART_WINDOW_S, or one that may not be
  restarted, stops them all, and `failure` says which died and how.
- Each child runs in a process group of its own, recorded under the supervisor's folder
  (lib/hosting/lifecycle: `prod status` and `prod down` find them there), so a terminal's
  Ctrl-C reaches only the supervisor, which then stops every group: SIGTERM, then SIGKILL
  after lifecycle.STOP_GRACE_S.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sentiment_assets.lib.hosting import lifecycle
from sentiment_assets.lib.settings import REPO_ROOT

POLL_S = 0.5
# Say what is still awaited this often: a silent minute looks like a hang.
WAIT_NOTICE_S = 30.0
# A restarted service waits 1, 2, 4, ... seconds, at most this long, before it starts again.
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
# Deaths counted against a service's restart budget: those within this window.
RESTART_WINDOW_S = 600.0
DEFAULT_RESTARTS = 5


@dataclass
class Service:
    """One supervised process. `ready` says whether it serves (polled until it does, and
    again after each restart); `restarts` is how many deaths within RESTART_WINDOW_S are
    answered by a restart (0: its death stops everything)."""

    name: str
    url: str
    argv: list[str]
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    restarts: int = 0
    process: subprocess.Popen | None = None
    launched_at: float = 0.0  # time.time() of the latest start, for probes that need it
    ready_after_s: float | None = None
    deaths: list[float] = field(default_factory=list)
    restart_due: float | None = None

    @property
    def slug(self) -> str:
        """Its name in file names: logs/<slug>.log, pids/<slug>.json."""
        return "-".join(self.name.lower().split())

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _answers(service: Service) -> bool:
    """A probe that fails (a store that is down, a half-started server) means "not yet": it
    must never bring the services down with it."""
    try:
        return service.ready()
    except Exception:
        return False


def how_it_ended(returncode: int | None) -> str:
    if returncode is None:
        return "vanished"
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


class Supervisor:
    def __init__(
        self,
        chosen: Sequence[Service],
        folder: Path,
        log_dir: Path | None = None,
        out: IO[str] = sys.stdout,
        started: float | None = None,
        prefix: str = "[serve]",
    ) -> None:
        self.services = list(chosen)
        self.folder = folder
        self.log_dir = log_dir
        self.out = out
        self.prefix = prefix
        self.stop_requested = threading.Event()
        # What ended the supervision when a service could not be kept running.
        self.failure: str | None = None
        # time.monotonic() of the command's start, so reported times include its setup.
        self.started = time.monotonic() if started is None else started

    def say(self, message: str) -> None:
        print(f"{self.prefix} {message}", file=self.out, flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def request_stop(self, signum: int, _frame: object) -> None:
        self.say(f"{signal.Signals(signum).name}: stopping every service")
        self.stop_requested.set()

    def start(self) -> None:
        for service in self.services:
            self._launch(service)

    def _launch(self, service: Service) -> None:
        log = self.log_dir / f"{service.slug}.log" if self.log_dir is not None else None
        started, service.process = lifecycle.spawn(
            self.folder,
            service.slug,
            service.argv,
            {**os.environ, **service.env},
            url=service.url,
            cwd=REPO_ROOT,  # the Dagster processes find workspace.yaml and the project here
            log=log,
        )
        service.launched_at = started.started_at
        service.ready_after_s = None
        self.say(f"starting {service.name} (pid {started.pid})")

    def wait_until_ready(self) -> bool:
        """Print each URL as its service answers; False when stopped or a service is lost."""
        last_notice = self.elapsed()
        while not self.stop_requested.is_set():
            if not self._tend():
                return False
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
        """Keep the services running until a stop is requested (True) or one is lost (False)."""
        while not self.stop_requested.wait(POLL_S):
            if not self._tend():
                return False
        return True

    def _tend(self) -> bool:
        """One look at every service: note deaths, restart the due ones, report readiness.
        False once a service is lost for good (`failure` says which and why)."""
        now = time.monotonic()
        for service in self.services:
            if service.restart_due is not None:
                if now >= service.restart_due:
                    service.restart_due = None
                    self._launch(service)
                continue
            if not service.running:
                if not self._died(service, now):
                    return False
                continue
            if service.ready_after_s is None and _answers(service):
                service.ready_after_s = self.elapsed()
                if service.deaths:
                    since = time.time() - service.launched_at
                    self.say(f"{service.name} answers again, {since:.1f} s after its restart")
                else:
                    self.say(
                        f"{service.name}: {service.url}  "
                        f"(answered after {service.ready_after_s:.1f} s)"
                    )
        return True

    def _died(self, service: Service, now: float) -> bool:
        """Schedule a restart of a dead service; False when it may not be restarted."""
        ended = how_it_ended(service.process.returncode if service.process else None)
        # What it started (a code server, worker processes) would live on as orphans. Its
        # group id is the dead leader's pid, which Linux hands out to no new process while
        # the group has members: only its leftovers get the signal.
        if service.process is not None and lifecycle.group_members(service.process.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(service.process.pid, signal.SIGKILL)
        service.deaths = [t for t in service.deaths if now - t < RESTART_WINDOW_S] + [now]
        # Where to read why: the console shows only that it died.
        log = f" (its output: {self.log_dir / service.slug}.log)" if self.log_dir else ""
        if len(service.deaths) > service.restarts:
            too_often = f", death {len(service.deaths)} within {RESTART_WINDOW_S:.0f} s"
            self.failure = (
                f"{service.name} {ended}{too_often if service.restarts else ''}{log}; "
                "stopping the others"
            )
            self.say(self.failure)
            return False
        backoff = min(FIRST_BACKOFF_S * 2 ** (len(service.deaths) - 1), MAX_BACKOFF_S)
        service.restart_due = now + backoff
        self.say(
            f"{service.name} {ended}: restart {len(service.deaths)} of {service.restarts} "
            f"in {backoff:.0f} s; the other services keep running{log}"
        )
        return True

    def stop(self, grace_s: float = lifecycle.STOP_GRACE_S) -> None:
        """SIGTERM every group at once, then stop each (SIGKILL what outlives `grace_s`)."""
        launched = [
            started
            for service in self.services
            if (started := lifecycle.find(self.folder, service.slug)) is not None
        ]
        for started in launched:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(started.pid, signal.SIGTERM)
        for started in launched:
            outcome = lifecycle.stop(started, grace_s)
            if outcome.startswith("killed"):
                self.say(f"{started.name}: {outcome}")
        for service in self.services:
            if service.process is not None:
                service.process.wait()
        self.say("all services stopped")
