"""Cost of re-materialising an unchanged month's tweet_embeddings (the cache at work).

Builds one synthetic month up to tweet_embeddings twice in a throw-away SENTIMENT_HOME,
through the real CLI and Dagster instance, and compares the two materializations' timings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import describe
from sentiment_assets.lib.settings import load_settings

ASSETS = "raw_tweets,stg_tweets,tweets_clean,tweet_embeddings"


def build(env: dict[str, str], month: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sentiment_assets.cli",
            "pipeline",
            "--month",
            month,
            "--select",
            ASSETS,
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def embedding_timings(dagster_home: Path) -> list[dict]:
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    import dagster as dg

    instance = dg.DagsterInstance.get()
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("tweet_embeddings")), limit=10
    ).records
    timings = []
    for record in reversed(records):
        meta = record.asset_materialization.metadata
        timings.append({k: meta[k].value for k in ("seconds", "encoded", "from_cache", "rows")})
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="bench/results/rematerialize.json")
    parser.add_argument("--tweets", type=int, default=1500)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-remat-"))
    settings = load_settings(
        {
            "SENTIMENT_HOME": str(home),
            "SENTIMENT_SOURCE": "synthetic",
            "SENTIMENT_SYNTHETIC_MONTHS": "1",
            "SENTIMENT_SYNTHETIC_TWEETS_PER_MONTH": str(args.tweets),
        }
    )
    env = {**os.environ, **settings.environment()}
    env.pop("SENTIMENT_MONTHS", None)
    month = "2024-01-01"
    first_wall = build(env, month)
    second_wall = build(env, month)
    first, second = embedding_timings(settings.dagster_home)[-2:]
    result = {
        "machine": describe(),
        "tweets_per_month": args.tweets,
        "first": {**first, "run_wall_seconds": round(first_wall, 2)},
        "rematerialize": {**second, "run_wall_seconds": round(second_wall, 2)},
        "embedding_step_ratio": round(second["seconds"] / first["seconds"], 4),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(
        f"| tweet_embeddings | first | unchanged rerun | ratio |\n|---|---|---|---|\n"
        f"| step seconds | {first['seconds']:.2f} | {second['seconds']:.2f} | "
        f"{result['embedding_step_ratio']:.3f} |\n"
        f"| texts encoded | {first['encoded']} | {second['encoded']} | |"
    )


if __name__ == "__main__":
    main()
