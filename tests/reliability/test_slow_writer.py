"""Only complete landing files are read (issue 24).

A writer that needs time (a CSV written in two halves with a pause) must never have its
first half ingested by new_data_sensor, and a run of the same month that executes while a
writer is at work leaves that file to its own run. Files named as partial (`.part`, `.tmp`, hidden) are never read, and a
file that changes after it was loaded is loaded again whole, in every month it touched.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from sentiment_assets.defs.ingest.assets import STILL_CHANGING
from sentiment_assets.environment import current_settings
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.lineage import RAW_TWEETS
from tests import loaded
from tests.conftest import use_home
from tests.reliability.landing_runs import execute, prepare_landing_home, resources, tick

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(1200)]

MONTH = "2024-02-01"
SETTLE_S = 2.0
HEADER = "text,created_at,label\n"


def rows(first: int, last: int, month: str = "02") -> str:
    return "".join(
        f"slow writer tweet {i} is {'great' if i % 2 else 'awful'},2024-{month}-"
        f"{1 + i % 28:02d} 10:00:00,{'positive' if i % 2 else 'negative'}\n"
        for i in range(first, last)
    )


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    use_home(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("SENTIMENT_LANDING_SETTLE_SECONDS", str(SETTLE_S))
    settings = current_settings()
    prepare_landing_home(settings)
    return settings


@pytest.fixture
def instance(settings: Settings):
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as home_instance:
        yield home_instance


def tick_until_requested(instance: dg.DagsterInstance, settings: Settings, cursor: str | None):
    """Ticks until the sensor requests runs (a changed file waits out the settle interval
    from the tick that saw the change)."""
    deadline = time.monotonic() + 10 * SETTLE_S
    while time.monotonic() < deadline:
        requests, cursor = tick(instance, settings, cursor)
        if requests:
            return requests, cursor
        time.sleep(0.2)
    pytest.fail("the finished file was never taken")


def query(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    with connect(settings.duckdb_path, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_a_file_written_in_two_halves_is_ingested_whole(
    settings: Settings, instance: dg.DagsterInstance, record_property
) -> None:
    path = settings.landing_dir / "february.csv"
    content = HEADER + rows(0, 400)
    torn_at = content.index("slow writer tweet 200 ") + 15  # mid-line, as a writer leaves it
    with path.open("w") as writer:
        writer.write(content[:torn_at])
        writer.flush()
        first, cursor = tick(instance, settings, None)
        assert first == [], "a file still being written must not be requested"
        time.sleep(SETTLE_S / 2)
        writer.write(content[torn_at:])
    waited = time.monotonic()
    requests, cursor = tick_until_requested(instance, settings, cursor)
    record_property("measured", f"taken {time.monotonic() - waited:.1f} s after the last write")
    (request,) = requests
    assert execute(instance, settings, request.partition_key, request.tags).success
    (counts,) = query(
        settings,
        "SELECT rows, accepted, rejected FROM raw.ingested_files WHERE file = ?",
        [str(path)],
    )
    assert counts == (400, 400, 0)
    rejected = "SELECT count(*) FROM raw.rejected_tweets WHERE source = ?"
    assert query(settings, rejected, [str(path)]) == [(0,)], "no torn line, no reject"


def trickle(path: Path, stop: threading.Event) -> None:
    """A writer still at work: a line every 50 ms until told to stop."""
    with path.open("w") as writer:
        writer.write(HEADER)
        line = 0
        while not stop.is_set():
            writer.write(rows(line, line + 1))
            writer.flush()
            line += 1
            time.sleep(0.05)


def test_a_run_of_the_month_leaves_a_file_being_written_alone(settings: Settings) -> None:
    path = settings.landing_dir / "february.csv"
    stop = threading.Event()
    writer = threading.Thread(target=trickle, args=(path, stop))
    writer.start()
    try:
        with dg.instance_for_test() as instance:
            result = dg.materialize(
                [loaded.asset(RAW_TWEETS)],
                partition_key=MONTH,
                instance=instance,
                resources=resources(settings),
            )
    finally:
        stop.set()
        writer.join()
    (event,) = result.get_asset_materialization_events()
    assert event.materialization.metadata[STILL_CHANGING].value == ["february.csv"]
    assert path.exists(), "a file being written is never quarantined"
    assert query(settings, "SELECT count(*) FROM raw.tweets WHERE source = ?", [str(path)]) == [
        (0,)
    ]


@pytest.mark.parametrize("name", ["february.csv.part", "february.csv.tmp", ".february.csv"])
def test_partial_names_are_never_read_and_a_rename_is_taken(
    settings: Settings, instance: dg.DagsterInstance, name: str
) -> None:
    partial = settings.landing_dir / name
    partial.write_text(HEADER + rows(0, 10))
    time.sleep(SETTLE_S)
    assert tick(instance, settings, None)[0] == []
    partial.rename(settings.landing_dir / "february.csv")
    (request,), _ = tick(instance, settings, None)
    assert request.partition_key == MONTH


def test_a_file_changed_after_loading_is_reloaded_whole_in_every_month_it_touched(
    settings: Settings, instance: dg.DagsterInstance
) -> None:
    path = settings.landing_dir / "export.csv"
    path.write_text(HEADER + rows(0, 30) + rows(30, 40, month="03"))
    time.sleep(SETTLE_S)
    requests, cursor = tick(instance, settings, None)
    assert sorted(r.partition_key for r in requests) == [MONTH, "2024-03-01"]
    for request in requests:
        assert execute(instance, settings, request.partition_key, request.tags).success
    # The new version has no March rows any more, and fewer February ones.
    path.write_text(HEADER + rows(100, 110))
    requests, cursor = tick_until_requested(instance, settings, cursor)
    assert sorted(r.partition_key for r in requests) == [MONTH, "2024-03-01"]
    for request in requests:
        assert execute(instance, settings, request.partition_key, request.tags).success
    assert tick(instance, settings, cursor)[0] == []
    loaded = query(
        settings,
        "SELECT month, count(*) FROM clean.tweets_clean WHERE source = ? GROUP BY month",
        [str(path)],
    )
    assert [(m.isoformat(), n) for m, n in loaded] == [(MONTH, 10)]
    states = query(
        settings,
        "SELECT state FROM raw.landing_files WHERE file = ? ORDER BY updated_at",
        [path.name],
    )
    assert states == [("superseded",), ("built",)]
