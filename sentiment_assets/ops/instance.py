"""Preparing a home's Dagster instance before anything else runs in it, healing it first.

Every entry point calls `prepare_environment` first; the healing itself is ops/recovery.py.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from sentiment_assets.environment import current_settings, export
from sentiment_assets.lib.core.atomic import exclusive_lock, write_text
from sentiment_assets.lib.settings import PROD, REPO_ROOT, Settings
from sentiment_assets.lib.store.damage import (
    RESTORE_HINT,
    StoreDamaged,
    sqlite_path,
    sqlite_problem,
)
from sentiment_assets.ops.recovery import recover

INIT_LOCK = ".init.lock"


def prepare_environment(serving: bool = False) -> Settings:
    """Resolve the settings once, hand the same absolute paths to every child process, and
    create the Dagster instance's storage.

    Every entry point calls this first. Dagster's SQLite storage is not safe to create from
    two processes at once (duplicate tables, two alembic heads), so the first start creates
    it under a file lock and later ones find it ready. Under the same lock it heals what a
    killed process left behind (sentiment_assets.ops.recovery).

    A damaged warehouse raises lib.store.damage.StoreDamaged (one line: the file, the next
    step), except when `serving`: the app serves from the registry and the published
    snapshot, which never need the warehouse, so serving goes on with a warning.
    """
    settings = current_settings()
    export(settings)
    check_mlflow_store(settings)
    for folder in (
        settings.home,
        settings.dagster_home,
        settings.landing_dir,
        settings.published_dir,
    ):
        folder.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(settings.dagster_home / INIT_LOCK):
        # dagster.yaml is read only from DAGSTER_HOME: the repo keeps the template.
        write_text(settings.dagster_home / "dagster.yaml", instance_template(settings).read_text())
        with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
            # Touch each storage, so each creates its tables here, under the lock.
            instance.get_runs(limit=1)
            instance.event_log_storage.get_maximum_record_id()
            instance.all_instigator_state()
            # A crash of an earlier process must not block this one (lib docs in recovery).
            recovery = recover(instance, settings)
    summary = recovery.summary()
    if summary:
        print(summary, flush=True)
    if recovery.damaged_warehouse is not None:
        if not serving:
            raise recovery.damaged_warehouse
        print(f"warning: {recovery.damaged_warehouse} (serving goes on)", flush=True)
    return settings


def check_mlflow_store(settings: Settings) -> None:
    """A damaged mlflow.db stops every start with one line (SQLite's quick check reads each
    page: a fraction of a second for a home's store), before MLflow meets it mid-way."""
    path = sqlite_path(settings.mlflow_tracking_uri)
    problem = sqlite_problem(path) if path is not None else None
    if problem:
        raise StoreDamaged(path, problem, RESTORE_HINT)


def instance_template(settings: Settings) -> Path:
    """The repo's dagster.yaml, or under the prod profile deploy/dagster.prod.yaml (storage
    on PostgreSQL, from DAGSTER_PG_URL)."""
    if settings.profile == PROD:
        return REPO_ROOT / "deploy" / "dagster.prod.yaml"
    return REPO_ROOT / "dagster.yaml"
