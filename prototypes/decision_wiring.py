"""PROTOTYPE, outside defs/ so the code location does not load it yet: the month's training
decision as an asset, and the sensor that requests a training once per decision (to move to
sentiment_assets/defs/models/decision.py when the month run is rewired).

The month run would build the data side, `drift_report`, `model_evaluation` and this
`training_decision`, and no model; `training_decision_sensor` then requests `retrain_job`
for a month whose decision is `train`, with the decision's key as run key, so one decision
gives at most one training whatever the ticks (the follow-up of the fine-tuned family stays
with follow_up_sensor, once per retrain run). A month that keeps its champion shows its
decision and reasons on this asset's partition instead of a missing model.
"""

from datetime import UTC, date, datetime

import dagster as dg
import duckdb
from mlflow.tracking import MlflowClient

from sentiment_assets.defs.monitoring.sensors import retrain_job
from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.lib.core.months import month_start
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
from sentiment_assets.lineage import DRIFT_REPORT, SENTIMENT_MODEL
from sentiment_assets.partitions import (
    DUCKDB_POOL,
    MONTHLY_BACKFILL,
    monthly_partitions,
    partition_month,
)

TRAINING_DECISION = "training_decision"
DECISION_KEY = "decision_key"


class DecisionConfig(dg.Config):
    # Empty: SENTIMENT_RETRAIN_POLICY. The Launchpad may decide one run under another policy.
    policy: str = ""


def _latest_report_rows(
    con: duckdb.DuckDBPyConnection, month: date, champion_version: str
) -> list[dict]:
    frame = con.execute(
        "SELECT * FROM metrics.drift_reports WHERE month = ? AND champion_version = ? "
        "QUALIFY created_at = max(created_at) OVER ()",
        [month, champion_version],
    ).df()
    return frame.to_dict("records")


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> object:
    row = con.execute(sql, params).fetchone()
    return row[0] if row else None


def gather_inputs(
    con: duckdb.DuckDBPyConnection, month: date, champion: registry.VersionInfo | None
) -> DecisionInputs:
    """The decision's inputs from the warehouse: the month's latest drift report against the
    champion, its estimate, the labelled rows, and when the month last trained."""
    labelled = _scalar(
        con,
        "SELECT count(*) FROM clean.tweets_clean WHERE month = ? AND label IS NOT NULL",
        [month],
    )
    trained_at = _scalar(
        con, "SELECT max(created_at) FROM metrics.training_runs WHERE trained_through = ?", [month]
    )
    since = (
        (datetime.now(UTC).replace(tzinfo=None) - trained_at).total_seconds()
        if trained_at
        else None
    )
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
        champion_trained_through=month_start(date.fromisoformat(champion.trained_through)),
        reference_accuracy=reference,
        realised_accuracy=realised,
        estimated_accuracy=float(estimated) if estimated is not None else None,
        seconds_since_trained=since,
    )


def decision_metadata(decision: TrainingDecision) -> dict:
    row = decision.row()
    return {
        "decision": decision.decision,
        "policy": decision.policy,
        "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in decision.reasons)),
        "families": row["families"],
        "follow_up_families": row["follow_up_families"],
        "window_months": decision.window_months,
        "champion_version": row["champion_version"],
        "champion_age_months": row["champion_age_months"],
        "drifted_statistics": row["drifted_statistics"],
        DECISION_KEY: decision.key,
    }


@dg.asset(
    name=TRAINING_DECISION,
    partitions_def=monthly_partitions,
    backfill_policy=MONTHLY_BACKFILL,
    deps=[DRIFT_REPORT],
    pool=DUCKDB_POOL,
    group_name="monitoring",
    kinds={"duckdb"},
    description="Whether the month trains (train or keep) under the retraining policy, with "
    "its reasons and inputs; a row of metrics.training_decisions either way.",
)
def training_decision(
    context: dg.AssetExecutionContext,
    config: DecisionConfig,
    warehouse: WarehouseResource,
    platform: PlatformResource,
) -> dg.MaterializeResult:
    settings = platform.settings
    month = partition_month(context)
    champion = registry.champion(MlflowClient())
    with warehouse.connect() as con:
        inputs = gather_inputs(con, month, champion)
        decision = decide_training(
            inputs,
            config.policy or settings.retrain_policy,
            PolicyThresholds.from_settings(settings),
        )
        record_decision(decision, con, settings.published_dir, context.run_id)
    context.log.info(f"{month:%Y-%m}: {decision.decision}: {'; '.join(decision.reasons)}")
    return dg.MaterializeResult(metadata=decision_metadata(decision))


@dg.sensor(
    jobs=[retrain_job],
    minimum_interval_seconds=5,
    description="Requests retrain_job (fast families, the decided window) for each "
    "training_decision that says train, once per decision: its key is the run key.",
)
def training_decision_sensor(context: dg.SensorEvaluationContext):
    after = int(context.cursor or 0)
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(TRAINING_DECISION), after_storage_id=after),
        limit=100,
        ascending=True,
    ).records
    if not records:
        return dg.SkipReason("no new training decisions")
    requests = []
    for record in records:
        metadata = record.asset_materialization.metadata
        if metadata["decision"].value != TRAIN:
            continue
        config = {
            "window_months": int(metadata["window_months"].value),
            "families": str(metadata["families"].value).split(","),
        }
        requests.append(
            dg.RunRequest(
                run_key=str(metadata[DECISION_KEY].value),
                job_name=retrain_job.name,
                partition_key=record.partition_key,
                run_config={"ops": {SENTIMENT_MODEL: {"config": config}}},
                tags={"sentiment/trigger": "decision"},
            )
        )
    return dg.SensorResult(run_requests=requests, cursor=str(records[-1].storage_id))
