"""A month's training as its decision says, in this process: what the daemon does for
`sentiment pipeline` and the drift demo.

The month's build ends with its training_decision. The real training_decision_sensor is then
evaluated on this instance (so the command and the daemon make the same request from the
same decision), its retrain_job is executed here, and then the fine-tuned follow-up that the
real follow_up_sensor asks for once the retrain is over. The runs carry the sensor's name and
the decision's key as the daemon's would (ops/sensor_runs.py), so a daemon running beside the
command finds the key taken and does not train the month a second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from sentiment_assets.defs.models.decision import DECISION, training_decision_sensor
from sentiment_assets.lineage import TRAINING_DECISION
from sentiment_assets.ops.sensor_runs import execute, run_status_tick, sensor_tick


@dataclass
class DecidedTraining:
    """What a month's decision led to: the decision, its reasons, the runs it started."""

    decision: str | None
    reasons: str
    runs: list[dg.ExecuteInProcessResult] = field(default_factory=list)

    @property
    def trained(self) -> bool:
        return bool(self.runs)


def latest_decision_id(instance: dg.DagsterInstance) -> int:
    """The storage id of the newest training_decision: a month's build is read after it."""
    records = instance.fetch_materializations(dg.AssetKey(TRAINING_DECISION), limit=1).records
    return records[0].storage_id if records else 0


def decision_of(build: dg.ExecuteInProcessResult) -> tuple[str | None, str]:
    """(train or keep, the reasons) from the build's training_decision, (None, "") without."""
    for event in build.get_asset_materialization_events():
        if event.asset_key.to_user_string() == TRAINING_DECISION:
            metadata = event.materialization.metadata
            return str(metadata[DECISION].value), str(metadata["reasons"].value)
    return None, ""


def train_as_decided(
    definitions: dg.Definitions,
    instance: dg.DagsterInstance,
    build: dg.ExecuteInProcessResult,
    after_storage_id: int,
    tags: dict[str, str],
) -> DecidedTraining:
    """One tick of training_decision_sensor over the decisions newer than `after_storage_id`,
    each request executed here with its follow-up; `tags` mark the runs as this process's.
    A decision whose run key a run already holds (the daemon, or an earlier command, trained
    on it) is not trained again."""
    decision, reasons = decision_of(build)
    requests, _ = sensor_tick(
        definitions, instance, training_decision_sensor.name, str(after_storage_id)
    )
    runs = []
    for request in requests:
        retrain = execute(definitions, training_decision_sensor.name, request, instance, tags)
        runs.append(retrain)
        for follow_up in follow_up_requests(definitions, retrain, instance):
            runs.append(
                execute(definitions, follow_up_sensor_of(retrain), follow_up, instance, tags)
            )
    return DecidedTraining(decision, reasons, runs)


def follow_up_sensor_of(result: dg.ExecuteInProcessResult) -> str:
    """The sensor that follows a finished retrain run up: one for success, one for failure."""
    return "follow_up_sensor" if result.success else "follow_up_after_failure_sensor"


def follow_up_requests(
    definitions: dg.Definitions, result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance
) -> list[dg.RunRequest]:
    """What the daemon's follow-up sensor makes of a finished retrain run: the run of the
    families the retrain left out (the fine-tuned one), if any."""
    sensor = definitions.resolve_sensor_def(follow_up_sensor_of(result))
    outcome = run_status_tick(sensor, instance, result)
    return [outcome] if isinstance(outcome, dg.RunRequest) else []
