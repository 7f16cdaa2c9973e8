"""`make drift-demo`: the drift -> retrain loop, end to end, checked.

In a fresh SENTIMENT_HOME: the first synthetic month is built and its best model becomes
champion. Then month after month, as if time passed, the data side is built (raw_tweets ->
dbt -> embeddings -> drift_report), drift_sensor is ticked against the persistent instance,
and each retrain it requests is launched directly (as the daemon would), then the fine-tuned
follow-up the follow-up sensor requests once that retrain is over. A table per month
shows the drift statistics, the verdict, whether a retrain was requested, and the champion
and its accuracy on the month before and after. The exit status is non-zero unless the
injected drift month is flagged and retrained, no undrifted month is, and the champion's
accuracy on the drifted month recovers after the retrain.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
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
from sentiment_assets.lineage import (
    DRIFT_REPORT,
    MODEL_CHALLENGER,
    MODEL_CHAMPION,
    RAW_TWEETS,
    SENTIMENT_MODEL,
    STG_TWEETS,
    TWEET_EMBEDDINGS,
    TWEETS_CLEAN,
    TWEETS_DROPPED,
)
from sentiment_assets.ops.instance import prepare_environment

DATA_ASSETS = [RAW_TWEETS, STG_TWEETS, TWEETS_CLEAN, TWEETS_DROPPED, TWEET_EMBEDDINGS, DRIFT_REPORT]
FIRST_MONTH_ASSETS = [*DATA_ASSETS, SENTIMENT_MODEL, MODEL_CHALLENGER, MODEL_CHAMPION]
# The statistics shown in the table (all of them are in metrics.drift_reports).
SHOWN = ["embedding_mean_distance", "prediction_ks", "label_prior", "performance_drop"]
MIN_RECOVERY = 0.05


@dataclass
class MonthRow:
    month: str
    stats: dict
    verdict: str
    retrain: str
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
        "retrain",
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
            row.retrain,
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
    }


def retrains_requested(
    definitions: dg.Definitions, instance, cursor: str | None
) -> tuple[list, str | None]:
    """One tick of drift_sensor against the persistent instance: its requests, its cursor."""
    result = definitions.resolve_sensor_def("drift_sensor")(
        dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            resources={"platform": definitions.resources["platform"]},
        )
    )
    if isinstance(result, dg.SkipReason):
        return [], cursor
    # What the daemon does with a tick's asset events: the sensor's retrain decisions.
    for event in result.asset_events or []:
        instance.report_runless_asset_event(event)
    return list(result.run_requests or []), result.cursor


def run_status_tick(sensor, instance, result):  # -> dg.RunRequest | dg.SkipReason | None
    """One evaluation of the run-status `sensor` on the finished run `result`, as the
    daemon's tick would make it (a failure sensor gets the failure context)."""
    finished = (
        dg.DagsterEventType.RUN_SUCCESS if result.success else dg.DagsterEventType.RUN_FAILURE
    )
    (event,) = [e for e in result.all_events if e.event_type == finished]
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(result.run_id),
    )
    return sensor(context if result.success else context.for_run_failure())


def follow_up_requested(definitions: dg.Definitions, result, instance) -> list:
    """What the daemon's follow-up sensor makes of a finished retrain run: the run of the
    families the retrain left out (the fine-tuned one), if any."""
    name = "follow_up_sensor" if result.success else "follow_up_after_failure_sensor"
    sensor = definitions.resolve_sensor_def(name)
    outcome = run_status_tick(sensor, instance, result)
    return [outcome] if isinstance(outcome, dg.RunRequest) else []


def launch(definitions: dg.Definitions, requests: list, instance) -> set[str]:
    """Run each of drift_sensor's requests as the daemon would (retrain_job, recalibrate_job
    or follow_up_job), a retrain's follow-up after it; the months retrained."""
    retrained = set()
    for request in requests:
        print(
            f"== drift_sensor requested {request.job_name} for {request.partition_key} "
            f"(run_key {request.run_key})",
            flush=True,
        )
        launched = execute(definitions.resolve_job_def(request.job_name), request, instance)
        print(f"   run {launched.run_id}: {'success' if launched.success else 'failed'}")
        if request.job_name != "retrain_job":
            continue
        retrained.add(request.partition_key)
        for follow_up in follow_up_requested(definitions, launched, instance):
            print(f"== follow_up_sensor requested follow_up_job (run_key {follow_up.run_key})")
            finished = execute(definitions.resolve_job_def("follow_up_job"), follow_up, instance)
            print(
                f"   follow-up run {finished.run_id}: {'success' if finished.success else 'failed'}"
            )
    return retrained


def execute(job, request, instance):
    return job.execute_in_process(
        partition_key=request.partition_key,
        run_config=request.run_config,
        tags=request.tags,
        instance=instance,
        raise_on_error=False,
    )


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
    from sentiment_assets.definitions import defs
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

    build_months([months[0].isoformat()], FIRST_MONTH_ASSETS)
    client = MlflowClient(settings.mlflow_tracking_uri)
    instance = dg.DagsterInstance.get()
    definitions = defs()
    cursor = None
    rows: list[MonthRow] = []
    flagged: set[str] = set()
    retrained: set[str] = set()
    for month in months[1:]:
        key = month.isoformat()
        build_months([key], DATA_ASSETS)
        before = registry.champion(client)
        accuracy_before = holdout_accuracy(settings, month, before)
        stats, verdict = drift_stats(settings, month)
        if verdict == "DRIFT":
            flagged.add(key)
        requests, cursor = retrains_requested(definitions, instance, cursor)
        retrained |= launch(definitions, requests, instance)
        after = registry.champion(client)
        rows.append(
            MonthRow(
                month=f"{month:%Y-%m}",
                stats=stats,
                verdict=verdict,
                retrain="yes" if key in retrained else "no",
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
