"""raw_tweets on a month larger than one chunk: the warehouse holds the same rows, reasons and
per-file counts whatever the chunk size, and every row of the file is in exactly one table."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.environment import current_settings
from sentiment_assets.lib.data.synthetic import SyntheticConfig, write_month
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.lineage import RAW_TWEETS
from tests import loaded
from tests.conftest import use_home

# The session's synthetic source covers 2024-01..2024-03.
MONTH = "2024-02-01"
LANDING_ROWS = 700


def _load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int) -> dict[str, list]:
    use_home(monkeypatch, tmp_path / f"home-{chunk_rows}")
    settings: Settings = current_settings()
    settings.landing_dir.mkdir(parents=True)
    landing = settings.landing_dir / "february.csv"
    write_month(SyntheticConfig(seed=5), date(2024, 2, 1), landing, LANDING_ROWS, block_rows=300)
    with landing.open("a", encoding="utf-8") as out:
        out.write("undated-1,,a tweet with no date,4,someone\n")
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [loaded.asset(RAW_TWEETS)],
            partition_key=MONTH,
            resources={
                "warehouse": WarehouseResource(database=str(settings.duckdb_path)),
                "platform": PlatformResource.of(settings),
            },
            instance=instance,
            run_config={"ops": {"raw_tweets": {"config": {"chunk_rows": chunk_rows}}}},
        )
        (materialization,) = result.asset_materializations_for_node("raw_tweets")
    with connect(settings.duckdb_path, read_only=True) as con:
        tables = {
            "accepted": con.execute(
                "SELECT source, source_row, tweet_id, created_at, month, text, label_raw, "
                "user_name FROM raw.tweets ORDER BY source, source_row"
            ).fetchall(),
            "rejected": con.execute(
                "SELECT source, source_row, month, reason, raw_record FROM raw.rejected_tweets "
                "ORDER BY source, source_row"
            ).fetchall(),
            "files": con.execute(
                "SELECT file, rows, accepted, rejected, status, reason FROM raw.ingested_files "
                "ORDER BY file"
            ).fetchall(),
        }
    tables["rows_in"] = [materialization.metadata["rows_in"].value]
    tables["landing"] = [str(landing)]
    return tables


def test_a_month_larger_than_a_chunk_loads_as_in_one_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _load(tmp_path, monkeypatch, 1_000_000)
    chunked = _load(tmp_path, monkeypatch, 64)
    landing = chunked["landing"][0]
    for name in ("accepted", "rejected"):
        mine = [row[1:] for row in chunked[name] if row[0] == landing]
        want = [row[1:] for row in whole[name] if row[0] == whole["landing"][0]]
        assert mine == want
    # Every data row of the landing file is in exactly one of the two tables.
    rows = sorted(
        row[1] for name in ("accepted", "rejected") for row in chunked[name] if row[0] == landing
    )
    assert rows == list(range(1, LANDING_ROWS + 2))
    assert "missing_date" in {row[3] for row in chunked["rejected"] if row[0] == landing}
    assert [f[1:] for f in chunked["files"]] == [f[1:] for f in whole["files"]]
    assert chunked["rows_in"] == whole["rows_in"]
    assert sum(f[1] for f in chunked["files"]) == chunked["rows_in"][0]
