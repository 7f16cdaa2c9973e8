"""The retraining policies replayed over timelines: what each serves and what it costs.

    python -m bench.bench_policy --out bench/results/policy.json --md bench/results/policy.md \
        --cache-dir .bench-cache/embeddings

Each timeline is replayed month by month with the platform's own functions, no Dagster:

- month M's tweets arrive with their labels, as ``clean.tweets_clean`` keeps them;
- the champion's drift report compares M with the champion's reference (the holdout rows of
  its training window, scored by it: ``drift.drift_report``), its accuracy on M is realised
  from the labels, and its label-free estimate (``performance_estimation``) is recorded;
- ``training_decision.decide_training`` decides for the policy. A training fits the fast
  families (``training.fit_tfidf_logreg`` and ``fit_embedding_logreg``) on the decided window
  with the platform's hash holdout left out; the challenger is the family with the best
  validation macro-F1 and replaces the champion through the promotion rule
  (``promotion.decide``: both scored on the challenger window's holdout rows, margin 0);
- the champion then serves M+1, and its accuracy there is the forward accuracy.

Timelines: a synthetic year (quiet months, a one-month shift of the class prior alone, and
two content drifts that stay: topic and slang meaning, then more of both), and the months of
the Sentiment140 sample ($SENTIMENT140_CSV; skipped with a message when unset or missing).
Drift months are the forward months with content drift by construction (synthetic) and the
months the first champion's drift report flags (Sentiment140: one set for every policy).
Training CPU-seconds are the process CPU time of the fits alone: the embeddings are computed
once beforehand (the pipeline computes them for every month whatever the policy) and the
drift reports run for every month under every policy. The fine-tuned family is left out:
the policy decides when, not what, and on a 2-core CPU it would dominate the runtime.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from bench.bench_estimation import MonthRows
from bench.compare_families import prepare_labelled
from bench.drift_power import Embedder
from bench.machine import describe, one_line
from sentiment_assets.lib.core.months import months_between, trailing_window
from sentiment_assets.lib.data.sampling import in_holdout
from sentiment_assets.lib.data.synthetic import MonthDrift, SyntheticConfig
from sentiment_assets.lib.models.finetune import stratified_subsample
from sentiment_assets.lib.models.params import LogRegParams
from sentiment_assets.lib.models.training import (
    EMBEDDING_LOGREG,
    TFIDF_LOGREG,
    fit_embedding_logreg,
    fit_tfidf_logreg,
)
from sentiment_assets.lib.settings import RETRAIN_POLICIES
from sentiment_assets.lib.stats.drift import DriftSample, drift_report
from sentiment_assets.lib.stats.metrics import classification_metrics
from sentiment_assets.lib.stats.performance_estimation import estimate_performance
from sentiment_assets.lib.versions.promotion import PROMOTED, decide
from sentiment_assets.lib.versions.training_decision import (
    DecisionInputs,
    PolicyThresholds,
    decide_training,
    statistic_moves,
)

QUIET = MonthDrift()
PRIOR_ONLY = MonthDrift(positive_rate=0.3)
FIRST_DRIFT = MonthDrift(topic_shift=0.5, concept_drift=0.5)
SECOND_DRIFT = MonthDrift(topic_shift=0.9, concept_drift=1.0)
# Month index -> knobs: two quiet months, the prior alone moves for one month, one more quiet
# month, then the first content drift (kept four months) and the second (kept to the end).
SYNTHETIC_YEAR = {
    **{i: QUIET for i in (0, 1, 3)},
    2: PRIOR_ONLY,
    **{i: FIRST_DRIFT for i in range(4, 8)},
    **{i: SECOND_DRIFT for i in range(8, 12)},
}


def _log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def synthetic_year(tweets_per_month: int) -> SyntheticConfig:
    return SyntheticConfig(
        seed=7,
        start_month=date(2024, 1, 1),
        n_months=len(SYNTHETIC_YEAR),
        tweets_per_month=tweets_per_month,
        drift=SYNTHETIC_YEAR,
    )


@dataclass(frozen=True)
class Model:
    """A trained family: how it scores a month, and its drift reference."""

    version: int
    family: str
    trained_through: date
    score: Callable[[MonthRows], np.ndarray]
    # Its window, scored by it on the holdout rows: what its drift and accuracy drop are
    # measured against.
    reference: DriftSample
    reference_accuracy: float
    validation_macro_f1: float
    # Its window's holdout rows: where the promotion rule compares it with the champion.
    holdout: MonthRows


def load_months(
    source: str, embed: Embedder, cap: int | None, synthetic: SyntheticConfig | None = None
) -> dict[date, MonthRows]:
    """Each month's labelled rows as tweets_clean keeps them, at most `cap` of them (a seeded,
    label-stratified sample: the embeddings of a 10,000-tweet month cost minutes on 2 cores)."""
    from sentiment_assets.lib.data.sources import load_month, months_in_source

    out = {}
    for month in months_in_source(source, synthetic):
        rows = prepare_labelled(load_month(source, month, synthetic=synthetic).accepted)
        if cap is not None and len(rows) > cap:
            keep = stratified_subsample(rows["label"].to_numpy(), cap, seed=0)
            rows = rows.iloc[keep]
        texts = rows["text"].tolist()
        out[month] = MonthRows(
            rows["tweet_id"].tolist(), texts, rows["label"].to_numpy(dtype=int), embed(texts)
        )
        _log(f"{source} {month:%Y-%m}: {len(texts)} labelled tweets")
    return out


def window_rows(months: dict[date, MonthRows], window: Sequence[date]) -> MonthRows:
    chosen = [months[m] for m in window]
    return MonthRows(
        [i for m in chosen for i in m.ids],
        [t for m in chosen for t in m.texts],
        np.concatenate([m.labels for m in chosen]),
        np.vstack([m.vectors for m in chosen]),
    )


def _take(rows: MonthRows, mask: np.ndarray) -> MonthRows:
    index = np.flatnonzero(mask)
    return MonthRows(
        [rows.ids[i] for i in index],
        [rows.texts[i] for i in index],
        rows.labels[index],
        rows.vectors[index],
    )


def fit_family(family: str, rows: MonthRows, holdout: np.ndarray) -> Callable[[MonthRows], Any]:
    params = LogRegParams()
    if family == TFIDF_LOGREG:
        fit = fit_tfidf_logreg(rows.texts, rows.labels, holdout, params)
        return lambda month: fit.estimator.predict_proba(month.texts)[:, 1]
    fit = fit_embedding_logreg(rows.vectors, rows.labels, holdout, params)
    return lambda month: fit.estimator.predict_proba(month.vectors)[:, 1]


def train_challenger(rows: MonthRows, through: date, version: int) -> Model:
    """Both fast families on the window; the challenger is the best on validation macro-F1."""
    holdout = in_holdout(rows.ids)
    held = _take(rows, holdout)
    candidates = []
    for family in (TFIDF_LOGREG, EMBEDDING_LOGREG):
        score = fit_family(family, rows, holdout)
        proba = score(held)
        metrics = classification_metrics(held.labels, proba)
        # The drift reference is the whole window, scored only where the model did not
        # train (in-sample scores are over-confident: see drift.DriftSample).
        scores = np.full(len(rows.ids), np.nan)
        scores[holdout] = proba
        reference = DriftSample(rows.vectors, scores, rows.texts, rows.labels)
        candidates.append(
            Model(
                version,
                family,
                through,
                score,
                reference,
                metrics["accuracy"],
                metrics["macro_f1"],
                held,
            )
        )
    return max(candidates, key=lambda model: model.validation_macro_f1)


def _macro_f1(model: Model, rows: MonthRows) -> float:
    return classification_metrics(rows.labels, model.score(rows))["macro_f1"]


def promote(challenger: Model, champion: Model | None) -> tuple[Model, str]:
    """The promotion rule on the challenger window's holdout rows (the pipeline's gate)."""
    rows = challenger.holdout
    champion_score = _macro_f1(champion, rows) if champion else None
    verdict = decide(
        str(challenger.version),
        _macro_f1(challenger, rows),
        str(champion.version) if champion else None,
        champion_score,
        margin=0.0,
    )
    if verdict.decision == PROMOTED or champion is None:
        return challenger, verdict.decision
    return champion, verdict.decision


def month_inputs(month: date, rows: MonthRows, champion: Model | None) -> DecisionInputs:
    if champion is None:
        return DecisionInputs(month=month, labelled_rows=len(rows.labels))
    proba = champion.score(rows)
    current = DriftSample(rows.vectors, proba, rows.texts, rows.labels)
    report = drift_report(champion.reference, current)
    return DecisionInputs(
        month=month,
        labelled_rows=len(rows.labels),
        statistics=statistic_moves(r.as_dict() for r in report),
        champion_version=str(champion.version),
        champion_trained_through=champion.trained_through,
        reference_accuracy=champion.reference_accuracy,
        realised_accuracy=classification_metrics(rows.labels, proba)["accuracy"],
        estimated_accuracy=estimate_performance(proba).accuracy,
    )


def replay(
    months: dict[date, MonthRows], policy: str, thresholds: PolicyThresholds
) -> list[dict[str, Any]]:
    """One row per decided month: the decision and the accuracy of what serves next month."""
    ordered = sorted(months)
    champion: Model | None = None
    version = 0
    rows = []
    for month, forward in pairwise(ordered):
        inputs = month_inputs(month, months[month], champion)
        decision = decide_training(inputs, policy, thresholds)
        cpu_seconds, promotion = 0.0, None
        if decision.trains:
            window = trailing_window(month, decision.window_months or 1, earliest=ordered[0])
            version += 1
            started = time.process_time()
            challenger = train_challenger(window_rows(months, window), month, version)
            cpu_seconds = time.process_time() - started
            champion, promotion = promote(challenger, champion)
        assert champion is not None  # the first month always trains
        forward_rows = months[forward]
        accuracy = classification_metrics(forward_rows.labels, champion.score(forward_rows))
        rows.append(
            {
                "month": month.isoformat(),
                "decision": decision.decision,
                "reasons": list(decision.reasons),
                "drifted_statistics": decision.row()["drifted_statistics"],
                "realised_accuracy": _r(inputs.realised_accuracy),
                "estimated_accuracy": _r(inputs.estimated_accuracy),
                "reference_accuracy": _r(inputs.reference_accuracy),
                "window_months": decision.window_months,
                "promotion": promotion,
                "training_cpu_seconds": round(cpu_seconds, 2),
                "champion_version": champion.version,
                "champion_family": champion.family,
                "forward_month": forward.isoformat(),
                "forward_accuracy": _r(accuracy["accuracy"]),
                "serving_age_months": months_between(champion.trained_through, forward),
            }
        )
        _log(
            f"{policy:>8} {month:%Y-%m}: {decision.decision:<5} -> {forward:%Y-%m} "
            f"{accuracy['accuracy']:.3f} (v{champion.version} {champion.family})"
        )
    return rows


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def summarise(
    rows: Sequence[dict[str, Any]], drift_months: set[str], max_age: int
) -> dict[str, Any]:
    forward = [row["forward_accuracy"] for row in rows]
    on_drift = [row["forward_accuracy"] for row in rows if row["forward_month"] in drift_months]
    return {
        "mean_forward_accuracy": _r(np.mean(forward)),
        "worst_forward_accuracy": _r(min(forward)),
        "drift_months_accuracy": _r(np.mean(on_drift)) if on_drift else None,
        "training_runs": sum(row["decision"] == "train" for row in rows),
        "training_cpu_seconds": round(sum(row["training_cpu_seconds"] for row in rows), 1),
        "months_served_over_max_age": sum(row["serving_age_months"] > max_age for row in rows),
    }


def flagged_months(months: dict[date, MonthRows]) -> set[str]:
    """Sentiment140's drift months: those the first champion's drift report flags."""
    ordered = sorted(months)
    first = train_challenger(window_rows(months, ordered[:1]), ordered[0], 1)
    flagged = set()
    for month in ordered[1:]:
        rows = months[month]
        current = DriftSample(rows.vectors, first.score(rows), rows.texts, rows.labels)
        if drift_report(first.reference, current)[-1].drifted:  # the combined verdict
            flagged.add(month.isoformat())
    return flagged


def run_timeline(
    name: str,
    months: dict[date, MonthRows],
    drift_months: set[str],
    thresholds: PolicyThresholds,
) -> dict[str, Any]:
    policies = {}
    for policy in RETRAIN_POLICIES:
        rows = replay(months, policy, thresholds)
        policies[policy] = {
            "summary": summarise(rows, drift_months, thresholds.max_age_months),
            "months": rows,
        }
    return {
        "timeline": name,
        "months": [m.isoformat() for m in sorted(months)],
        "tweets_per_month": {m.isoformat(): len(r.labels) for m, r in sorted(months.items())},
        "drift_months": sorted(drift_months),
        "policies": policies,
        "targets": targets(policies),
    }


def targets(policies: dict[str, dict[str, Any]]) -> dict[str, Any]:
    always = policies["always"]["summary"]
    on_drift = policies["on_drift"]["summary"]
    never = policies["never"]["summary"]
    gap_always = on_drift["mean_forward_accuracy"] - always["mean_forward_accuracy"]
    gap_never = (
        on_drift["drift_months_accuracy"] - never["drift_months_accuracy"]
        if on_drift["drift_months_accuracy"] is not None
        else None
    )
    return {
        "on_drift_minus_always_mean_points": round(100 * gap_always, 2),
        "within_1_point_of_always": gap_always >= -0.01,
        "training_runs_ratio": round(on_drift["training_runs"] / always["training_runs"], 2),
        "at_most_half_the_runs": on_drift["training_runs"] <= always["training_runs"] / 2,
        "on_drift_minus_never_drift_months_points": (
            round(100 * gap_never, 2) if gap_never is not None else None
        ),
        "at_least_10_points_above_never": gap_never is not None and gap_never >= 0.10,
        # `always` trains the first model and then once per later decision: with two
        # decisions, "at most half its runs" leaves `on_drift` the first model alone.
        "runs_target_allows_a_retrain": always["training_runs"] >= 4,
    }


def _too_short_note(t: dict[str, Any], timeline: dict[str, Any]) -> list[str]:
    """Why the targets cannot judge a policy on a timeline too short for them."""
    if t.get("runs_target_allows_a_retrain", True):
        return []
    runs = timeline["policies"]["always"]["summary"]["training_runs"]
    return [
        "",
        f"This timeline is too short for the targets to judge the policy: `always` trains "
        f"{runs} times, so at most half of its runs leaves `on_drift` the first model alone, "
        "the same models as `never`. The accuracy targets then measure what keeping that "
        "first model costs on these months, whatever the policy decides; they are judged "
        "on the synthetic year.",
    ]


def render_markdown(result: dict[str, Any]) -> str:
    th = result["thresholds"]
    lines = [
        "# Retraining policies replayed month by month",
        "",
        f"`make bench-policy` on {result['created_at']}: {one_line(result['machine'])}, "
        f"{result['elapsed_seconds']:.0f} s in all. Thresholds: accuracy drop "
        f"{th['accuracy_drop']}, maximum age {th['max_age_months']} months, drift window "
        f"{th['drift_window_months']} month(s), default window {th['window_months']} months. "
        "Forward accuracy: the champion after month M's decision, on month M+1.",
        "",
    ]
    for timeline in result["timelines"]:
        lines += _timeline_markdown(timeline)
    for name, reason in result.get("skipped", {}).items():
        lines += [f"Skipped {name}: {reason}.", ""]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _timeline_markdown(timeline: dict[str, Any]) -> list[str]:
    lines = [
        f"## {timeline['timeline']}",
        "",
        f"Months {timeline['months'][0]} to {timeline['months'][-1]}; drift months "
        f"(forward): {', '.join(timeline['drift_months']) or 'none'}.",
        "",
        "| policy | mean forward accuracy | worst | drift months | training runs "
        "| training CPU-s | months served over max age |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for policy, block in timeline["policies"].items():
        s = block["summary"]
        lines.append(
            f"| `{policy}` | {_pct(s['mean_forward_accuracy'])} "
            f"| {_pct(s['worst_forward_accuracy'])} | {_pct(s['drift_months_accuracy'])} "
            f"| {s['training_runs']} | {s['training_cpu_seconds']} "
            f"| {s['months_served_over_max_age']} |"
        )
    t = timeline["targets"]
    lines += [
        "",
        f"Targets: `on_drift` {t['on_drift_minus_always_mean_points']:+.2f} points against "
        f"`always` in mean forward accuracy (within 1: {t['within_1_point_of_always']}), "
        f"{t['training_runs_ratio']:.2f} of its training runs (at most half: "
        f"{t['at_most_half_the_runs']}), {t['on_drift_minus_never_drift_months_points']} "
        f"points above `never` on the drift months (at least 10: "
        f"{t['at_least_10_points_above_never']}).",
        *_too_short_note(t, timeline),
        "",
        "`on_drift` month by month:",
        "",
        "| month | decision | why | realised / estimated / reference accuracy "
        "| next month | its accuracy |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in timeline["policies"]["on_drift"]["months"]:
        accuracies = " / ".join(
            _pct(row[key])
            for key in ("realised_accuracy", "estimated_accuracy", "reference_accuracy")
        )
        lines.append(
            f"| {row['month']} | {row['decision']} | {'; '.join(row['reasons'])} "
            f"| {accuracies} | {row['forward_month']} | {_pct(row['forward_accuracy'])} |"
        )
    return [*lines, ""]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--md", type=Path, default=None)
    parser.add_argument("--real-csv", default=os.environ.get("SENTIMENT140_CSV") or None)
    parser.add_argument("--tweets-per-month", type=int, default=1000)
    parser.add_argument("--max-per-month", type=int, default=2000, help="Sentiment140 cap")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None, help="encoder device (default: CUDA if present)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="keep embeddings across runs")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    thresholds = PolicyThresholds()
    embed = Embedder(args.device, 64, args.cache_dir)
    config = synthetic_year(args.tweets_per_month)
    synthetic = load_months("synthetic", embed, None, config)
    drifted = {
        m.isoformat() for m in synthetic if config.drift_for(m) in (FIRST_DRIFT, SECOND_DRIFT)
    }
    timelines = [run_timeline("synthetic year", synthetic, drifted, thresholds)]
    skipped = {}
    if args.real_csv and Path(args.real_csv).is_file():
        real = load_months(args.real_csv, embed, args.max_per_month)
        timelines.append(
            run_timeline("Sentiment140 sample", real, flagged_months(real), thresholds)
        )
    else:
        skipped["Sentiment140 sample"] = (
            f"SENTIMENT140_CSV={args.real_csv!r} is not a file"
            if args.real_csv
            else "SENTIMENT140_CSV is unset"
        )
        _log(f"skipping the Sentiment140 timeline: {skipped['Sentiment140 sample']}")
    result = {
        "benchmark": "policy",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "thresholds": dataclasses.asdict(thresholds),
        "encoder": embed.encoder.fingerprint,
        "timelines": timelines,
        "skipped": skipped,
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "machine": describe(("scikit-learn",)),
        "torch_threads": args.threads,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    if args.md:
        args.md.write_text(render_markdown(result))
    _log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
