"""retrain_job and the two sensors that drive the platform on their own.

- drift_sensor: a month whose drift_report says `drifted` gets retrain_job for that month;
  its decision on each drifted report is an observation of that drift_report partition.
- new_data_sensor: a file dropped into SENTIMENT_HOME/landing gets its months rebuilt.

Both start RUNNING (the daemon evaluates them; toggle them in the UI under Automation).
"""

import json
import time

import dagster as dg
from dagster_mlflow import end_mlflow_on_run_finished

from sentiment_assets.defs.platform.resources import PlatformResource
from sentiment_assets.lib.landing import file_fingerprint, landing_files, quarantine
from sentiment_assets.lib.retrain_policy import (
    DriftEvent,
    Plan,
    SensorCursor,
    decisions,
    plan_retrains,
    run_key,
)
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.sources import months_in_source
from sentiment_assets.lineage import (
    DRIFT_REPORT,
    MODEL_CHALLENGER,
    MODEL_CHAMPION,
    RAW_TWEETS,
    SENTIMENT_MODEL,
)
from sentiment_assets.partitions import FIRST_MONTH, last_month, monthly_partitions


def retrain_run_config(settings: Settings) -> dict:
    """A drift retrain trains on `retrain_window_months` (the drifted month alone by default:
    the months before it describe a world that has just changed). The new model's card
    records that window, and the promotion gate compares on it."""
    return {"ops": {SENTIMENT_MODEL: {"config": {"window_months": settings.retrain_window_months}}}}


retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=dg.AssetSelection.assets(SENTIMENT_MODEL, MODEL_CHALLENGER, MODEL_CHAMPION),
    partitions_def=monthly_partitions,
    description="Retrain one month's models, then run the promotion gate and move the "
    "champion if the challenger passes. Started by drift_sensor.",
    # Every MLflow step also ends its run itself; the hook is the library's belt to those braces.
    hooks={end_mlflow_on_run_finished},
    tags={"sentiment/job": "retrain"},
)

# Everything that depends on a month's raw data, for new_data_sensor's runs.
INGEST_SELECTION = dg.AssetSelection.assets(RAW_TWEETS).downstream()


def latest_storage_ids(instance: dg.DagsterInstance, asset: str, partitions: set[str]) -> dict:
    latest = {}
    for partition in partitions:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]),
            limit=1,
        ).records
        if records:
            latest[partition] = records[0].storage_id
    return latest


@dg.sensor(
    job=retrain_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests retrain_job for a month whose new drift_report is drifted "
    "(run_key holds the drift event's storage id; cooldown and staleness guards). Its "
    "decision on each drifted report is a `retrain` observation of that drift_report.",
)
def drift_sensor(context: dg.SensorEvaluationContext, platform: PlatformResource):
    settings = platform.settings
    cursor = SensorCursor.parse(context.cursor)
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(DRIFT_REPORT), after_storage_id=cursor.after_storage_id
        ),
        limit=100,
        ascending=True,
    ).records
    if not records:
        return dg.SkipReason("no new drift_report materializations")
    events = []
    for record in records:
        metadata = record.asset_materialization.metadata
        drifted = metadata.get("drifted")
        events.append(
            DriftEvent(
                storage_id=record.storage_id,
                partition=record.partition_key,
                drifted=bool(drifted.value) if drifted is not None else False,
                timestamp=record.timestamp,
            )
        )
    plan = plan_retrains(
        events,
        cursor,
        latest_storage_ids(context.instance, SENTIMENT_MODEL, {e.partition for e in events}),
        now=time.time(),
        cooldown_seconds=settings.retrain_cooldown_seconds,
    )
    for event, reason in plan.skipped:
        context.log.info(f"drift_report {event.partition} (#{event.storage_id}): {reason}")
    requests = [
        dg.RunRequest(
            run_key=run_key(event),
            partition_key=event.partition,
            run_config=retrain_run_config(settings),
            tags={
                "sentiment/trigger": "drift",
                "sentiment/drift_storage_id": str(event.storage_id),
            },
        )
        for event in plan.requests
    ]
    return dg.SensorResult(
        run_requests=requests,
        cursor=plan.cursor.dump(),
        asset_events=decision_observations(plan),
    )


# The observation's metadata key: what people read next to a drifted month's red checks.
RETRAIN_DECISION = "retrain"


def decision_observations(plan: Plan) -> list[dg.AssetObservation]:
    """drift_report cannot know whether its drift is retrained (cooldown, a newer model), so
    the sensor says so on the same partition. Returned as the SensorResult's asset_events: the
    daemon records them when the tick is evaluated, and a failed evaluation records none."""
    return [
        dg.AssetObservation(
            asset_key=DRIFT_REPORT,
            partition=event.partition,
            description=f"drift_sensor: retrain {decision}",
            metadata={
                RETRAIN_DECISION: decision,
                "drift_report_storage_id": event.storage_id,
            },
        )
        for event, decision in decisions(plan)
    ]


@dg.sensor(
    target=INGEST_SELECTION,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests raw_tweets and everything downstream for the months of each new "
    "or changed file in SENTIMENT_HOME/landing.",
)
def new_data_sensor(context: dg.SensorEvaluationContext, platform: PlatformResource):
    settings = platform.settings
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    first, last = FIRST_MONTH, last_month()
    requests = []
    for path in landing_files(settings.landing_dir):
        fingerprint = file_fingerprint(path)
        if seen.get(path.name) == fingerprint:
            continue
        try:
            found = months_in_source(str(path))
        except Exception as error:
            # The run itself reports the error and quarantines the file; ask for one run, once.
            context.log.warning(f"{path.name}: cannot read its dates ({error})")
            found = [last]
        months = sorted({m for m in found if first <= m <= last})
        if not months:
            # Nothing to ingest it into: it would wait in the folder forever, unexplained.
            reason = (
                f"no row dated within the partitions ({first:%Y-%m}..{last:%Y-%m}); months "
                f"found: {[f'{m:%Y-%m}' for m in found]}"
            )
            context.log.warning(f"{path.name}: {reason}; moved to {quarantine(path, reason)}")
            continue
        # Marked as seen only together with its requests (one SensorResult).
        seen[path.name] = fingerprint
        for month in months:
            requests.append(
                dg.RunRequest(
                    run_key=f"landing-{path.name}-{fingerprint}-{month.isoformat()}",
                    partition_key=month.isoformat(),
                    tags={"sentiment/trigger": "new_data", "sentiment/landing_file": path.name},
                )
            )
    if not requests:
        return dg.SensorResult(
            skip_reason=dg.SkipReason("no new files in the landing folder"),
            cursor=json.dumps(seen, sort_keys=True),
        )
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True))
