"""Local processes recorded under one folder: start them, wait until they answer, stop them.

Each process gets, under the folder:

- `logs/<name>.log`: its stdout and stderr;
- `pids/<name>.json`: its pid, start time and URL, so a later command (`prod status`,
  `prod down`) finds it, and a pid reused by an unrelated process after a crash is never
  mistaken for it (lib/core/processes.still_running).

Every process starts in a session of its own and is stopped as a process group: wrappers
such as `dagster-celery worker start` (which runs `celery` as a child) and servers with
worker processes (postgres, mlflow's uvicorn) go down whole. What runs under these rules:
the stores of lib/hosting/services.py, and every service of ops/supervisor.py.

Nothing here reads the environment: callers pass the environment children get.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sentiment_assets.lib.core.atomic import write_text
from sentiment_assets.lib.core.processes import process_started_at, still_running

POLL_S = 0.25
# SIGTERM first; what is still alive after this long gets SIGKILL.
STOP_GRACE_S = 20.0
KILL_WAIT_S = 5.0


class ServiceError(RuntimeError):
    """A service could not be started, did not answer, or cannot be found."""


@dataclass(frozen=True)
class Started:
    """A process started here: what its pid file holds."""

    folder: Path
    name: str
    pid: int
    started_at: float
    url: str

    @property
    def log(self) -> Path:
        return log_path(self.folder, self.name)

    @property
    def alive(self) -> bool:
        return still_running(self.pid, self.started_at)


def log_path(folder: Path, name: str) -> Path:
    return folder / "logs" / f"{name}.log"


def pid_path(folder: Path, name: str) -> Path:
    return folder / "pids" / f"{name}.json"


def find(folder: Path, name: str) -> Started | None:
    """The process `name` recorded under `folder` (alive or not), or None."""
    try:
        record = json.loads(pid_path(folder, name).read_text())
    except FileNotFoundError:
        return None
    return Started(
        folder=folder,
        name=name,
        pid=int(record["pid"]),
        started_at=float(record["started_at"]),
        url=str(record["url"]),
    )


def recorded(folder: Path) -> list[Started]:
    """Every process recorded under `folder`, in the order they were started."""
    found = [find(folder, path.stem) for path in (folder / "pids").glob("*.json")]
    return sorted((s for s in found if s is not None), key=lambda s: s.started_at)


@dataclass(frozen=True)
class RunAs:
    """A user to run a process as (only possible, and only needed, when running as root)."""

    name: str
    uid: int
    gid: int


def start_process(
    folder: Path,
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    url: str = "",
    cwd: Path | None = None,
    run_as: RunAs | None = None,
) -> Started:
    """Start `argv` as process `name`: output to its log, its record to its pid file.

    `env` is the child's whole environment (None: this process's). Refuses to start a
    second `name` while the first one lives.
    """
    started, _ = spawn(
        folder, name, argv, env, url=url, cwd=cwd, run_as=run_as, log=log_path(folder, name)
    )
    return started


def spawn(
    folder: Path,
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    url: str = "",
    cwd: Path | None = None,
    run_as: RunAs | None = None,
    log: Path | None = None,
) -> tuple[Started, subprocess.Popen]:
    """`start_process` for a caller that keeps the child (to learn how it ended): output to
    `log`, or to this process's own output when None."""
    existing = find(folder, name)
    if existing is not None and existing.alive:
        raise ServiceError(f"{name} is already running (pid {existing.pid}) under {folder}")
    with contextlib.ExitStack() as stack:
        output = None
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            output = stack.enter_context(log.open("ab"))
        process = subprocess.Popen(
            list(argv),
            env=None if env is None else dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            # A session (so a process group) of its own: stopped as a whole, and a Ctrl-C in
            # the terminal that started it does not reach it.
            start_new_session=True,
            **(
                {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}
                if run_as is not None
                else {}
            ),
        )
    return record(folder, name, process.pid, url), process


def record(folder: Path, name: str, pid: int, url: str = "") -> Started:
    """Write process `pid`'s pid file as `name` (seen now), for later commands to find."""
    started = Started(folder, name, pid, time.time(), url)
    # No argv: it may carry a password, and pid files are for anyone to read.
    entry = {"pid": started.pid, "started_at": started.started_at, "url": url}
    pid_path(folder, name).parent.mkdir(parents=True, exist_ok=True)
    write_text(pid_path(folder, name), json.dumps(entry, indent=1))
    return started


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def wait_until(started: Started, answers: Callable[[], bool], timeout_s: float) -> float:
    """Wait until `answers()` is true; seconds waited. Fails at once, with the end of its
    log, if the process exits first, and after `timeout_s` if it never answers."""
    began = time.monotonic()
    while True:
        _reap(started.pid)
        if not started.alive:
            raise ServiceError(
                f"{started.name} exited before answering; end of {started.log}:\n"
                f"{log_tail(started.log)}"
            )
        if answers():
            return time.monotonic() - began
        if time.monotonic() - began > timeout_s:
            raise ServiceError(
                f"{started.name} did not answer within {timeout_s:.0f} s; end of "
                f"{started.log}:\n{log_tail(started.log)}"
            )
        time.sleep(POLL_S)


def _reap(pid: int) -> None:
    """Collect `pid`'s exit status if it is our child, so it leaves no zombie behind."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state, ppid, pgrp, ...
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _group_alive(pgid: int) -> bool:
    # A zombie is not alive: one whose parent (not us) has yet to collect it still counts
    # for kill(), and would make a stopped group look as if it survived SIGKILL.
    return bool(group_members(pgid))


def _wait_group(started: Started, timeout_s: float) -> bool:
    """True once the process and its whole group are gone."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(started.pid)
        if not _group_alive(started.pid):
            return True
        time.sleep(POLL_S)
    _reap(started.pid)
    return not _group_alive(started.pid)


def stop(started: Started, grace_s: float = STOP_GRACE_S) -> str:
    """Stop the process and its group: SIGTERM, then SIGKILL after `grace_s`. Returns what
    happened, in words; the pid file is removed once nothing of it is left."""
    # The group id is the pid of the process that started it. Linux never hands out a pid
    # still in use as a group id, so while the group has members they are ours; a live
    # process with that pid that started later than ours is another one's, never signalled.
    began = time.monotonic()
    _reap(started.pid)
    reused = not started.alive and process_started_at(started.pid) is not None
    if reused or not _group_alive(started.pid):
        outcome = "was not running"
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(started.pid, signal.SIGTERM)
        if _wait_group(started, grace_s):
            outcome = f"stopped in {time.monotonic() - began:.1f} s"
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(started.pid, signal.SIGKILL)
            if not _wait_group(started, KILL_WAIT_S):
                raise ServiceError(f"{started.name} (group {started.pid}) survived SIGKILL")
            outcome = f"killed after {grace_s:.0f} s"
    pid_path(started.folder, started.name).unlink(missing_ok=True)
    return outcome


def stop_all(folder: Path, grace_s: float = STOP_GRACE_S) -> list[tuple[str, str]]:
    """Stop every process recorded under `folder`, newest first (the reverse of their
    start: workers before the database they write to). One that cannot be stopped does not
    keep the others running: it is named in the error raised after all were tried."""
    outcomes, failures = [], []
    for started in reversed(recorded(folder)):
        try:
            outcomes.append((started.name, stop(started, grace_s)))
        except ServiceError as error:
            failures.append(str(error))
    if failures:
        raise ServiceError("; ".join(failures))
    return outcomes
