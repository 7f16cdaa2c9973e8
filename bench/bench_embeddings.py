"""Embedding throughput: the platform's encoders against sentence-transformers, one model.

Four contenders in one run, on the same texts, model folder, number of threads and
truncation: sentence-transformers' fp32 `encode` (the peer) and our torch `TextEncoder` in
batches of 32 on every thread, and the ONNX Runtime graphs the pipeline and the app run
(`OnnxTextEncoder` fp32 and its gated int8 copy) as the pipeline runs them: batches of 16,
one thread each, as many side by side as there are threads. They are timed alternately (each in turn, repeat after repeat) so that background
load on a shared machine hits all alike; the best of the repeats is reported, with each
one's ratio to the peer, its cosine to the peer, and the int8 quality gate: the stored gate
measurement and, where the texts are labelled, the same label-agreement test on them.

    python -m bench.bench_embeddings --out bench/results/embeddings.json
    python -m bench.bench_embeddings --texts-from /work/shared/data/sentiment140_sample.csv \
        --n 2000 --out bench/results/embeddings_sentiment140.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import numpy as np

import sentiment_assets  # noqa: F401  (offline before sentence-transformers loads)
from bench.machine import describe, load_average_1m

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


def synthetic_texts(n: int, seed: int) -> tuple[list[str], np.ndarray] | None:
    """Texts and labels from the project's synthetic generator, or None when it is
    unavailable."""
    try:
        from sentiment_assets.lib.data import synthetic
        from sentiment_assets.lib.data.text import map_label

        config = synthetic.SyntheticConfig(seed=seed, tweets_per_month=n, bad_row_rate=0.0)
        frame = synthetic.generate_month(config, date(2024, 1, 1))
        frame = frame[[isinstance(t, str) and bool(t.strip()) for t in frame["text"]]]
        labels = frame["label"].map(map_label)
    except Exception as exc:  # the generator is optional here: any failure means fallback
        print(f"synthetic generator unavailable ({exc!r}); using built-in texts", file=sys.stderr)
        return None
    if len(frame) < n:
        return None
    return [str(t) for t in frame["text"].iloc[:n]], labels.iloc[:n].to_numpy(dtype=float)


def csv_texts(path: str, n: int, column: str) -> tuple[list[str], np.ndarray]:
    """First n non-empty texts of a CSV and their labels (NaN where there is none); headerless
    6-column Sentiment140 files work too (label column `target`: 0 negative, 4 positive)."""
    import pandas as pd

    from sentiment_assets.lib.data.text import map_label

    frame = pd.read_csv(path, nrows=n * 2, dtype=str, keep_default_na=False)
    if column not in frame.columns:
        frame = pd.read_csv(path, nrows=n * 2, dtype=str, keep_default_na=False, header=None)
        if frame.shape[1] != 6:
            raise SystemExit(f"{path}: no column {column!r} and not a 6-column Sentiment140 file")
        frame = frame.rename(columns={0: "target", 5: column})
    frame = frame[frame[column].str.strip() != ""].head(n)
    if len(frame) < n:
        print(f"{path}: only {len(frame)} texts available (asked for {n})", file=sys.stderr)
    raw = frame["target"] if "target" in frame.columns else frame.get("label")
    labels = (
        raw.map(map_label).to_numpy(dtype=float) if raw is not None else np.full(len(frame), np.nan)
    )
    return frame[column].tolist(), labels


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


PEER = "sentence_transformers"
# The contenders, in timing order, with what each one is.
CONTENDERS = {
    PEER: "SentenceTransformer.encode, torch fp32 (the peer)",
    "torch_fp32": "TextEncoder: torch fp32, token-length buckets",
    "onnx_fp32": "OnnxTextEncoder fp32: the exported graph (ONNX Runtime), batches side by side",
    "onnx_int8": "OnnxTextEncoder int8: integer products, calibrated or per-token activation "
    "scales (lib/int8_graph), gated, batches side by side",
}


def _texts(args: argparse.Namespace) -> tuple[list[str], np.ndarray, str]:
    if args.texts_from:
        texts, labels = csv_texts(args.texts_from, args.n, args.column)
        return texts, labels, args.texts_from
    found = synthetic_texts(args.n, args.seed)
    if found is not None:
        return found[0], found[1], "synthetic"
    texts = builtin_texts(args.n, args.seed)
    return texts, np.full(len(texts), np.nan), "builtin"


def _label_agreement(reference: np.ndarray, other: np.ndarray, labels: np.ndarray) -> dict | None:
    """The quality gate's label test on the benchmark's own labelled texts: a logistic
    regression fitted on the first half's reference vectors, predictions on the second half
    from either kind of vector."""
    from sklearn.linear_model import LogisticRegression

    known = ~np.isnan(labels)
    if known.sum() < 100 or len(np.unique(labels[known])) < 2:
        return None
    ref, oth, y = reference[known], other[known], labels[known].astype(int)
    half = len(y) // 2
    model = LogisticRegression(max_iter=1000, random_state=0).fit(ref[:half], y[:half])
    return {
        "heldout_texts": int(len(y) - half),
        "label_agreement": round(
            float((model.predict(ref[half:]) == model.predict(oth[half:])).mean()), 4
        ),
        "accuracy_reference": round(float((model.predict(ref[half:]) == y[half:]).mean()), 4),
        "accuracy_other": round(float((model.predict(oth[half:]) == y[half:]).mean()), 4),
    }


def run(args: argparse.Namespace) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer

    from sentiment_assets.lib.encoding.encoder import TextEncoder, pick_device
    from sentiment_assets.lib.encoding.encoder_choice import pipeline_encoder
    from sentiment_assets.lib.encoding.onnx_encoder import OnnxTextEncoder

    torch.set_num_threads(args.threads)
    texts, labels, source = _texts(args)
    device = pick_device(args.device)
    load_before = load_average_1m()

    ours = TextEncoder(args.encoder, device=device, batch_size=args.batch_size)
    theirs = SentenceTransformer(ours.path, device=device)
    # Same truncation for all, so none gets to skip tokens another must process.
    theirs.max_seq_length = ours.max_length
    encoders: dict[str, Callable[[Sequence[str]], np.ndarray]] = {
        PEER: lambda batch: theirs.encode(
            list(batch),
            batch_size=args.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        ),
        "torch_fp32": ours.encode,
    }
    fingerprints = {"torch_fp32": ours.fingerprint}
    gate = None
    pipeline_choice: dict | None = None
    if device == "cpu":  # the ONNX graphs are the CPU path; on CUDA the pipeline runs torch
        for precision in ("fp32", "int8"):
            # As the pipeline runs them: one intra-op thread per batch, `threads` batches
            # side by side, so they use the same number of threads as the peer.
            graph = OnnxTextEncoder(
                args.encoder,
                cache_dir=args.onnx_cache,
                batch_size=args.onnx_batch_size,
                threads=1,
                batch_workers=args.threads,
                precision=precision,
            )
            encoders[f"onnx_{precision}"] = graph.encode
            fingerprints[f"onnx_{precision}"] = graph.fingerprint
            if graph.gate_measurement is not None:
                gate = graph.gate_measurement.as_dict()
        # What tweet_embeddings would run on these texts' source: int8 only where the gate,
        # judged on the source's own labelled tweets, passes it.
        chosen = pipeline_encoder(
            args.encoder,
            device,
            "auto",
            args.onnx_cache,
            batch_size=args.onnx_batch_size,
            threads=1,
            batch_workers=args.threads,
            probe_source=args.texts_from,
        )
        pipeline_choice = {
            "contender": f"onnx_{chosen.precision}",
            "fingerprint": chosen.fingerprint,
            "gate": chosen.gate_measurement.as_dict() if chosen.gate_measurement else None,
            "note": chosen.precision_note,
        }

    warm = texts[: min(len(texts), 4 * args.batch_size)]
    for fn in encoders.values():
        fn(warm)
    times: dict[str, list[float]] = {k: [] for k in encoders}
    cpu_times: dict[str, list[float]] = {k: [] for k in encoders}
    outputs: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for key, fn in encoders.items():
            seconds, cpu_seconds, outputs[key] = _timed(lambda fn=fn: fn(texts))
            times[key].append(seconds)
            cpu_times[key].append(cpu_seconds)

    # Single-text latency: the serving path (one tweet per request).
    rng = random.Random(args.seed)
    probes = [texts[rng.randrange(len(texts))] for _ in range(args.latency_samples)]
    latencies: dict[str, list[float]] = {k: [] for k in encoders}
    for text in probes:
        for key, fn in encoders.items():
            seconds, _, _ = _timed(lambda fn=fn, text=text: fn([text]))
            latencies[key].append(seconds * 1000.0)

    peer_rate = len(texts) / min(times[PEER])
    results = {}
    for key in encoders:
        best = min(times[key])
        cos = _row_cosine(outputs[key], outputs[PEER])
        results[key] = {
            "what": CONTENDERS[key],
            "fingerprint": fingerprints.get(key),
            "tweets_per_s": round(len(texts) / best, 1),
            "ratio_to_sentence_transformers": round(len(texts) / best / peer_rate, 3),
            "best_s": round(best, 3),
            "all_s": [round(t, 3) for t in times[key]],
            "best_cpu_s": round(min(cpu_times[key]), 3),
            "latency_p50_ms": round(statistics.median(latencies[key]), 2),
            "mean_cosine_to_peer": round(float(cos.mean()), 6),
            "min_cosine_to_peer": round(float(cos.min()), 6),
        }
    int8_check = None
    if "onnx_int8" in outputs:
        cos = _row_cosine(outputs["onnx_int8"], outputs["onnx_fp32"])
        int8_check = {
            "what": "int8 against fp32 ONNX on these texts; label agreement as the gate "
            "measures it (LR fitted on fp32 vectors of the first half)",
            "mean_cosine_to_fp32": round(float(cos.mean()), 6),
            "min_cosine_to_fp32": round(float(cos.min()), 6),
            "labels": _label_agreement(outputs["onnx_fp32"], outputs["onnx_int8"], labels),
            "stored_gate_measurement": gate,
        }
    return {
        "benchmark": "embeddings",
        "texts": {
            "source": source,
            "n": len(texts),
            "labelled": int((~np.isnan(labels)).sum()),
            "mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
        },
        "config": {
            "encoder": args.encoder,
            "device": device,
            "threads": args.threads,
            "batch_size": args.batch_size,
            "onnx_batch_size": args.onnx_batch_size,
            "max_length": ours.max_length,
            "repeats": args.repeats,
            "latency_samples": args.latency_samples,
            "seed": args.seed,
        },
        "results": results,
        "int8_quality": int8_check,
        "pipeline_choice": pipeline_choice
        and {
            **pipeline_choice,
            "ratio_to_sentence_transformers": results[pipeline_choice["contender"]][
                "ratio_to_sentence_transformers"
            ],
        },
        "target": {
            "what": "onnx_int8 tweets/s >= 3x sentence-transformers in the same run",
            "ratio": results.get("onnx_int8", {}).get("ratio_to_sentence_transformers"),
            "met": results.get("onnx_int8", {}).get("ratio_to_sentence_transformers", 0) >= 3.0,
        },
        "load_average_1m": {"before": load_before, "after": load_average_1m()},
        "machine": describe(("transformers", "sentence-transformers")),
    }


def markdown(report: dict) -> str:
    cfg, src = report["config"], report["texts"]
    lines = [
        f"Embeddings: {src['n']} texts ({src['source']}), device {cfg['device']}, "
        f"{cfg['threads']} threads, batch {cfg['batch_size']}",
        "",
        "| encoder | tweets/s | x sentence-transformers | best CPU s | latency p50 (ms) "
        "| cosine to peer |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, row in report["results"].items():
        lines.append(
            f"| {key} | {row['tweets_per_s']} | {row['ratio_to_sentence_transformers']} "
            f"| {row['best_cpu_s']} | {row['latency_p50_ms']} | {row['mean_cosine_to_peer']} |"
        )
    quality = report["int8_quality"]
    if quality:
        labels = quality["labels"]
        agreement = (
            f"label agreement {labels['label_agreement']} on {labels['heldout_texts']} held-out"
            if labels
            else "no labels"
        )
        gate = quality["stored_gate_measurement"] or {}
        lines += [
            "",
            f"int8 vs fp32 here: cosine mean {quality['mean_cosine_to_fp32']}, "
            f"min {quality['min_cosine_to_fp32']}, {agreement}; export-time gate: cosine "
            f"{gate.get('mean_cosine')}, agreement {gate.get('label_agreement')} "
            f"({gate.get('heldout_texts')} held-out synthetic probe texts)",
        ]
    choice = report.get("pipeline_choice")
    if choice:
        lines += [
            "",
            f"the pipeline's graph for this source: {choice['contender']} "
            f"({choice['ratio_to_sentence_transformers']}x the peer)"
            + (f"; {choice['note']}" if choice["note"] else ""),
        ]
    load = report["load_average_1m"]
    lines.append(f"load average (1 min): {load['before']} before, {load['after']} after")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from sentiment_assets.environment import current_settings
    from sentiment_assets.lib.encoding.onnx_encoder import CPU_BATCH_SIZE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/embeddings.json")
    parser.add_argument("--n", type=int, default=2000, help="number of texts")
    parser.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime threads")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=32,
        help="the peer's and the torch encoder's (32: the peer's default, and its fastest of "
        "16/32/64 measured here)",
    )
    parser.add_argument(
        "--onnx-batch-size",
        type=int,
        default=CPU_BATCH_SIZE,
        help="the ONNX graphs' batch size (default: the pipeline's on the CPU)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-samples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--device", default=None, help="default: cuda when present, else cpu")
    parser.add_argument("--encoder", default="all-MiniLM-L6-v2")
    parser.add_argument("--texts-from", default=None, help="CSV file with a text column")
    parser.add_argument("--column", default="text")
    parser.add_argument(
        "--onnx-cache",
        type=Path,
        default=current_settings().onnx_cache_dir,
        help="where the ONNX graphs are (made and gated there on first use)",
    )
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
