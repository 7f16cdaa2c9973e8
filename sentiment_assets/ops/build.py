"""Building months in this process: what `sentiment pipeline` and the drift demo run; each
month trains as its training decision says (ops/decided_training.py).

Runs are recorded in the instance under DAGSTER_HOME, so they show up in the Dagster UI
afterwards, exactly like runs launched from it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dagster as dg

# Internal to Dagster (no public API says whether an interrupt was captured), but the flag is
# the only trace an ignored interrupt leaves; tests/reliability/test_interrupt_while_waiting.py
# fails if it stops working.
from dagster._utils.interrupts import check_captured_interrupt

from sentiment_assets.definitions import defs
from sentiment_assets.defs.platform.jobs import MONTH_BUILD
from sentiment_assets.environment import current_settings
from sentiment_assets.lib.data import synthetic
from sentiment_assets.lib.data.landing import landing_files
from sentiment_assets.lib.data.sources import months_in_source
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.store.damage import DUCKDB_DAMAGE, WAREHOUSE_NEXT_STEP, sqlite_path
from sentiment_assets.lib.versions.backup import AUTOMATIC, make_backup
from sentiment_assets.ops.decided_training import (
    DecidedTraining,
    latest_decision_id,
    train_as_decided,
)
from sentiment_assets.ops.recovery import abandon_runs_of, this_process_tags
from sentiment_assets.partitions import loaded_months


def months_with_data(settings: Settings) -> list[str]:
    """Partition keys of the months that hold tweets (the source's and the landing files'),
    oldest first: what `sentiment pipeline` builds when no month is named."""
    found = set(
        synthetic.months(settings.synthetic)
        if settings.is_synthetic
        else months_in_source(settings.source)
    )
    for path in landing_files(settings.landing_dir):
        try:
            found |= set(months_in_source(str(path)))
        except Exception:  # raw_tweets quarantines an unreadable file and names it
            continue
    loaded = loaded_months(settings)
    return [m.isoformat() for m in sorted(found) if loaded.first <= m <= loaded.last]


# Times a stage (its name) of a month (its partition key): `sentiment pipeline` prints its
# progress through it.
StageTimer = Callable[[str, str], contextlib.AbstractContextManager[None]]


def untimed(_month: str, _stage: str) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


@dataclass
class MonthBuild:
    """A month's build run and, for a whole month's build, the training its decision led to."""

    month: str
    build: dg.ExecuteInProcessResult
    training: DecidedTraining | None = None

    @property
    def runs(self) -> list[dg.ExecuteInProcessResult]:
        return [self.build, *(self.training.runs if self.training else [])]


def build_months(
    months: Sequence[str] | None = None,
    selection: Sequence[str] | None = None,
    stage: StageTimer = untimed,
) -> list[MonthBuild]:
    """Materialize each month's data and monitoring (or `selection`) in order, then, for a
    whole month, train as its training_decision says: a sequential backfill.

    Months run oldest first because a month is judged against the champion the months
    before it made. Without `months`: every month with data.
    """
    definitions = defs()
    assets = list(definitions.assets or [])
    partition_keys = list(months) if months else months_with_data(current_settings())
    instance = dg.DagsterInstance.get()
    tags = this_process_tags()
    built = []
    with InterruptWatchdog(instance):
        for key in partition_keys:
            print(f"== building {key}", flush=True)
            decided_after = latest_decision_id(instance)
            with stage(key, "data and monitoring"):
                result = dg.materialize(
                    assets,
                    partition_key=key,
                    instance=instance,
                    resources=definitions.resources,
                    selection=[dg.AssetKey(k) for k in selection] if selection else MONTH_BUILD,
                    raise_on_error=False,
                    tags=tags,
                )
            stop_unless_done(key, result)
            month = MonthBuild(key, result)
            if not selection:
                with stage(key, "training"):
                    month.training = train_as_decided(
                        definitions, instance, result, decided_after, tags
                    )
                print(f"== {key}: {month.training.decision}\n{month.training.reasons}", flush=True)
                for run in month.training.runs:
                    stop_unless_done(key, run)
            built.append(month)
    return built


def stop_unless_done(key: str, result: dg.ExecuteInProcessResult) -> None:
    """Ends the command on a failed run, with the damage it met when that is why (a
    challenger the gate rejects is a decision: its run succeeds)."""
    if result.success:
        return
    damage = damage_reported(result)
    if damage:
        raise SystemExit(f"error: the build of {key} stopped: {damage}")
    raise SystemExit(f"the build of {key} failed (run {result.run_id})")


class InterruptWatchdog:
    """Makes Ctrl-C and SIGTERM stop a build that waits on a pool slot.

    During a run Dagster only records an interrupt, to raise it inside the next step; a run
    whose next step waits for a pool slot held elsewhere would wait on, deaf to the signal.
    If the recorded interrupt is still unanswered after GRACE_S, this thread cancels the
    process's runs, gives up their slots, and ends the process.
    """

    GRACE_S = 3.0
    POLL_S = 0.25

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self._instance = instance
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="interrupt-watchdog", daemon=True)

    def __enter__(self) -> InterruptWatchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        since = None
        while not self._stop.wait(self.POLL_S):
            if not check_captured_interrupt():
                since = None
                continue
            since = since or time.monotonic()
            if time.monotonic() - since >= self.GRACE_S:
                abandoned = abandon_runs_of(
                    self._instance, os.getpid(), "interrupted (Ctrl-C or SIGTERM) while waiting"
                )
                print(f"interrupted: runs {abandoned} canceled, their pool slots freed", flush=True)
                # The executor's loop would never return: leave without it.
                os._exit(130)


def damage_reported(result: dg.ExecuteInProcessResult) -> str | None:
    """The one-line StoreDamaged message a failed step raised (or the DuckDB damage it met,
    such as dbt's), if any: the person then reads which file and what next, not a run id."""
    settings = current_settings()
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        error = event.step_failure_data.error
        while error is not None:
            if error.cls_name == "StoreDamaged":
                return error.message.split(": ", 1)[-1].strip()
            line = next((s for s in error.message.splitlines() if s.strip()), "")
            if any(sign in error.message.lower() for sign in DUCKDB_DAMAGE):
                return (
                    f"{settings.warehouse_path} is damaged ({line.strip()}): {WAREHOUSE_NEXT_STEP}"
                )
            error = error.cause or error.context
    return None


def backup_before_build(settings: Settings) -> None:
    """The automatic backup `sentiment pipeline` makes first (settings.backups_keep of them
    are kept): a home that holds nothing yet has nothing to back up."""
    mlflow_db = sqlite_path(settings.mlflow_tracking_uri)
    stores = (settings.warehouse_path, settings.published_dir, *([mlflow_db] if mlflow_db else []))
    if settings.backups_keep <= 0 or not any(path.exists() for path in stores):
        return
    backup = make_backup(settings, AUTOMATIC, keep_automatic=settings.backups_keep)
    print(f"== backed up the stores: {backup.describe()}", flush=True)
