"""new_data_sensor: a file dropped into SENTIMENT_HOME/landing gets its months rebuilt, and is
followed until its rows reached each month's clean tables.

The sensor owns the whole life of a landing file version (lib/data/landing.py): it takes a file
once it stopped changing, requests one run per month, reads back from the instance what each
run did, retries a failed or cancelled attempt with backoff, quarantines the file after the
last attempt, and records every state in raw.landing_files. Why here and not in a run-status
sensor or in the last asset of the run: a run killed with its process (a daemon restart, a
redeploy) records nothing itself, and a second sensor would keep a second cursor about the
same files; one evaluation that reads run records sees killed, failed and cancelled runs alike.

Dagster's own run retries (the `dagster/max_retries` tag) are not used for these runs: they
retry at once, without backoff, with a run the sensor did not request (so its attempt count
would no longer be the file's), and they cannot quarantine the file with the reason.
"""

import os
import time
from dataclasses import replace
from pathlib import Path

import dagster as dg
from dagster._core.events import DagsterEventType

from sentiment_assets.defs.ingest.assets import STILL_CHANGING
from sentiment_assets.defs.platform.jobs import EVENT_ANSWERS
from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.lib.data.landing import (
    LEDGER_TABLE,
    OPEN_STATES,
    QUARANTINE,
    QUARANTINED,
    REMOVED,
    REQUESTED,
    SUPERSEDED,
    LandingCursor,
    MonthRun,
    RetryPolicy,
    Sighting,
    Tracked,
    advance,
    attention,
    exhausted,
    file_fingerprint,
    landing_files,
    quarantine,
    quarantined_files,
    record_ledger,
    retry_due,
)
from sentiment_assets.lib.data.sources import months_in_source
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.store.warehouse import connect, ensure_schema
from sentiment_assets.lineage import RAW_TWEETS, TWEETS_CLEAN
from sentiment_assets.partitions import (
    WAREHOUSE_WRITERS,
    latest_plausible_month,
    loaded_months,
)

# Everything that depends on a month's raw data, up to its training decision, for
# new_data_sensor's runs: training follows the decision, the prior adjustment drift_sensor.
INGEST_SELECTION = dg.AssetSelection.assets(RAW_TWEETS).downstream() - EVENT_ANSWERS
# Tags of a run requested for a landing file version: the sensor finds its runs by them.
FILE_TAG = "sentiment/landing_file"
FINGERPRINT_TAG = "sentiment/landing_fingerprint"
ATTEMPT_TAG = "sentiment/landing_attempt"
LANDING_CHECK = "landing_files_built"
# The sensor waits this long for the warehouse lock to record states; a busy warehouse
# leaves them in the cursor for the next tick (dbt retries its own open meanwhile).
LEDGER_LOCK_WAIT_S = 5.0
SENSOR_INTERVAL_S = 30
FINISHED = frozenset(
    {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
)


def policy_of(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        settings.landing_max_attempts,
        settings.landing_retry_seconds,
        settings.landing_request_timeout_seconds,
    )


def first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""


def run_error(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """Why a run ended without building: its first step failure, else its own end event."""
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE):
        error = entry.dagster_event.step_failure_data.error
        if error is not None:
            return f"{entry.step_key}: {first_line(error.message)}"
    ended = instance.all_logs(
        run.run_id, of_type={DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED}
    )
    message = first_line(ended[-1].message or "") if ended else ""
    return message or f"run {run.status.value.lower()}"


def month_run(instance: dg.DagsterInstance, run: dg.DagsterRun, name: str) -> MonthRun:
    materialized: dict[str, dict] = {}
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.asset_materialization
        materialized[materialization.asset_key.path[-1]] = materialization.metadata
    raw = materialized.get(RAW_TWEETS)
    skipped = raw.get(STILL_CHANGING) if raw is not None else None
    loaded = raw is not None and name not in (skipped.value if skipped is not None else [])
    built = loaded and TWEETS_CLEAN in materialized
    finished = run.status in FINISHED
    error = ""
    if finished and not built:
        error = (
            "raw_tweets left the file out: it was still being written"
            if raw is not None and not loaded
            else run_error(instance, run)
        )
    return MonthRun(run.run_id, finished, loaded, built, error)


def attempt_runs(instance: dg.DagsterInstance, tracked: Tracked) -> dict[str, MonthRun | None]:
    """The runs of the tracked version's current attempt, by month (newest run per month)."""
    tags = {
        FILE_TAG: tracked.name,
        FINGERPRINT_TAG: tracked.fingerprint,
        ATTEMPT_TAG: str(tracked.attempts),
    }
    found: dict[str, MonthRun | None] = dict.fromkeys(tracked.pending_months)
    for run in instance.get_runs(filters=dg.RunsFilter(tags=tags)):
        month = run.tags.get("dagster/partition")
        if month in found and found[month] is None:
            found[month] = month_run(instance, run, tracked.name)
    return found


def requests_for(tracked: Tracked) -> list[dg.RunRequest]:
    """One run per month still to build. The run_key holds the attempt: Dagster never
    launches a run_key twice, so a retry with the first attempt's key would be dropped."""
    return [
        dg.RunRequest(
            run_key=f"landing-{tracked.name}-{tracked.fingerprint}-{month}-{tracked.attempts}",
            partition_key=month,
            tags={
                "sentiment/trigger": "new_data",
                FILE_TAG: tracked.name,
                FINGERPRINT_TAG: tracked.fingerprint,
                ATTEMPT_TAG: str(tracked.attempts),
            },
        )
        for month in tracked.pending_months
    ]


def file_months(context: dg.SensorEvaluationContext, settings: Settings, path: Path) -> list[str]:
    """The partitions the file has rows in; an unreadable file gets the last month's run,
    whose raw_tweets fails naming it and quarantines it. A file with a month after the
    partitions waits (none requested): the definitions loaded again (the daemon does every
    minute) include its month, and then every month of it is requested at once."""
    loaded = loaded_months(settings)
    first, last, plausible = loaded.first, loaded.last, latest_plausible_month(settings)
    try:
        found = months_in_source(str(path))
    except Exception as error:
        context.log.warning(f"{path.name}: cannot read its dates ({error})")
        found = [last]
    months = sorted({m for m in found if first <= m <= plausible})
    later = [m for m in months if m > last]
    if later:
        context.log.info(
            f"{path.name}: waits until {', '.join(f'{m:%Y-%m}' for m in later)} "
            f"{'is a partition' if len(later) == 1 else 'are partitions'} (the definitions "
            "load the months of the landing files; the daemon reloads them every minute)"
        )
        return []
    if not months:
        # Nothing to ingest it into: it would wait in the folder forever, unexplained.
        reason = (
            f"no row dated within the partitions ({first:%Y-%m}..{plausible:%Y-%m}); months "
            f"found: {[f'{m:%Y-%m}' for m in found]}"
        )
        context.log.warning(f"{path.name}: {reason}; moved to {quarantine(path, reason)}")
    return [m.isoformat() for m in months]


class LandingTick:
    """One evaluation of new_data_sensor: the cursor it moves on and the runs it requests."""

    def __init__(
        self, context: dg.SensorEvaluationContext, settings: Settings, cursor: LandingCursor
    ) -> None:
        self.context = context
        self.settings = settings
        self.cursor = cursor
        self.policy = policy_of(settings)
        self.now = time.time()
        self.requests: list[dg.RunRequest] = []

    def follow(self, name: str, tracked: Tracked) -> None:
        """Move a followed version on from what its runs did: retry, quarantine or wait."""
        tracked = advance(
            tracked, attempt_runs(self.context.instance, tracked), self.now, self.policy
        )
        if retry_due(tracked, self.now, self.policy):
            tracked = tracked.moved_to(
                REQUESTED, self.now, attempts=tracked.attempts + 1, next_attempt_at=None
            )
            self.context.log.info(f"{name}: attempt {tracked.attempts} after {tracked.reason}")
            self.requests += requests_for(tracked)
        elif exhausted(tracked, self.policy):
            reason = f"{tracked.attempts} attempts failed; the last: {tracked.reason}"
            moved = quarantine(self.settings.landing_dir / name, reason)
            self.context.log.warning(f"{name}: {reason}; moved to {moved}")
            self.retire(tracked.moved_to(QUARANTINED, self.now, reason=reason))
            return
        self.cursor.files[name] = tracked

    def take(self, path: Path, stat: os.stat_result, fingerprint: str) -> None:
        """Request a new or changed version, for its months and those of the version it
        replaces: each month is rebuilt whole, so the old version's rows leave every month."""
        previous = self.cursor.files.get(path.name)
        if previous is not None:
            self.retire(
                previous.moved_to(SUPERSEDED, self.now, reason=f"replaced by {fingerprint}")
            )
        months = file_months(self.context, self.settings, path)
        if not months:
            return
        if previous is not None:
            months = sorted({*months, *previous.months})
        tracked = Tracked(
            path.name,
            fingerprint,
            tuple(months),
            REQUESTED,
            1,
            self.now,
            seen_as=(stat.st_size, stat.st_mtime_ns),
        )
        self.cursor.files[path.name] = tracked
        self.requests += requests_for(tracked)

    def retire(self, tracked: Tracked) -> None:
        self.cursor.files.pop(tracked.name, None)
        self.cursor.retired.append(tracked)

    def visit(self, path: Path) -> None:
        stat = path.stat()
        sighting = Sighting.of(stat, self.cursor.sightings.get(path.name), self.now)
        self.cursor.sightings[path.name] = sighting
        if not sighting.settled(self.now, self.settings.landing_settle_seconds):
            return  # still being written, or only just finished: a later tick takes it
        tracked = self.cursor.files.get(path.name)
        if tracked is not None and tracked.seen_as == (stat.st_size, stat.st_mtime_ns):
            fingerprint = tracked.fingerprint  # not touched since it was hashed
        else:
            fingerprint = file_fingerprint(path)
        if tracked is not None and tracked.fingerprint == fingerprint:
            self.follow(path.name, replace(tracked, seen_as=(stat.st_size, stat.st_mtime_ns)))
        else:
            self.take(path, stat, fingerprint)

    def let_go_of_vanished(self, present: set[str]) -> None:
        for name in set(self.cursor.sightings) - present:
            del self.cursor.sightings[name]
        quarantined = set(quarantined_files(self.settings.landing_dir))
        for name, tracked in list(self.cursor.files.items()):
            if name in present:
                continue
            if name in quarantined:
                # raw_tweets could not read it, and moved it aside with its reason.
                reason_file = self.settings.landing_dir / QUARANTINE / f"{name}.reason.txt"
                reason = reason_file.read_text().strip() if reason_file.exists() else ""
                self.retire(tracked.moved_to(QUARANTINED, self.now, reason=reason))
            else:
                self.retire(tracked.moved_to(REMOVED, self.now, reason="deleted from landing/"))

    def record(self) -> bool:
        """Write the states that changed to raw.landing_files; False if the warehouse was
        busy (they stay in the cursor and are written by a later tick)."""
        versions = self.cursor.unrecorded()
        if not versions:
            return False
        try:
            with connect(self.settings.warehouse, lock_wait_seconds=LEDGER_LOCK_WAIT_S) as con:
                ensure_schema(con)
                record_ledger(con, versions, self.policy.max_attempts)
        except Exception as error:  # a busy or unreadable warehouse must not stop the sensor
            self.context.log.warning(f"{LEDGER_TABLE} not updated this tick: {error}")
            return False
        self.cursor.mark_recorded()
        return True

    def check_evaluation(self) -> dg.AssetCheckEvaluation:
        rows = [t.ledger_row(self.policy.max_attempts) for t in self.cursor.files.values()]
        return landing_check_evaluation(
            [row for row in rows if row["state"] in OPEN_STATES],
            quarantined_files(self.settings.landing_dir),
        )


def landing_check_evaluation(
    open_rows: list[dict], quarantined: list[str]
) -> dg.AssetCheckEvaluation:
    found = attention(open_rows, quarantined)
    return dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey(RAW_TWEETS),
        check_name=LANDING_CHECK,
        passed=not found["retrying"] and not found["quarantined"],
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "retrying": dg.MetadataValue.json(found["retrying"]),
            "quarantined": dg.MetadataValue.json(found["quarantined"]),
            "in_progress": found["in_progress"],
        },
        description="Landing files whose runs failed and wait for a retry, and files in "
        "landing/quarantine/ (out of every month until fixed and moved back).",
    )


@dg.sensor(
    target=INGEST_SELECTION,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests raw_tweets and everything downstream for the months of each new "
    "or changed file in SENTIMENT_HOME/landing once it stopped changing; retries a failed or "
    "cancelled run with backoff, then quarantines the file. States: raw.landing_files.",
)
def new_data_sensor(context: dg.SensorEvaluationContext, platform: PlatformResource):
    settings = platform.settings
    tick = LandingTick(context, settings, LandingCursor.parse(context.cursor, time.time()))
    present = landing_files(settings.landing_dir)
    for path in present:
        tick.visit(path)
    tick.let_go_of_vanished({path.name for path in present})
    recorded = tick.record()
    events = [tick.check_evaluation()] if recorded else []
    if not tick.requests:
        return dg.SensorResult(
            skip_reason=dg.SkipReason("no landing file to request"),
            cursor=tick.cursor.dump(),
            asset_events=events,
        )
    return dg.SensorResult(
        run_requests=tick.requests, cursor=tick.cursor.dump(), asset_events=events
    )


def landing_files_built(
    warehouse: WarehouseResource, platform: PlatformResource
) -> dg.AssetCheckResult:
    settings = platform.settings
    states = ", ".join(f"'{state}'" for state in OPEN_STATES)
    with warehouse.connect() as con:
        frame = con.execute(f"SELECT * FROM {LEDGER_TABLE} WHERE state IN ({states})").df()
    evaluation = landing_check_evaluation(
        frame.to_dict("records"), quarantined_files(settings.landing_dir)
    )
    return dg.AssetCheckResult(
        passed=evaluation.passed,
        severity=evaluation.severity,
        metadata=evaluation.metadata,
        description=evaluation.description,
    )


@dg.definitions
def defs() -> dg.Definitions:
    # The check opens the warehouse, which DuckDB admits one process at a time.
    check = dg.asset_check(
        asset=RAW_TWEETS,
        name=LANDING_CHECK,
        pool=loaded_months().pool(WAREHOUSE_WRITERS),
        description="Landing files whose runs failed and wait for a retry, and files in "
        "landing/quarantine/. new_data_sensor reports it whenever a file changes state.",
    )(landing_files_built)
    return dg.Definitions(asset_checks=[check], sensors=[new_data_sensor])
