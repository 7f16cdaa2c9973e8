"""Drift to new champion served: the whole path, timed stage by stage.

In a throw-away SENTIMENT_HOME with a synthetic history of two months (`--tweets` each; the
second one drifted as in `sentiment drift-demo`), the first month is built and its best
model becomes champion. Then the real pieces run as they do in production:

- a `dagster-daemon` process (its sensor loop ticks drift_sensor, its run queue launches
  the runs drift_sensor and follow_up_sensor request);
- the Gradio app (`python -m gradio_app`) serving the champion and polling the alias.

The second month's data side is built in this process (raw_tweets -> dbt -> embeddings ->
drift_report); from the drifted drift_report's materialization on, nothing is helped along.
The clock stops when the app's /api/predict answers with the new champion's version. Each
stage's start and end come from the instance's own records (run creation, step events,
materializations) and from polling the app, so the stages add up to the total.

With `--follow-up` (the default) it then waits for the fine-tuned follow-up run that the
fast retrain requests and reports it too: when it finished and what the gate decided.
That run is the peer: the retrain before this change trained every family in one run, so
it could not serve a new champion before the fine-tuned family was trained.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
import httpx

from bench.machine import describe, load_average_1m, one_line
from bench.results_io import write_result

REPO_ROOT = Path(__file__).resolve().parents[1]
PROBE_TEXT = "the new phone is great, battery lasts all day"
POLL_S = 0.25


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Started:
    name: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            # Its own process group (start_new_session): the daemon's run workers go with it.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def start(name: str, argv: list[str], log_dir: Path, env: dict[str, str]) -> Started:
    log = log_dir / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Started(name, process, log)


def wait_for(what: str, condition, timeout_s: float, processes: list[Started]) -> float:
    """Poll `condition` until it holds; the time.time() when it did."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for started in processes:
            if started.process.poll() is not None:
                raise SystemExit(f"{started.name} exited early; see {started.log}")
        if condition():
            return time.time()
        time.sleep(POLL_S)
    raise SystemExit(f"timed out after {timeout_s:.0f}s waiting for {what}")


def app_version(url: str) -> str | None:
    """The version /api/predict answers with, None while the app cannot answer."""
    try:
        response = httpx.post(f"{url}/api/predict", json={"texts": [PROBE_TEXT]}, timeout=10)
    except httpx.HTTPError:
        return None
    return response.json().get("model_version") if response.status_code == 200 else None


def app_log_time(log: Path, text: str) -> float:
    """When the app logged `text` first (its log lines start with a local asctime)."""
    for line in log.read_text(errors="replace").splitlines():
        if text in line:
            return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    raise SystemExit(f"the app never logged {text!r}; see {log}")


def cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes of a process group."""
    from sentiment_assets.lib.hosting.lifecycle import group_members

    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in group_members(pgid):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def idle_cpu_shares(processes: list[Started], seconds: float) -> dict[str, float]:
    """What the waiting pieces cost while nothing happens: CPU seconds per wall second of
    each process group (the daemon's includes its code server), the polls and ticks alone."""
    before = {p.name: cpu_seconds(p.process.pid) for p in processes}
    started = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - started
    return {
        p.name: round((cpu_seconds(p.process.pid) - before[p.name]) / wall, 4) for p in processes
    }


def sensor_ticks(instance, name: str) -> list:
    for state in instance.all_instigator_state():
        if state.instigator_name == name:
            return list(instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=5))
    return []


def families_trained(instance, run_id: str) -> list[str]:
    for record in instance.fetch_materializations(dg.AssetKey("sentiment_model"), limit=20).records:
        if record.run_id == run_id:
            table = record.asset_materialization.metadata["families"].value
            return [row.data["family"] for row in table.records]
    return []


def bench_environment(home: Path, tweets: int) -> dict[str, str]:
    from sentiment_assets.lib.settings import load_settings

    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SENTIMENT_")
        and name not in {"DUCKDB_PATH", "DAGSTER_HOME", "MLFLOW_TRACKING_URI"}
    }
    variables = {
        "SENTIMENT_HOME": str(home),
        "SENTIMENT_SOURCE": "synthetic",
        "SENTIMENT_SYNTHETIC_MONTHS": "2",
        "SENTIMENT_SYNTHETIC_TWEETS_PER_MONTH": str(tweets),
        "SENTIMENT_SYNTHETIC_DRIFT_MONTH": "1",
        "SENTIMENT_SYNTHETIC_SEED": "7",
    }
    return {**kept, **variables, **load_settings(variables).environment()}


def run_events(instance, run_id: str) -> dict[tuple[str | None, str], float]:
    """{(step key, event type): first timestamp} of one run's Dagster events."""
    found: dict[tuple[str | None, str], float] = {}
    for entry in instance.all_logs(run_id):
        if entry.dagster_event is None:
            continue
        key = (entry.step_key, entry.dagster_event.event_type_value)
        found.setdefault(key, entry.timestamp)
    return found


def materialized_at(instance, run_id: str, asset: str) -> float | None:
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=20).records
    times = [r.timestamp for r in records if r.run_id == run_id]
    return min(times) if times else None


def runs_tagged(instance, key: str, value: str) -> list:
    return list(instance.get_run_records(filters=dg.RunsFilter(tags={key: value})))


def stage_table(stages: list[tuple[str, float, float]]) -> list[dict]:
    total = stages[-1][2] - stages[0][1]
    return [
        {
            "stage": name,
            "seconds": round(end - begin, 2),
            "share": round((end - begin) / total, 3) if total > 0 else None,
        }
        for name, begin, end in stages
    ]


def markdown(report: dict) -> str:
    lines = [
        f"# Drift to new champion served ({report['tweets_per_month']:,}-tweet month)",
        "",
        f"Measured {report['measured_at']} on {one_line(report['machine'])}; 1-minute load average "
        f"{report['load_average_before']} before, {report['load_average_after']} after. "
        f"Drift sensor interval {report['drift_sensor_interval_s']} s, app alias poll "
        f"{report['app_reload_seconds']} s.",
        "",
        "Idle cost of the waiting pieces (CPU share of one core, before the drift): "
        + ", ".join(f"{k} {v:.1%}" for k, v in report["idle_cpu_share_of_one_core"].items())
        + ".",
        "",
        "| stage | seconds | share |",
        "|---|---:|---:|",
    ]
    for row in report["stages"]:
        lines.append(f"| {row['stage']} | {row['seconds']:.1f} | {row['share']:.0%} |")
    lines.append(
        f"| **total: drift_report -> app serves v{report['new_version']}** | "
        f"**{report['total_seconds']:.1f}** | 100% |"
    )
    lines += [
        "",
        f"Trained in the drift retrain: {', '.join(report['retrain_families'])}; "
        f"new champion v{report['new_version']} ({report['new_family']}).",
    ]
    follow = report.get("follow_up")
    if follow:
        lines += [
            "",
            f"Fine-tuned follow-up run: requested {follow['requested_after_s']:.1f} s after "
            f"the drift report, finished after {follow['finished_after_s']:.1f} s "
            f"({follow['status']}; sentiment_model {follow['sentiment_model_s']:.1f} s); gate "
            f"decision for v{follow['challenger_version']} ({follow['challenger_family']}): "
            f"{follow['decision']}"
            + (
                f", served by the app after {follow['served_after_s']:.1f} s."
                if "served_after_s" in follow
                else "."
            ),
            f"Peer: a retrain of all three families in one run serves no earlier than the "
            f"follow-up finishes: {report['total_seconds']:.1f} s vs "
            f">= {follow['finished_after_s']:.1f} s "
            f"(ratio {follow['finished_after_s'] / report['total_seconds']:.2f}x).",
        ]
    return "\n".join(lines) + "\n"


FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
# Event type values as stored (Dagster keeps the old PIPELINE_* names there).
RUN_START = dg.DagsterEventType.RUN_START.value
RUN_END = (dg.DagsterEventType.RUN_SUCCESS.value, dg.DagsterEventType.RUN_FAILURE.value)


def follow_up(
    instance,
    client,
    parent_run_id: str,
    t0: float,
    app_url: str,
    timeout_s: float,
    processes: list[Started],
) -> dict:
    """The fine-tuned follow-up of the retrain run: when it ran and what the gate decided."""
    from sentiment_assets.defs.monitoring.sensors import FOLLOW_UP_OF_TAG
    from sentiment_assets.lineage import MODEL_CHALLENGER

    def runs() -> list:
        return runs_tagged(instance, FOLLOW_UP_OF_TAG, parent_run_id)

    wait_for("the fine-tuned follow-up run", lambda: runs(), timeout_s, processes)
    print("follow-up run requested; waiting for it to finish", flush=True)
    wait_for(
        "the follow-up run to finish",
        lambda: all(r.dagster_run.status.value in FINISHED for r in runs()),
        timeout_s,
        processes,
    )
    (record,) = runs()
    run_id = record.dagster_run.run_id
    events = run_events(instance, run_id)
    finished = max(events[(None, kind)] for kind in RUN_END if (None, kind) in events)
    metadata = {}
    for found in instance.fetch_materializations(dg.AssetKey(MODEL_CHALLENGER), limit=20).records:
        if found.run_id == run_id:
            metadata = found.asset_materialization.metadata
    result = {
        "run_id": run_id,
        "status": record.dagster_run.status.value,
        "families": families_trained(instance, run_id),
        "requested_after_s": round(record.create_timestamp.timestamp() - t0, 2),
        "finished_after_s": round(finished - t0, 2),
        "sentiment_model_s": round(
            events[("sentiment_model", "STEP_SUCCESS")] - events[("sentiment_model", "STEP_START")],
            2,
        ),
        "challenger_version": metadata["challenger_version"].value if metadata else None,
        "challenger_family": metadata["challenger_family"].value if metadata else None,
        "decision": metadata["decision"].value if metadata else "no challenger",
        "reason": metadata["reason"].value if metadata else None,
    }
    if result["decision"] == "promoted":
        served = wait_for(
            "the app to serve the follow-up's champion",
            lambda: app_version(app_url) == result["challenger_version"],
            timeout_s,
            processes,
        )
        result["served_after_s"] = round(served - t0, 2)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tweets", type=int, default=10_000, help="tweets per month")
    parser.add_argument("--home", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--out", type=Path, default=Path("bench/results/retrain_latency.json"))
    parser.add_argument("--md", type=Path, default=Path("bench/results/retrain_latency.md"))
    parser.add_argument("--follow-up", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--timeout", type=float, default=900.0, help="per wait, seconds")
    parser.add_argument(
        "--idle-seconds", type=float, default=30.0, help="idle CPU measured this long first"
    )
    args = parser.parse_args()

    home = (args.home or Path(tempfile.mkdtemp(prefix="bench-retrain-"))).resolve()
    env = bench_environment(home, args.tweets)
    os.environ.clear()
    os.environ.update(env)
    from sentiment_assets.ops.instance import prepare_environment

    settings = prepare_environment()

    from mlflow.tracking import MlflowClient

    from gradio_app.config import load_config
    from sentiment_assets.commands.drift_demo import DATA_ASSETS, FIRST_MONTH_ASSETS
    from sentiment_assets.definitions import defs
    from sentiment_assets.defs.monitoring.sensors import drift_sensor
    from sentiment_assets.lib.data import synthetic
    from sentiment_assets.lib.versions import registry
    from sentiment_assets.lib.versions.retrain_policy import fast_families
    from sentiment_assets.lineage import DRIFT_REPORT, MODEL_CHAMPION

    months = [m.isoformat() for m in synthetic.months(settings.synthetic)]
    definitions = defs()
    instance = dg.DagsterInstance.get()
    log_dir = home / "bench_logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"SENTIMENT_HOME={home}; building {months[0]} ({args.tweets} tweets)", flush=True)
    first = dg.materialize(
        list(definitions.assets),
        selection=[dg.AssetKey(k) for k in FIRST_MONTH_ASSETS],
        partition_key=months[0],
        instance=instance,
        resources=definitions.resources,
        # The first champion is only the baseline the drift retrain must replace.
        run_config={"ops": {"sentiment_model": {"config": {"families": fast_families()}}}},
    )
    assert first.success
    client = MlflowClient(settings.mlflow_tracking_uri)
    old = registry.champion(client)

    app_port = free_port()
    app_env = {**env, "SENTIMENT_APP_PORT": str(app_port), "SENTIMENT_APP_HOST": "127.0.0.1"}
    app_url = f"http://127.0.0.1:{app_port}"
    processes = [
        start("app", [sys.executable, "-m", "gradio_app"], log_dir, app_env),
        start(
            "daemon",
            [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
            log_dir,
            env,
        ),
    ]
    try:
        wait_for(
            "the app to serve the first champion",
            lambda: app_version(app_url) == old.version,
            args.timeout,
            processes,
        )
        print("app serves the first champion; waiting for drift_sensor's first tick", flush=True)
        wait_for(
            "drift_sensor's first tick",
            lambda: len(sensor_ticks(instance, "drift_sensor")) > 0,
            args.timeout,
            processes,
        )
        idle_cpu = idle_cpu_shares(processes, args.idle_seconds)
        load_before = load_average_1m()
        print(f"building {months[1]}'s data side (drift_report last)", flush=True)
        data = dg.materialize(
            list(definitions.assets),
            selection=[dg.AssetKey(k) for k in DATA_ASSETS],
            partition_key=months[1],
            instance=instance,
            resources=definitions.resources,
        )
        assert data.success
        (report_record,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(DRIFT_REPORT), asset_partitions=[months[1]]
            ),
            limit=1,
        ).records
        if not report_record.asset_materialization.metadata["drifted"].value:
            raise SystemExit(f"{months[1]}'s drift_report is not drifted: nothing to measure")
        t0 = report_record.timestamp
        print(f"drift_report {months[1]} drifted at {datetime.fromtimestamp(t0)}", flush=True)

        def retrain_runs() -> list:
            return [
                r
                for r in runs_tagged(instance, "sentiment/trigger", "drift")
                if r.dagster_run.tags.get("sentiment/drift_storage_id")
                == str(report_record.storage_id)
            ]

        wait_for(
            "drift_sensor to request the retrain", lambda: retrain_runs(), args.timeout, processes
        )
        (retrain,) = retrain_runs()
        run_id = retrain.dagster_run.run_id
        print(f"retrain run {run_id} requested", flush=True)
        served_at = wait_for(
            "the app to serve a new version",
            lambda: app_version(app_url) not in (None, old.version),
            args.timeout,
            processes,
        )
        new = registry.champion(client)
        load_after = load_average_1m()
        record = instance.get_run_record_by_id(run_id)
        events = run_events(instance, run_id)
        created = record.create_timestamp.timestamp()
        run_started = events[(None, RUN_START)]
        model_start = events[("sentiment_model", "STEP_START")]
        model_done = events[("sentiment_model", "STEP_SUCCESS")]
        challenger_done = events[("model_challenger", "STEP_SUCCESS")]
        champion_at = materialized_at(instance, run_id, MODEL_CHAMPION)
        noticed = app_log_time(processes[0].log, f"loading version {new.version} ")
        stages = [
            ("sensor wait (drift_report -> run requested)", t0, created),
            ("run queue + launch (run requested -> run worker up)", created, run_started),
            ("run worker start (-> sentiment_model starts)", run_started, model_start),
            ("sentiment_model (training)", model_start, model_done),
            ("model_challenger (challenger + gate)", model_done, challenger_done),
            ("model_champion (alias move)", challenger_done, champion_at),
            ("app poll (alias moved -> app loads)", champion_at, noticed),
            ("app load (-> answers new version)", noticed, served_at),
        ]
        report = {
            "benchmark": "retrain_latency",
            "measured_at": datetime.now().isoformat(timespec="seconds"),
            "machine": describe(),
            "tweets_per_month": args.tweets,
            "drift_month": months[1],
            "load_average_before": load_before,
            "load_average_after": load_after,
            "drift_sensor_interval_s": drift_sensor.minimum_interval_seconds,
            "app_reload_seconds": load_config(app_env).reload_seconds,
            "old_version": old.version,
            "new_version": new.version,
            "new_family": new.family,
            "retrain_run_id": run_id,
            "retrain_families": families_trained(instance, run_id),
            "run_status_when_served": record.dagster_run.status.value,
            "stages": stage_table(stages),
            "idle_cpu_share_of_one_core": idle_cpu,
            "total_seconds": round(served_at - t0, 2),
            "target_seconds": 120,
        }
        if args.follow_up:
            report["follow_up"] = follow_up(
                instance, client, run_id, t0, app_url, args.timeout, processes
            )
        report["load_average_end"] = load_average_1m()
    finally:
        for started in reversed(processes):
            started.stop()
    write_result(report, args.out, args.md, markdown)
    return 0 if report["total_seconds"] <= report["target_seconds"] else 1


if __name__ == "__main__":
    sys.exit(main())
