"""Gain of the optuna search over the default hyperparameters, on the Sentiment140 sample.

    flock /tmp/cpu-heavy.lock .venv/bin/python -m bench.bench_tuning \
        --out bench/results/tuning.json --md bench/results/tuning.md

Protocol, the platform's own (``sentiment_model`` with ``tune.enabled``):
- The 20k sample is prepared like ``clean.tweets_clean`` (``compare_families.prepare_labelled``).
  The platform's hash holdout (20% of tweets by id) is set aside; no trial sees it.
- Trials are scored on the tuning split (``lib.tuning.tuning_split``: 20% of the remaining
  training rows, by a seeded hash of the id) and trained on the rest of the training rows.
  Trial 0 is the defaults, so "default" and "tuned" on the tuning split come from one study.
- The default and the tuned model are then trained on every training row (as the asset
  does) and scored on the holdout (what the promotion gate and calibration use) and, once
  each, on the manually labelled test set (binary rows, n=359).
Scores: macro-F1 (what a trial maximises) and accuracy with a 95% Wilson interval.
"""

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.compare_families import (
    DEFAULT_S140_TEST,
    DEFAULT_S140_TRAIN,
    load_sentiment140,
    score_block,
)
from bench.machine import describe, load_average_1m, one_line
from sentiment_assets.lib.data.sampling import in_holdout
from sentiment_assets.lib.data.text import clean_text
from sentiment_assets.lib.models.families import TrainingRows
from sentiment_assets.lib.models.families import family as family_named
from sentiment_assets.lib.models.params import LogRegParams
from sentiment_assets.lib.models.training import (
    EMBEDDING_LOGREG,
    TFIDF_LOGREG,
    fit_embedding_logreg,
    fit_tfidf_logreg,
)
from sentiment_assets.lib.models.tuning import (
    TUNING_METRIC,
    TuneSettings,
    searched_defaults,
    tune,
    tuning_split,
)

FAMILIES = (TFIDF_LOGREG, EMBEDDING_LOGREG)
FIT = {TFIDF_LOGREG: fit_tfidf_logreg, EMBEDDING_LOGREG: fit_embedding_logreg}


def _log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def _features(family: str, train_texts: list[str], test_texts: list[str]) -> tuple[Any, Any]:
    if family == TFIDF_LOGREG:
        return train_texts, test_texts
    from sentiment_assets.environment import current_settings
    from sentiment_assets.lib.encoding.encoder import DEFAULT_ENCODER
    from sentiment_assets.lib.encoding.encoder_choice import pipeline_encoder

    # The vectors the pipeline trains on (on a CPU: the gated int8 ONNX graph).
    encoder = pipeline_encoder(DEFAULT_ENCODER, None, "auto", current_settings().onnx_cache_dir)
    started = time.perf_counter()
    vectors = encoder.encode(train_texts + test_texts)
    _log(f"encoded {len(vectors)} texts in {time.perf_counter() - started:.0f}s")
    return vectors[: len(train_texts)], vectors[len(train_texts) :]


def _final(family: str, features: Any, test_features: Any, labels, holdout, params, test_labels):
    """Train on every training row as the asset does; score the holdout and the test set."""
    fit = FIT[family](features, labels, holdout, params)
    proba = fit.estimator.predict_proba(test_features)[:, 1]
    return {
        "params": {k: v for k, v in asdict(params).items() if k != "max_features"},
        "holdout": fit.validation,
        "test": score_block(test_labels, proba),
        "train_seconds": fit.train_seconds,
    }


def run(families: Sequence[str], settings: TuneSettings) -> dict[str, Any]:
    started, load_start = time.perf_counter(), load_average_1m()
    ds = load_sentiment140(
        os.environ.get("SENTIMENT140_CSV", DEFAULT_S140_TRAIN),
        os.environ.get("SENTIMENT140_TEST_CSV", DEFAULT_S140_TEST),
    )
    test = ds.eval_sets[0]
    test_clean = [clean_text(t) for t in test.raw_texts]
    labels = ds.train_labels
    holdout = in_holdout(ds.train_ids)
    train = ~holdout
    validation = tuning_split(ds.train_ids, holdout, settings.validation_fraction, settings.seed)[
        train
    ]
    _log(
        f"{len(labels)} rows: {int(holdout.sum())} holdout, {int(validation.sum())} tuning "
        f"validation, {int((~validation).sum())} trial training; test n={len(test.labels)}"
    )
    defaults = LogRegParams()
    results: dict[str, Any] = {}
    for family in families:
        features, test_features = _features(family, ds.train_clean, test_clean)
        family_started, load_family = time.perf_counter(), load_average_1m()
        is_text = isinstance(features, list)
        rows = TrainingRows(
            features if is_text else ds.train_clean, labels, holdout, None if is_text else features
        )
        tuned = tune(
            family_named(family),
            rows.training_part(validation),
            defaults,
            settings,
            on_trial=lambda r, family=family: _log(
                f"{family} trial {r.number}: {r.params} {TUNING_METRIC} {r.value:.4f}"
            ),
        )
        search_seconds = time.perf_counter() - family_started
        best = replace(defaults, **tuned.best_params)
        default_model = _final(
            family, features, test_features, labels, holdout, defaults, test.labels
        )
        tuned_model = _final(family, features, test_features, labels, holdout, best, test.labels)
        results[family] = {
            "searched": searched_defaults(family_named(family), defaults),
            "best_trial": tuned.best_trial,
            "best_params": tuned.best_params,
            "tuning_split": {"default": tuned.default_value, "tuned": tuned.best_value},
            "default": default_model,
            "tuned": tuned_model,
            "trials": [asdict(r) for r in tuned.trials],
            "search_seconds": search_seconds,
            "load1_search_start": load_family,
            "load1_search_end": load_average_1m(),
        }
        _log(
            f"{family}: best {tuned.best_params}; test accuracy "
            f"{default_model['test']['accuracy']:.4f} -> {tuned_model['test']['accuracy']:.4f}"
        )
    return {
        "benchmark": "tuning",
        "dataset": "sentiment140",
        "description": ds.description,
        "settings": asdict(settings),
        "metric": TUNING_METRIC,
        "split": {
            "rows": len(labels),
            "holdout": int(holdout.sum()),
            "tuning_validation": int(validation.sum()),
            "trial_training": int((~validation).sum()),
            "test": len(test.labels),
        },
        "families": results,
        "machine": describe(("optuna", "scikit-learn")),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "run_seconds": time.perf_counter() - started,
        "load1_start": load_start,
        "load1_end": load_average_1m(),
    }


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def render_markdown(result: dict[str, Any]) -> str:
    settings = result["settings"]
    split = result["split"]
    lines = [
        "# Hyperparameter search: tuned versus default",
        "",
        "Generated by `python -m bench.bench_tuning` (protocol in its docstring); do not edit "
        f"by hand. {result['description']}. Optuna TPE, seed {settings['seed']}, "
        f"{settings['n_trials']} trials per family (trial 0 = the defaults), maximising "
        f"validation {result['metric']} on the tuning split ({split['tuning_validation']} "
        f"training rows; trials train on the other {split['trial_training']}). The final models "
        f"train on all {split['rows'] - split['holdout']} training rows; the holdout "
        f"({split['holdout']} rows, never seen by a trial) and the test set "
        f"(n={split['test']}, scored once per model) judge them.",
        "",
        "| family | params | tuning-split F1 | holdout F1 | holdout acc % | test F1 | "
        "test acc % [95% CI] |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for family, row in result["families"].items():
        for name, shown in (("default", row["searched"]), ("tuned", row["best_params"])):
            model = row[name]
            low, high = model["test"]["accuracy_ci95"]
            params = ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()
            )
            lines.append(
                f"| {family} {name} | {params} | {row['tuning_split'][name]:.4f} | "
                f"{model['holdout']['macro_f1']:.4f} | {_pct(model['holdout']['accuracy'])} | "
                f"{model['test']['macro_f1']:.4f} | {_pct(model['test']['accuracy'])} "
                f"[{_pct(low)}, {_pct(high)}] |"
            )
    lines.append("")
    for family, row in result["families"].items():
        gain = row["tuned"]["test"]["accuracy"] - row["default"]["test"]["accuracy"]
        holdout_gain = row["tuned"]["holdout"]["macro_f1"] - row["default"]["holdout"]["macro_f1"]
        lines.append(
            f"- {family}: best trial #{row['best_trial']}; holdout macro-F1 "
            f"{holdout_gain:+.4f}, test accuracy {100 * gain:+.1f} points; search "
            f"{row['search_seconds']:.0f} s (load average {row['load1_search_start']} at start, "
            f"{row['load1_search_end']} at end)."
        )
    lines += [
        "",
        f"Hardware: {one_line(result['machine'])}; run {result['date']}, "
        f"{result['run_seconds'] / 60:.1f} min wall, load average {result['load1_start']} at "
        f"start and {result['load1_end']} at end.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--md", type=Path, default=None)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--families", default=",".join(FAMILIES))
    args = parser.parse_args(argv)
    paths = [
        os.environ.get("SENTIMENT140_CSV", DEFAULT_S140_TRAIN),
        os.environ.get("SENTIMENT140_TEST_CSV", DEFAULT_S140_TEST),
    ]
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        print(f"skipped: {missing} not found (set SENTIMENT140_CSV and SENTIMENT140_TEST_CSV)")
        return 0
    families = [f for f in args.families.split(",") if f]
    result = run(families, TuneSettings(n_trials=args.trials, seed=args.seed))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    if args.md is not None:
        args.md.write_text(render_markdown(result))
    _log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
