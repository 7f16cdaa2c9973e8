"""`make drift-demo`: the drift -> decision -> retrain loop, end to end, checked.

In a fresh SENTIMENT_HOME, month after month as if time passed, each month is built as the
month run builds it (data, drift_report, model_evaluation, training_decision; no model), and
trained as its decision says, by the real training_decision_sensor and follow_up_sensor
evaluated against the persistent instance (ops/decided_training.py): the first month trains
because there is no champion, then only a month the policy (SENTIMENT_RETRAIN_POLICY,
on_drift by default) decides to train. A table per month shows the drift statistics, the
verdict, the decision, and the champion and its accuracy on the month before and after. The
exit status is non-zero unless the injected drift month is flagged and retrained, no
undrifted month is, and the champion's accuracy on the drifted month recovers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from sentiment_assets.environment import export
from sentiment_assets.lib.data import synthetic
from sentiment_assets.lib.data.sampling import in_holdout
from sentiment_assets.lib.encoding.embedding_store import load_tweets
from sentiment_assets.lib.settings import load_settings
from sentiment_assets.lib.stats.metrics import classification_metrics
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.serving import load_version
from sentiment_assets.ops.instance import prepare_environment

# The statistics shown in the table (all of them are in metrics.drift_reports).
SHOWN = ["embedding_mean_distance", "prediction_ks", "label_prior", "performance_drop"]
MIN_RECOVERY = 0.05


@dataclass
class MonthRow:
    month: str
    stats: dict
    verdict: str
    decision: str
    champion_before: str
    champion_after: str
    accuracy_before: float
    accuracy_after: float


def holdout_accuracy(settings, month: date, version_info) -> float:
    """The champion's accuracy on the month's holdout rows (no model ever trains on them)."""

    predictor = load_version(version_info, settings.registry_cache_dir)
    fingerprint = predictor.card.encoder_fingerprint
    frame, vectors = load_tweets(settings.warehouse, [month], fingerprint)
    keep = in_holdout(frame["tweet_id"].tolist())
    scores = predictor.predict_proba_clean(
        frame.loc[keep, "text"].tolist(), vectors[keep] if vectors is not None else None
    )
    return classification_metrics(frame.loc[keep, "label"].to_numpy(dtype=int), scores)["accuracy"]


def drift_stats(settings, month: date) -> tuple[dict, str]:

    with connect(settings.warehouse, read_only=True) as con:
        rows = con.execute(
            "SELECT statistic, value, p_value, drifted FROM metrics.drift_reports "
            "WHERE month = ? ORDER BY created_at",
            [month],
        ).fetchall()
    stats = {name: (value, p, drifted) for name, value, p, drifted in rows}
    combined = stats.get("combined")
    verdict = "n/a" if combined is None else {True: "DRIFT", False: "ok", None: "n/a"}[combined[2]]
    return stats, verdict


def format_table(rows: list[MonthRow]) -> str:
    header = [
        "month",
        *SHOWN,
        "verdict",
        "decision",
        "champion before→after",
        "accuracy before→after",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.month]
        for name in SHOWN:
            value = row.stats.get(name)
            if value is None or value[0] is None or np.isnan(value[0]):
                cells.append("-")
            else:
                mark = "*" if value[2] else ""
                p = f" p={value[1]:.3f}" if value[1] is not None else ""
                cells.append(f"{value[0]:.3f}{p}{mark}")
        cells += [
            row.verdict,
            row.decision,
            f"v{row.champion_before}→v{row.champion_after}",
            f"{row.accuracy_before:.3f}→{row.accuracy_after:.3f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def demo_environment(home: Path, env: dict[str, str]) -> dict[str, str]:
    """The caller's synthetic knobs, in a home of the demo's own (every path derived from it)."""
    kept = {
        name: value
        for name, value in env.items()
        if name not in {"DUCKDB_PATH", "DAGSTER_HOME", "MLFLOW_TRACKING_URI", "SENTIMENT_MONTHS"}
    }
    return {
        **kept,
        "SENTIMENT_HOME": str(home),
        "SENTIMENT_SOURCE": "synthetic",
        # Drift in the last month: the world changes once and the demo ends there, so every
        # earlier month is a clean control for false alarms.
        "SENTIMENT_SYNTHETIC_DRIFT_MONTH": env.get("SENTIMENT_SYNTHETIC_DRIFT_MONTH", "5"),
        # The fine-tuned follow-ups (the first month's, the drift month's) train on a minute
        # of CPU each rather than the production budget: the demo shows the loop.
        "SENTIMENT_FINETUNE_CPU_BUDGET_SECONDS": env.get(
            "SENTIMENT_FINETUNE_CPU_BUDGET_SECONDS", "60"
        ),
    }


def failures(
    rows: list[MonthRow], drift_months: set[str], flagged: set[str], retrained: set[str]
) -> list[str]:
    """What the demo promised and did not do."""
    found = [
        f"the injected drift month {key} was not flagged and retrained"
        for key in sorted(drift_months)
        if key not in flagged or key not in retrained
    ]
    undrifted = (flagged | retrained) - drift_months
    if undrifted:
        found.append(f"undrifted months were flagged or retrained: {sorted(undrifted)}")
    for row in rows:
        if (
            f"{row.month}-01" in drift_months
            and row.accuracy_after < row.accuracy_before + MIN_RECOVERY
        ):
            found.append(
                f"{row.month}: accuracy did not recover ({row.accuracy_before:.3f} -> "
                f"{row.accuracy_after:.3f}, needs +{MIN_RECOVERY})"
            )
    return found


def run(home: Path) -> int:
    if home.exists():
        shutil.rmtree(home)
    # The demo's settings become this process's (and its children's) environment.
    export(load_settings(demo_environment(home, dict(os.environ))))
    os.environ.pop("SENTIMENT_MONTHS", None)
    # Only now: importing the definitions builds the partitions from the settings of the
    # environment at that moment, which must be the demo's.
    from sentiment_assets.ops.build import build_months

    settings = prepare_environment()

    config = settings.synthetic
    months = synthetic.months(config)
    drift_months = {
        months[i].isoformat() for i in config.drift if config.drift[i] != synthetic.MonthDrift()
    }
    print(
        f"SENTIMENT_HOME={home}\nmonths {months[0]:%Y-%m}..{months[-1]:%Y-%m}, "
        f"drift injected in {sorted(drift_months)}",
        flush=True,
    )

    build_months([months[0].isoformat()])
    client = MlflowClient(settings.mlflow_tracking_uri)
    rows: list[MonthRow] = []
    flagged: set[str] = set()
    retrained: set[str] = set()
    for month in months[1:]:
        key = month.isoformat()
        before = registry.champion(client)
        (built,) = build_months([key])
        after = registry.champion(client)
        stats, verdict = drift_stats(settings, month)
        if verdict == "DRIFT":
            flagged.add(key)
        if built.training and built.training.trained:
            retrained.add(key)
        accuracy_before = holdout_accuracy(settings, month, before)
        rows.append(
            MonthRow(
                month=f"{month:%Y-%m}",
                stats=stats,
                verdict=verdict,
                decision=built.training.decision if built.training else "-",
                champion_before=before.version,
                champion_after=after.version,
                accuracy_before=accuracy_before,
                accuracy_after=accuracy_before
                if after.version == before.version
                else holdout_accuracy(settings, month, after),
            )
        )
    table = format_table(rows)
    print("\n" + table + "\n(* = statistic beyond its threshold)")
    (settings.published_dir / "drift_demo.md").write_text(table + "\n")

    found = failures(rows, drift_months, flagged, retrained)
    if found:
        print("DRIFT DEMO FAILED:\n- " + "\n- ".join(found))
        return 1
    print(
        "drift demo passed: the drift month was flagged and retrained, no other month was, "
        "and the champion's accuracy on it recovered"
    )
    return 0


def main() -> int:
    home = Path(os.environ.get("DRIFT_DEMO_HOME", ".sentiment-drift-demo")).resolve()
    return run(home)


def command_drift_demo(args: argparse.Namespace) -> int:
    return main()


if __name__ == "__main__":
    sys.exit(main())
