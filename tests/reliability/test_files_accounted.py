"""Every row and every file accounted for: raw_tweets against real resources and bad files.

A file that cannot be ingested fails the run with its name (and, from landing/, is moved to
landing/quarantine/ with its reason); every other file's rows are accepted or rejected with a
reason, and the file has a row in raw.ingested_files whose counts add up.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.environment import current_settings
from sentiment_assets.lib.data.landing import file_fingerprint
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.lineage import RAW_TWEETS
from tests import loaded
from tests.conftest import use_home

pytestmark = pytest.mark.reliability

# The session's synthetic source covers 2024-01..2024-03; February is one of its months.
MONTH = "2024-02-01"
BINARY = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40 + b"\n\x00\xff\xfe\n" * 20


def materialize(
    settings: Settings, raw_tweets: dg.AssetsDefinition | None = None
) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        return dg.materialize(
            [raw_tweets or loaded.asset(RAW_TWEETS)],
            partition_key=MONTH,
            resources={
                "warehouse": WarehouseResource(database=str(settings.duckdb_path)),
                "platform": PlatformResource.of(settings),
            },
            instance=instance,
            raise_on_error=False,
        )


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data.error.message


def query(settings: Settings, sql: str) -> list[tuple]:
    with connect(settings.duckdb_path, read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    use_home(monkeypatch, tmp_path / "home")
    settings = current_settings()
    settings.landing_dir.mkdir(parents=True)
    return settings


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("blob.csv", BINARY, "no row could be read"),
        ("blob.parquet", BINARY, "ArrowInvalid"),
        ("wrong_columns.csv", b"a,b,c\n1,2,3\n4,5,6\n", "no row could be read"),
        ("empty.jsonl", b"", "no data rows"),
        ("header_only.csv", b"text,created_at,label\n", "no data rows"),
        ("old.csv", b"text,created_at\nparty,1999-12-31\nfuture,2099-01-01\n", "inside 2024-01"),
    ],
    ids=["binary-csv", "binary-parquet", "wrong-columns", "empty", "header-only", "out-of-range"],
)
def test_an_unusable_landing_file_fails_the_run_named_and_is_quarantined(
    settings: Settings, name: str, content: bytes, why: str
) -> None:
    bad = settings.landing_dir / name
    bad.write_bytes(content)
    message = failure_message(materialize(settings))
    assert name in message and why in message
    assert not bad.exists()
    moved = settings.landing_dir / "quarantine" / name
    assert moved.read_bytes() == content
    assert why in (settings.landing_dir / "quarantine" / f"{name}.reason.txt").read_text()
    # Nothing of the month was written by the failed run: it never opened the warehouse.
    assert not settings.duckdb_path.exists()


def test_an_unusable_source_file_fails_the_run_named_and_stays_put(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The definitions loaded while the source was readable; then it was overwritten.
    raw_tweets = loaded.asset(RAW_TWEETS)
    source = tmp_path / "export.csv"
    source.write_bytes(BINARY)
    monkeypatch.setenv("SENTIMENT_SOURCE", str(source))
    message = failure_message(materialize(current_settings(), raw_tweets))
    assert "SENTIMENT_SOURCE" in message and str(source) in message
    assert source.read_bytes() == BINARY, "the user's own source is never moved"


def test_out_of_range_and_bad_rows_are_rejected_with_reasons_and_counted(
    settings: Settings,
) -> None:
    landing = settings.landing_dir / "mixed.csv"
    landing.write_text(
        "text,created_at,label\n"
        "fine tweet,2024-02-10 10:00:00,positive\n"
        "party like it is,1999-12-31 23:59:00,positive\n"
        "greetings from the future,2099-01-01 00:00:00,negative\n"
        "bad label,2024-02-11 10:00:00,maybe\n"
        '"never closed,2024-02-12 10:00:00,negative\n'
        "after the broken quote,2024-02-13 10:00:00,negative\n"
        "a march tweet,2024-03-01 10:00:00,negative\n"
    )
    fingerprint = file_fingerprint(landing)
    first = materialize(settings)
    assert first.success
    second = materialize(settings)  # re-materialising replaces the month, never appends
    assert second.success

    rows = query(
        settings,
        "SELECT file, fingerprint, rows, accepted, rejected, status, reason FROM "
        "raw.ingested_files WHERE month = DATE '2024-02-01' ORDER BY file",
    )
    assert [r[0] for r in rows] == [str(landing), "synthetic"]
    assert rows[0][1:] == (
        fingerprint,
        6,
        2,
        4,
        "loaded_with_rejects",
        "bad_label=1, date_out_of_range=2, malformed_row=1",
    )
    rejected = query(
        settings,
        "SELECT source_row, reason, month FROM raw.rejected_tweets "
        f"WHERE source = '{landing}' ORDER BY source_row",
    )
    assert [(r[0], r[1]) for r in rejected] == [
        (2, "date_out_of_range"),
        (3, "date_out_of_range"),
        (4, "bad_label"),
        (5, "malformed_row"),
    ]
    assert {str(r[2]) for r in rejected} == {MONTH}
    accepted = query(
        settings, f"SELECT text FROM raw.tweets WHERE source = '{landing}' ORDER BY source_row"
    )
    assert accepted == [("fine tweet",), ("after the broken quote",)]

    # Per file and in total: rows in = accepted + rejected, in the tables as in the metadata.
    (totals,) = query(
        settings,
        "SELECT sum(rows), sum(accepted), sum(rejected), "
        "(SELECT count(*) FROM raw.tweets WHERE month = DATE '2024-02-01'), "
        "(SELECT count(*) FROM raw.rejected_tweets WHERE month = DATE '2024-02-01') "
        "FROM raw.ingested_files WHERE month = DATE '2024-02-01'",
    )
    assert totals[0] == totals[1] + totals[2] and totals[1:3] == totals[3:5]
    (event,) = second.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["rows_in"].value == totals[0]
    per_file = {Path(f["file"]).name: f for f in metadata["files"].value}
    assert per_file["mixed.csv"]["rows"] == 6 and per_file["mixed.csv"]["rejected"] == 4
    assert per_file["synthetic"]["rows"] == metadata["rows_in"].value - 6
