"""The landing folder: new tweet files are dropped here and picked up by new_data_sensor.

A file is taken only once it has stopped changing (`Sighting`), and it is done only when its
rows reached the clean tables of every month it holds. `Tracked` is one version of a file on
that way (requested -> loaded -> built, or failed -> retried with backoff -> quarantined);
the sensor keeps them in its cursor and records them in raw.landing_files.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from sentiment_assets.lib.store.lake import LakeConnection
from sentiment_assets.lib.store.warehouse import replace_rows

SUPPORTED_SUFFIXES = {".csv", ".jsonl", ".ndjson", ".parquet"}
QUARANTINE = "quarantine"
# Names writers use while a file is incomplete (write under one, then rename): never read.
PARTIAL_SUFFIXES = (".tmp", ".part")

# The states of a tracked file version, as raw.landing_files records them.
REQUESTED = "requested"
LOADED = "loaded"
BUILT = "built"
FAILED = "failed"
QUARANTINED = "quarantined"
SUPERSEDED = "superseded"
REMOVED = "removed"
LEDGER_TABLE = "raw.landing_files"
LEDGER_COLUMNS = [
    "file",
    "fingerprint",
    "months",
    "state",
    "attempts",
    "max_attempts",
    "reason",
    "run_ids",
    "next_attempt_at",
    "updated_at",
]


def file_fingerprint(path: Path) -> str:
    """Changes whenever the content changes; cheap enough for files of a few hundred MB."""
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{stat.st_size}:{digest.hexdigest()[:16]}"


def is_landing_name(name: str) -> bool:
    """A name the landing folder reads: a supported data file, not hidden, not partial."""
    lowered = name.lower()
    return (
        not name.startswith(".")
        and not lowered.endswith(PARTIAL_SUFFIXES)
        and Path(lowered).suffix in SUPPORTED_SUFFIXES
    )


def landing_files(landing_dir: Path) -> list[Path]:
    """Files waiting in the landing folder (not the quarantine, not hidden or partial files)."""
    if not landing_dir.is_dir():
        return []
    return sorted(p for p in landing_dir.iterdir() if p.is_file() and is_landing_name(p.name))


def is_quiet(stat: os.stat_result, now: float, settle_seconds: float) -> bool:
    """Whether nothing has written the file for `settle_seconds` (by its modification time)."""
    return now - stat.st_mtime >= settle_seconds


def quarantine(path: Path, reason: str) -> Path:
    """Move a file that cannot be read out of the way, with its reason beside it."""
    target_dir = path.parent / QUARANTINE
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    path.replace(target)
    target.with_name(target.name + ".reason.txt").write_text(reason + "\n")
    return target


@dataclass(frozen=True)
class Sighting:
    """A file's size and modification time, and since when they have been seen unchanged."""

    size: int
    mtime_ns: int
    since: float

    @classmethod
    def of(cls, stat: os.stat_result, previous: Sighting | None, now: float) -> Sighting:
        if previous is not None and (previous.size, previous.mtime_ns) == (
            stat.st_size,
            stat.st_mtime_ns,
        ):
            return previous
        # At first sight the modification time says how long the file has been quiet; a file
        # seen changing since then counts from now.
        since = min(now, stat.st_mtime) if previous is None else now
        return cls(stat.st_size, stat.st_mtime_ns, since)

    def settled(self, now: float, settle_seconds: float) -> bool:
        return now - self.since >= settle_seconds


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    retry_seconds: float
    # A requested run not in the instance after this long was lost: the attempt failed.
    request_timeout_seconds: float

    def next_attempt_at(self, failed_at: float, attempts: int) -> float:
        """Exponential backoff: the n-th retry waits retry_seconds * 2**(n-1)."""
        return failed_at + self.retry_seconds * 2 ** (attempts - 1)


@dataclass(frozen=True)
class MonthRun:
    """What the run of one month of a tracked file did, as read from the Dagster instance."""

    run_id: str
    finished: bool
    # raw_tweets was materialized by the run and read this file (it skips a changing file).
    loaded: bool
    # ... and then tweets_clean: the file's rows reached the month's clean tables.
    built: bool
    error: str = ""


@dataclass(frozen=True)
class Tracked:
    """One version (fingerprint) of a landing file on its way to the clean tables."""

    name: str
    fingerprint: str
    months: tuple[str, ...]
    state: str
    attempts: int
    changed_at: float
    # Months whose clean tables hold this version's rows.
    built_months: tuple[str, ...] = ()
    reason: str = ""
    run_ids: tuple[str, ...] = ()
    next_attempt_at: float | None = None
    # Whether raw.landing_files holds this state yet (the warehouse may have been busy).
    recorded: bool = False
    # The file's size and modification time when it was last hashed: unchanged, the
    # fingerprint is reused instead of reading the whole file every tick.
    seen_as: tuple[int, int] = (0, 0)

    @property
    def pending_months(self) -> tuple[str, ...]:
        return tuple(m for m in self.months if m not in self.built_months)

    def moved_to(self, state: str, now: float, **changes: object) -> Tracked:
        return replace(self, state=state, changed_at=now, recorded=False, **changes)

    def ledger_row(self, max_attempts: int) -> dict[str, object]:
        return {
            "file": self.name,
            "fingerprint": self.fingerprint,
            "months": ",".join(self.months),
            "state": self.state,
            "attempts": self.attempts,
            "max_attempts": max_attempts,
            "reason": self.reason or None,
            "run_ids": ",".join(self.run_ids) or None,
            "next_attempt_at": _timestamp(self.next_attempt_at),
            "updated_at": _timestamp(self.changed_at),
        }


def advance(
    tracked: Tracked, runs: Mapping[str, MonthRun | None], now: float, policy: RetryPolicy
) -> Tracked:
    """The state `tracked` is in after the runs of its current attempt (`runs` by month, None
    where the requested run has not appeared yet). A failed attempt gets its retry time."""
    if tracked.state not in (REQUESTED, LOADED):
        return tracked
    built = tracked.built_months + tuple(
        month for month in tracked.pending_months if (run := runs.get(month)) and run.built
    )
    pending = [month for month in tracked.months if month not in built]
    run_ids = tuple(run.run_id for run in runs.values() if run is not None)
    if not pending:
        return tracked.moved_to(BUILT, now, built_months=built, run_ids=run_ids, reason="")
    current = [runs.get(month) for month in pending]
    lost = [month for month, run in zip(pending, current, strict=True) if run is None]
    if lost and _lost_for_good(tracked, current, now, policy):
        return tracked.moved_to(
            FAILED,
            now,
            built_months=built,
            run_ids=run_ids,
            reason=f"the runs of {[m[:7] for m in lost]} never appeared in the instance "
            f"{policy.request_timeout_seconds:.0f} s after the request (dropped, deleted, or "
            "the daemon stopped before submitting them)",
            next_attempt_at=policy.next_attempt_at(now, tracked.attempts),
        )
    if any(run is None or not run.finished for run in current):
        loaded = any(run is not None and run.loaded for run in current)
        if loaded and tracked.state == REQUESTED:
            return tracked.moved_to(LOADED, now, built_months=built, run_ids=run_ids)
        return replace(tracked, built_months=built, run_ids=run_ids)
    reason = "; ".join(
        f"{month[:7]} (run {run.run_id[:8]}): {run.error or 'did not build tweets_clean'}"
        for month, run in zip(pending, current, strict=True)
        if run is not None
    )
    return tracked.moved_to(
        FAILED,
        now,
        built_months=built,
        run_ids=run_ids,
        reason=reason,
        next_attempt_at=policy.next_attempt_at(now, tracked.attempts),
    )


def _lost_for_good(
    tracked: Tracked, current: list[MonthRun | None], now: float, policy: RetryPolicy
) -> bool:
    """Whether the missing runs of the attempt count as failed: requested longer ago than the
    timeout, and no run of the attempt still going (a retry would run its month twice)."""
    timed_out = now - tracked.changed_at >= policy.request_timeout_seconds
    return timed_out and all(run is None or run.finished for run in current)


def retry_due(tracked: Tracked, now: float, policy: RetryPolicy) -> bool:
    return (
        tracked.state == FAILED
        and tracked.attempts < policy.max_attempts
        and tracked.next_attempt_at is not None
        and now >= tracked.next_attempt_at
    )


def exhausted(tracked: Tracked, policy: RetryPolicy) -> bool:
    return tracked.state == FAILED and tracked.attempts >= policy.max_attempts


@dataclass
class LandingCursor:
    """new_data_sensor's memory: the sightings of every file, the versions it follows, and
    versions it let go (superseded, removed, quarantined) whose last state is not recorded."""

    sightings: dict[str, Sighting] = field(default_factory=dict)
    files: dict[str, Tracked] = field(default_factory=dict)
    retired: list[Tracked] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str | None, now: float) -> LandingCursor:
        data = json.loads(text) if text else {}
        if "files" not in data:
            # The first sensor's cursor mapped each name to the fingerprint it requested; it
            # never learnt what became of those runs, so they are taken as built.
            return cls(
                files={
                    name: Tracked(name, fingerprint, (), BUILT, 1, now, recorded=True)
                    for name, fingerprint in data.items()
                }
            )
        return cls(
            sightings={name: Sighting(*values) for name, values in data["sightings"].items()},
            files={name: _tracked(values) for name, values in data["files"].items()},
            retired=[_tracked(values) for values in data["retired"]],
        )

    def dump(self) -> str:
        return json.dumps(
            {
                "sightings": {
                    name: [s.size, s.mtime_ns, s.since] for name, s in self.sightings.items()
                },
                "files": {name: asdict(t) for name, t in self.files.items()},
                "retired": [asdict(t) for t in self.retired],
            },
            sort_keys=True,
        )

    def unrecorded(self) -> list[Tracked]:
        return [t for t in (*self.files.values(), *self.retired) if not t.recorded]

    def mark_recorded(self) -> None:
        self.files = {name: replace(t, recorded=True) for name, t in self.files.items()}
        self.retired = []


def _tracked(values: Mapping[str, object]) -> Tracked:
    fields = dict(values)
    for name in ("months", "built_months", "run_ids", "seen_as"):
        fields[name] = tuple(fields[name])  # type: ignore[arg-type]
    return Tracked(**fields)  # type: ignore[arg-type]


def record_ledger(
    con: duckdb.DuckDBPyConnection | LakeConnection,
    versions: Iterable[Tracked],
    max_attempts: int,
) -> None:
    """Write each version's row of raw.landing_files, replacing its previous state."""
    for tracked in versions:
        row = pd.DataFrame([tracked.ledger_row(max_attempts)], columns=LEDGER_COLUMNS)
        replace_rows(
            con,  # type: ignore[arg-type]  # a lake connection replaces rows the same way
            LEDGER_TABLE,
            row,
            "file = ? AND fingerprint = ?",
            [tracked.name, tracked.fingerprint],
        )


# Versions still on their way (or waiting for a retry): what the check on raw_tweets lists.
OPEN_STATES = (REQUESTED, LOADED, FAILED)


def attention(open_versions: Iterable[Mapping[str, object]], quarantined: Iterable[str]) -> dict:
    """What people should look at: versions waiting for a retry and files in quarantine
    (they stay out of every month until someone fixes them and moves them back)."""
    versions = list(open_versions)
    retrying = [
        {k: str(v[k]) for k in ("file", "attempts", "max_attempts", "next_attempt_at", "reason")}
        for v in versions
        if v["state"] == FAILED
    ]
    return {
        "retrying": retrying,
        "quarantined": sorted(quarantined),
        "in_progress": sum(v["state"] in (REQUESTED, LOADED) for v in versions),
    }


def quarantined_files(landing_dir: Path) -> list[str]:
    folder = landing_dir / QUARANTINE
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if is_landing_name(p.name))


def _timestamp(seconds: float | None) -> datetime | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
