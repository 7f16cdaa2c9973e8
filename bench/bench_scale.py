"""How cost grows with the size of a month: wall time and peak memory per pipeline stage.

For each size (100k, 300k and 1M tweets by default) a synthetic month is streamed to a CSV
file (``synthetic.write_month``) and built in a throw-away SENTIMENT_HOME through the real
CLI and Dagster assets, one stage per child process, so a stage's peak RSS (``os.wait4``,
the child and the processes it waited for, dbt included) is never hidden by another's:

* ingest: ``raw_tweets`` (chunked read, Parquet staging, one DuckDB copy);
* dbt: ``stg_tweets`` and ``tweets_clean``;
* train: the logistic-regression path on the month as window: ``load_tweets`` with the
  ``TrainConfig.max_window_rows`` stratified sample, then ``fit_tfidf_logreg`` (no MLflow);
* embeddings: ``tweet_embeddings`` is measured once on a fixed subset of EMBED_SUBSET new
  texts, and the month's time is extrapolated from its unique-text count, marked as such;
  with ``--embed-full`` it also runs on every month (a million texts take the int8 graph
  about a quarter of an hour here), and the embedding family's training then runs on the
  month's sampled window of vectors too.

Stage seconds are Dagster's own step times (process start-up and code loading excluded);
the child's wall time is reported too. Run it under ``flock /tmp/cpu-heavy.lock`` on a shared
machine; the 1-minute load average is recorded before and after each size.

    python -m bench.bench_scale --sizes 100000 300000 1000000 [--embed-full]
    python -m bench.bench_scale --make-month 1000000 --out month.csv
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from bench.machine import describe, load_average_1m, one_line
from bench.results_io import write_result
from sentiment_assets.lib.data.synthetic import SyntheticConfig, write_month
from sentiment_assets.lib.settings import load_settings

MONTH = date(2024, 1, 1)
MONTH_KEY = MONTH.isoformat()
EMBED_SUBSET = 5_000
# The subset's warm-up month: exports and loads the encoder graph outside the measurement.
WARMUP_TWEETS = 300
MAX_RSS_TARGET_BYTES = 4 * 1024**3
DBT_ASSETS = "stg_tweets,tweets_clean"
# A month of its own seed, undrifted: the bench measures cost, not drift.
CONFIG = SyntheticConfig(seed=2024, drift={})


def run_child(argv: list[str], env: dict[str, str], log: Path) -> tuple[float, int, str]:
    """Run one stage in a child process: (wall seconds, peak RSS bytes, its stdout+stderr)."""
    started = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        # wait4 gives this child's own resource usage (with the processes it waited for, such
        # as dbt), where RUSAGE_CHILDREN would be the maximum over every stage so far.
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    text = log.read_text()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({child.returncode}):\n{text[-3000:]}")
    return wall, usage.ru_maxrss * 1024, text  # ru_maxrss is in KiB on Linux


def pipeline_argv(selection: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sentiment_assets.cli",
        "pipeline",
        "--month",
        MONTH_KEY,
        "--select",
        selection,
    ]


def home_env(home: Path, source: Path, onnx_cache: Path) -> tuple[dict[str, str], Path]:
    settings = load_settings(
        {
            "SENTIMENT_HOME": str(home),
            "SENTIMENT_SOURCE": str(source),
            # A fixed range: no process scans the big file just to find its months.
            "SENTIMENT_MONTHS": MONTH_KEY,
            "SENTIMENT_ONNX_CACHE": str(onnx_cache),
        }
    )
    env = {**os.environ, **settings.environment()}
    env.pop("SENTIMENT_EARLIEST_MONTH", None)
    return env, settings.dagster_home


def last_run_steps(dagster_home: Path) -> tuple[float, dict[str, float]]:
    """Seconds of the latest run's steps (Dagster's step start to end), total and per step."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        run = instance.get_runs(limit=1)[0]
        steps = {
            s.step_key: round(s.end_time - s.start_time, 3)
            for s in instance.get_run_step_stats(run.run_id)
            if s.start_time is not None and s.end_time is not None
        }
    return round(sum(steps.values()), 3), steps


def last_materialization(dagster_home: Path, asset: str) -> dict[str, object]:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        record = instance.fetch_materializations(dg.AssetKey(asset), limit=1).records[0]
        return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def stage(name: str, argv: list[str], env: dict[str, str], work: Path) -> dict[str, object]:
    wall, rss, _ = run_child(argv, env, work / f"{name}.log")
    seconds, steps = last_run_steps(Path(env["DAGSTER_HOME"]))
    return {
        "seconds": seconds,
        "wall_s": round(wall, 3),
        "peak_rss_mb": round(rss / 1024**2, 1),
        "steps": steps,
    }


def measure_size(
    n: int, work: Path, onnx_cache: Path, max_window_rows: int, embed_full: bool
) -> dict:
    home = work / f"home-{n}"
    source = work / f"month-{n}.csv"
    started = time.perf_counter()
    write_month(CONFIG, MONTH, source, n)
    generate_s = time.perf_counter() - started
    env, _ = home_env(home, source, onnx_cache)
    subprocess.run(
        [sys.executable, "-m", "sentiment_assets.cli", "prepare"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    load_before = load_average_1m()
    ingest = stage("ingest", pipeline_argv("raw_tweets"), env, work)
    ingest.update(
        {
            k: last_materialization(Path(env["DAGSTER_HOME"]), "raw_tweets")[k]
            for k in ("rows_in", "rows_accepted", "rows_rejected")
        }
    )
    dbt = stage("dbt", pipeline_argv(DBT_ASSETS), env, work)
    train = train_child(env, work / f"train-{n}.log", max_window_rows)
    result = {
        "tweets": n,
        "unique_texts": unique_texts(Path(env["DUCKDB_PATH"])),
        "file_mb": round(source.stat().st_size / 1024**2, 1),
        "generate_s": round(generate_s, 3),
        "ingest": ingest,
        "dbt": dbt,
        "train": train,
        "load_avg_1m": {"before": load_before, "after": load_average_1m()},
    }
    if embed_full:
        embeddings = embeddings_stage("embeddings", env, work)
        result["embeddings"] = embeddings
        result["train_embedding"] = train_child(
            env, work / f"train-embedding-{n}.log", max_window_rows, str(embeddings["encoder"])
        )
        result["load_avg_1m"]["after"] = load_average_1m()
    shutil.rmtree(home, ignore_errors=True)
    source.unlink()
    return result


def train_child(
    env: dict[str, str], log: Path, max_window_rows: int, encoder: str | None = None
) -> dict:
    """The train stage in a child process: the TF-IDF family, or with `encoder` (a
    fingerprint) the embedding family on that encoder's vectors."""
    argv = [
        sys.executable,
        "-m",
        "bench.bench_scale",
        "--train-stage",
        env["DUCKDB_PATH"],
        "--max-window-rows",
        str(max_window_rows),
    ]
    if encoder is not None:
        argv += ["--train-encoder", encoder]
    wall, rss, text = run_child(argv, env, log)
    train = json.loads(text.strip().splitlines()[-1])
    train.update({"wall_s": round(wall, 3), "peak_rss_mb": round(rss / 1024**2, 1)})
    return train


def train_stage(duckdb_path: Path, max_window_rows: int, encoder: str | None) -> None:
    """The child of the train stage: a logistic-regression family on the month as its
    window, on TF-IDF features or (with `encoder`) on that encoder's stored vectors."""
    from sentiment_assets.lib.data.sampling import in_holdout
    from sentiment_assets.lib.encoding.embedding_store import load_tweets
    from sentiment_assets.lib.models.params import LogRegParams
    from sentiment_assets.lib.models.training import (
        EMBEDDING_LOGREG,
        TFIDF_LOGREG,
        fit_embedding_logreg,
        fit_tfidf_logreg,
    )

    started = time.perf_counter()
    frame, vectors = load_tweets(duckdb_path, [MONTH], encoder, max_rows=max_window_rows or None)
    load_s = time.perf_counter() - started
    with_label = frame["label"].to_numpy(dtype=int)
    holdout = in_holdout(frame["tweet_id"].tolist())
    if vectors is None:
        fit = fit_tfidf_logreg(frame["text"].tolist(), with_label, holdout, LogRegParams())
    else:
        fit = fit_embedding_logreg(vectors, with_label, holdout, LogRegParams())
    print(
        json.dumps(
            {
                "family": TFIDF_LOGREG if vectors is None else EMBEDDING_LOGREG,
                "rows_loaded": len(frame),
                "max_window_rows": max_window_rows,
                "positive_share": round(float(with_label.mean()), 4),
                "load_s": round(load_s, 3),
                "fit_s": round(fit.train_seconds, 3),
                "seconds": round(time.perf_counter() - started, 3),
                "n_train": fit.n_train,
                "val_macro_f1": round(float(fit.validation.get("macro_f1", float("nan"))), 4),
            }
        )
    )


def measure_embeddings(work: Path, onnx_cache: Path, subset: int) -> dict:
    """tweet_embeddings on ``subset`` new texts, after a warm-up month loaded the encoder."""
    home = work / "home-embed"
    files = work / "embed-source"
    files.mkdir()
    warmup_month = date(2023, 12, 1)
    write_month(CONFIG, warmup_month, files / "warmup.csv", WARMUP_TWEETS)
    write_month(CONFIG, MONTH, files / "subset.csv", subset)
    env, _ = home_env(home, files, onnx_cache)
    env["SENTIMENT_MONTHS"] = f"{warmup_month.isoformat()}..{MONTH_KEY}"
    subprocess.run(
        [sys.executable, "-m", "sentiment_assets.cli", "prepare"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    warm = pipeline_argv(f"raw_tweets,{DBT_ASSETS},tweet_embeddings")
    warm[warm.index(MONTH_KEY)] = warmup_month.isoformat()
    run_child(warm, env, work / "embed-warmup.log")
    run_child(pipeline_argv(f"raw_tweets,{DBT_ASSETS}"), env, work / "embed-prepare.log")
    measured = embeddings_stage("embed", env, work)
    shutil.rmtree(home, ignore_errors=True)
    return measured


def embeddings_stage(name: str, env: dict[str, str], work: Path) -> dict[str, object]:
    """`tweet_embeddings` as a stage, with what the asset recorded about its encoding."""
    measured = stage(name, pipeline_argv("tweet_embeddings"), env, work)
    meta = last_materialization(Path(env["DAGSTER_HOME"]), "tweet_embeddings")
    encoded = int(meta["encoded"])
    measured.update(
        {
            "encoded": encoded,
            "encoder": meta.get("encoder"),
            "device": meta.get("device"),
            "asset_seconds": meta.get("seconds"),
            "seconds_per_text": round(float(meta["seconds"]) / max(encoded, 1), 6),
        }
    )
    return measured


def unique_texts(duckdb_path: Path) -> int:
    """The month's distinct cleaned texts: what tweet_embeddings would encode."""
    import duckdb

    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        (count,) = con.execute(
            "SELECT count(DISTINCT text_hash) FROM clean.tweets_clean WHERE month = ?", [MONTH]
        ).fetchone()
    return int(count)


def per_tweet_us(result: dict, stage_name: str) -> float:
    return round(1e6 * float(result[stage_name]["seconds"]) / result["tweets"], 2)


def markdown(report: dict) -> str:
    embed = report["embeddings"]
    full = all("embeddings" in r for r in report["sizes"])
    lines = [
        f"Scale benchmark ({one_line(report['machine'])}), {report['created']}; peak RSS target "
        f"{MAX_RSS_TARGET_BYTES / 1024**3:.0f} GB. Seconds are Dagster step times; RSS is each "
        "stage's child process (with dbt). Embeddings: measured on "
        f"{embed['encoded']:,} texts ({embed['seconds_per_text'] * 1e3:.2f} ms/text, "
        f"{embed['device']}, peak RSS {embed['peak_rss_mb']:.0f} MB) and **extrapolated** to "
        "each month's unique texts"
        + ("; then **measured** on every month in full." if full else "."),
        "",
        "| tweets | ingest s (µs/tweet) | ingest RSS MB | dbt s (µs/tweet) | dbt RSS MB | "
        "train rows | train s | train RSS MB | embeddings s (extrapolated) | load avg |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :--- |",
    ]
    for r in report["sizes"]:
        lines.append(
            f"| {r['tweets']:,} | {r['ingest']['seconds']:.1f} ({per_tweet_us(r, 'ingest')}) | "
            f"{r['ingest']['peak_rss_mb']:.0f} | {r['dbt']['seconds']:.1f} "
            f"({per_tweet_us(r, 'dbt')}) | {r['dbt']['peak_rss_mb']:.0f} | "
            f"{r['train']['rows_loaded']:,} | {r['train']['seconds']:.1f} | "
            f"{r['train']['peak_rss_mb']:.0f} | ~{r['embeddings_extrapolated_s']:.0f} | "
            f"{r['load_avg_1m']['before']} → {r['load_avg_1m']['after']} |"
        )
    if full:
        lines += [
            "",
            "Measured in full (`--embed-full`): `tweet_embeddings` on the month, then the "
            "embedding family's training on its sampled window of stored vectors.",
            "",
            "| tweets | texts encoded | embeddings s (ms/text) | embeddings RSS MB | "
            "embedding LR rows | load + fit s | embedding LR RSS MB |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in report["sizes"]:
            e, t = r["embeddings"], r["train_embedding"]
            lines.append(
                f"| {r['tweets']:,} | {e['encoded']:,} | {e['seconds']:.0f} "
                f"({e['seconds_per_text'] * 1e3:.2f}) | {e['peak_rss_mb']:.0f} | "
                f"{t['rows_loaded']:,} | {t['seconds']:.1f} | {t['peak_rss_mb']:.0f} |"
            )
    lines += ["", report["verdict"]]
    return "\n".join(lines) + "\n"


def verdict(sizes: list[dict]) -> str:
    stages = ("ingest", "dbt", "train", "embeddings", "train_embedding")
    peak = max(r[s]["peak_rss_mb"] for r in sizes for s in stages if s in r)
    parts = [
        f"Largest stage peak RSS: {peak:.0f} MB (target <= {MAX_RSS_TARGET_BYTES / 1024**2:.0f})."
    ]
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        for name in ("ingest", "dbt"):
            ratio = per_tweet_us(large, name) / per_tweet_us(small, name)
            # The cost of the extra tweets alone: a fixed start-up cost (dbt parses its
            # project) makes small months look dearer per tweet than they are.
            marginal = (
                1e6
                * (float(large[name]["seconds"]) - float(small[name]["seconds"]))
                / (large["tweets"] - small["tweets"])
            )
            parts.append(
                f"{name}: time per tweet at {large['tweets']:,} is {ratio:.2f}x that at "
                f"{small['tweets']:,}; the extra tweets cost {marginal:.1f} µs each."
            )
        if "embeddings" in small and "embeddings" in large:
            ratio = (
                large["embeddings"]["seconds_per_text"] / small["embeddings"]["seconds_per_text"]
            )
            parts.append(
                f"embeddings: time per text at {large['tweets']:,} is {ratio:.2f}x that at "
                f"{small['tweets']:,}."
            )
    return " ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--out", default="bench/results/scale.json")
    parser.add_argument("--md", default="bench/results/scale.md")
    parser.add_argument("--max-window-rows", type=int, default=None)
    parser.add_argument("--embed-subset", type=int, default=EMBED_SUBSET)
    parser.add_argument("--make-month", type=int, metavar="N", help="only write a month of N")
    parser.add_argument(
        "--embed-full",
        action="store_true",
        help="also embed every month in full and train the embedding family on it",
    )
    parser.add_argument("--train-stage", metavar="DUCKDB", help=argparse.SUPPRESS)
    parser.add_argument("--train-encoder", metavar="FINGERPRINT", help=argparse.SUPPRESS)
    parser.add_argument("--work", help="scratch folder (default: a new temporary one)")
    args = parser.parse_args()
    if args.max_window_rows is None:
        from sentiment_assets.lib.models.training import DEFAULT_MAX_WINDOW_ROWS

        args.max_window_rows = DEFAULT_MAX_WINDOW_ROWS
    if args.train_stage:
        train_stage(Path(args.train_stage), args.max_window_rows, args.train_encoder)
        return
    if args.make_month is not None:
        out = Path(args.out if args.out.endswith((".csv", ".parquet")) else "month.csv")
        written = write_month(CONFIG, MONTH, out, args.make_month)
        print(f"wrote {written} tweets of {MONTH:%Y-%m} to {out}")
        return
    # Scratch space on disk next to the repo's state, not /tmp (which may be memory).
    scratch = load_settings(os.environ).home
    scratch.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-scale-", dir=scratch))
    work.mkdir(parents=True, exist_ok=True)
    onnx_cache = work / "onnx-cache"
    embeddings = measure_embeddings(work, onnx_cache, args.embed_subset)
    print(f"embeddings subset: {json.dumps(embeddings)}", flush=True)
    sizes = []
    for n in args.sizes:
        result = measure_size(n, work, onnx_cache, args.max_window_rows, args.embed_full)
        result["embeddings_extrapolated_s"] = round(
            result["unique_texts"] * embeddings["seconds_per_text"], 1
        )
        print(json.dumps(result), flush=True)
        sizes.append(result)
    report = {
        "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": describe(),
        "embeddings": {**embeddings, "extrapolated": True, "subset_texts": args.embed_subset},
        "sizes": sizes,
        "verdict": verdict(sizes),
    }
    write_result(report, Path(args.out), Path(args.md), markdown)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
