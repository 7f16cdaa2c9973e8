"""The CPU budget's effect on the fine-tuned family: a fixed 800 tweets against what
``FinetuneParams.cpu_budget_seconds`` buys, on Sentiment140.

    python -m bench.bench_finetune_budget --out bench/results/finetune_budget.json \
        --md bench/results/finetune_budget.md
    python -m bench.bench_finetune_budget --smoke --out /tmp/fb.json --md /tmp/fb.md

Protocol: data, validation split and scoring are bench/compare_families.py's (its docstring
has the details): the 20k sample cleaned like ``clean.tweets_clean``, a seeded, stratified
10% validation split, each model saved with ``save_bundle``, reloaded with ``load_predictor``
and scored once on the manual test set (its binary rows). Both arms fit through the family
registry as the pipeline does (``fit_family``: the family's params from the run's knobs, then
its fit), with the same seed, on the same rows, on the CPU:

- before: the fixed size the pipeline trained on, ``max_train_samples=800``, no budget;
- after: the pipeline's defaults with ``cpu_budget_seconds`` (``--budget-seconds``, default
  SENTIMENT_FINETUNE_CPU_BUDGET_SECONDS's default, 900 s).

``--smoke`` offers 200 training tweets, caps the before arm at 100 and gives the after arm a
10-second budget: the whole path in well under a minute, figures meaningless.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.compare_families import (
    DEFAULT_S140_TEST,
    DEFAULT_S140_TRAIN,
    SEED,
    THREADS,
    VALIDATION_FRACTION,
    Dataset,
    Trained,
    _log,
    _timed,
    evaluate_saved,
    load_sentiment140,
    stratified_holdout,
)
from bench.machine import describe, load_average_1m, one_line
from bench.results_io import write_result
from sentiment_assets.lib.data.sources import months_in_source
from sentiment_assets.lib.models.families import Progress, family
from sentiment_assets.lib.models.fitting import TrainingData, fit_family
from sentiment_assets.lib.models.params import FinetuneParams
from sentiment_assets.lib.models.training import FINETUNED_TRANSFORMER
from sentiment_assets.lib.settings import DEFAULT_FINETUNE_CPU_BUDGET_SECONDS
from sentiment_assets.lib.stats.metrics import wilson_interval

BEFORE, AFTER = "before", "after"
# The fixed size the fine-tuned family trained on before the budget (FinetuneParams' default).
FIXED_SAMPLES = FinetuneParams.max_train_samples
# The smoke path: small enough for a unit test, and the after arm still outgrows the before.
SMOKE_TRAIN, SMOKE_VALIDATION, SMOKE_FIXED, SMOKE_BUDGET_SECONDS = 200, 50, 100, 10.0
# Forced: the budget is a CPU budget (on CUDA the family trains the whole window instead).
DEVICE = "cpu"


# --------------------------------------------------------------------------- data


def smoke_subset(ds: Dataset, holdout: np.ndarray) -> tuple[Dataset, np.ndarray]:
    """The smoke path's data: SMOKE_TRAIN training and SMOKE_VALIDATION validation rows,
    each a label-stratified, seeded sample of its side of the split; test sets unchanged."""
    from sentiment_assets.lib.models.finetune import stratified_subsample

    sides = []
    for mask, size in ((~holdout, SMOKE_TRAIN), (holdout, SMOKE_VALIDATION)):
        rows = np.flatnonzero(mask)
        sides.append(rows[stratified_subsample(ds.train_labels[rows], size, SEED)])
    keep = np.sort(np.concatenate(sides))
    small = replace(
        ds,
        train_ids=[ds.train_ids[i] for i in keep],
        train_raw=[ds.train_raw[i] for i in keep],
        train_clean=[ds.train_clean[i] for i in keep],
        train_labels=ds.train_labels[keep],
    )
    return small, holdout[keep]


def training_data(ds: Dataset, holdout: np.ndarray, train_csv: str) -> TrainingData:
    """The rows as the pipeline's training step holds a window."""
    months = months_in_source(train_csv)
    frame = pd.DataFrame(
        {"tweet_id": ds.train_ids, "text": ds.train_clean, "label": ds.train_labels}
    )
    return TrainingData(months[-1], months, frame, None, holdout)


# --------------------------------------------------------------------------- arms


def arm_knobs(smoke: bool, budget_seconds: float) -> dict[str, dict[str, Any]]:
    """Each arm's run knobs, as TrainConfig.knobs passes them; the rest are the defaults."""
    base = {"seed": SEED, "device": DEVICE}
    fixed = SMOKE_FIXED if smoke else FIXED_SAMPLES
    return {
        BEFORE: {
            **base,
            "finetune_max_train_samples": fixed,
            "finetune_cpu_budget_seconds": None,
        },
        AFTER: {**base, "finetune_cpu_budget_seconds": budget_seconds},
    }


def _progress(arm: str) -> Progress:
    def report(info: dict[str, Any]) -> None:
        if info["step"] % 100 == 0 or info["step"] == info["total_steps"]:
            _log(
                f"  {arm}: step {info['step']}/{info['total_steps']} loss {info['loss']:.3f} "
                f"{info['elapsed_s']:.0f}s"
            )

    return report


def fit_arm(arm: str, knobs: dict[str, Any], data: TrainingData) -> Trained:
    """Fit the fine-tuned family with `knobs` the way the pipeline's training step does."""
    chosen = family(FINETUNED_TRANSFORMER)
    _log(f"{arm}: fitting with {chosen.params(knobs)}")
    fitted, wall, cpu = _timed(lambda: fit_family(chosen, data, knobs, progress=_progress(arm)))
    model = fitted.fit.estimator
    val_texts = data.frame["text"][data.holdout].tolist()[:64]
    return Trained(
        FINETUNED_TRANSFORMER,
        model,
        fitted.card_params,
        wall,
        cpu,
        fitted.fit.validation,
        # In-memory scores, which evaluate_saved compares with the reloaded bundle's.
        model.predict_proba(val_texts),
        [],
        {"train_stats": dict(model.train_stats)},
    )


def with_interval(block: dict[str, Any]) -> dict[str, Any]:
    """A metrics block plus the 95% Wilson interval of its accuracy."""
    correct = round(block["accuracy"] * block["n"])
    return {
        **block,
        "correct": correct,
        "accuracy_ci95": list(wilson_interval(correct, block["n"])),
    }


def arm_record(trained: Trained, served: dict[str, Any], load_start: float | None) -> dict:
    """What the result keeps of one arm."""
    stats = trained.extra["train_stats"]
    return {
        "params": trained.hyperparameters,
        "training_size": stats["size"],
        "samples": stats["samples"],
        "samples_offered": stats["samples_offered"],
        "epochs": stats["epochs"],
        "steps": stats["steps"],
        # Whether the fit ran out of its seconds before the planned passes (older results lack it).
        "stopped_at_budget": stats.get("stopped_at_budget", False),
        # The optimizer loop alone, then the whole fit (model load and validation scoring).
        "train_minutes": stats["seconds"] / 60,
        "fit_wall_minutes": trained.train_seconds / 60,
        "fit_cpu_seconds": trained.train_cpu_seconds,
        "measured_passes_per_second": stats["measured_passes_per_second"],
        "validation": with_interval(trained.validation),
        "test": served["eval"]["test"],
        "serving": {k: v for k, v in served.items() if k != "eval"},
        "load1_start": load_start,
        "load1_end": load_average_1m(),
    }


def run_arms(
    ds: Dataset, holdout: np.ndarray, data: TrainingData, knobs: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Fit, save, reload and score each arm in turn, on the same rows."""
    arms: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="finetune-budget-") as tmp:
        for arm, arm_knob in knobs.items():
            load_start = load_average_1m()
            trained = fit_arm(arm, arm_knob, data)
            served = evaluate_saved(trained, ds, holdout, Path(tmp) / arm)
            arms[arm] = arm_record(trained, served, load_start)
            _log(
                f"{arm}: {arms[arm]['samples']} tweets, test acc {arms[arm]['test']['accuracy']:.4f}"
            )
            del trained  # a fine-tuned model is ~90 MB; free it before the next arm
    return arms


def intervals_overlap(one: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two metrics blocks' 95% accuracy intervals share a point."""
    (low, high), (other_low, other_high) = one["accuracy_ci95"], other["accuracy_ci95"]
    return low <= other_high and other_low <= high


def difference(arms: dict[str, Any]) -> dict[str, Any]:
    """After minus before, and whether the test intervals overlap."""
    before, after = arms[BEFORE]["test"], arms[AFTER]["test"]
    return {
        "test_accuracy_points": 100 * (after["accuracy"] - before["accuracy"]),
        "test_macro_f1": after["macro_f1"] - before["macro_f1"],
        "validation_accuracy_points": 100
        * (arms[AFTER]["validation"]["accuracy"] - arms[BEFORE]["validation"]["accuracy"]),
        "test_intervals_overlap": intervals_overlap(before, after),
    }


# --------------------------------------------------------------------------- main


def run(train_csv: str, test_csv: str, smoke: bool, budget_seconds: float) -> dict[str, Any]:
    import torch

    torch.set_num_threads(THREADS)
    started, load_start = time.perf_counter(), load_average_1m()
    ds = load_sentiment140(train_csv, test_csv)
    _log(ds.description)
    holdout = stratified_holdout(ds.train_labels, VALIDATION_FRACTION, SEED)
    if smoke:
        ds, holdout = smoke_subset(ds, holdout)
    knobs = arm_knobs(smoke, budget_seconds)
    arms = run_arms(ds, holdout, training_data(ds, holdout, train_csv), knobs)
    return {
        "benchmark": "finetune_budget",
        "smoke": smoke,
        "description": ds.description,
        "data": ds.facts,
        "protocol": {
            "seed": SEED,
            "device": DEVICE,
            "torch_threads": torch.get_num_threads(),
            "validation_fraction": VALIDATION_FRACTION,
            "n_train_offered": int((~holdout).sum()),
            "n_validation": int(holdout.sum()),
            "budget_seconds": budget_seconds,
            "knobs": knobs,
            "scoring": "saved bundle reloaded via load_predictor; raw text in",
        },
        "arms": arms,
        "difference": difference(arms),
        "machine": describe(("transformers", "scikit-learn")),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "run_minutes": (time.perf_counter() - started) / 60,
        "load1_start": load_start,
        "load1_end": load_average_1m(),
    }


def _acc(block: dict[str, Any]) -> str:
    low, high = block["accuracy_ci95"]
    return f"{100 * block['accuracy']:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def _arm_row(arm: str, record: dict[str, Any]) -> str:
    size = record["training_size"]
    basis = size["basis"]
    if size["predicted_seconds"] is not None:
        basis += f", {size['predicted_seconds'] / 60:.1f} min predicted"
    if record.get("stopped_at_budget"):
        basis += f"; stopped at the budget after {record['steps']:,} steps"
    cells = [
        arm,
        f"{record['samples']:,} of {record['samples_offered']:,}",
        f"{record['epochs']:g}",
        basis,
        f"{record['train_minutes']:.1f}",
        f"{record['fit_cpu_seconds']:,.0f}",
        _acc(record["validation"]),
        _acc(record["test"]),
        f"{record['test']['macro_f1']:.3f}",
    ]
    return "| " + " | ".join(cells) + " |"


def _rates(result: dict[str, Any]) -> str:
    """The training rate each arm measured, beside the one the budget is calibrated with."""
    measured = [result["arms"][arm]["measured_passes_per_second"] for arm in (BEFORE, AFTER)]
    shown = " and ".join("unmeasured" if r is None else f"{r:g}" for r in measured)
    calibrated = result["arms"][AFTER]["params"]["cpu_passes_per_second"]
    return f"Measured tweets/s, before and after: {shown}; the budget assumes {calibrated:g}."


def summary_sentence(result: dict[str, Any]) -> str:
    """The difference in one sentence, saying whether the 95% intervals overlap."""
    arms, diff = result["arms"], result["difference"]
    before, after = arms[BEFORE]["test"], arms[AFTER]["test"]
    test_overlap = (
        "overlap, so the manual test set alone does not separate the two arms"
        if diff["test_intervals_overlap"]
        else "do not overlap"
    )
    validation = arms[AFTER]["validation"]
    validation_overlap = intervals_overlap(arms[BEFORE]["validation"], validation)
    return (
        f"The budget changes test accuracy by {diff['test_accuracy_points']:+.1f} points "
        f"(before {_acc(before)}, after {_acc(after)}; macro-F1 {diff['test_macro_f1']:+.3f}) "
        f"and validation accuracy by {diff['validation_accuracy_points']:+.1f} points "
        f"(n={validation['n']:,}); the 95% test intervals {test_overlap}, and the validation "
        f"intervals {'overlap' if validation_overlap else 'do not overlap'}."
    )


def render_markdown(result: dict[str, Any]) -> str:
    protocol = result["protocol"]
    header = (
        "| arm | tweets trained on | epochs | size from | train min | fit CPU s "
        "| validation accuracy [95% CI] | test accuracy [95% CI] | test macro-F1 |"
    )
    lines = [
        f"# Fine-tuned family: a fixed {result['arms'][BEFORE]['samples']} tweets against "
        "the CPU budget",
        "",
        "Generated by `python -m bench.bench_finetune_budget` (its docstring has the protocol); "
        "do not edit by hand."
        + (" **Smoke run: the figures mean nothing.**" if result["smoke"] else ""),
        "",
        f"Machine: {one_line(result['machine'])}; torch on {protocol['torch_threads']} threads, "
        f"device {protocol['device']}. Run {result['date']}, {result['run_minutes']:.1f} min "
        f"wall, load average {result['load1_start']} at start and {result['load1_end']} at end.",
        "",
        f"Data: {result['description']}; both arms seed {protocol['seed']}, offered the same "
        f"{protocol['n_train_offered']:,} training tweets, validated on the same "
        f"{protocol['n_validation']:,}. Before: max_train_samples="
        f"{protocol['knobs'][BEFORE]['finetune_max_train_samples']}, no budget. After: the "
        f"pipeline's defaults with cpu_budget_seconds={protocol['budget_seconds']:g}.",
        "",
        header,
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
        *(_arm_row(arm, result["arms"][arm]) for arm in (BEFORE, AFTER)),
        "",
        "Train min is the optimizer loop; fit CPU s is the process's CPU time over the whole "
        "fit (model load and validation scoring included, all threads). " + _rates(result),
        "",
        summary_sentence(result),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--train-csv", default=os.environ.get("SENTIMENT140_CSV", DEFAULT_S140_TRAIN)
    )
    parser.add_argument(
        "--test-csv", default=os.environ.get("SENTIMENT140_TEST_CSV", DEFAULT_S140_TEST)
    )
    parser.add_argument(
        "--budget-seconds",
        type=float,
        default=None,
        help=f"the after arm's CPU budget (default {DEFAULT_FINETUNE_CPU_BUDGET_SECONDS:g}; "
        f"{SMOKE_BUDGET_SECONDS:g} with --smoke)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny data and budget: a quick check")
    parser.add_argument("--out", type=Path, default=Path("bench/results/finetune_budget.json"))
    parser.add_argument("--md", type=Path, default=Path("bench/results/finetune_budget.md"))
    args = parser.parse_args(argv)

    missing = [p for p in (args.train_csv, args.test_csv) if not Path(p).is_file()]
    if missing:
        # Real data is never in the repo: a machine without it skips, loudly, like the tests.
        print(
            f"skipped: {missing} not found (set SENTIMENT140_CSV, SENTIMENT140_TEST_CSV)",
            file=sys.stderr,
        )
        return 0
    budget = args.budget_seconds
    if budget is None:
        budget = SMOKE_BUDGET_SECONDS if args.smoke else DEFAULT_FINETUNE_CPU_BUDGET_SECONDS
    result = run(args.train_csv, args.test_csv, args.smoke, budget)
    write_result(result, args.out, args.md, render_markdown)
    _log(f"wrote {args.out} and {args.md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
