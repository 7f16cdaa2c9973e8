"""training_decision: whether a month trains, and the sensor that requests its training.

The month run builds the data side, `drift_report`, the champion's evaluation or estimate
(`model_evaluation`) and this decision, and no model: the retraining policy
(lib/versions/training_decision.py) reads what that monitoring measured and says train or
keep, with its reasons, on the month's partition and in metrics.training_decisions. A month
that keeps its champion therefore shows a decision here, not a missing model.

training_decision_sensor requests `retrain_job` (the fast families, the decided window) for
each decision that says train, with the decision's key as run key: Dagster launches one run
per key, so one decision gives at most one training whatever the ticks. A training that died
is tried again, under a fresh key, when the month is decided again. The fine-tuned family
follows that run through follow_up_sensor (defs/monitoring/sensors.py), once per retrain.
"""

from datetime import date

import dagster as dg
import duckdb
from mlflow.tracking import MlflowClient

from sentiment_assets.defs.monitoring.sensors import retrain_job
from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.lib.core.clock import utc_now
from sentiment_assets.lib.core.months import month_start
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.evaluation import ESTIMATED_EVAL
from sentiment_assets.lib.versions.training_decision import (
    TRAIN,
    DecisionInputs,
    PolicyThresholds,
    TrainingDecision,
    decide_training,
    record_decision,
    report_accuracies,
    statistic_moves,
)
from sentiment_assets.lineage import (
    DRIFT_REPORT,
    MODEL_EVALUATION,
    SENTIMENT_MODEL,
    TRAINING_DECISION,
)
from sentiment_assets.partitions import (
    WAREHOUSE_WRITERS,
    monthly_asset,
    monthly_definitions,
    partition_month,
)

# Metadata keys the sensor reads back from the decision's materialization.
DECISION = "decision"
DECISION_KEY = "decision_key"
FAMILIES = "families"
WINDOW_MONTHS = "window_months"
DECISION_TRIGGER = "decision"
# On each training run: the decision it carries out, whatever its attempt's run key.
DECISION_KEY_TAG = "sentiment/decision_key"
ENDED_WITHOUT_TRAINING = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


class DecisionConfig(dg.Config):
    # Empty: SENTIMENT_RETRAIN_POLICY. The Launchpad may decide one run under another policy
    # (always, on_drift, never).
    policy: str = ""


def _latest_report_rows(
    con: duckdb.DuckDBPyConnection, month: date, champion_version: str
) -> list[dict]:
    """The month's newest drift report against this champion (a month re-reported keeps
    its older rows: only the latest one describes the data as it is)."""
    frame = con.execute(
        "SELECT * FROM metrics.drift_reports WHERE month = ? AND champion_version = ? "
        "QUALIFY created_at = max(created_at) OVER ()",
        [month, champion_version],
    ).df()
    return frame.to_dict("records")


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> object:
    # fetchall, not fetchone: the lake's connection refuses the next query while a result
    # is only partly fetched.
    rows = con.execute(sql, params).fetchall()
    return rows[0][0] if rows else None


def gather_inputs(
    con: duckdb.DuckDBPyConnection, month: date, champion: registry.VersionInfo | None
) -> DecisionInputs:
    """The decision's inputs from the warehouse: the month's latest drift report against the
    champion, the champion's estimate, the labelled rows, and when the month last trained."""
    labelled = _scalar(
        con,
        "SELECT count(*) FROM clean.tweets_clean WHERE month = ? AND label IS NOT NULL",
        [month],
    )
    trained_at = _scalar(
        con, "SELECT max(created_at) FROM metrics.training_runs WHERE trained_through = ?", [month]
    )
    since = (utc_now() - trained_at).total_seconds() if trained_at is not None else None
    if champion is None:
        return DecisionInputs(month, int(labelled or 0), seconds_since_trained=since)
    rows = _latest_report_rows(con, month, champion.version)
    reference, realised = report_accuracies(rows)
    estimated = _scalar(
        con,
        "SELECT accuracy FROM metrics.model_evaluations WHERE eval_month = ? "
        "AND model_version = ? AND eval_set = ? ORDER BY created_at DESC LIMIT 1",
        [month, champion.version, ESTIMATED_EVAL],
    )
    return DecisionInputs(
        month=month,
        labelled_rows=int(labelled or 0),
        statistics=statistic_moves(rows),
        champion_version=champion.version,
        champion_trained_through=month_start(champion.trained_through),
        reference_accuracy=reference,
        realised_accuracy=realised,
        estimated_accuracy=float(estimated) if estimated is not None else None,
        seconds_since_trained=since,
    )


def decision_metadata(decision: TrainingDecision) -> dict:
    """What the month's partition shows, and what training_decision_sensor reads back."""
    row = decision.row()
    return {
        DECISION: decision.decision,
        "policy": decision.policy,
        "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in decision.reasons)),
        FAMILIES: row["families"],
        "follow_up_families": row["follow_up_families"],
        WINDOW_MONTHS: decision.window_months or 0,
        "window_start": str(row["window_start"] or ""),
        "champion_version": str(row["champion_version"] or ""),
        "champion_age_months": row["champion_age_months"],
        "drifted_statistics": row["drifted_statistics"],
        DECISION_KEY: decision.key,
    }


def decide_month(
    con: duckdb.DuckDBPyConnection, month: date, policy: str, settings: Settings
) -> TrainingDecision:
    """The month's decision under `policy` (empty: the settings' policy), against the
    champion the registry serves now."""
    # The settings' store, not MLflow's process-wide URI: a process that builds a second home
    # (the tests, the benchmarks) would otherwise read the first home's champion.
    champion = registry.champion(MlflowClient(settings.mlflow_tracking_uri))
    inputs = gather_inputs(con, month, champion)
    return decide_training(
        inputs, policy or settings.retrain_policy, PolicyThresholds.from_settings(settings)
    )


@monthly_asset(
    name=TRAINING_DECISION,
    # The champion's realised accuracy is in drift_report, its label-free estimate in
    # model_evaluation: both are measured before the month is decided.
    deps=[DRIFT_REPORT, MODEL_EVALUATION],
    pool=WAREHOUSE_WRITERS,
    group_name="monitoring",
    kinds={"duckdb"},
    description="Whether the month trains (train or keep) under the retraining policy, with "
    "its reasons and inputs; a row of metrics.training_decisions either way. "
    "training_decision_sensor requests retrain_job for a `train`.",
)
def training_decision(
    context: dg.AssetExecutionContext,
    config: DecisionConfig,
    warehouse: WarehouseResource,
    platform: PlatformResource,
) -> dg.MaterializeResult:
    settings = platform.settings
    month = partition_month(context)
    try:
        with warehouse.connect() as con:
            decision = decide_month(con, month, config.policy, settings)
            record_decision(decision, con, settings.published_dir, context.run_id)
    except ValueError as error:  # an unknown policy typed in the Launchpad
        raise dg.Failure(str(error)) from None
    context.log.info(f"{month:%Y-%m}: {decision.decision}: {'; '.join(decision.reasons)}")
    return dg.MaterializeResult(metadata=decision_metadata(decision))


def training_run_key(instance: dg.DagsterInstance, key: str) -> str | None:
    """The run key of the decision's next training: None while one is queued, running or
    done. Dagster never launches a run key twice, so a training that died (a killed process,
    marked failed at the next start) is given a fresh key, or the month decided again on the
    same inputs would stay untrained for good."""
    runs = instance.get_runs(dg.RunsFilter(tags={DECISION_KEY_TAG: key}))
    if any(run.status not in ENDED_WITHOUT_TRAINING for run in runs):
        return None
    return f"{key}-retry{len(runs)}" if runs else key


def training_request(
    record: dg.EventLogRecord, settings: Settings, instance: dg.DagsterInstance
) -> dg.RunRequest | None:
    """retrain_job for a decision that says train (None for keep, or when its training is
    under way or done): the fast families on the decided window, with the fine-tuned
    family's CPU budget for the follow-up to inherit."""
    metadata = record.asset_materialization.metadata
    if metadata[DECISION].value != TRAIN:
        return None
    key = str(metadata[DECISION_KEY].value)
    run_key = training_run_key(instance, key)
    if run_key is None:
        return None
    config = {
        WINDOW_MONTHS: int(metadata[WINDOW_MONTHS].value),
        FAMILIES: str(metadata[FAMILIES].value).split(","),
        "finetune_cpu_budget_seconds": settings.finetune_cpu_budget_seconds,
    }
    return dg.RunRequest(
        run_key=run_key,
        job_name=retrain_job.name,
        partition_key=record.partition_key,
        run_config={"ops": {SENTIMENT_MODEL: {"config": config}}},
        tags={"sentiment/trigger": DECISION_TRIGGER, DECISION_KEY_TAG: key},
    )


# Every daemon loop (5 s at most): an idle tick is one indexed query of the event log.
DECISION_SENSOR_INTERVAL_S = 5


@dg.sensor(
    jobs=[retrain_job],
    minimum_interval_seconds=DECISION_SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests retrain_job (fast families, the decided window) for each "
    "training_decision that says train, once per decision: its key is the run key (a fresh "
    "one when the decision's training died and the month is decided again).",
)
def training_decision_sensor(context: dg.SensorEvaluationContext, platform: PlatformResource):
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(TRAINING_DECISION), after_storage_id=int(context.cursor or 0)
        ),
        limit=100,
        ascending=True,
    ).records
    if not records:
        return dg.SkipReason("no new training decisions")
    settings = platform.settings
    requests = [
        request for r in records if (request := training_request(r, settings, context.instance))
    ]
    return dg.SensorResult(run_requests=requests, cursor=str(records[-1].storage_id))


@dg.definitions
def defs() -> dg.Definitions:
    return monthly_definitions(training_decision, sensors=[training_decision_sensor])
