"""A month's training as its decision says, in this process: what the daemon does for
`sentiment pipeline` and the drift demo.

The month's build ends with its training_decision. The real training_decision_sensor is then
evaluated on this instance (so the command and the daemon make the same request from the
same decision), its retrain_job is executed here, and then the fine-tuned follow-up that the
real follow_up_sensor asks for once the retrain is over. The runs carry the sensor's name and
the decision's key as the daemon's would, so a daemon running beside the command finds the
key taken and does not train the month a second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG

from sentiment_assets.defs.models.decision import DECISION, training_decision_sensor
from sentiment_assets.lineage import TRAINING_DECISION


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
    each request executed here with its follow-up; `tags` mark the runs as this process's."""
    decision, reasons = decision_of(build)
    context = dg.build_sensor_context(
        instance=instance,
        cursor=str(after_storage_id),
        resources={"platform": definitions.resources["platform"]},
    )
    result = training_decision_sensor(context)
    requests = [] if isinstance(result, dg.SkipReason) else list(result.run_requests or [])
    runs = []
    for request in requests:
        if instance.get_run_ids(dg.RunsFilter(tags={RUN_KEY_TAG: request.run_key}), limit=1):
            continue  # the daemon (or an earlier command) already trained on this decision
        sensor_tags = {RUN_KEY_TAG: request.run_key, SENSOR_NAME_TAG: training_decision_sensor.name}
        retrain = execute(definitions, request, instance, {**tags, **sensor_tags})
        runs.append(retrain)
        for follow_up in follow_up_requests(definitions, retrain, instance):
            runs.append(execute(definitions, follow_up, instance, tags))
    return DecidedTraining(decision, reasons, runs)


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


def follow_up_requests(
    definitions: dg.Definitions, result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance
) -> list[dg.RunRequest]:
    """What the daemon's follow-up sensor makes of a finished retrain run: the run of the
    families the retrain left out (the fine-tuned one), if any."""
    name = "follow_up_sensor" if result.success else "follow_up_after_failure_sensor"
    outcome = run_status_tick(definitions.resolve_sensor_def(name), instance, result)
    return [outcome] if isinstance(outcome, dg.RunRequest) else []


def execute(
    definitions: dg.Definitions,
    request: dg.RunRequest,
    instance: dg.DagsterInstance,
    tags: dict[str, str],
) -> dg.ExecuteInProcessResult:
    job_name = request.job_name or "follow_up_job"
    print(f"   {job_name} for {request.partition_key} (run_key {request.run_key})", flush=True)
    return definitions.resolve_job_def(job_name).execute_in_process(
        partition_key=request.partition_key,
        run_config=request.run_config,
        tags={**request.tags, **tags},
        instance=instance,
        raise_on_error=False,
    )
