"""retrain_job, follow_up_job and the sensors that answer a month's monitoring.

- drift_sensor: a month whose drift_report flags a shift of the class balance alone gets
  recalibrate_job (the prior re-estimated, no training). Whether a month retrains is its
  training_decision's call (defs/models/decision.py, training_decision_sensor).
- follow_up_sensor / follow_up_after_failure_sensor: a finished retrain (it trains the fast
  families only, so its champion is served within about two minutes) gets one
  follow_up_job run for the fine-tuned family, through the same promotion gate.
- new_data_sensor (the landing folder) is in defs/ingest/landing_sensor.py.

All start RUNNING (the daemon evaluates them; toggle them in the UI under Automation).
"""

import dagster as dg
from dagster_mlflow import end_mlflow_on_run_finished

from sentiment_assets.defs.models.recalibration import recalibrate_job
from sentiment_assets.defs.platform.jobs import RETRAIN_SELECTION
from sentiment_assets.lib.models.families import family_names
from sentiment_assets.lib.versions.retrain_policy import (
    DriftEvent,
    cursor_storage_id,
    dump_cursor,
    follow_up_families,
    follow_up_run_key,
    recalibrate_run_key,
)
from sentiment_assets.lineage import DRIFT_REPORT, SENTIMENT_MODEL

# The three steps run one after another in the run's own process: a process per step would
# import the code location three more times (about 7 s each on 2 busy cores) for no
# parallelism. Pools are still claimed per step.
RETRAIN_EXECUTOR = dg.in_process_executor

retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=RETRAIN_SELECTION,
    description="Retrain one month's models, then run the promotion gate and move the "
    "champion if the challenger passes. Started by training_decision_sensor for a `train` "
    "decision (fast families only, the decided window).",
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
    description="The slow families (the fine-tuned transformer) of a retrain, trained "
    "after it, then the same promotion gate. Started by follow_up_sensor.",
    hooks={end_mlflow_on_run_finished},
    tags={"sentiment/job": "retrain-follow-up"},
    executor_def=RETRAIN_EXECUTOR,
)


def drift_event(record: dg.EventLogRecord) -> DriftEvent:
    metadata = record.asset_materialization.metadata
    drifted = metadata.get("drifted")
    statistics = metadata.get("drifted_statistics")
    return DriftEvent(
        storage_id=record.storage_id,
        partition=record.partition_key,
        drifted=bool(drifted.value) if drifted is not None else False,
        statistics=tuple(statistics.value) if statistics is not None else (),
    )


# The daemon's sensor loop runs every 5 s at most; a tick that finds nothing costs one indexed
# query of the event log, so the sensor is evaluated on every loop.
DRIFT_SENSOR_INTERVAL_S = 5


@dg.sensor(
    jobs=[recalibrate_job],
    minimum_interval_seconds=DRIFT_SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests recalibrate_job for a month whose new drift_report flags a shift "
    "of the class balance alone (run_key holds the report's storage id). Retraining is "
    "training_decision's call.",
)
def drift_sensor(context: dg.SensorEvaluationContext):
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(DRIFT_REPORT),
            after_storage_id=cursor_storage_id(context.cursor),
        ),
        limit=100,
        ascending=True,
    ).records
    if not records:
        return dg.SkipReason("no new drift_report materializations")
    events = [drift_event(record) for record in records]
    requests = [
        dg.RunRequest(
            run_key=recalibrate_run_key(event),
            job_name=recalibrate_job.name,
            partition_key=event.partition,
            tags={
                "sentiment/trigger": "drift",
                "sentiment/drift_storage_id": str(event.storage_id),
            },
        )
        for event in events
        if event.needs_recalibration
    ]
    return dg.SensorResult(run_requests=requests, cursor=dump_cursor(events[-1].storage_id))


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


# Every daemon loop (5 s at most): the fine-tuned family starts as soon as the retrain ends,
# and an idle tick costs one query of runs.
FOLLOW_UP_INTERVAL_S = 5


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
    description="follow_up_sensor for a retrain_job run that failed after training (e.g. "
    "while scoring the challengers; a gate rejection is a green run): the fine-tuned family "
    "may still pass.",
)
def follow_up_after_failure_sensor(context: dg.RunFailureSensorContext):
    return follow_up_request(context)
