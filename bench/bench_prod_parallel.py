"""Four synthetic months' data sides: one after another on the embedded profile, versus all
four submitted at once on the prod profile (Celery workers, Dagster on PostgreSQL, the lake).

The data side (raw_tweets, the dbt models and their tests, tweet_embeddings) is the part of
a month that depends on no other month, so the part that can run in parallel; a month's
models read the months before it and are built in order on either profile.

* serial: `sentiment pipeline --month M1 .. --month M4 --select <data side>` in a fresh
  home on the embedded profile (DuckDB file, in-process runs). Wall time of the command,
  and of its runs alone (first run's start to last run's end, code loading excluded).
* parallel: `sentiment prod up` (PostgreSQL, Redis, MLflow server, webserver, daemon,
  N Celery workers) in another fresh home, then the four months submitted at once to
  `month_data_job` over GraphQL; wall time from the first submission to the last run's
  end. Bringing the services up is timed separately and not counted.

Both homes share one ONNX cache, made before either is timed; both start with empty
embedding caches. The row counts of both warehouses are compared per month (same data).
On a machine with few cores the gain is bounded by them, whatever the worker count.

    flock /tmp/cpu-heavy.lock python -m bench.bench_prod_parallel --workers 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import describe, load_average_1m, one_line
from bench.results_io import write_result
from sentiment_assets.lib.settings import load_settings

MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]
DATA_SIDE = ["raw_tweets", "stg_tweets", "tweets_clean", "tweets_dropped", "tweet_embeddings"]
JOB = "month_data_job"
LOCATION = "sentiment_assets"  # workspace.yaml's location name
TABLES = ("raw.tweets", "clean.tweets_clean", "features.tweet_embeddings")
RUNS_TIMEOUT_S = 1800.0


def home_env(home: Path, onnx_cache: Path, tweets: int, profile: str) -> dict[str, str]:
    """This process's environment, pointed at `home` on `profile`, with 4 synthetic months."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SENTIMENT_", "DAGSTER_", "MLFLOW_")) and name != "DUCKDB_PATH"
    }
    env.update(load_settings({"SENTIMENT_HOME": str(home)}).environment())
    env.update(
        {
            "SENTIMENT_PROFILE": profile,
            "SENTIMENT_SYNTHETIC_MONTHS": str(len(MONTHS)),
            "SENTIMENT_SYNTHETIC_TWEETS_PER_MONTH": str(tweets),
            "SENTIMENT_ONNX_CACHE": str(onnx_cache),
        }
    )
    # The profile picks its own warehouse (embedded: the DuckDB file, prod: the lake).
    env.pop("SENTIMENT_WAREHOUSE", None)
    return env


def row_counts(env: dict[str, str]) -> dict[str, dict[str, int]]:
    """Rows per table and month in the warehouse that `env` describes."""
    from sentiment_assets.lib.store.warehouse import connect

    counts = {}
    with connect(load_settings(env).warehouse, read_only=True) as con:
        for table in TABLES:
            rows = con.execute(f"SELECT month, count(*) FROM {table} GROUP BY month").fetchall()
            counts[table] = {month.isoformat(): int(n) for month, n in sorted(rows)}
    return counts


def runs_window(instance, run_ids: list[str]) -> tuple[float, float, list[dict]]:
    """(first start, last end, one summary per run) from the instance's run records."""
    import dagster as dg

    records = instance.get_run_records(filters=dg.RunsFilter(run_ids=run_ids))
    runs = [
        {
            "run_id": r.dagster_run.run_id,
            "month": r.dagster_run.tags.get("dagster/partition"),
            "status": r.dagster_run.status.value,
            "seconds": round(r.end_time - r.start_time, 1),
        }
        for r in records
    ]
    return min(r.start_time for r in records), max(r.end_time for r in records), runs


def serial(work: Path, onnx_cache: Path, tweets: int) -> dict:
    import dagster as dg

    env = home_env(work / "embedded", onnx_cache, tweets, "embedded")
    argv = [sys.executable, "-m", "sentiment_assets.cli", "pipeline"]
    argv += [arg for month in MONTHS for arg in ("--month", month)]
    argv += ["--select", ",".join(DATA_SIDE)]
    load_before = load_average_1m()
    started = time.perf_counter()
    log = work / "serial.log"
    with log.open("w") as out:
        code = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"the serial build failed ({code}):\n{log.read_text()[-3000:]}")
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        run_ids = [r.run_id for r in instance.get_runs()]
        first, last, runs = runs_window(instance, run_ids)
        timelines = [timeline(instance, run_id) for run_id in run_ids]
    return {
        "wall_s": round(wall, 1),
        "runs_wall_s": round(last - first, 1),
        "runs": runs,
        "step_seconds": step_seconds(timelines),
        "rows": row_counts(env),
        "load_avg_1m": {"before": load_before, "after": load_average_1m()},
    }


def timeline(instance, run_id: str) -> dict:
    """When the run started executing (its process up, the code location loaded) and, per
    step, when it was handed to Celery, when a worker began it and on which worker (the
    engine event dagster_celery.tasks reports from the worker), and its own start and end."""
    import dagster as dg

    run_start = None
    steps: dict[str, dict] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.RUN_START:
            run_start = entry.timestamp
        if entry.step_key is None:
            continue
        step = steps.setdefault(entry.step_key, {"step": entry.step_key})
        message = event.message or ""
        if event.is_engine_event and message.startswith("Submitting celery task"):
            step["submitted"] = entry.timestamp
        elif event.is_engine_event and "in celery worker" in message:
            step["worker"] = event.engine_event_data.metadata["Celery worker"].value
            step["taken"] = entry.timestamp
        elif event.event_type == dg.DagsterEventType.STEP_START:
            step["start"] = entry.timestamp
        elif event.event_type in (
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
        ):
            step["end"] = entry.timestamp
    return {"run_start": run_start, "steps": list(steps.values())}


def step_seconds(timelines: list[dict]) -> dict[str, float]:
    """Total seconds per step name over the runs (each step's own start to end)."""
    total: dict[str, float] = {}
    for line in timelines:
        for step in line["steps"]:
            total[step["step"]] = total.get(step["step"], 0.0) + step["end"] - step["start"]
    return {name: round(seconds, 1) for name, seconds in sorted(total.items())}


def peak_concurrency(spans: list[dict]) -> int:
    """The most steps that were executing at one moment."""
    edges = sorted([(s["taken"], 1) for s in spans] + [(s["end"], -1) for s in spans])
    running = peak = 0
    for _, change in edges:
        running += change
        peak = max(peak, running)
    return peak


def parallel(work: Path, onnx_cache: Path, tweets: int, workers: int) -> dict:
    import dagster as dg
    from dagster_graphql import DagsterGraphQLClient

    from sentiment_assets.commands import prod, prod_up
    from sentiment_assets.lib.hosting import services

    env = home_env(work / "prod", onnx_cache, tweets, "prod")
    # `prod up` reads its settings from this process's environment and starts its services
    # with it: from here on this process is the prod profile.
    os.environ.clear()
    os.environ.update(env)
    folder = work / "prod" / "prod"
    dagster_port = services.free_port()
    options = prod.Options(
        folder=folder,
        pg_port=services.free_port(),
        redis_port=services.free_port(),
        mlflow_port=services.free_port(),
        dagster_port=dagster_port,
        workers=workers,
    )
    load_up = load_average_1m()
    started = time.perf_counter()
    prod_up.up(options, say=lambda message: print(f"  {message}", flush=True))
    up_s = time.perf_counter() - started
    try:
        client = DagsterGraphQLClient(services.LOOPBACK, port_number=dagster_port)
        load_before = load_average_1m()
        started = time.perf_counter()
        submitted = time.time()
        run_ids = [
            client.submit_job_execution(
                JOB, repository_location_name=LOCATION, tags={"dagster/partition": month}
            )
            for month in MONTHS
        ]
        settings = load_settings(os.environ)
        with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
            deadline = time.monotonic() + RUNS_TIMEOUT_S
            while not all(instance.get_run_by_id(r).is_finished for r in run_ids):
                if time.monotonic() > deadline:
                    raise SystemExit(f"runs not finished after {RUNS_TIMEOUT_S:.0f} s")
                time.sleep(0.5)
            wall = time.perf_counter() - started
            load_after = load_average_1m()
            _, _, runs = runs_window(instance, run_ids)
            timelines = [timeline(instance, run_id) for run_id in run_ids]
        for run in runs:
            if run["status"] != "SUCCESS":
                raise SystemExit(f"a parallel run failed: {run}; logs under {folder / 'logs'}")
        spans = [step for line in timelines for step in line["steps"]]
        # The first step a worker takes waits for it to load the code location (once per
        # worker); later ones wait only for a free worker.
        waits = [step["taken"] - step["submitted"] for step in spans]
        return {
            "workers": workers,
            "services_up_s": round(up_s, 1),
            "wall_s": round(wall, 1),
            "runs": runs,
            "step_seconds": step_seconds(timelines),
            # Submission to the run's own start: the daemon's dequeue, the run process's
            # start and its loading of the code location.
            "run_start_after_submit_s": sorted(
                round(line["run_start"] - submitted, 1) for line in timelines
            ),
            "celery_wait_s": {"max": round(max(waits), 1), "total": round(sum(waits), 1)},
            "workers_used": sorted({step["worker"] for step in spans}),
            "peak_steps_at_once": peak_concurrency(spans),
            "rows": row_counts(dict(os.environ)),
            "load_avg_1m": {"services_up": load_up, "before": load_before, "after": load_after},
        }
    finally:
        prod.down(folder, say=lambda message: print(f"  {message}", flush=True))


def prepare_onnx_cache(onnx_cache: Path) -> None:
    """Export and gate the encoder graph once, outside both measurements."""
    from sentiment_assets.lib.encoding.encoder_choice import pipeline_encoder
    from sentiment_assets.lib.settings import DEFAULT_ENCODER

    pipeline_encoder(DEFAULT_ENCODER, "cpu", "auto", onnx_cache)


def markdown(result: dict) -> str:
    s, p = result["serial"], result["parallel"]
    steps = sorted(set(s["step_seconds"]) | set(p["step_seconds"]))
    return "\n".join(
        [
            "# Four months' data sides: serial (embedded) vs parallel (prod)",
            "",
            f"Synthetic months {', '.join(MONTHS)}, {result['tweets_per_month']} tweets each;",
            "data side = raw_tweets, the dbt models and tests, tweet_embeddings.",
            f"Machine: {one_line(result['machine'])}. `python -m bench.bench_prod_parallel "
            f"--workers {p['workers']}` (`make bench-prod`).",
            "",
            "| | wall (s) | load avg 1 min (before -> after) |",
            "| --- | ---: | --- |",
            f"| serial, embedded profile (`sentiment pipeline`, whole command) | {s['wall_s']} | "
            f"{s['load_avg_1m']['before']} -> {s['load_avg_1m']['after']} |",
            f"| serial, its 4 runs only (code loading excluded) | {s['runs_wall_s']} | |",
            f"| parallel, prod profile, {p['workers']} Celery workers (submit -> last run "
            f"done) | {p['wall_s']} | {p['load_avg_1m']['before']} -> "
            f"{p['load_avg_1m']['after']} |",
            f"| (bringing the prod services up, not counted) | {p['services_up_s']} | "
            f"{p['load_avg_1m']['services_up']} |",
            "",
            f"Serial / parallel: **{result['ratio_serial_over_parallel']}x** (whole serial "
            f"command), **{result['ratio_serial_runs_over_parallel']}x** (serial runs only).",
            f"Steps ran on {', '.join(p['workers_used'])}; at most "
            f"{p['peak_steps_at_once']} steps executed at one moment.",
            f"Same data: rows per table and month equal on both warehouses: {result['same_rows']}.",
            "",
            "Where the time goes (seconds, summed over the 4 months; a step's own start to end):",
            "",
            "| step | serial | parallel |",
            "| --- | ---: | ---: |",
            *(
                f"| {name} | {s['step_seconds'].get(name, '')} | "
                f"{p['step_seconds'].get(name, '')} |"
                for name in steps
            ),
            "",
            "On the prod profile each run first waits for its own process to start and load "
            "the code location (submission to run start: "
            f"{', '.join(map(str, p['run_start_after_submit_s']))} s), and each step for a "
            "free worker (the first step a worker takes also waits for it to load the code "
            f"location once): {p['celery_wait_s']['total']} s of waiting in all, "
            f"{p['celery_wait_s']['max']} s at most. The serial build loads the code once.",
            "",
            f"This machine has {result['machine']['cores']} CPU cores, so the gain is bounded: "
            "the workers, the run processes, dbt and the encoder all share them, and the "
            "steps of two months at once each run slower than alone. On more cores (or "
            "more machines with workers) the data sides scale with the workers; the models "
            "after them are built month by month on either profile.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (default 2)")
    parser.add_argument("--tweets", type=int, default=2000, help="tweets per month")
    parser.add_argument("--out", default="bench/results/prod_parallel.json")
    parser.add_argument("--md", default="bench/results/prod_parallel.md")
    parser.add_argument("--work", help="scratch folder (default: a new temporary one)")
    args = parser.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-prod-"))
    # PostgreSQL runs as its own user when we are root: it must be able to enter the folder.
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)
    onnx_cache = work / "onnx-cache"
    try:
        prepare_onnx_cache(onnx_cache)
        print("serial (embedded profile) ...", flush=True)
        serial_result = serial(work, onnx_cache, args.tweets)
        print(f"  {serial_result['wall_s']} s", flush=True)
        print(f"parallel (prod profile, {args.workers} workers) ...", flush=True)
        parallel_result = parallel(work, onnx_cache, args.tweets, args.workers)
        print(f"  {parallel_result['wall_s']} s", flush=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    result = {
        "months": MONTHS,
        "tweets_per_month": args.tweets,
        "machine": describe(),
        "serial": serial_result,
        "parallel": parallel_result,
        "ratio_serial_over_parallel": round(serial_result["wall_s"] / parallel_result["wall_s"], 2),
        "ratio_serial_runs_over_parallel": round(
            serial_result["runs_wall_s"] / parallel_result["wall_s"], 2
        ),
        "same_rows": serial_result["rows"] == parallel_result["rows"],
    }
    write_result(result, Path(args.out), Path(args.md), markdown)


if __name__ == "__main__":
    main()
