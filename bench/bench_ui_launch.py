"""One month launched from the UI (GraphQL, the daemon's run queue) against the CLI.

The same synthetic month is built twice, each in a fresh home sharing one ONNX cache made
before either is timed:

* cli: `sentiment pipeline --month M`, the whole command (code loading included);
* ui: `month_build_job` for M submitted over GraphQL to a running `dagster-webserver` and
  `dagster-daemon` (what a click in the Launchpad does), from submission to the end of the
  last run the month leads to: the build, then the retrain_job and follow_up_job its
  training decision requests through the daemon's sensors (the CLI runs the same three in
  its own process); the daemon's dequeue, each run's process start and every step included.

The ratio ui / cli is the figure of merit (target: at most 1.3). `--code DIR` measures
another checkout of the project with the same script (its services and CLI run from DIR).

    python -m bench.bench_ui_launch --out bench/results/ui_launch.json --md bench/results/ui_launch.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench.bench_prod_parallel import home_env, prepare_onnx_cache, runs_window
from bench.machine import describe, load_average_1m, one_line
from bench.results_io import write_result

MONTH = "2024-01-01"
JOB = "month_build_job"
LOCATION = "sentiment_assets"  # workspace.yaml's location name
RUN_TIMEOUT_S = 3600.0
READY_TIMEOUT_S = 300.0
REPO = Path(__file__).resolve().parent.parent


def code_env(home: Path, onnx_cache: Path, tweets: int, code: Path) -> dict[str, str]:
    env = home_env(home, onnx_cache, tweets, "embedded")
    env["PYTHONPATH"] = str(code)
    return env


def step_seconds(dagster_home: str) -> dict[str, float]:
    """Seconds per step of the month's runs in a home's instance (job/step), plus each run's
    wait from creation to its first step (`job/(start)`): where a path spends its time."""
    import dagster as dg

    with dg.DagsterInstance.from_config(dagster_home) as instance:
        records = instance.get_run_records(filters=dg.RunsFilter(tags={"dagster/partition": MONTH}))
        seconds: dict[str, float] = {}
        for record in records:
            job = record.dagster_run.job_name
            stats = instance.get_run_step_stats(record.dagster_run.run_id)
            started = [s.start_time for s in stats if s.start_time]
            if started:
                seconds[f"{job}/(start)"] = round(
                    min(started) - record.create_timestamp.timestamp(), 1
                )
            for step in stats:
                if step.start_time and step.end_time:
                    seconds[f"{job}/{step.step_key}"] = round(step.end_time - step.start_time, 1)
    return seconds


def time_cli(home: Path, env: dict[str, str], code: Path) -> dict:
    argv = [sys.executable, "-m", "sentiment_assets.cli", "pipeline", "--month", MONTH]
    load_before = load_average_1m()
    started = time.perf_counter()
    log = home.parent / "cli.log"
    with log.open("w") as out:
        code_ = subprocess.run(argv, env=env, cwd=code, stdout=out, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - started
    if code_.returncode != 0:
        raise SystemExit(f"the CLI build failed:\n{log.read_text()[-3000:]}")
    return {
        "wall_s": round(wall, 1),
        "load_avg_1m": [load_before, load_average_1m()],
        "steps": step_seconds(env["DAGSTER_HOME"]),
    }


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_services(env: dict[str, str], code: Path, logs: Path) -> tuple[list, int]:
    """The webserver and the daemon on `env`'s home, as `sentiment serve` runs them."""
    port = free_port()
    bin_dir = Path(sys.executable).parent
    commands = {
        "webserver": [str(bin_dir / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port)],
        "daemon": [str(bin_dir / "dagster-daemon"), "run"],
    }
    processes = []
    for name, argv in commands.items():
        out = (logs / f"{name}.log").open("w")
        argv += ["-w", str(code / "workspace.yaml")]
        processes.append(
            subprocess.Popen(argv, env=env, cwd=code, stdout=out, stderr=subprocess.STDOUT)
        )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                return processes, port
        except OSError:
            time.sleep(1)
    stop(processes)
    raise SystemExit(f"the webserver did not answer within {READY_TIMEOUT_S:.0f} s; see {logs}")


def stop(processes: list) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


# A first month has no champion, so its training_decision says train: the month's build is
# followed by the decision's retrain_job (training_decision_sensor) and the fine-tuned
# family's follow_up_job (follow_up_sensor), the same runs `sentiment pipeline` makes.
MONTH_RUNS = (JOB, "retrain_job", "follow_up_job")


def month_runs(instance) -> dict[str, object]:
    """The newest run of each of MONTH_RUNS for MONTH, by job name."""
    import dagster as dg

    records = instance.get_run_records(
        filters=dg.RunsFilter(tags={"dagster/partition": MONTH}), order_by="create_timestamp"
    )
    return {r.dagster_run.job_name: r for r in records if r.dagster_run.job_name in MONTH_RUNS}


def wait_for_month(instance) -> list[str]:
    """Wait until the month's build and the training its decision requested have all ended;
    their run ids, in MONTH_RUNS order."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        runs = month_runs(instance)
        if any(r.dagster_run.is_finished and not r.dagster_run.is_success for r in runs.values()):
            break
        if len(runs) == len(MONTH_RUNS) and all(r.dagster_run.is_finished for r in runs.values()):
            break
        time.sleep(0.5)
    else:
        raise SystemExit(f"{MONTH_RUNS} not all finished after {RUN_TIMEOUT_S:.0f} s")
    return [runs[job].dagster_run.run_id for job in MONTH_RUNS if job in runs]


# What a process of the UI path is, from its command line (the order matters: a code server
# runs `python -m dagster api grpc`, a run is a multiprocessing child of one).
PROCESS_KINDS = (
    ("spawn_main", "run processes"),
    ("dagster api grpc", "code servers"),
    ("dagster-daemon", "daemon"),
    ("dagster-webserver", "webserver"),
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class ServiceCpu:
    """CPU seconds of the services and every process under them, read from /proc each second
    while the UI path runs: what competed for the cores with the runs (Linux only; empty
    elsewhere). A process that ends between two readings loses at most its last second."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = set(roots)
        self.seen: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> ServiceCpu:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(1.0 if self.seen else 0.0):
            processes = _processes()
            family = set(self.roots)
            for _ in range(4):  # services -> code servers -> runs, and a level to spare
                family |= {pid for pid, (ppid, _, _) in processes.items() if ppid in family}
            for pid in family & processes.keys():
                _, kind, seconds = processes[pid]
                self.seen[pid] = (kind, seconds)

    def totals(self) -> dict[str, dict[str, float]]:
        """Per kind of process: how many ran and their CPU seconds."""
        counts = Counter(kind for kind, _ in self.seen.values())
        return {
            kind: {
                "processes": counts[kind],
                "cpu_s": round(sum(s for k, s in self.seen.values() if k == kind), 1),
            }
            for kind in sorted(counts)
        }


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid: (parent pid, kind, CPU seconds) of every readable process."""
    found = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        kind = next((name for mark, name in PROCESS_KINDS if mark in command), "other")
        seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        found[int(entry.name)] = (int(fields[1]), kind, seconds)
    return found


def time_ui(home: Path, env: dict[str, str], code: Path) -> dict:
    import dagster as dg
    from dagster_graphql import DagsterGraphQLClient

    prepare = [sys.executable, "-m", "sentiment_assets.cli", "prepare"]
    subprocess.run(prepare, env=env, cwd=code, check=True, capture_output=True)
    processes, port = start_services(env, code, home.parent)
    try:
        client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        load_before = load_average_1m()
        started = time.perf_counter()
        with ServiceCpu([process.pid for process in processes]) as cpu:
            client.submit_job_execution(
                JOB, repository_location_name=LOCATION, tags={"dagster/partition": MONTH}
            )
            with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
                run_ids = wait_for_month(instance)
                wall = time.perf_counter() - started
                first, last, runs = runs_window(instance, run_ids)
    finally:
        stop(processes)
    failed = [run for run in runs if run["status"] != "SUCCESS"]
    if failed or len(runs) != len(MONTH_RUNS):
        raise SystemExit(f"the UI's runs ended {runs}; logs under {home.parent}")
    return {
        "wall_s": round(wall, 1),
        "run_s": round(last - first, 1),
        "runs": runs,
        "load_avg_1m": [load_before, load_average_1m()],
        "steps": step_seconds(env["DAGSTER_HOME"]),
        # From the services' start: a code server loading then competes with the first run.
        "process_cpu": cpu.totals(),
    }


def markdown(result: dict) -> str:
    cli, ui = result["cli"], result["ui"]
    return "\n".join(
        [
            "# One month from the UI vs the CLI",
            "",
            f"Synthetic month {MONTH[:7]}, {result['tweets_per_month']} tweets; measured "
            f"{result['measured_at']} on {one_line(result['machine'])}; code: "
            f"{result['code']}.",
            "",
            "| path | wall (s) | load avg 1 min (before, after) |",
            "| --- | ---: | --- |",
            f"| CLI: `sentiment pipeline --month {MONTH}` (whole command) | {cli['wall_s']} | "
            f"{cli['load_avg_1m']} |",
            f"| UI: `{JOB}` over GraphQL, then the runs its decision requested "
            f"(submission to the last run's end) | {ui['wall_s']} | {ui['load_avg_1m']} |",
            f"| (of which the runs, first start to last end) | {ui['run_s']} | |",
            "",
            f"UI / CLI: **{result['ratio_ui_over_cli']}x** (target at most 1.3x).",
            "",
            "Where the time goes, per run and step (seconds; `(start)`: from the run's "
            "creation to its first step):",
            "",
            "| job/step | CLI | UI |",
            "| --- | ---: | ---: |",
            *step_rows(cli.get("steps", {}), ui.get("steps", {})),
            "",
            "CPU seconds of the UI's processes, from the services' start to the last run's end "
            "(the daemon starts a new code server every minute; each loads the definitions):",
            "",
            "| processes | how many | CPU (s) |",
            "| --- | ---: | ---: |",
            *(
                f"| {kind} | {row['processes']} | {row['cpu_s']} |"
                for kind, row in ui.get("process_cpu", {}).items()
            ),
            "",
        ]
    )


def step_rows(cli: dict[str, float], ui: dict[str, float]) -> list[str]:
    # Runs of the same job share a row; the CLI's month build is Dagster's ephemeral asset
    # job, so its steps and the UI's month_build_job steps sit on rows of their own.
    return [f"| {key} | {cli.get(key, '-')} | {ui.get(key, '-')} |" for key in sorted({*cli, *ui})]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tweets", type=int, default=1500, help="tweets per month (the demo's)")
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout to measure")
    parser.add_argument("--out", default="bench/results/ui_launch.json")
    parser.add_argument("--md", default="bench/results/ui_launch.md")
    args = parser.parse_args()
    code = args.code.resolve()
    work = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    onnx_cache = work / "onnx-cache"
    try:
        prepare_onnx_cache(onnx_cache)
        print("cli ...", flush=True)
        cli_home = work / "cli" / "home"
        cli_home.parent.mkdir(parents=True)
        cli = time_cli(cli_home, code_env(cli_home, onnx_cache, args.tweets, code), code)
        print(f"  {cli['wall_s']} s\nui ...", flush=True)
        ui_home = work / "ui" / "home"
        ui_home.parent.mkdir(parents=True)
        ui = time_ui(ui_home, code_env(ui_home, onnx_cache, args.tweets, code), code)
        print(f"  {ui['wall_s']} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="minutes"),
        "machine": describe(),
        "code": str(code) if code != REPO else "this checkout",
        "tweets_per_month": args.tweets,
        "cli": cli,
        "ui": ui,
        "ratio_ui_over_cli": round(ui["wall_s"] / cli["wall_s"], 2),
    }
    write_result(result, Path(args.out), Path(args.md), markdown)


if __name__ == "__main__":
    main()
