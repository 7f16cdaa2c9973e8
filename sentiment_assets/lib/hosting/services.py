"""The prod profile's stores on one machine: PostgreSQL, Redis and the MLflow tracking server.

What `sentiment prod up` and tests/prod start, each as a process recorded under one folder
(lib/hosting/lifecycle.py: its log, its pid file, stopped as a process group), listening on
loopback only, with a password made once per folder.

Nothing here reads the environment: callers pass the environment children get.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sentiment_assets.lib.hosting.lifecycle import (
    RunAs,
    ServiceError,
    Started,
    start_process,
    stop,
    wait_until,
)

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
