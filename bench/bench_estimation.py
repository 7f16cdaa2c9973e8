"""Accuracy estimated before labels against the accuracy realised once they arrive.

    python -m bench.bench_estimation --out bench/results/estimation.json \
        --md bench/results/estimation.md --cache-dir .bench-cache/embeddings

Protocol, the pipeline's own, month by month (forward chaining), for every month of the
synthetic demo (``synthetic.default_config()``) and of the Sentiment140 sample
($SENTIMENT140_CSV, else /work/shared/data/sentiment140_sample.csv):

- rows as ``clean.tweets_clean`` keeps them (``compare_families.prepare_labelled``);
- for each month M after the first, a model per family is trained on the trailing window
  ending with M-1 (``DEFAULT_WINDOW_MONTHS``), the platform's hash holdout
  (``sampling.in_holdout``) left out; its temperature is fitted on those holdout rows
  (``calibration.fit_temperature``), as ``sentiment_model`` does;
- month M is scored without its labels: ``performance_estimation.estimate_performance`` on
  the calibrated probabilities gives the expected accuracy and macro-F1 with their 95%
  intervals; then M's labels give the realised ones. The same estimate from the raw,
  uncalibrated probabilities is recorded beside it, to show what calibration buys.

Families: tfidf_logreg and embedding_logreg (the encoder is the platform's TextEncoder,
all-MiniLM-L6-v2). The fine-tuned transformer is left out: on this 2-core CPU its training
per month costs minutes and the estimate's logic does not depend on the family.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.compare_families import prepare_labelled
from bench.drift_power import Embedder
from bench.machine import describe, one_line
from sentiment_assets.lib.core.months import previous_month, trailing_window
from sentiment_assets.lib.data.sampling import in_holdout
from sentiment_assets.lib.models.params import LogRegParams
from sentiment_assets.lib.models.training import (
    DEFAULT_WINDOW_MONTHS,
    EMBEDDING_LOGREG,
    TFIDF_LOGREG,
    fit_embedding_logreg,
    fit_tfidf_logreg,
)
from sentiment_assets.lib.stats.calibration import fit_temperature
from sentiment_assets.lib.stats.metrics import classification_metrics
from sentiment_assets.lib.stats.performance_estimation import estimate_performance
from sentiment_assets.lib.stats.prior_shift import estimate_prior

DEFAULT_S140 = "/work/shared/data/sentiment140_sample.csv"
FAMILIES = (TFIDF_LOGREG, EMBEDDING_LOGREG)


def _log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


@dataclass
class MonthRows:
    ids: list[str]
    texts: list[str]
    labels: np.ndarray
    vectors: np.ndarray


def load_months(source: str, embed: Embedder, synthetic: Any = None) -> dict[date, MonthRows]:
    from sentiment_assets.lib.data.sources import load_month, months_in_source

    out = {}
    for month in months_in_source(source, synthetic):
        rows = prepare_labelled(load_month(source, month, synthetic=synthetic).accepted)
        if rows.empty:
            continue
        texts = rows["text"].tolist()
        out[month] = MonthRows(
            rows["tweet_id"].tolist(), texts, rows["label"].to_numpy(dtype=int), embed(texts)
        )
        _log(f"{source} {month:%Y-%m}: {len(texts)} labelled tweets")
    return out


def _window(months: dict[date, MonthRows], through: date) -> MonthRows:
    chosen = [
        months[m]
        for m in trailing_window(through, DEFAULT_WINDOW_MONTHS, earliest=min(months))
        if m in months
    ]
    return MonthRows(
        [i for m in chosen for i in m.ids],
        [t for m in chosen for t in m.texts],
        np.concatenate([m.labels for m in chosen]),
        np.vstack([m.vectors for m in chosen]),
    )


def _scorer(family: str, window: MonthRows, holdout: np.ndarray):
    """Fit one family on the window's non-holdout rows; returns (scorer, holdout scores)."""
    params = LogRegParams()
    if family == TFIDF_LOGREG:
        fit = fit_tfidf_logreg(window.texts, window.labels, holdout, params)

        def score(rows: MonthRows) -> np.ndarray:
            return fit.estimator.predict_proba(rows.texts)[:, 1]

        held = fit.estimator.predict_proba(
            [t for t, h in zip(window.texts, holdout, strict=True) if h]
        )
    else:
        fit = fit_embedding_logreg(window.vectors, window.labels, holdout, params)

        def score(rows: MonthRows) -> np.ndarray:
            return fit.estimator.predict_proba(rows.vectors)[:, 1]

        held = fit.estimator.predict_proba(window.vectors[holdout])
    return score, held[:, 1]


def _r(value: float) -> float:
    return round(float(value), 4)


def _against(metric: str, estimated: tuple[float, float, float], realised: float) -> dict[str, Any]:
    """One metric's estimate (point, lower, upper) beside its realised value."""
    point, lower, upper = estimated
    return {
        f"estimated_{metric}": _r(point),
        f"{metric}_interval": [_r(lower), _r(upper)],
        f"realised_{metric}": _r(realised),
        f"{metric}_error": _r(realised - point),
        f"{metric}_within": bool(lower <= realised <= upper),
    }


def evaluate_dataset(name: str, months: dict[date, MonthRows]) -> list[dict[str, Any]]:
    rows = []
    for month in sorted(months)[1:]:
        window = _window(months, previous_month(month))
        holdout = in_holdout(window.ids)
        current = months[month]
        for family in FAMILIES:
            score, held = _scorer(family, window, holdout)
            calibration = fit_temperature(held, window.labels[holdout])
            raw = score(current)
            estimate = estimate_performance(calibration.apply(raw))
            naive = estimate_performance(raw)
            realised = classification_metrics(current.labels, raw)
            prior = _prior_response(calibration.apply(raw), window.labels[~holdout])
            adjusted = classification_metrics(current.labels, prior.pop("adjusted"))
            rows.append(
                {
                    "dataset": name,
                    "family": family,
                    "trained_through": previous_month(month).isoformat(),
                    "eval_month": month.isoformat(),
                    "n": len(current.labels),
                    "temperature": _r(calibration.temperature),
                    # The window's holdout, where T was fitted: how much easier it is than
                    # month M bounds what any estimate calibrated on it can see.
                    "holdout_accuracy": _r(np.mean((held >= 0.5) == window.labels[holdout])),
                    "holdout_ece_before": _r(calibration.ece_before),
                    "holdout_ece_after": _r(calibration.ece_after),
                    **_against(
                        "accuracy",
                        (estimate.accuracy, estimate.accuracy_lower, estimate.accuracy_upper),
                        realised["accuracy"],
                    ),
                    "uncalibrated_estimated_accuracy": _r(naive.accuracy),
                    "uncalibrated_accuracy_error": _r(realised["accuracy"] - naive.accuracy),
                    **_against(
                        "macro_f1",
                        (estimate.macro_f1, estimate.macro_f1_lower, estimate.macro_f1_upper),
                        realised["macro_f1"],
                    ),
                    "estimated_positive_share": _r(estimate.positive_share),
                    "realised_positive_share": _r(current.labels.mean()),
                    **prior,
                    "prior_adjusted_accuracy": _r(adjusted["accuracy"]),
                    "prior_adjustment_gain": _r(adjusted["accuracy"] - realised["accuracy"]),
                }
            )
            _log(
                f"{name} {family} {month:%Y-%m}: estimated {estimate.accuracy:.4f} "
                f"[{estimate.accuracy_lower:.4f}, {estimate.accuracy_upper:.4f}], "
                f"realised {realised['accuracy']:.4f}"
            )
    return rows


def _prior_response(calibrated: np.ndarray, training_labels: np.ndarray) -> dict[str, Any]:
    """What `recalibrate` would do to month M without its labels: EM re-estimates the
    positive share from the calibrated scores, and the scores move to that prior."""
    estimate = estimate_prior(calibrated, float(training_labels.mean()))
    return {
        "training_prior": _r(estimate.training_prior),
        "em_prior": _r(estimate.estimated_prior),
        "adjusted": estimate.adjust(calibrated),
    }


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    frame = pd.DataFrame(rows)
    out = {}
    for (dataset, family), part in frame.groupby(["dataset", "family"]):
        out[f"{dataset}/{family}"] = {
            "months": len(part),
            "mean_abs_accuracy_error": _r(part["accuracy_error"].abs().mean()),
            "max_abs_accuracy_error": _r(part["accuracy_error"].abs().max()),
            "uncalibrated_mean_abs_accuracy_error": _r(
                part["uncalibrated_accuracy_error"].abs().mean()
            ),
            "accuracy_within_interval": int(part["accuracy_within"].sum()),
            "mean_abs_macro_f1_error": _r(part["macro_f1_error"].abs().mean()),
            "macro_f1_within_interval": int(part["macro_f1_within"].sum()),
            "mean_prior_adjustment_gain": _r(part["prior_adjustment_gain"].mean()),
            "min_prior_adjustment_gain": _r(part["prior_adjustment_gain"].min()),
        }
    return out


def render_markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Estimated accuracy before labels vs realised (`bench/bench_estimation.py`)",
        "",
        f"Run {result['created_at']} on {one_line(result['machine'])}, "
        f"{result['elapsed_seconds']} s. "
        "Model trained through M-1 (3-month window, hash holdout left out, temperature fitted "
        "on the holdout), month M scored without labels, then with them. error = realised - "
        "estimated; 'in' = the realised value lies in the 95% interval.",
        "",
        "| dataset | family | month | n | T | holdout acc | estimated acc [95%] | realised acc "
        "| error "
        "| in | uncalibrated est. | estimated F1 [95%] | realised F1 | in | est./real pos. share |",
        "| --- | --- | --- | ---: | ---: | ---: | --- | ---: | ---: | --- | ---: | --- | ---: | --- "
        "| --- |",
    ]
    for r in result["rows"]:
        acc_low, acc_high = r["accuracy_interval"]
        f1_low, f1_high = r["macro_f1_interval"]
        lines.append(
            f"| {r['dataset']} | {r['family']} | {r['eval_month'][:7]} | {r['n']} "
            f"| {r['temperature']:.2f} | {r['holdout_accuracy']:.3f} "
            f"| {r['estimated_accuracy']:.3f} "
            f"[{acc_low:.3f}, {acc_high:.3f}] | {r['realised_accuracy']:.3f} "
            f"| {r['accuracy_error']:+.3f} | {'yes' if r['accuracy_within'] else 'no'} "
            f"| {r['uncalibrated_estimated_accuracy']:.3f} | {r['estimated_macro_f1']:.3f} "
            f"[{f1_low:.3f}, {f1_high:.3f}] | {r['realised_macro_f1']:.3f} "
            f"| {'yes' if r['macro_f1_within'] else 'no'} "
            f"| {r['estimated_positive_share']:.2f} / {r['realised_positive_share']:.2f} |"
        )
    lines += [
        "",
        "| dataset / family | months | mean abs. accuracy error | max | uncalibrated mean "
        "| accuracy in interval | mean abs. F1 error | F1 in interval |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, s in result["summary"].items():
        lines.append(
            f"| {key} | {s['months']} | {s['mean_abs_accuracy_error']:.3f} "
            f"| {s['max_abs_accuracy_error']:.3f} "
            f"| {s['uncalibrated_mean_abs_accuracy_error']:.3f} "
            f"| {s['accuracy_within_interval']}/{s['months']} "
            f"| {s['mean_abs_macro_f1_error']:.3f} "
            f"| {s['macro_f1_within_interval']}/{s['months']} |"
        )
    lines += [
        "",
        "## Prior re-estimation without labels (`lib/prior_shift`, EM on calibrated scores)",
        "",
        "Accuracy of the same model on month M before and after its scores are moved to the "
        "positive share EM estimates from M's unlabelled tweets.",
        "",
        "| dataset | family | month | training prior | EM prior | real prior | accuracy "
        "| prior-adjusted | change |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['dataset']} | {r['family']} | {r['eval_month'][:7]} "
            f"| {r['training_prior']:.3f} | {r['em_prior']:.3f} "
            f"| {r['realised_positive_share']:.3f} | {r['realised_accuracy']:.3f} "
            f"| {r['prior_adjusted_accuracy']:.3f} | {r['prior_adjustment_gain']:+.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--md", type=Path, default=None)
    parser.add_argument("--real-csv", default=os.environ.get("SENTIMENT140_CSV", DEFAULT_S140))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None, help="encoder device (default: CUDA if present)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cache-dir", type=Path, default=None, help="keep embeddings across runs")
    args = parser.parse_args(argv)

    import torch

    from sentiment_assets.lib.data.synthetic import default_config

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    embed = Embedder(args.device, args.batch_size, args.cache_dir)
    rows = evaluate_dataset("synthetic", load_months("synthetic", embed, default_config()))
    if Path(args.real_csv).is_file():
        rows += evaluate_dataset("sentiment140", load_months(args.real_csv, embed))
    else:
        _log(f"skipped Sentiment140: {args.real_csv} not found (set SENTIMENT140_CSV)")
    result = {
        "benchmark": "estimation",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "encoder": embed.encoder.fingerprint,
        "device": str(embed.encoder.device),
        "rows": rows,
        "summary": summarise(rows),
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "embedding": {"tweets_encoded": embed.encoded, "seconds": round(embed.seconds, 1)},
        "machine": describe(("scikit-learn",)),
        "torch_threads": args.threads,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    _log(f"wrote {args.out}")
    if args.md is not None:
        args.md.write_text(render_markdown(result))
        _log(f"wrote {args.md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
