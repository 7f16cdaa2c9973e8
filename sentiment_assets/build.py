"""Building months in this process: what `sentiment pipeline` and the drift demo run.

Runs are recorded in the instance under DAGSTER_HOME, so they show up in the Dagster UI
afterwards, exactly like runs launched from it.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence

import dagster as dg

from sentiment_assets.environment import current_settings, export
from sentiment_assets.lib.settings import REPO_ROOT, Settings
from sentiment_assets.lineage import MODEL_CHALLENGER


def prepare_environment() -> Settings:
    """Resolve the settings once and hand the same absolute paths to every child process."""
    settings = current_settings()
    export(settings)
    for folder in (
        settings.home,
        settings.dagster_home,
        settings.landing_dir,
        settings.published_dir,
    ):
        folder.mkdir(parents=True, exist_ok=True)
    # dagster.yaml is read only from DAGSTER_HOME: the repo keeps the template.
    shutil.copyfile(REPO_ROOT / "dagster.yaml", settings.dagster_home / "dagster.yaml")
    return settings


def build_months(
    months: Sequence[str] | None = None, selection: Sequence[str] | None = None
) -> list[dg.ExecuteInProcessResult]:
    """Materialize every asset (or `selection`) for each month in order: a sequential backfill.

    Months run oldest first because a month's model reads the months before it and its
    evaluation needs the previous month's model.
    """
    from sentiment_assets.definitions import defs
    from sentiment_assets.partitions import monthly_partitions

    definitions = defs()
    assets = list(definitions.assets or [])
    partition_keys = list(months) if months else monthly_partitions.get_partition_keys()
    instance = dg.DagsterInstance.get()
    results = []
    for key in partition_keys:
        print(f"== building {key}", flush=True)
        result = dg.materialize(
            assets,
            partition_key=key,
            instance=instance,
            resources=definitions.resources,
            selection=[dg.AssetKey(k) for k in selection] if selection else None,
            raise_on_error=False,
        )
        if not result.success:
            if not only_the_gate_failed(result):
                raise SystemExit(f"the build of {key} failed (run {result.run_id})")
            print(f"== {key}: the challenger did not pass the promotion gate; champion unchanged")
        results.append(result)
    return results


def only_the_gate_failed(result: dg.ExecuteInProcessResult) -> bool:
    """A rejected challenger fails its step by design (a blocking check); nothing else may."""
    failures = [e for e in result.all_events if e.is_step_failure]
    return bool(failures) and all(
        e.step_key == MODEL_CHALLENGER
        and e.step_failure_data.error.cls_name == "DagsterAssetCheckFailedError"
        for e in failures
    )
