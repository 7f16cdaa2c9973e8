"""The life of a landing file version (lib/data/landing.py), without Dagster: when a file counts as
complete, how a version moves from requested to built or failed, retries with backoff."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from sentiment_assets.lib.data.landing import (
    BUILT,
    FAILED,
    LOADED,
    REQUESTED,
    LandingCursor,
    MonthRun,
    RetryPolicy,
    Sighting,
    Tracked,
    advance,
    exhausted,
    is_landing_name,
    landing_files,
    record_ledger,
    retry_due,
)
from sentiment_assets.lib.store.lake import Lake
from sentiment_assets.lib.store.warehouse import connect, ensure_schema

POLICY = RetryPolicy(max_attempts=3, retry_seconds=60, request_timeout_seconds=600)
FEB, MAR = "2024-02-01", "2024-03-01"


@pytest.mark.parametrize(
    ("name", "read"),
    [
        ("tweets.csv", True),
        ("tweets.JSONL", True),
        ("tweets.parquet", True),
        ("tweets.csv.part", False),
        ("tweets.csv.tmp", False),
        ("tweets.part.csv", True),
        (".tweets.csv", False),
        ("README.md", False),
    ],
)
def test_only_complete_data_file_names_are_read(name: str, read: bool) -> None:
    assert is_landing_name(name) is read


def test_the_quarantine_folder_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "quarantine").mkdir()
    (tmp_path / "quarantine" / "bad.csv").write_text("x")
    (tmp_path / "good.csv").write_text("x")
    assert [p.name for p in landing_files(tmp_path)] == ["good.csv"]


def test_a_file_is_settled_only_after_the_interval_without_change(tmp_path: Path) -> None:
    path = tmp_path / "tweets.csv"
    path.write_text("text,created_at\n")
    now = time.time()
    first = Sighting.of(path.stat(), None, now)
    assert not first.settled(now, 5.0), "just written"
    assert first.settled(now + 5.0, 5.0)
    with path.open("a") as handle:
        handle.write("more,2024-02-01\n")
    # Backdated, as a writer that keeps old modification times would leave it.
    os.utime(path, ns=(path.stat().st_atime_ns, int((now - 3600) * 1e9)))
    changed = Sighting.of(path.stat(), first, now + 6.0)
    assert not changed.settled(now + 6.0, 5.0), "a change seen counts from when it was seen"
    assert Sighting.of(path.stat(), changed, now + 11.0) is changed
    assert changed.settled(now + 11.0, 5.0)


def test_an_old_file_seen_for_the_first_time_is_settled_at_once(tmp_path: Path) -> None:
    path = tmp_path / "tweets.csv"
    path.write_text("text,created_at\n")
    os.utime(path, (time.time() - 60, time.time() - 60))
    assert Sighting.of(path.stat(), None, time.time()).settled(time.time(), 5.0)


def tracked(**changes) -> Tracked:
    """A version of f.csv with rows in February and March, requested at t=1000."""
    return replace(Tracked("f.csv", "9:abc", (FEB, MAR), REQUESTED, 1, 1000.0), **changes)


def test_a_version_is_built_only_when_every_month_reached_clean() -> None:
    runs = {
        FEB: MonthRun("r1", finished=True, loaded=True, built=True),
        MAR: MonthRun("r2", finished=False, loaded=True, built=False),
    }
    loaded = advance(tracked(), runs, 2000.0, POLICY)
    assert (loaded.state, loaded.built_months) == (LOADED, (FEB,))
    runs[MAR] = MonthRun("r2", finished=True, loaded=True, built=True)
    built = advance(loaded, {MAR: runs[MAR]}, 2100.0, POLICY)
    assert built.state == BUILT and not built.recorded


def test_a_failed_month_is_retried_with_backoff_then_given_up() -> None:
    runs = {
        FEB: MonthRun("r1", finished=True, loaded=True, built=True),
        MAR: MonthRun("r2", finished=True, loaded=True, built=False, error="dbt_models: boom"),
    }
    failed = advance(tracked(), runs, 2000.0, POLICY)
    assert failed.state == FAILED and "boom" in failed.reason
    assert failed.pending_months == (MAR,), "the built month is not requested again"
    assert not retry_due(failed, 2059.0, POLICY) and retry_due(failed, 2060.0, POLICY)
    second = tracked(state=FAILED, attempts=2, changed_at=3000.0)
    assert POLICY.next_attempt_at(3000.0, 2) == 3120.0, "the wait doubles"
    assert not exhausted(second, POLICY) and exhausted(tracked(state=FAILED, attempts=3), POLICY)


def test_a_request_whose_run_has_not_appeared_waits_until_the_timeout() -> None:
    requested = tracked()
    waiting = requested.changed_at + POLICY.request_timeout_seconds - 1
    assert advance(requested, {FEB: None, MAR: None}, waiting, POLICY).state == REQUESTED
    lost = advance(requested, {FEB: None, MAR: None}, waiting + 1, POLICY)
    assert lost.state == FAILED and "never appeared" in lost.reason
    assert retry_due(lost, lost.next_attempt_at, POLICY)


def test_a_lost_run_waits_for_the_attempts_other_runs_to_end() -> None:
    late = tracked().changed_at + POLICY.request_timeout_seconds
    going = MonthRun("r1", finished=False, loaded=True, built=False)
    assert advance(tracked(), {FEB: going, MAR: None}, late, POLICY).state != FAILED
    done = MonthRun("r1", finished=True, loaded=True, built=True)
    lost = advance(tracked(), {FEB: done, MAR: None}, late, POLICY)
    assert (lost.state, lost.built_months, lost.pending_months) == (FAILED, (FEB,), (MAR,))


def test_the_cursor_survives_a_round_trip_and_reads_the_first_sensors_cursor() -> None:
    cursor = LandingCursor(
        sightings={"f.csv": Sighting(9, 123, 1000.0)},
        files={"f.csv": tracked(seen_as=(9, 123), run_ids=("r1",))},
        retired=[tracked(name="old.csv", state=FAILED)],
    )
    again = LandingCursor.parse(cursor.dump(), 5000.0)
    assert again == cursor
    legacy = LandingCursor.parse('{"f.csv": "9:abc"}', 5000.0)
    assert legacy.files["f.csv"].state == BUILT and legacy.unrecorded() == []


@pytest.mark.parametrize("kind", ["duckdb", "lake"])
def test_the_ledger_holds_one_row_per_version_replaced_as_it_moves(
    tmp_path: Path, kind: str
) -> None:
    location = Lake(tmp_path / "lake") if kind == "lake" else tmp_path / "warehouse.duckdb"
    requested = tracked()
    with connect(location) as con:
        ensure_schema(con)
        record_ledger(con, [requested, tracked(name="other.csv")], POLICY.max_attempts)
        record_ledger(con, [requested.moved_to(BUILT, 2000.0)], POLICY.max_attempts)
        rows = con.execute(
            "SELECT file, state, attempts, max_attempts, months FROM raw.landing_files "
            "ORDER BY file"
        ).fetchall()
    assert rows == [
        ("f.csv", "built", 1, 3, f"{FEB},{MAR}"),
        ("other.csv", "requested", 1, 3, f"{FEB},{MAR}"),
    ]
