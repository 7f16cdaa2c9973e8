"""The supervisor alone, with stand-in services (seconds, no Dagster): a URL is printed only
once its service answers, a dying service is restarted with backoff while the others keep
serving, one that may not be (or dies too often) stops the others, and stopping leaves no
process behind, not even a grandchild that ignores SIGTERM."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sentiment_assets.commands.serve import SUPERVISOR, claim
from sentiment_assets.lib.core.processes import process_started_at
from sentiment_assets.lib.hosting import lifecycle
from sentiment_assets.lib.hosting.lifecycle import group_members
from sentiment_assets.lib.hosting.services import http_answers
from sentiment_assets.ops.supervisor import Service, Supervisor

# A service that answers HTTP only after a delay, and starts a grandchild that ignores SIGTERM.
SLOW_SERVER = """
import http.server, signal, subprocess, sys, time
subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
time.sleep(float(sys.argv[2]))
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler
    ).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def slow_service(name: str, delay_s: float) -> Service:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-c", SLOW_SERVER, str(port), str(delay_s)]
    return Service(name, url, argv, lambda: http_answers(url))


def test_urls_are_printed_when_answering_and_stop_leaves_nothing(tmp_path: Path) -> None:
    out = io.StringIO()
    services = [slow_service("quick", 0.0), slow_service("slow", 3.0)]
    supervisor = Supervisor(services, tmp_path, log_dir=tmp_path / "logs", out=out)
    supervisor.start()
    try:
        assert supervisor.wait_until_ready()
        lines = out.getvalue().splitlines()
        ready = [line for line in lines if "answered after" in line]
        # In the order they answered, each after its service really answered.
        assert [line.split(":")[0] for line in ready] == ["[serve] quick", "[serve] slow"]
        assert services[1].ready_after_s >= 3.0
        assert services[0].ready_after_s < services[1].ready_after_s
        pids = [pid for s in services for pid in group_members(s.process.pid)]
        assert len(pids) == 4  # two servers, two grandchildren ignoring SIGTERM
    finally:
        supervisor.stop(grace_s=2.0)
    assert not [pid for pid in pids if process_started_at(pid) is not None]
    assert "killed after" in out.getvalue()  # the SIGTERM-deaf grandchildren needed SIGKILL


def test_a_service_that_may_not_restart_stops_the_others(tmp_path: Path) -> None:
    out = io.StringIO()
    dying = Service("dying", "http://127.0.0.1:9", [sys.executable, "-c", "exit(3)"], lambda: False)
    services = [slow_service("server", 0.0), dying]
    supervisor = Supervisor(services, tmp_path, out=out)
    supervisor.start()
    try:
        assert not supervisor.wait_until_ready()
    finally:
        supervisor.stop(grace_s=2.0)
    assert supervisor.failure == "dying exited with code 3; stopping the others"
    assert not services[0].running


def test_a_killed_service_is_restarted_while_the_others_keep_serving(tmp_path: Path) -> None:
    out = io.StringIO()
    steady, fragile = slow_service("steady", 0.0), slow_service("fragile", 0.0)
    fragile.restarts = 1
    supervisor = Supervisor([steady, fragile], tmp_path, out=out)
    supervisor.start()
    watching = threading.Thread(target=supervisor.watch)
    try:
        assert supervisor.wait_until_ready()
        watching.start()
        first = fragile.process
        orphan = [pid for pid in group_members(first.pid) if pid != first.pid]
        first.kill()
        deadline = time.monotonic() + 20
        while fragile.process is first or fragile.ready_after_s is None:
            assert time.monotonic() < deadline, out.getvalue()
            assert http_answers(steady.url)  # serving throughout
            time.sleep(0.2)
        assert http_answers(fragile.url)
        # Its grandchild, orphaned by the kill, did not outlive it.
        assert orphan and process_started_at(orphan[0]) is None
        # A second death within the window is one more than it may have: all stop.
        fragile.process.kill()
        watching.join(timeout=20)
        assert not watching.is_alive()
    finally:
        supervisor.stop_requested.set()
        watching.join() if watching.is_alive() else None
        supervisor.stop(grace_s=2.0)
    said = out.getvalue()
    assert "fragile killed by SIGKILL: restart 1 of 1 in 1 s" in said
    assert "fragile answers again, " in said
    assert supervisor.failure == (
        "fragile killed by SIGKILL, death 2 within 600 s; stopping the others"
    )


def test_a_stop_request_ends_the_wait(tmp_path: Path) -> None:
    out = io.StringIO()
    never = Service(
        "never",
        "http://127.0.0.1:9",
        [sys.executable, "-c", "import time; time.sleep(60)"],
        lambda: False,
    )
    supervisor = Supervisor([never], tmp_path, out=out)
    supervisor.start()
    threading.Timer(1.0, supervisor.stop_requested.set).start()
    started = time.monotonic()
    try:
        assert not supervisor.wait_until_ready()
    finally:
        supervisor.stop(grace_s=2.0)
    assert time.monotonic() - started < 10
    assert not never.running


def test_serve_claims_its_home_once_and_stops_what_a_killed_one_left(tmp_path: Path) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    # A `serve` killed with -9: its record stays, its child (a session of its own) lives on.
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    lifecycle.record(tmp_path, SUPERVISOR, int(gone.stdout))
    orphan = lifecycle.start_process(tmp_path, "dagster-daemon", sleeper)
    claim(tmp_path)
    assert not orphan.alive
    assert lifecycle.find(tmp_path, SUPERVISOR).pid == os.getpid()

    # A live `serve` on the same home: a second one is refused, and nothing is stopped.
    other = lifecycle.start_process(tmp_path, "other", sleeper)
    lifecycle.record(tmp_path, SUPERVISOR, other.pid)
    try:
        with pytest.raises(
            lifecycle.ServiceError, match=f"already runs on this home \\(pid {other.pid}\\)"
        ):
            claim(tmp_path)
        assert other.alive
    finally:
        lifecycle.stop(other, grace_s=2.0)
