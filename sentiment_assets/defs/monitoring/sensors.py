"""retrain_job and the sensors that answer drift on their own.

- drift_sensor: a month whose drift_report says `drifted` gets retrain_job for that month
  (recalibrate_job first when only the class balance moved);
  its decision on each drifted report is an observation of that drift_report partition.
- follow_up_sensor / follow_up_after_failure_sensor: a finished drift retrain (it trains
  the fast families only, so its champion is served within about two minutes) gets one
  follow_up_job run for the fine-tuned family, through the same promotion gate.
- new_data_sensor (the landing folder) is in defs/ingest/landing_sensor.py.

All start RUNNING (the daemon evaluates them; toggle them in the UI under Automation).
"""

import time

import dagster as dg
from dagster_mlflow import end_mlflow_on_run_finished

from sentiment_assets.defs.models.recalibration import recalibrate_job
from sentiment_assets.defs.platform.resources import PlatformResource
from sentiment_assets.lib.models.families import family_names
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.versions.retrain_policy import (
    RECALIBRATE,
    DriftEvent,
    Plan,
    SensorCursor,
    decisions,
    fast_families,
    follow_up_families,
    follow_up_run_key,
    plan_retrains,
    recalibrate_run_key,
    responses,
    run_key,
)
from sentiment_assets.lineage import (
    DRIFT_REPORT,
    MODEL_CHALLENGER,
    MODEL_CHAMPION,
    SENTIMENT_MODEL,
)
from sentiment_assets.partitions import monthly_partitions


def retrain_run_config(settings: Settings) -> dict:
    """A drift retrain trains on `retrain_window_months` (the drifted month alone by default:
    the months before it describe a world that has just changed). The new model's card
    records that window, and the promotion gate compares on it. Only the fast families train
    here; follow_up_sensor asks for the others once this run is over."""
    config = {"window_months": settings.retrain_window_months, "families": fast_families()}
    return {"ops": {SENTIMENT_MODEL: {"config": config}}}


RETRAIN_SELECTION = dg.AssetSelection.assets(SENTIMENT_MODEL, MODEL_CHALLENGER, MODEL_CHAMPION)
# The three steps run one after another in the run's own process: a process per step would
# import the code location three more times (about 7 s each on 2 busy cores) for no
# parallelism. Pools are still claimed per step.
RETRAIN_EXECUTOR = dg.in_process_executor

retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=RETRAIN_SELECTION,
    partitions_def=monthly_partitions,
    description="Retrain one month's models, then run the promotion gate and move the "
    "champion if the challenger passes. Started by drift_sensor (fast families only).",
    # Every MLflow step also ends its run itself; the hook is the library's belt to those braces.
    hooks={end_mlflow_on_run_finished},
    tags={"sentiment/job": "retrain"},
    executor_def=RETRAIN_EXECUTOR,
)

# The same assets and gate as retrain_job: model_challenger picks among the month's newest
# version of every family, so the fine-tuned version competes with the fast ones the retrain
# just trained and must beat the champion (often one of them) on the same holdout rows.
follow_up_job = dg.define_asset_job(
    "follow_up_job",
    selection=RETRAIN_SELECTION,
    partitions_def=monthly_partitions,
    description="The slow families (the fine-tuned transformer) of a drift retrain, trained "
    "after it, then the same promotion gate. Started by follow_up_sensor.",
    hooks={end_mlflow_on_run_finished},
    tags={"sentiment/job": "retrain-follow-up"},
    executor_def=RETRAIN_EXECUTOR,
)


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


# The daemon's sensor loop runs every 5 s at most; a tick that finds nothing costs two indexed
# queries of the event log, so the sensor is evaluated on every loop.
DRIFT_SENSOR_INTERVAL_S = 5


@dg.sensor(
    jobs=[retrain_job, recalibrate_job],
    minimum_interval_seconds=DRIFT_SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests retrain_job for a month whose new drift_report is drifted "
    "(run_key holds the drift event's storage id; cooldown and staleness guards), or first "
    "recalibrate_job when only the class balance moved. Its decision on each drifted report "
    "is a `retrain` observation of that drift_report.",
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
        statistics = metadata.get("drifted_statistics")
        verdict = metadata.get("verdict")
        events.append(
            DriftEvent(
                storage_id=record.storage_id,
                partition=record.partition_key,
                drifted=bool(drifted.value) if drifted is not None else False,
                timestamp=record.timestamp,
                statistics=tuple(statistics.value) if statistics is not None else (),
                # The report's own words, so the log never calls "not judged" "no drift".
                **({"verdict": str(verdict.value)} if verdict is not None else {}),
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
        drift_request(event, response, settings)
        for event in plan.requests
        for response in responses(event)
    ]
    return dg.SensorResult(
        run_requests=requests,
        cursor=plan.cursor.dump(),
        asset_events=decision_observations(plan),
    )


def drift_request(event: DriftEvent, response: str, settings: Settings) -> dg.RunRequest:
    tags = {"sentiment/trigger": "drift", "sentiment/drift_storage_id": str(event.storage_id)}
    if response == RECALIBRATE:
        return dg.RunRequest(
            run_key=recalibrate_run_key(event),
            job_name=recalibrate_job.name,
            partition_key=event.partition,
            tags=tags,
        )
    return dg.RunRequest(
        run_key=run_key(event),
        job_name=retrain_job.name,
        partition_key=event.partition,
        run_config=retrain_run_config(settings),
        tags=tags,
    )


# Tag of a follow-up run: the retrain run it follows.
FOLLOW_UP_OF_TAG = "sentiment/follow_up_of"


def follow_up_request(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
    """The retrain's own training config with the families it left out: same window, seed
    and regularisation, so the fine-tuned version is trained and judged on the same rows."""
    run = context.dagster_run
    config = dict(run.run_config.get("ops", {}).get(SENTIMENT_MODEL, {}).get("config", {}))
    partition = run.tags.get("dagster/partition")
    materialized = partition is not None and any(
        record.run_id == run.run_id
        for record in context.instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(SENTIMENT_MODEL), asset_partitions=[partition]
            ),
            limit=20,
        ).records
    )
    # Without `families`, sentiment_model trained all of them (TrainConfig's default).
    families = follow_up_families(config.get("families", family_names()), materialized)
    if not families:
        return dg.SkipReason(
            f"run {run.run_id}: nothing to follow up (sentiment_model "
            f"{'trained every family' if materialized else 'was not materialized'})"
        )
    return dg.RunRequest(
        run_key=follow_up_run_key(run.run_id),
        partition_key=partition,
        run_config={"ops": {SENTIMENT_MODEL: {"config": {**config, "families": families}}}},
        tags={"sentiment/trigger": "follow_up", FOLLOW_UP_OF_TAG: run.run_id},
    )


# Ten seconds: the follow-up trains for minutes, and an idle tick costs one query of runs.
FOLLOW_UP_INTERVAL_S = 10


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[retrain_job],
    request_job=follow_up_job,
    minimum_interval_seconds=FOLLOW_UP_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After a retrain_job run succeeds, requests follow_up_job for the families it "
    "did not train (the fine-tuned transformer), once per run (run_key holds its run id).",
)
def follow_up_sensor(context: dg.RunStatusSensorContext):
    return follow_up_request(context)


@dg.run_failure_sensor(
    monitored_jobs=[retrain_job],
    request_job=follow_up_job,
    minimum_interval_seconds=FOLLOW_UP_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="follow_up_sensor for a retrain_job run that failed after training (the "
    "promotion gate rejected its fast challenger): the fine-tuned family may still pass.",
)
def follow_up_after_failure_sensor(context: dg.RunFailureSensorContext):
    return follow_up_request(context)


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
