"""Embedding throughput: our TextEncoder against sentence-transformers on the same model.

Both contenders load the same model folder, see the same texts, run with the same torch thread
count and batch size, and are timed alternately (ours, theirs, ours, ...) so that background
load on a shared machine hits both alike; the best of the repeats is reported.

    python -m bench.bench_embeddings --out bench/results/embeddings.json
    python -m bench.bench_embeddings --texts-from /path/to/sentiment140.csv --n 2000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import numpy as np

import sentiment_assets  # noqa: F401  (offline before sentence-transformers loads)

# fmt: off
_WORDS = (
    "love", "hate", "great", "awful", "today", "tonight", "work", "school", "monday",
    "weekend", "coffee", "rain", "sun", "movie", "music", "game", "phone", "bus", "train",
    "friends", "family", "dog", "cat", "pizza", "sleep", "tired", "happy", "sad", "excited",
    "bored", "finally", "again", "never", "always", "really", "so", "just", "lol", "omg",
    "tbh", "ugh", "yay",
)
# fmt: on


def builtin_texts(n: int, seed: int) -> list[str]:
    """Seeded tweet-like texts with a realistic spread of lengths (3 to 30 words)."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(3, 30))]
        if rng.random() < 0.3:
            words.insert(0, f"@user{rng.randrange(1000)}")
        if rng.random() < 0.2:
            words.append("http://t.co/" + "".join(rng.choices("abcdefgh123", k=8)))
        texts.append(" ".join(words) + rng.choice(["", "!", "!!", "...", " :)", " :("]))
    return texts


def synthetic_texts(n: int, seed: int) -> list[str] | None:
    """Texts from the project's synthetic generator, or None when it is unavailable."""
    try:
        from sentiment_assets.lib import synthetic

        config = synthetic.SyntheticConfig(seed=seed, tweets_per_month=n, bad_row_rate=0.0)
        frame = synthetic.generate_month(config, date(2024, 1, 1))
        texts = [str(t) for t in frame["text"].tolist() if isinstance(t, str) and t.strip()]
    except Exception as exc:  # the generator is optional here: any failure means fallback
        print(f"synthetic generator unavailable ({exc!r}); using built-in texts", file=sys.stderr)
        return None
    return texts[:n] if len(texts) >= n else None


def csv_texts(path: str, n: int, column: str) -> list[str]:
    """First n non-empty texts of a CSV; headerless 6-column Sentiment140 files work too."""
    import pandas as pd

    frame = pd.read_csv(path, nrows=n * 2, dtype=str, keep_default_na=False)
    if column not in frame.columns:
        frame = pd.read_csv(path, nrows=n * 2, dtype=str, keep_default_na=False, header=None)
        if frame.shape[1] != 6:
            raise SystemExit(f"{path}: no column {column!r} and not a 6-column Sentiment140 file")
        frame = frame.rename(columns={5: column})
    texts = [t for t in frame[column].tolist() if t.strip()][:n]
    if len(texts) < n:
        print(f"{path}: only {len(texts)} texts available (asked for {n})", file=sys.stderr)
    return texts


def _timed(fn: Callable[[], np.ndarray]) -> tuple[float, float, np.ndarray]:
    """Wall and process CPU seconds. CPU time is reported too because on a shared machine
    wall time also counts the time other processes held our cores."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def _row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def run(args: argparse.Namespace) -> dict:
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    from sentiment_assets.lib.encoder import TextEncoder, pick_device

    torch.set_num_threads(args.threads)
    if args.texts_from:
        texts, source = csv_texts(args.texts_from, args.n, args.column), args.texts_from
    else:
        texts = synthetic_texts(args.n, args.seed)
        source = "synthetic"
        if texts is None:
            texts, source = builtin_texts(args.n, args.seed), "builtin"
    device = pick_device(args.device)

    ours = TextEncoder(args.encoder, device=device, batch_size=args.batch_size)
    theirs = SentenceTransformer(ours.path, device=device)
    # Same truncation for both, so neither gets to skip tokens the other must process.
    theirs.max_seq_length = ours.max_length

    def encode_ours(batch: Sequence[str]) -> np.ndarray:
        return ours.encode(batch)

    def encode_theirs(batch: Sequence[str]) -> np.ndarray:
        return theirs.encode(
            list(batch),
            batch_size=args.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )

    contenders = {"ours": encode_ours, "sentence_transformers": encode_theirs}
    warm = texts[: min(len(texts), 4 * args.batch_size)]
    for fn in contenders.values():
        fn(warm)

    times: dict[str, list[float]] = {k: [] for k in contenders}
    cpu_times: dict[str, list[float]] = {k: [] for k in contenders}
    outputs: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for key, fn in contenders.items():
            seconds, cpu_seconds, outputs[key] = _timed(lambda fn=fn: fn(texts))
            times[key].append(seconds)
            cpu_times[key].append(cpu_seconds)

    # Single-text latency: the serving path (one tweet per request).
    rng = random.Random(args.seed)
    probes = [texts[rng.randrange(len(texts))] for _ in range(args.latency_samples)]
    latencies: dict[str, list[float]] = {k: [] for k in contenders}
    for text in probes:
        for key, fn in contenders.items():
            seconds, _, _ = _timed(lambda fn=fn, text=text: fn([text]))
            latencies[key].append(seconds * 1000.0)

    cos = _row_cosine(outputs["ours"], outputs["sentence_transformers"])
    results = {}
    for key in contenders:
        best = min(times[key])
        results[key] = {
            "tweets_per_s": round(len(texts) / best, 1),
            "best_s": round(best, 3),
            "all_s": [round(t, 3) for t in times[key]],
            "best_cpu_s": round(min(cpu_times[key]), 3),
            "latency_p50_ms": round(statistics.median(latencies[key]), 2),
        }
    return {
        "benchmark": "embeddings",
        "texts": {
            "source": source,
            "n": len(texts),
            "mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
        },
        "config": {
            "encoder": args.encoder,
            "fingerprint": ours.fingerprint,
            "device": device,
            "threads": args.threads,
            "batch_size": args.batch_size,
            "max_length": ours.max_length,
            "repeats": args.repeats,
            "latency_samples": args.latency_samples,
            "seed": args.seed,
        },
        "ours": results["ours"],
        "sentence_transformers": results["sentence_transformers"],
        "ratio_ours_over_theirs": round(
            results["ours"]["tweets_per_s"] / results["sentence_transformers"]["tweets_per_s"], 3
        ),
        "ratio_cpu_time_theirs_over_ours": round(
            results["sentence_transformers"]["best_cpu_s"] / results["ours"]["best_cpu_s"], 3
        ),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "mean_cosine": round(float(cos.mean()), 6),
        "min_cosine": round(float(cos.min()), 6),
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
        },
    }


def markdown(report: dict) -> str:
    ours, theirs = report["ours"], report["sentence_transformers"]
    cfg, src = report["config"], report["texts"]
    lines = [
        f"Embeddings: {src['n']} texts ({src['source']}), device {cfg['device']}, "
        f"{cfg['threads']} threads, batch {cfg['batch_size']}",
        "",
        "| encoder | tweets/s | best wall s | best CPU s | latency p50 (ms) |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| TextEncoder (ours) | {ours['tweets_per_s']} | {ours['best_s']} "
        f"| {ours['best_cpu_s']} | {ours['latency_p50_ms']} |",
        f"| sentence-transformers | {theirs['tweets_per_s']} | {theirs['best_s']} "
        f"| {theirs['best_cpu_s']} | {theirs['latency_p50_ms']} |",
        "",
        f"throughput ratio (ours / theirs): {report['ratio_ours_over_theirs']}x "
        f"(CPU time: {report['ratio_cpu_time_theirs_over_ours']}x); "
        f"cosine mean {report['mean_cosine']}, min {report['min_cosine']}; "
        f"load average {report['load_average_1m']}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/embeddings.json")
    parser.add_argument("--n", type=int, default=2000, help="number of texts")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-samples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--device", default=None, help="default: cuda when present, else cpu")
    parser.add_argument("--encoder", default="all-MiniLM-L6-v2")
    parser.add_argument("--texts-from", default=None, help="CSV file with a text column")
    parser.add_argument("--column", default="text")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1 or args.latency_samples < 1:
        parser.error("--n, --repeats and --latency-samples must be >= 1")

    report = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(out)  # atomic: a reader never sees a half-written report
    print(markdown(report))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
