"""`make drift-demo`: the drift -> decision -> retrain loop, end to end, checked.

In a fresh SENTIMENT_HOME, month after month as if time passed, each month's synthetic tweets
arrive as a landing file and go through the live loop's own pieces, each evaluated against
the home's persistent instance and its requests executed in this process, as the daemon would
launch them (ops/sensor_runs.py): new_data_sensor takes the file and requests its month
(raw_tweets and everything downstream, up to the training_decision; no model), and the month
is trained as its decision says, by training_decision_sensor and follow_up_sensor
(ops/decided_training.py): the first month trains because there is no champion, then only a
month the policy (SENTIMENT_RETRAIN_POLICY, on_drift by default) decides to train. A line per
month says the file landed, what the sensor requested and the decision; a table shows the
drift statistics, the verdict, the decision, and the champion and its accuracy on the month
before and after. The exit status is non-zero unless every file was requested for its month
and built, the injected drift month is flagged and retrained, no undrifted month is, and the
champion's accuracy on the drifted month recovers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
from mlflow.tracking import MlflowClient

from sentiment_assets.environment import export
from sentiment_assets.lib.core.atomic import replacing
from sentiment_assets.lib.data import synthetic
from sentiment_assets.lib.data.landing import BUILT, LEDGER_TABLE
from sentiment_assets.lib.data.sampling import in_holdout
from sentiment_assets.lib.encoding.embedding_store import load_tweets
from sentiment_assets.lib.settings import Settings, load_settings
from sentiment_assets.lib.stats.metrics import classification_metrics
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.serving import load_version
from sentiment_assets.ops.instance import prepare_environment
from sentiment_assets.ops.recovery import this_process_tags
from sentiment_assets.ops.sensor_runs import execute, sensor_tick

# The statistics shown in the table (all of them are in metrics.drift_reports).
SHOWN = ["embedding_mean_distance", "prediction_ks", "label_prior", "performance_drop"]
MIN_RECOVERY = 0.05
NEW_DATA_SENSOR = "new_data_sensor"
# SENTIMENT_SOURCE of the demo's home: a folder that stays empty, so each month's rows come
# from its landing file alone (the synthetic source would add the same month a second time:
# raw_tweets reads the source and the landing files).
NO_SOURCE = "no-source"


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


@dataclass
class Landed:
    """A month's landing file and what the live loop made of it."""

    month: str
    file: str
    requested: list[str]  # the partitions new_data_sensor requested for the file
    state: str  # the file's state in raw.landing_files once its runs were read back
    decision: str
    trained: bool
    reasons: str

    def describe(self) -> str:
        requested = ", ".join(month[:7] for month in self.requested) or "nothing"
        trained = " (trained)" if self.trained else ""
        return (
            f"{self.month[:7]}: {self.file} landed; new_data_sensor requested {requested} "
            f"({self.state}); decision: {self.decision}{trained}: {self.reasons}"
        )


@dataclass
class DemoRun:
    drift_months: set[str]
    landed: list[Landed] = field(default_factory=list)
    rows: list[MonthRow] = field(default_factory=list)

    @property
    def flagged(self) -> set[str]:
        return {f"{row.month}-01" for row in self.rows if row.verdict == "DRIFT"}

    @property
    def retrained(self) -> set[str]:
        return {landed.month for landed in self.landed[1:] if landed.trained}


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
    months = synthetic.months(synthetic.config_from_env(env))
    return {
        **kept,
        "SENTIMENT_HOME": str(home),
        # The months arrive as landing files, and the landing files are the only source.
        "SENTIMENT_SOURCE": str(home / NO_SOURCE),
        # The partitions are fixed when the definitions load, here once at the start: with
        # only landing files they would end at the last month already landed, so they are
        # the generator's months from the start (the explicit range of SENTIMENT_MONTHS).
        "SENTIMENT_MONTHS": f"{months[0]}..{months[-1]}",
        # The demo renames each file in whole: new_data_sensor need not wait for it to settle.
        "SENTIMENT_LANDING_SETTLE_SECONDS": "0",
        # Drift in the last month: the world changes once and the demo ends there, so every
        # earlier month is a clean control for false alarms.
        "SENTIMENT_SYNTHETIC_DRIFT_MONTH": env.get("SENTIMENT_SYNTHETIC_DRIFT_MONTH", "5"),
        # The fine-tuned follow-ups (the first month's, the drift month's) train on a minute
        # of CPU each rather than the production budget: the demo shows the loop.
        "SENTIMENT_FINETUNE_CPU_BUDGET_SECONDS": env.get(
            "SENTIMENT_FINETUNE_CPU_BUDGET_SECONDS", "60"
        ),
    }


def land(settings: Settings, month: date) -> Path:
    """The month's synthetic tweets (the generator's rows, as its source would give them) as
    a CSV landing file, written as writers are told to: under a hidden name, then renamed."""
    path = settings.landing_dir / f"tweets-{month:%Y-%m}.csv"
    with replacing(path, suffix=".part") as partial:
        synthetic.generate_month(settings.synthetic, month).to_csv(partial, index=False)
    return path


def landing_state(settings: Settings, name: str) -> str:
    with connect(settings.warehouse, read_only=True) as con:
        found = con.execute(
            f"SELECT state FROM {LEDGER_TABLE} WHERE file = ? ORDER BY updated_at DESC LIMIT 1",
            [name],
        ).fetchone()
    return found[0] if found else "not recorded"


def run_months(settings: Settings) -> DemoRun:
    """Every synthetic month through the live loop, oldest first: the file lands,
    new_data_sensor requests its month, the month trains as decided. Stops at a failed run."""
    # Only now: importing the definitions builds the partitions from the settings of the
    # environment at that moment, which must be the demo's.
    from sentiment_assets.definitions import defs
    from sentiment_assets.ops.build import InterruptWatchdog, stop_unless_done
    from sentiment_assets.ops.decided_training import latest_decision_id, train_as_decided

    Path(settings.source).mkdir(parents=True, exist_ok=True)
    config = settings.synthetic
    months = synthetic.months(config)
    demo = DemoRun(
        {months[i].isoformat() for i in config.drift if config.drift[i] != synthetic.NO_DRIFT}
    )
    print(
        f"SENTIMENT_HOME={settings.home}\nmonths {months[0]:%Y-%m}..{months[-1]:%Y-%m}, "
        f"drift injected in {sorted(demo.drift_months)}",
        flush=True,
    )
    definitions = defs()
    instance = dg.DagsterInstance.get()
    client = MlflowClient(settings.mlflow_tracking_uri)
    tags = this_process_tags()
    cursor = None
    with InterruptWatchdog(instance):
        for month in months:
            key = month.isoformat()
            before = registry.champion(client)
            path = land(settings, month)
            decided_after = latest_decision_id(instance)
            # The daemon's tick: the file is new, so its month is requested.
            requests, cursor = sensor_tick(definitions, instance, NEW_DATA_SENSOR, cursor)
            builds = {}
            for request in requests:
                builds[request.partition_key] = execute(
                    definitions, NEW_DATA_SENSOR, request, instance, tags
                )
                stop_unless_done(request.partition_key, builds[request.partition_key])
            if key not in builds:
                raise SystemExit(f"new_data_sensor did not request {key} for {path.name}")
            # The next tick reads back what the file's runs did (raw.landing_files).
            _, cursor = sensor_tick(definitions, instance, NEW_DATA_SENSOR, cursor)
            training = train_as_decided(definitions, instance, builds[key], decided_after, tags)
            for run in training.runs:
                stop_unless_done(key, run)
            landed = Landed(
                key,
                path.name,
                sorted(builds),
                landing_state(settings, path.name),
                training.decision or "-",
                training.trained,
                "; ".join(
                    line.strip().removeprefix("- ") for line in training.reasons.splitlines()
                ),
            )
            demo.landed.append(landed)
            print(landed.describe(), flush=True)
            if month == months[0]:
                continue  # the first model: nothing to compare it with
            after = registry.champion(client)
            stats, verdict = drift_stats(settings, month)
            accuracy_before = holdout_accuracy(settings, month, before)
            demo.rows.append(
                MonthRow(
                    month=f"{month:%Y-%m}",
                    stats=stats,
                    verdict=verdict,
                    decision=landed.decision,
                    champion_before=before.version,
                    champion_after=after.version,
                    accuracy_before=accuracy_before,
                    accuracy_after=accuracy_before
                    if after.version == before.version
                    else holdout_accuracy(settings, month, after),
                )
            )
    return demo


def failures(demo: DemoRun) -> list[str]:
    """What the demo promised and did not do."""
    found = [
        f"{landed.file}: new_data_sensor requested {landed.requested} (expected "
        f"[{landed.month}]) and the file ended {landed.state} (expected {BUILT})"
        for landed in demo.landed
        if landed.requested != [landed.month] or landed.state != BUILT
    ]
    found += [
        f"the injected drift month {key} was not flagged and retrained"
        for key in sorted(demo.drift_months)
        if key not in demo.flagged or key not in demo.retrained
    ]
    undrifted = (demo.flagged | demo.retrained) - demo.drift_months
    if undrifted:
        found.append(f"undrifted months were flagged or retrained: {sorted(undrifted)}")
    for row in demo.rows:
        if (
            f"{row.month}-01" in demo.drift_months
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
    settings = prepare_environment()
    demo = run_months(settings)
    table = format_table(demo.rows)
    # Again at the end, together: between them Dagster logs every step of every run.
    print("\n" + "\n".join(landed.describe() for landed in demo.landed))
    print("\n" + table + "\n(* = statistic beyond its threshold)")
    (settings.published_dir / "drift_demo.md").write_text(table + "\n")

    found = failures(demo)
    if found:
        print("DRIFT DEMO FAILED:\n- " + "\n- ".join(found))
        return 1
    print(
        "drift demo passed: every month's landing file was requested by new_data_sensor and "
        "built, the drift month was flagged and retrained, no other month was, and the "
        "champion's accuracy on it recovered"
    )
    return 0


def main() -> int:
    home = Path(os.environ.get("DRIFT_DEMO_HOME", ".sentiment-drift-demo")).resolve()
    return run(home)


def command_drift_demo(args: argparse.Namespace) -> int:
    return main()


if __name__ == "__main__":
    sys.exit(main())
