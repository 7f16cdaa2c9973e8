"""Healing a home after a crash, before anything else starts (ops/instance.py's `prepare_environment`).

A process killed with -9 leaves behind: its Dagster run marked as running forever, the pool
slots its steps held (so every later run waits on them), MLflow runs that stay RUNNING,
registry versions registered before the step could record their training row, the
artifacts of MLflow runs that failed or were killed, and a promotion torn between the alias
move and its record. This finds runs whose process is gone (the pid in the run's engine
events, checked with /proc so a reused pid is not mistaken for it) and undoes each of those,
touching nothing that belongs to a run whose process still lives; then it makes the record
agree with the registry's `champion` alias.

A registry version is deleted only when MLflow itself says its training failed or was
killed, and never when the history (the warehouse's or the published snapshot's) names it:
an empty or new warehouse is a reason to rebuild, never to delete models.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import dagster as dg
import duckdb
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from sentiment_assets.lib.core.processes import still_running
from sentiment_assets.lib.settings import Settings, is_tracking_server
from sentiment_assets.lib.store.damage import StoreDamaged
from sentiment_assets.lib.store.lake import RUN_ID_LENGTH, leftovers
from sentiment_assets.lib.store.warehouse import connect, ensure_schema
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.promotion import (
    last_recorded_champion,
    reconcile_champion,
    versions_named,
)
from sentiment_assets.lib.versions.publish import (
    HistoryError,
    NoPublishedHistoryError,
    open_history,
    read_champion_file,
    restore_history_from_snapshot,
)

# Tags on the runs a `sentiment` process executes itself: which process, on which machine.
PID_TAG = "sentiment/pid"
HOST_TAG = "sentiment/host"


def this_process_tags() -> dict[str, str]:
    """The tags that mark a run as executed by this process, so recovery can tell when the
    process is gone."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


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
    # MLflow runs (failed or killed, named by no registry version) whose artifacts were removed.
    reclaimed_artifacts_of: list[str] = field(default_factory=list)
    reclaimed_bytes: int = 0
    repaired_records: list[str] = field(default_factory=list)
    # The warehouse could not be read: what was not healed because of it.
    damaged_warehouse: StoreDamaged | None = None

    def summary(self) -> str | None:
        parts = [
            f"{len(self.failed_runs)} dead run(s) marked failed" if self.failed_runs else "",
            f"pool slots freed for {len(self.freed_slots_of)} run(s)"
            if self.freed_slots_of
            else "",
            f"{len(self.killed_mlflow_runs)} MLflow run(s) ended as KILLED"
            if self.killed_mlflow_runs
            else "",
            f"registry versions {self.removed_versions} removed (their training run failed "
            "or was killed, and no history names them)"
            if self.removed_versions
            else "",
            f"{len(self.removed_lake_leftovers)} file(s) of dead lake writers removed"
            if self.removed_lake_leftovers
            else "",
            f"{len(self.removed_dbt_targets)} dbt target folder(s) of ended runs removed"
            if self.removed_dbt_targets
            else "",
            f"artifacts of {len(self.reclaimed_artifacts_of)} failed or killed MLflow run(s) "
            f"removed ({self.reclaimed_bytes / 1e6:.1f} MB)"
            if self.reclaimed_artifacts_of
            else "",
            *self.repaired_records,
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


def _training_failed(client: MlflowClient, mlflow_run_id: str | None) -> bool:
    """MLflow's own word: the run, or a run it is nested in, ended FAILED or KILLED (the
    step was killed before it could record the version, or failed after registering it)."""
    while mlflow_run_id:
        run = client.get_run(mlflow_run_id)
        if run.info.status in ("FAILED", "KILLED"):
            return True
        mlflow_run_id = run.data.tags.get("mlflow.parentRunId")
    return False


def history_versions(settings: Settings) -> set[str]:
    """Every version the warehouse's or the published snapshot's history names. Raises
    StoreDamaged (or HistoryError) when either cannot be read: then nothing may be judged."""
    named: set[str] = set()
    if settings.warehouse_path.exists():
        with connect(settings.warehouse, read_only=True) as con:
            named |= versions_named(con)
    try:
        with closing(open_history(settings.published_dir)) as snapshot:
            named |= versions_named(snapshot)
    except NoPublishedHistoryError:
        pass
    return named


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
    if recovery.damaged_warehouse is not None:
        return
    try:
        named = history_versions(settings)
    except HistoryError:
        return  # an unreadable snapshot protects nothing we could see: judge nothing
    champion = registry.champion(client)
    for info in registry.all_versions(client):
        if info.version in named or (champion and info.version == champion.version):
            continue
        try:
            dagster_run_id = _dagster_run_of(client, info.run_id)
            failed = _training_failed(client, info.run_id)
        except MlflowException:
            continue
        # Versions registered outside Dagster (no run id) are not ours to judge.
        if dagster_run_id is None or _active(instance, dagster_run_id) or not failed:
            continue
        # Its step died or failed between registering and recording it: no metrics, no
        # evaluation, so it must never be promoted or rolled back to.
        client.delete_model_version(registry.REGISTERED_MODEL, info.version)
        shutil.rmtree(
            registry.cached_bundle_path(settings.registry_cache_dir, info.version),
            ignore_errors=True,
        )
        recovery.removed_versions.append(info.version)


def _local_folder(uri: str) -> Path | None:
    parts = urlsplit(uri)
    return Path(url2pathname(parts.path)) if parts.scheme == "file" else None


def _size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _ended_badly(client: MlflowClient, experiment_id: str) -> Iterator[Run]:
    """The experiment's runs MLflow records as FAILED or KILLED, page by page."""
    for status in ("FAILED", "KILLED"):
        token = None
        while True:
            page = client.search_runs(
                [experiment_id], f"attributes.status = '{status}'", page_token=token
            )
            yield from page
            token = page.token
            if not token:
                break


def reclaim_artifacts(instance: dg.DagsterInstance, settings: Settings, recovery: Recovery) -> None:
    """Remove the artifacts of MLflow runs that failed or were killed (a full disk, a killed
    step) and that no registry version names: nothing can ever load them. Only in the home's
    own artifact folder; a tracking server owns its artifacts."""
    if is_tracking_server(settings.mlflow_tracking_uri):
        return
    client = MlflowClient(settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(registry.EXPERIMENT_NAME)
    if experiment is None:
        return
    # Every registered model's versions, not only ours: an error here stops the reclaim.
    versions = client.search_model_versions()
    named_runs = {v.run_id for v in versions}
    sources = [folder for v in versions if (folder := _local_folder(v.source)) is not None]
    root = settings.mlflow_artifacts_dir.resolve()
    for run in _ended_badly(client, experiment.experiment_id):
        folder = _local_folder(run.info.artifact_uri)
        if folder is None or run.info.run_id in named_runs or not folder.is_dir():
            continue
        if not folder.resolve().is_relative_to(root):
            continue
        if any(source.is_relative_to(folder) for source in sources):
            continue
        dagster_run_id = _dagster_run_of(client, run.info.run_id)
        if dagster_run_id is not None and _active(instance, dagster_run_id):
            continue
        recovery.reclaimed_bytes += _size_of(folder)
        shutil.rmtree(folder, ignore_errors=True)
        with suppress(OSError):
            folder.parent.rmdir()  # the run's own folder, left empty
        recovery.reclaimed_artifacts_of.append(run.info.run_id)


def check_warehouse(settings: Settings, recovery: Recovery) -> None:
    """Open the warehouse and read its history, as every start does: a damaged file is
    noted here (the caller says whether that stops the start), not met halfway through."""
    if not settings.warehouse_path.exists():
        return
    try:
        with connect(settings.warehouse, read_only=True) as con:
            versions_named(con)
    except StoreDamaged as damage:
        recovery.damaged_warehouse = damage


def _records_need_repair(settings: Settings, client: MlflowClient) -> bool:
    """A read-only look: is there history to bring back, or a champion the record lacks?"""
    snapshot_has_history = (settings.published_dir / "history").is_dir()
    champion = registry.champion(client)
    if champion is None and not snapshot_has_history:
        return False
    if not settings.warehouse_path.exists():
        return True
    with connect(settings.warehouse, read_only=True) as con:
        try:
            recorded = last_recorded_champion(con)
            empty = con.execute("SELECT count(*) FROM metrics.promotions").fetchone()[0] == 0
        except duckdb.CatalogException:
            return True
    published = read_champion_file(settings.published_dir) or {}
    return (
        (empty and snapshot_has_history)
        or (champion is not None and recorded != champion.version)
        or (champion is not None and str(published.get("version")) != champion.version)
    )


def heal_records(instance: dg.DagsterInstance, settings: Settings, recovery: Recovery) -> None:
    """Bring the published history back into a new warehouse, then reconcile the champion.

    A lake has no writer lock to keep a live promotion out meanwhile: with runs in flight
    there, this waits for the next start.
    """
    if recovery.damaged_warehouse is not None:
        return
    client = MlflowClient(settings.mlflow_tracking_uri)
    if not _records_need_repair(settings, client):
        return
    if settings.uses_lake and instance.get_runs(filters=dg.RunsFilter(statuses=list(ACTIVE))):
        return
    with connect(settings.warehouse) as con:
        ensure_schema(con)
        try:
            restored = restore_history_from_snapshot(con, settings.published_dir)
        except HistoryError as error:
            restored = {}
            recovery.repaired_records.append(f"history not brought back: {error}")
        if restored:
            recovery.repaired_records.append(
                f"{sum(restored.values())} history row(s) brought back from the published "
                "snapshot into a new warehouse"
            )
        recovery.repaired_records += reconcile_champion(client, con, settings.published_dir)


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
    check_warehouse(settings, recovery)
    heal_mlflow(instance, settings, recovery)
    reclaim_artifacts(instance, settings, recovery)
    heal_lake(instance, settings, recovery)
    heal_dbt_targets(instance, settings, recovery)
    heal_records(instance, settings, recovery)
    return recovery
