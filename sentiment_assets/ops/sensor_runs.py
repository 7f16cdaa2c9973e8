"""Sensors evaluated, and the runs they request executed, in this process as the daemon would:
a month's decided training (ops/decided_training.py) and the drift demo's landing files.

A request runs as the job it names, else the sensor's own target, with its partition, run
config and tags, plus the tags the daemon adds (the sensor's name, the run key). So a sensor
that reads its own runs back (new_data_sensor follows a landing file's attempts,
training_decision_sensor a decision's training) sees these runs as the daemon's, and a daemon
running beside finds the key taken and does not launch it a second time.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG


def launched(instance: dg.DagsterInstance, request: dg.RunRequest) -> bool:
    """Whether a run already holds the request's run key (Dagster never launches one twice)."""
    return request.run_key is not None and bool(
        instance.get_run_ids(dg.RunsFilter(tags={RUN_KEY_TAG: request.run_key}), limit=1)
    )


def sensor_tick(
    definitions: dg.Definitions,
    instance: dg.DagsterInstance,
    sensor_name: str,
    cursor: str | None,
) -> tuple[list[dg.RunRequest], str | None]:
    """One evaluation of the sensor against `instance` from `cursor`, as the daemon's tick
    makes it: the requests it would launch (none whose run key is taken) and the new cursor."""
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"platform": definitions.resources["platform"]},
    )
    result = definitions.resolve_sensor_def(sensor_name)(context)
    if isinstance(result, dg.SensorResult):
        requests = list(result.run_requests or [])
        cursor = result.cursor if result.cursor is not None else context.cursor
    else:
        requests = [result] if isinstance(result, dg.RunRequest) else []
        cursor = context.cursor
    return [r for r in requests if not launched(instance, r)], cursor


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


def execute(
    definitions: dg.Definitions,
    sensor_name: str,
    request: dg.RunRequest,
    instance: dg.DagsterInstance,
    tags: dict[str, str],
) -> dg.ExecuteInProcessResult:
    """The run the daemon would launch for `sensor_name`'s `request`, executed here; `tags`
    mark it as this process's."""
    job_name = request.job_name or definitions.resolve_sensor_def(sensor_name).job_name
    daemon_tags = {SENSOR_NAME_TAG: sensor_name}
    if request.run_key is not None:
        daemon_tags[RUN_KEY_TAG] = request.run_key
    print(f"   {job_name} for {request.partition_key} (run_key {request.run_key})", flush=True)
    return definitions.resolve_job_def(job_name).execute_in_process(
        partition_key=request.partition_key,
        run_config=request.run_config,
        tags={**request.tags, **daemon_tags, **tags},
        instance=instance,
        raise_on_error=False,
    )
