"""Local service processes under one folder: start, wait until they answer, stop.

What the prod profile runs on one machine (`sentiment prod up`, tests/prod): PostgreSQL,
Redis, the MLflow tracking server, and any other named process (the Dagster webserver and
daemon, Celery workers, started by ops/supervisor.py, as are `sentiment serve`'s). Each
process gets, under the folder:

- `logs/<name>.log`: its stdout and stderr;
- `pids/<name>.json`: its pid, start time and URL, so a later command (`prod status`,
  `prod down`) finds it, and a pid reused by an unrelated process after a crash is never
  mistaken for it (lib/processes.still_running).

Every process starts in a session of its own and is stopped as a process group: wrappers
such as `dagster-celery worker start` (which runs `celery` as a child) and servers with
worker processes (postgres, mlflow's uvicorn) go down whole.

Nothing here reads the environment: callers pass the environment children get.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sentiment_assets.lib.core.atomic import write_text
from sentiment_assets.lib.core.processes import process_started_at, still_running

POLL_S = 0.25
# SIGTERM first; what is still alive after this long gets SIGKILL.
STOP_GRACE_S = 20.0
KILL_WAIT_S = 5.0
LOOPBACK = "127.0.0.1"
# PostgreSQL refuses to run as root: as root it runs as this user (created by the Debian
# package), else as nobody.
POSTGRES_USERS = ("postgres", "nobody")
PG_SUPERUSER = "sentiment"
# Dagster's storages and MLflow's backend store, one database each.
DAGSTER_DB = "dagster"
MLFLOW_DB = "mlflow"
# The webserver, the daemon, the code server and every Celery worker and step each hold
# connections; PostgreSQL's default of 100 is tight with several workers.
PG_MAX_CONNECTIONS = 200


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


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on now (the kernel's choice)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def http_answers(url: str, timeout_s: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return 200 <= response.status < 400
    except (OSError, ValueError):
        return False


def secret(folder: Path) -> str:
    """The folder's password for PostgreSQL and Redis: made once, readable by its owner only.
    The services listen on loopback only, but any local user could reach them there."""
    path = folder / "secret"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(16))
    return path.read_text().strip()


# --- PostgreSQL ---------------------------------------------------------------------------


def postgres_bindir() -> Path | None:
    """Where initdb and postgres are: Debian's versioned folder (newest first), else PATH."""
    for candidate in sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    ):
        if (candidate / "initdb").exists() and (candidate / "postgres").exists():
            return candidate
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("postgres") else None


def redis_server() -> Path | None:
    found = shutil.which("redis-server")
    return Path(found) if found else None


def postgres_user() -> RunAs | None:
    """Who runs PostgreSQL: None (this user) unless we are root, which PostgreSQL refuses."""
    if os.geteuid() != 0:
        return None
    for name in POSTGRES_USERS:
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return RunAs(name, entry.pw_uid, entry.pw_gid)
    raise ServiceError(f"running as root and none of the users {POSTGRES_USERS} exists")


def _check_reachable(path: Path, user: RunAs) -> None:
    """PostgreSQL, running as `user`, must be able to walk down to its data folder."""
    for folder in [*reversed(path.parents), path]:
        info = folder.stat()
        if info.st_uid == user.uid:
            allowed = info.st_mode & 0o100
        elif info.st_gid == user.gid:
            allowed = info.st_mode & 0o010
        else:
            allowed = info.st_mode & 0o001
        if not allowed:
            raise ServiceError(
                f"PostgreSQL runs as user {user.name}, which cannot enter {folder}: "
                f"choose a folder whose parents others may enter (chmod o+x {folder})"
            )


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    password: str

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` (Dagster and MLflow take it). The driver is named:
        SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which is not installed."""
        return (
            f"postgresql+psycopg2://{self.user}:{self.password}@{self.host}:{self.port}/{database}"
        )

    def connect(self, database: str = "postgres", timeout_s: int = 3):  # -> psycopg2 connection
        import psycopg2

        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database,
            connect_timeout=timeout_s,
        )

    def answers(self) -> bool:
        import psycopg2

        try:
            self.connect().close()
        except psycopg2.OperationalError:
            return False
        return True

    def create_databases(self, names: Sequence[str]) -> None:
        """Create each database that does not exist yet."""
        from psycopg2 import sql

        con = self.connect()
        try:
            con.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with con.cursor() as cur:
                for name in names:
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                    if cur.fetchone() is None:
                        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            con.close()


def init_postgres(folder: Path, bindir: Path, password: str, run_as: RunAs | None) -> Path:
    """The cluster's data folder under `folder`, created with initdb on first use."""
    data = folder / "postgres" / "data"
    if (data / "PG_VERSION").exists():
        return data
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    # initdb reads the superuser's password from a file it must be able to open.
    password_file = folder / "postgres" / "initdb.pw"
    password_file.write_text(password)
    password_file.chmod(0o600)
    try:
        if run_as is not None:
            os.chown(data, run_as.uid, run_as.gid)
            os.chown(password_file, run_as.uid, run_as.gid)
            _check_reachable(data, run_as)
        result = subprocess.run(
            [
                str(bindir / "initdb"),
                *("-D", str(data)),
                *("-U", PG_SUPERUSER),
                f"--pwfile={password_file}",
                # Password checks for every connection, TCP and local alike.
                "--auth=scram-sha-256",
                *("-E", "UTF8", "--no-locale"),
            ],
            capture_output=True,
            text=True,
            **({"user": run_as.uid, "group": run_as.gid, "extra_groups": []} if run_as else {}),
        )
    finally:
        password_file.unlink(missing_ok=True)
    if result.returncode != 0:
        # A half-made cluster would be taken for a ready one next time.
        shutil.rmtree(data, ignore_errors=True)
        raise ServiceError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
    return data


def start_postgres(
    folder: Path, port: int, password: str, timeout_s: float = 60.0
) -> tuple[Started, Postgres]:
    """PostgreSQL on LOOPBACK:`port`, its cluster under `folder`, with the databases for
    Dagster and MLflow; returns once it accepts connections."""
    bindir = postgres_bindir()
    if bindir is None:
        raise ServiceError("PostgreSQL not found (initdb, postgres): run `make setup-prod`")
    run_as = postgres_user()
    data = init_postgres(folder, bindir, password, run_as)
    server = Postgres(LOOPBACK, port, PG_SUPERUSER, password)
    started = start_process(
        folder,
        "postgres",
        [
            str(bindir / "postgres"),
            *("-D", str(data)),
            *("-p", str(port)),
            *("-c", f"listen_addresses={LOOPBACK}"),
            # TCP only: the default socket folder (/var/run/postgresql) may not be writable.
            *("-c", "unix_socket_directories="),
            *("-c", f"max_connections={PG_MAX_CONNECTIONS}"),
        ],
        url=f"postgresql://{PG_SUPERUSER}@{LOOPBACK}:{port}",
        run_as=run_as,
    )
    try:
        wait_until(started, server.answers, timeout_s)
        server.create_databases([DAGSTER_DB, MLFLOW_DB])
    except BaseException:
        stop(started)
        raise
    return started, server


# --- Redis --------------------------------------------------------------------------------


def redis_url(port: int, password: str, db: int = 0) -> str:
    return f"redis://:{password}@{LOOPBACK}:{port}/{db}"


def start_redis(folder: Path, port: int, password: str, timeout_s: float = 30.0) -> Started:
    """Redis on LOOPBACK:`port` with a password and no persistence (the broker's queues are
    transient: a lost queued step is re-run by Dagster's run monitoring)."""
    binary = redis_server()
    if binary is None:
        raise ServiceError("redis-server not found: run `make setup-prod`")
    workdir = folder / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    # A config file readable by its owner only: on the command line the password would show
    # in every user's `ps`.
    config = workdir / "redis.conf"
    config.unlink(missing_ok=True)
    with os.fdopen(os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(
            f"bind {LOOPBACK}\nport {port}\nrequirepass {password}\n"
            f'save ""\nappendonly no\ndir {workdir}\n'
        )
    started = start_process(
        folder, "redis", [str(binary), str(config)], url=f"redis://{LOOPBACK}:{port}/0"
    )

    def answers() -> bool:
        import redis

        try:
            return bool(redis.Redis(host=LOOPBACK, port=port, password=password).ping())
        except redis.exceptions.ConnectionError:
            return False

    try:
        wait_until(started, answers, timeout_s)
    except BaseException:
        stop(started)
        raise
    return started


# --- MLflow tracking server ---------------------------------------------------------------


def start_mlflow(
    folder: Path,
    port: int,
    backend_store_uri: str,
    env: Mapping[str, str],
    timeout_s: float = 180.0,
) -> Started:
    """`mlflow server` on LOOPBACK:`port`: runs and the registry in `backend_store_uri`,
    artifacts under `folder`/mlflow/artifacts, served over HTTP (clients upload and download
    through the server, so they need no shared disk)."""
    artifacts = folder / "mlflow" / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    url = f"http://{LOOPBACK}:{port}"
    started = start_process(
        folder,
        "mlflow",
        [
            *(sys.executable, "-m", "mlflow", "server"),
            "--serve-artifacts",
            *("--artifacts-destination", artifacts.as_uri()),
            *("--host", LOOPBACK, "--port", str(port)),
            # One worker: the default 4 take memory and CPU the pipeline needs more.
            *("--workers", "1"),
        ],
        {
            **env,
            # The store's URL carries a password: in the environment, which only its owner
            # can read, not on the command line, which every user's `ps` shows.
            "MLFLOW_BACKEND_STORE_URI": backend_store_uri,
            # Its GenAI job runner (7 huey processes, slow to stop) serves nothing used here.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        },
        url=url,
    )
    try:
        # The first start creates MLflow's tables in PostgreSQL: tens of seconds.
        wait_until(started, lambda: http_answers(f"{url}/health"), timeout_s)
    except BaseException:
        stop(started)
        raise
    return started
