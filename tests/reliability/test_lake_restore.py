"""The lake warehouse backed up, then damaged (one month's Parquet file truncated, another
table's file deleted): `sentiment doctor` names the damaged file and `sentiment restore` gives
back the very tables of the backup, the damaged lake kept aside. Real Parquet files written
through the lake's own connection, the commands run as an operator runs them."""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from sentiment_assets.lib.settings import Settings, load_settings
from sentiment_assets.lib.store.lake import Lake
from sentiment_assets.lib.store.warehouse import append_rows, connect, replace_month
from tests.reliability.conftest import sentiment, succeeds

pytestmark = [pytest.mark.reliability]

MONTHS = (date(2024, 1, 1), date(2024, 2, 1))


def tweets(month: date, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tweet_id": [f"{month:%Y%m}-{i}" for i in range(n)],
            "created_at": [datetime(month.year, month.month, 1 + i % 28, 10) for i in range(n)],
            "month": [month] * n,
            "text": [f"tweet {i} of {month:%B}" for i in range(n)],
            "label_raw": ["positive" if i % 2 else "negative" for i in range(n)],
            "source": ["synthetic"] * n,
            "source_row": list(range(n)),
        }
    )


def build_lake(settings: Settings) -> None:
    with connect(settings.warehouse) as con:
        con.ensure_schema()
        for n, month in enumerate(MONTHS, start=1):
            replace_month(con, "raw.tweets", month, tweets(month, 50 * n))
        promotions = pd.DataFrame(
            {
                "model_version": ["1", "2"],
                "decision": ["promoted", "promoted"],
                "champion_version": [None, "1"],
                "created_at": [datetime(2024, 1, 5), datetime(2024, 2, 5)],
            }
        )
        append_rows(con, "metrics.promotions", promotions)


def contents(settings: Settings) -> dict[str, list[tuple]]:
    """Every lake table's rows, sorted: what a restore must give back."""
    lake = settings.warehouse
    assert isinstance(lake, Lake)
    with connect(lake, read_only=True) as con:
        return {
            table: sorted(map(tuple, con.execute(f"SELECT * FROM {table}").fetchall()), key=str)
            for table in lake.tables()
            if lake.files(table)
        }


def test_backup_damage_restore_gives_back_the_same_lake_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    settings = load_settings({"SENTIMENT_HOME": str(home), "SENTIMENT_WAREHOUSE": "lake"})
    build_lake(settings)
    before = contents(settings)
    assert len(before["raw.tweets"]) == 150 and len(before["metrics.promotions"]) == 2

    monkeypatch.setenv("SENTIMENT_WAREHOUSE", "lake")  # for the commands run below
    succeeds(home, "backup")
    lake = settings.warehouse
    truncated = lake.month_file("raw.tweets", MONTHS[1])
    os.truncate(truncated, truncated.stat().st_size // 2)
    lake.files("metrics.promotions")[0].unlink()

    found = sentiment(home, "doctor")
    assert found.returncode == 1 and str(truncated) in found.stdout, found.stdout
    succeeds(home, "restore")

    assert contents(settings) == before
    aside = list((home / "backups").glob("*-replaced/lake"))
    assert len(aside) == 1, "the damaged lake is kept aside"
    assert (aside[0] / truncated.relative_to(lake.root)).stat().st_size < truncated.stat().st_size
