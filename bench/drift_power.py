"""Detection quality of the drift statistics: power and false-alarm rate over many seeds.

Protocol, per seed (an independent synthetic world, ``SyntheticConfig(seed=...)``):

* reference = one undrifted month (month 0). The "champion" is an embedding + logistic
  regression model trained on the half of it that ``sampling.holdout_mask`` does not hold out,
  as the platform's models are; the reference's scores exist only for the held-out half
  (in-sample scores would be over-confident and look like drift).
* current = month 1, generated once per scenario: ``none`` (undrifted: every flag is a false
  alarm) and one drift kind at the default demo magnitude (every flag is a detection):
  ``label_prior`` (positive_rate 0.25), ``topic`` (topic_shift 0.6), ``concept``
  (concept_drift 0.5) and ``default`` (all three: the demo's drift month).
* :func:`sentiment_assets.lib.stats.drift.drift_report` with the default thresholds.

Texts go through the platform's cleaning (``text.clean_text``, de-duplication as in
tweets_clean) and the platform's encoder (``TextEncoder``, all-MiniLM-L6-v2, CPU unless told).
Embeddings are cached per text list for the run (``--cache-dir`` keeps them across runs).

Then the same on the real Sentiment140 sample ($SENTIMENT140_CSV): champion trained on
2009-04/05 tweets, reference = other 2009-04/05 tweets, current = 2009-06 (a real label-prior
shift) and, as a no-drift control, more 2009-04/05 tweets. Those are single comparisons, so
the run also repeats them on ``--real-resplits`` random re-splits of the same embedded tweets
(not independent trials: they share tweets).

    python -m bench.drift_power --seeds 20 --out bench/results/drift_power.json \
        --md bench/results/drift_power.md

A rate from 20 trials is only known to about +-10 points (the Wilson 95% intervals in the
output say exactly how much).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.compare_families import prepare_labelled
from bench.machine import describe, one_line
from sentiment_assets.lib.data.sampling import holdout_mask
from sentiment_assets.lib.data.synthetic import NO_DRIFT, STRONG_DRIFT, MonthDrift, SyntheticConfig
from sentiment_assets.lib.models.params import LogRegParams
from sentiment_assets.lib.models.training import fit_embedding_logreg
from sentiment_assets.lib.stats import drift
from sentiment_assets.lib.stats.drift import DriftSample, DriftThresholds, StatResult, drift_report
from sentiment_assets.lib.stats.metrics import wilson_interval

SCENARIOS: dict[str, MonthDrift] = {
    "none": NO_DRIFT,
    "label_prior": MonthDrift(positive_rate=STRONG_DRIFT.positive_rate),
    "topic": MonthDrift(topic_shift=STRONG_DRIFT.topic_shift),
    "concept": MonthDrift(concept_drift=STRONG_DRIFT.concept_drift),
    "default": STRONG_DRIFT,
}
# Extra no-drift trials: random re-splits of a seed's two undrifted months (shared tweets).
H0_RESPLIT = "none_resplit"
DEFAULT_S140 = "/work/shared/data/sentiment140_sample.csv"
START = date(2024, 1, 1)
STATS = list(drift.report_names())


def _log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


@dataclass
class Labelled:
    """Cleaned, de-duplicated, labelled rows of one window."""

    ids: list[str]
    texts: list[str]
    labels: np.ndarray
    embeddings: np.ndarray

    def take(self, index: np.ndarray) -> Labelled:
        return Labelled(
            [self.ids[i] for i in index],
            [self.texts[i] for i in index],
            self.labels[index],
            self.embeddings[index],
        )


class Embedder:
    """TextEncoder with a per-run memory cache and an optional on-disk cache."""

    def __init__(self, device: str | None, batch_size: int, cache_dir: Path | None) -> None:
        from sentiment_assets.lib.encoding.encoder import TextEncoder

        self.encoder = TextEncoder(device=device, batch_size=batch_size)
        self.cache_dir = cache_dir
        self.memory: dict[str, np.ndarray] = {}
        self.seconds = 0.0
        self.encoded = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        key = hashlib.sha256(
            "\n".join([self.encoder.fingerprint, *texts]).encode("utf-8", "surrogatepass")
        ).hexdigest()
        if key in self.memory:
            return self.memory[key]
        path = self.cache_dir / f"{key}.npy" if self.cache_dir else None
        if path is not None and path.is_file():
            out = np.load(path)
        else:
            started = time.perf_counter()
            out = self.encoder.encode(texts)
            self.seconds += time.perf_counter() - started
            self.encoded += len(texts)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                np.save(path, out)
        self.memory[key] = out
        return out


def concat(a: Labelled, b: Labelled) -> Labelled:
    return Labelled(
        a.ids + b.ids,
        a.texts + b.texts,
        np.concatenate([a.labels, b.labels]),
        np.vstack([a.embeddings, b.embeddings]),
    )


def synthetic_window(
    seed: int, knobs: MonthDrift, month_index: int, n: int, embed: Embedder
) -> Labelled:
    from sentiment_assets.lib.data.sources import load_month

    config = SyntheticConfig(
        seed=seed, start_month=START, n_months=2, tweets_per_month=n, drift={month_index: knobs}
    )
    month = date(START.year, START.month + month_index, 1)
    rows = prepare_labelled(load_month("synthetic", month, synthetic=config).accepted)
    texts = rows["text"].tolist()
    return Labelled(
        rows["tweet_id"].tolist(), texts, rows["label"].to_numpy(dtype=int), embed(texts)
    )


def champion_and_reference(reference: Labelled) -> tuple[Any, DriftSample, dict[str, Any]]:
    """Train on the non-held-out half; score only the held-out half (NaN elsewhere)."""
    holdout = holdout_mask(reference.ids, 0.5)
    fit = fit_embedding_logreg(reference.embeddings, reference.labels, holdout, LogRegParams())
    scores = np.full(len(reference.ids), np.nan)
    scores[holdout] = fit.estimator.predict_proba(reference.embeddings[holdout])[:, 1]
    sample = DriftSample(reference.embeddings, scores, reference.texts, reference.labels)
    info = {
        "n_train": fit.n_train,
        "n_scored": fit.n_validation,
        "accuracy_holdout": fit.validation.get("accuracy"),
    }
    return fit.estimator, sample, info


def current_sample(model: Any, window: Labelled) -> DriftSample:
    scores = model.predict_proba(window.embeddings)[:, 1]
    return DriftSample(window.embeddings, scores, window.texts, window.labels)


def compact(result: StatResult) -> dict[str, Any]:
    """What a trial keeps of a statistic (the full detail only for the real-data runs)."""
    return {
        "drifted": result.drifted,
        "value": None if np.isnan(result.value) else round(float(result.value), 6),
        "threshold": None if not np.isfinite(result.threshold) else round(result.threshold, 6),
        "p_value": None if result.p_value is None else float(f"{result.p_value:.4g}"),
    }


def rate(flags: Sequence[bool | None]) -> dict[str, Any]:
    """Share of trials flagged, with its Wilson 95% interval; None verdicts are not counted."""
    decided = [f for f in flags if f is not None]
    k, n = sum(bool(f) for f in decided), len(decided)
    low, high = wilson_interval(k, n) if n else (0.0, 1.0)
    return {
        "flagged": k,
        "trials": n,
        "rate": k / n if n else None,
        "ci95": [round(low, 3), round(high, 3)],
    }


def run_synthetic(
    seeds: Sequence[int],
    scenarios: Sequence[str],
    n: int,
    thresholds: DriftThresholds,
    embed: Embedder,
    h0_resplits: int = 0,
) -> dict[str, Any]:
    trials: list[dict[str, Any]] = []
    report_seconds: list[float] = []

    def trial(seed: int, name: str, reference: Labelled, window: Labelled) -> None:
        model, ref_sample, info = champion_and_reference(reference)
        current = current_sample(model, window)
        started = time.perf_counter()
        results = drift_report(ref_sample, current, thresholds)
        report_seconds.append(time.perf_counter() - started)
        acc_cur = float(np.mean((current.scores >= 0.5) == (window.labels == 1)))
        trials.append(
            {
                "seed": seed,
                "scenario": name,
                "n_reference": len(reference.ids),
                "n_current": len(window.ids),
                "champion": {**info, "accuracy_current": round(acc_cur, 4)},
                "results": {r.statistic: compact(r) for r in results},
            }
        )

    for i, seed in enumerate(seeds):
        reference = synthetic_window(seed, NO_DRIFT, 0, n, embed)
        for name in scenarios:
            trial(seed, name, reference, synthetic_window(seed, SCENARIOS[name], 1, n, embed))
        if h0_resplits and "none" in scenarios:
            # More no-drift trials without encoding more tweets: pool this seed's two undrifted
            # months and split them at random into a new reference and current.
            pool = concat(reference, synthetic_window(seed, NO_DRIFT, 1, n, embed))
            for r in range(h0_resplits):
                order = np.random.default_rng([seed, r]).permutation(len(pool.ids))
                half = len(order) // 2
                trial(seed, H0_RESPLIT, pool.take(order[:half]), pool.take(order[half:]))
        flagged = [
            t["scenario"]
            for t in trials
            if t["seed"] == seed and t["results"][drift.COMBINED]["drifted"]
        ]
        _log(
            f"seed {seed} ({i + 1}/{len(seeds)}): combined flagged {flagged}; "
            f"encoded {embed.encoded} tweets in {embed.seconds:.0f}s so far"
        )
    if any(t["scenario"] == H0_RESPLIT for t in trials):
        scenarios = [*scenarios, H0_RESPLIT]
    summary = {
        name: {
            stat: rate([t["results"][stat]["drifted"] for t in trials if t["scenario"] == name])
            for stat in STATS
        }
        for name in scenarios
    }
    accuracy = {
        name: round(
            float(
                np.mean(
                    [t["champion"]["accuracy_current"] for t in trials if t["scenario"] == name]
                )
            ),
            4,
        )
        for name in scenarios
    }
    return {
        "seeds": list(seeds),
        "tweets_per_month": n,
        "scenarios": {name: asdict(SCENARIOS.get(name, NO_DRIFT)) for name in scenarios},
        "h0_resplits_per_seed": h0_resplits,
        "rates": summary,
        "mean_champion_accuracy_current": accuracy,
        "mean_champion_accuracy_reference_holdout": round(
            float(np.mean([t["champion"]["accuracy_holdout"] for t in trials])), 4
        ),
        "drift_report_seconds": {
            "mean": round(float(np.mean(report_seconds)), 3),
            "max": round(float(np.max(report_seconds)), 3),
        },
        "trials": trials,
    }


def _real_rows(csv: str, months: Sequence[date]) -> pd.DataFrame:
    from sentiment_assets.lib.data.sources import load_month

    frames = [load_month(csv, m).accepted for m in months]
    return prepare_labelled(pd.concat(frames, ignore_index=True))


def run_real(
    csv: str, n: int, resplits: int, thresholds: DriftThresholds, embed: Embedder, seed: int
) -> dict[str, Any]:
    """Champion on Apr/May, reference = other Apr/May tweets; June vs a no-drift control."""
    rng = np.random.default_rng(seed)
    before = _real_rows(csv, [date(2009, 4, 1), date(2009, 5, 1)])
    june = _real_rows(csv, [date(2009, 6, 1)])
    # Three disjoint Apr/May windows of n (train, reference, control) and n June tweets.
    take_before = rng.choice(len(before), size=min(3 * n, len(before)), replace=False)
    take_june = rng.choice(len(june), size=min(n, len(june)), replace=False)
    before = before.iloc[np.sort(take_before)].reset_index(drop=True)
    june = june.iloc[np.sort(take_june)].reset_index(drop=True)

    def window(frame: pd.DataFrame) -> Labelled:
        texts = frame["text"].tolist()
        return Labelled(
            frame["tweet_id"].tolist(), texts, frame["label"].to_numpy(dtype=int), embed(texts)
        )

    pool, current_june = window(before), window(june)

    def one(split_seed: int) -> dict[str, list[StatResult]]:
        order = np.random.default_rng(split_seed).permutation(len(pool.ids))
        third = len(order) // 3
        train, ref, control = (
            pool.take(order[:third]),
            pool.take(order[third : 2 * third]),
            pool.take(order[2 * third :]),
        )
        # The champion never sees the reference: every reference row has an honest score.
        fit = fit_embedding_logreg(
            train.embeddings, train.labels, np.zeros(len(train.ids), dtype=bool), LogRegParams()
        )
        model = fit.estimator
        ref_sample = current_sample(model, ref)
        return {
            "june": drift_report(ref_sample, current_sample(model, current_june), thresholds),
            "control_aprmay": drift_report(ref_sample, current_sample(model, control), thresholds),
        }

    main = one(seed)
    out: dict[str, Any] = {
        "source": Path(csv).name,
        "windows": {
            "train": "2009-04/05",
            "reference": "2009-04/05 (disjoint from train)",
            "june": "2009-06",
            "control_aprmay": "2009-04/05 (disjoint from both)",
        },
        "n_per_window": {"train_reference_control": len(pool.ids) // 3, "june": len(june)},
        "positive_share": {
            "2009-04/05": round(float(pool.labels.mean()), 4),
            "2009-06": round(float(current_june.labels.mean()), 4),
        },
        "main_split": {
            name: [_finite(r.as_dict()) for r in results] for name, results in main.items()
        },
    }
    flags: dict[str, dict[str, list[bool | None]]] = {
        "june": {s: [] for s in STATS},
        "control_aprmay": {s: [] for s in STATS},
    }
    for r in range(resplits):
        reports = main if r == 0 else one(seed + 1000 + r)
        for name, results in reports.items():
            for result in results:
                flags[name][result.statistic].append(result.drifted)
    out["resplits"] = resplits
    out["resplit_rates"] = {
        name: {stat: rate(v) for stat, v in per.items()} for name, per in flags.items()
    }
    return out


# --- output -----------------------------------------------------------------------------------


def _pct(block: dict[str, Any]) -> str:
    if block["rate"] is None:
        return "n/a"
    low, high = block["ci95"]
    return f"{100 * block['rate']:.0f}% ({block['flagged']}/{block['trials']}; {100 * low:.0f}-{100 * high:.0f})"


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "-"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def render_markdown(result: dict[str, Any]) -> str:
    lines = ["# Drift detection: power and false alarms", ""]
    syn = result.get("synthetic")
    th = result["thresholds"]
    lines += [
        f"Generated by `python -m bench.drift_power` on {result['created_at'][:10]} "
        f"({result['elapsed_seconds'] / 60:.1f} min on {one_line(result['machine'])}, "
        f"{result['torch_threads']} torch threads). Thresholds: alpha {th['alpha']} per error "
        f"check (embedding check: mean distance and MMD at alpha/2 each), {th['permutations']} "
        f"permutations, MMD subsample {th['max_subsample']}/side, accuracy tolerance "
        f"{th['accuracy_tolerance']}, min_samples {th['min_samples']}. Encoder: "
        f"{result['encoder']} on {result['device']}; {result['embedding']['tweets_encoded']} "
        f"tweets encoded in {result['embedding']['seconds'] / 60:.1f} min (embeddings found in "
        "`--cache-dir` are not encoded again).",
        "",
    ]
    if result.get("notes"):
        lines += [f"Notes: {result['notes']}", ""]
    if syn:
        scenarios = list(syn["rates"])
        lines += [
            f"## Synthetic generator: {len(syn['seeds'])} seeds, {syn['tweets_per_month']} tweets per month",
            "",
            "Reference = an undrifted month (champion trained on half of it, scores on the other "
            "half); current = the next month, undrifted (`none`: flags are **false alarms**) or "
            "with one drift kind at the demo magnitude (flags are **detections**). Cells: share "
            "of seeds flagged (flagged/trials; Wilson 95% interval in %). Severity in brackets; "
            "only error checks enter `combined`."
            + (
                f" `{H0_RESPLIT}`: {syn['h0_resplits_per_seed']} extra no-drift trials per seed, "
                "each a random re-split of that seed's two undrifted months into reference and "
                "current (they share tweets, so they sharpen the false-alarm estimate less than "
                "independent seeds would)."
                if syn.get("h0_resplits_per_seed")
                else ""
            ),
            "",
            "| statistic | "
            + " | ".join(
                f"{name} ({'false alarms' if name.startswith('none') else 'power'})"
                for name in scenarios
            )
            + " |",
            "| --- | " + " | ".join("---" for _ in scenarios) + " |",
        ]
        for stat in STATS:
            label = (
                f"**{stat}**"
                if stat == drift.COMBINED
                else f"{stat} [{drift.statistic_named(stat).severity}]"
            )
            cells = [_pct(syn["rates"][name][stat]) for name in scenarios]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        acc = syn["mean_champion_accuracy_current"]
        lines += [
            "",
            "Champion accuracy (mean over seeds): reference held-out half "
            f"{syn['mean_champion_accuracy_reference_holdout']:.3f}; current month "
            + ", ".join(f"{k} {v:.3f}" for k, v in acc.items())
            + f". One drift_report: {syn['drift_report_seconds']['mean']:.2f} s mean, "
            f"{syn['drift_report_seconds']['max']:.2f} s max.",
            "",
        ]
    real = result.get("real")
    if real:
        lines += [
            "## Real data: Sentiment140 sample, 2009-04/05 -> 2009-06",
            "",
            f"Champion trained on {real['n_per_window']['train_reference_control']} Apr/May "
            f"tweets; reference = {real['n_per_window']['train_reference_control']} other Apr/May "
            f"tweets; current = {real['n_per_window']['june']} June tweets, and a control of "
            f"{real['n_per_window']['train_reference_control']} more Apr/May tweets (no drift "
            f"expected). Positive share: Apr/May {real['positive_share']['2009-04/05']:.3f}, June "
            f"{real['positive_share']['2009-06']:.3f}.",
            "",
            "| statistic | June: value | threshold | p | drifted | control: value | threshold | p | drifted |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        june = {r["statistic"]: r for r in real["main_split"]["june"]}
        ctrl = {r["statistic"]: r for r in real["main_split"]["control_aprmay"]}
        for stat in STATS:
            cells = []
            for r in (june[stat], ctrl[stat]):
                cells += [
                    _fmt(r["value"]),
                    _fmt(r["threshold"]),
                    _fmt(r["p_value"], 2),
                    str(r["drifted"]),
                ]
            lines.append(f"| {stat} | " + " | ".join(cells) + " |")
        j = june
        lines += [
            "",
            f"June details: positive share {j['label_prior']['detail'].get('positive_share_reference', float('nan')):.3f} -> "
            f"{j['label_prior']['detail'].get('positive_share_current', float('nan')):.3f}; predicted positive "
            f"{j['predicted_positive_rate']['detail'].get('rate_reference', float('nan')):.3f} -> "
            f"{j['predicted_positive_rate']['detail'].get('rate_current', float('nan')):.3f}; champion accuracy "
            f"{j['performance_drop']['detail'].get('accuracy_reference', float('nan')):.3f} -> "
            f"{j['performance_drop']['detail'].get('accuracy_current', float('nan')):.3f}; OOV "
            f"{j['vocabulary_oov']['detail'].get('oov_rate_reference_heldout', float('nan')):.3f} -> "
            f"{j['vocabulary_oov']['value']:.3f}. Top new June keywords: "
            + ", ".join(k["token"] for k in j["vocabulary_oov"]["detail"].get("new_keywords", []))
            + ".",
            "",
            f"Over {real['resplits']} random re-splits of the same tweets (shared tweets, so not "
            "independent trials): share of splits flagged.",
            "",
            "| statistic | June | control (Apr/May) |",
            "| --- | --- | --- |",
        ]
        for stat in STATS:
            lines.append(
                f"| {stat} | {_pct(real['resplit_rates']['june'][stat])} | "
                f"{_pct(real['resplit_rates']['control_aprmay'][stat])} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="number of synthetic seeds")
    parser.add_argument(
        "--seed-offset",
        type=int,
        default=0,
        help="first seed (tune on other seeds than you report)",
    )
    parser.add_argument("--tweets-per-month", type=int, default=1000)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument(
        "--h0-resplits",
        type=int,
        default=5,
        help="extra no-drift trials per seed from re-splitting its two undrifted months",
    )
    parser.add_argument("--notes", default="", help="free text stored with the results")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--md", type=Path, default=None)
    parser.add_argument("--real-csv", default=os.environ.get("SENTIMENT140_CSV", DEFAULT_S140))
    parser.add_argument("--real-n", type=int, default=2000, help="tweets per real window")
    parser.add_argument("--real-resplits", type=int, default=10)
    parser.add_argument("--no-real", action="store_true")
    parser.add_argument("--no-synthetic", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None, help="encoder device (default: CUDA if present)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cache-dir", type=Path, default=None, help="keep embeddings across runs")
    parser.add_argument(
        "--thresholds-json",
        default="{}",
        help="DriftThresholds overrides, e.g. '{\"alpha\": 0.01}'",
    )
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {list(SCENARIOS)}")
    thresholds = DriftThresholds(**json.loads(args.thresholds_json))
    started = time.perf_counter()
    embed = Embedder(args.device, args.batch_size, args.cache_dir)
    result: dict[str, Any] = {
        "benchmark": "drift_power",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "thresholds": thresholds.as_dict(),
        "encoder": embed.encoder.fingerprint,
        "device": embed.encoder.device,
        "notes": args.notes,
    }
    if not args.no_synthetic:
        seeds = list(range(args.seed_offset, args.seed_offset + args.seeds))
        result["synthetic"] = run_synthetic(
            seeds, scenarios, args.tweets_per_month, thresholds, embed, args.h0_resplits
        )
    if not args.no_real:
        if Path(args.real_csv).is_file():
            _log(f"real data: {args.real_csv}")
            result["real"] = run_real(
                args.real_csv, args.real_n, args.real_resplits, thresholds, embed, args.seed_offset
            )
        else:
            _log(f"skipped real data: {args.real_csv} not found (set SENTIMENT140_CSV)")
    result["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    result["embedding"] = {"tweets_encoded": embed.encoded, "seconds": round(embed.seconds, 1)}
    result["machine"] = describe(("numpy", "scipy", "scikit-learn"))
    result["torch_threads"] = args.threads
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, allow_nan=False, default=_json_default) + "\n")
    _log(f"wrote {args.out} in {result['elapsed_seconds'] / 60:.1f} min")
    if args.md is not None:
        args.md.write_text(render_markdown(result))
        _log(f"wrote {args.md}")
    return 0


def _finite(obj: Any) -> Any:
    """NaN/inf (skipped checks, unreachable thresholds) -> None: strict JSON has no NaN."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, float | np.floating) and not np.isfinite(obj):
        return None
    return obj


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


if __name__ == "__main__":
    raise SystemExit(main())
