"""Healing a home after a crash, before anything else starts (ops/instance.py's `prepare_environment`).

A process killed with -9 leaves behind: its Dagster run marked as running forever, the pool
slots its steps held (so every later run waits on them), MLflow runs that stay RUNNING, and
registry versions registered before the step could record their training row. This finds
runs whose process is gone (the pid in the run's engine events, checked with /proc so a
reused pid is not mistaken for it) and undoes each of those, touching nothing that belongs
to a run whose process still lives.
"""

from __future__ import annotations

import shutil
import socket
import time
from dataclasses import dataclass, field

import dagster as dg
import duckdb
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from sentiment_assets.lib.core.processes import still_running
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.store.lake import RUN_ID_LENGTH, leftovers
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.lib.versions import registry

# Tags on the runs a `sentiment` process executes itself: which process, on which machine.
PID_TAG = "sentiment/pid"
HOST_TAG = "sentiment/host"
ACTIVE = frozenset(
    {dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING}
)


@dataclass
class Recovery:
    failed_runs: list[str] = field(default_factory=list)
    freed_slots_of: list[str] = field(default_factory=list)
    killed_mlflow_runs: list[str] = field(default_factory=list)
    removed_versions: list[str] = field(default_factory=list)
    removed_lake_leftovers: list[str] = field(default_factory=list)
    removed_dbt_targets: list[str] = field(default_factory=list)

    def summary(self) -> str | None:
        parts = [
            f"{len(self.failed_runs)} dead run(s) marked failed" if self.failed_runs else "",
            f"pool slots freed for {len(self.freed_slots_of)} run(s)"
            if self.freed_slots_of
            else "",
            f"{len(self.killed_mlflow_runs)} MLflow run(s) ended as KILLED"
            if self.killed_mlflow_runs
            else "",
            f"registry versions {self.removed_versions} removed (no training row)"
            if self.removed_versions
            else "",
            f"{len(self.removed_lake_leftovers)} file(s) of dead lake writers removed"
            if self.removed_lake_leftovers
            else "",
            f"{len(self.removed_dbt_targets)} dbt target folder(s) of ended runs removed"
            if self.removed_dbt_targets
            else "",
        ]
        found = [p for p in parts if p]
        return "recovered from a crash: " + "; ".join(found) if found else None


def run_process(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, when it was recorded) of the process that executes the run, if recorded."""
    for entry in reversed(instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)):
        pid = entry.dagster_event.engine_event_data.metadata.get("pid")
        if pid is not None:
            return int(pid.value), entry.timestamp
    return None


def runs_here(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Whether the run's process lives on this machine, so /proc can speak for it: runs a
    `sentiment` process executed here, or runs the local default launcher started. A run on
    another machine (a remote launcher or executor) is left to Dagster's run monitoring."""
    if HOST_TAG in run.tags:
        return run.tags[HOST_TAG] == socket.gethostname()
    return isinstance(instance.run_launcher, dg.DefaultRunLauncher)


def is_dead(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """A run marked active, executing on this machine, whose process is gone."""
    if run.status not in ACTIVE or not runs_here(instance, run):
        return False
    seen = run_process(instance, run.run_id)
    return seen is not None and not still_running(*seen)


def _active(instance: dg.DagsterInstance, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id)
    return run is not None and run.status in ACTIVE


def heal_instance(instance: dg.DagsterInstance, recovery: Recovery) -> None:
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=list(ACTIVE))):
        if is_dead(instance, run):
            instance.report_run_failed(
                run, message="its process is gone (killed or crashed): marked failed on restart"
            )
            recovery.failed_runs.append(run.run_id)
    # Slots held or awaited by runs that no longer run: the dead ones, and runs someone
    # marked failed by hand (which does not free their slots).
    storage = instance.event_log_storage
    for key in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(key)
        holders = {s.run_id for s in info.claimed_slots} | {p.run_id for p in info.pending_steps}
        for run_id in sorted(holders):
            if not _active(instance, run_id):
                storage.free_concurrency_slots_for_run(run_id)
                recovery.freed_slots_of.append(run_id)


def _dagster_run_of(client: MlflowClient, mlflow_run_id: str | None) -> str | None:
    """The Dagster run an MLflow run (or its parent) belongs to."""
    while mlflow_run_id:
        tags = client.get_run(mlflow_run_id).data.tags
        if tags.get("dagster_run_id"):
            return tags["dagster_run_id"]
        mlflow_run_id = tags.get("mlflow.parentRunId")
    return None


def _recorded_versions(settings: Settings) -> set[str] | None:
    if not settings.warehouse_path.exists():
        return None
    with connect(settings.warehouse, read_only=True) as con:
        try:
            rows = con.execute("SELECT DISTINCT model_version FROM metrics.training_runs")
        except duckdb.CatalogException:
            return None
        return {version for (version,) in rows.fetchall()}


def heal_mlflow(instance: dg.DagsterInstance, settings: Settings, recovery: Recovery) -> None:
    client = MlflowClient(settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(registry.EXPERIMENT_NAME)
    if experiment is None:
        return
    running = client.search_runs(
        [experiment.experiment_id], filter_string="attributes.status = 'RUNNING'"
    )
    for run in running:
        dagster_run_id = _dagster_run_of(client, run.info.run_id)
        if dagster_run_id and not _active(instance, dagster_run_id):
            client.set_terminated(run.info.run_id, status="KILLED")
            recovery.killed_mlflow_runs.append(run.info.run_id)
    recorded = _recorded_versions(settings)
    if recorded is None:
        return
    champion = registry.champion(client)
    for info in registry.all_versions(client):
        if info.version in recorded or (champion and info.version == champion.version):
            continue
        try:
            dagster_run_id = _dagster_run_of(client, info.run_id)
        except MlflowException:
            continue
        # Versions registered outside Dagster (no run id) are not ours to judge.
        if dagster_run_id is None or _active(instance, dagster_run_id):
            continue
        # Its step died between registering and recording it: no metrics, no evaluation,
        # so it must never be promoted or rolled back to.
        client.delete_model_version(registry.REGISTERED_MODEL, info.version)
        shutil.rmtree(
            registry.cached_bundle_path(settings.registry_cache_dir, info.version),
            ignore_errors=True,
        )
        recovery.removed_versions.append(info.version)


def abandon_runs_of(instance: dg.DagsterInstance, pid: int, why: str) -> list[str]:
    """Cancel the active runs this process started (tag PID_TAG) and give up their slots."""
    abandoned = []
    for run in instance.get_runs(
        filters=dg.RunsFilter(tags={PID_TAG: str(pid)}, statuses=list(ACTIVE))
    ):
        instance.report_run_canceled(run, message=why)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        abandoned.append(run.run_id)
    return abandoned


def heal_lake(instance: dg.DagsterInstance, settings: Settings, recovery: Recovery) -> None:
    """Remove the scratch databases and staging files of lake writers that died (a dbt
    scratch database holds a copy of the clean tables: too big to leave behind)."""
    if not settings.uses_lake:
        return
    lake = settings.warehouse
    for path in leftovers(lake, lambda run_id: _active(instance, run_id), time.time()):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        recovery.removed_lake_leftovers.append(str(path.relative_to(lake.root)))


def heal_dbt_targets(instance: dg.DagsterInstance, settings: Settings, recovery: Recovery) -> None:
    """Remove dbt target folders (~2 MB each) that their step could not remove: it was
    killed, or the disk was full. Each is named after its run; a live run keeps its own."""
    root = settings.dbt_target_dir
    if not root.is_dir():
        return
    for path in sorted(root.iterdir()):
        if not _active(instance, path.name[:RUN_ID_LENGTH]):
            shutil.rmtree(path, ignore_errors=True)
            recovery.removed_dbt_targets.append(path.name)


def recover(instance: dg.DagsterInstance, settings: Settings) -> Recovery:
    recovery = Recovery()
    heal_instance(instance, recovery)
    heal_mlflow(instance, settings, recovery)
    heal_lake(instance, settings, recovery)
    heal_dbt_targets(instance, settings, recovery)
    return recovery
