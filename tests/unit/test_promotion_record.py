"""A champion change is one record: written once by the challenger, acted on by the champion
step or the rollback command, and read back unchanged."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from sentiment_assets.lib.store.warehouse import append_rows, connect, ensure_schema
from sentiment_assets.lib.versions.promotion import (
    PROMOTED,
    REJECTED,
    ROLLBACK,
    PromotionRecord,
    previous_champion,
)


def record(**overrides) -> PromotionRecord:
    values = {
        "model_version": "7",
        "model_family": "embedding_logreg",
        "trained_through": date(2024, 3, 1),
        "decision": PROMOTED,
        "reason": "challenger 0.8 vs champion 0.7",
        "champion_version": "4",
        "champion_score": 0.7,
        "challenger_score": 0.8,
        "metric": "macro_f1",
        "margin": 0.0,
        "eval_month": date(2024, 3, 1),
        "n_eval": 120,
        "dagster_run_id": "run-1",
    }
    return PromotionRecord(**{**values, **overrides})


def test_the_record_survives_json_unchanged() -> None:
    for original in (record(), record(champion_version=None, champion_score=None)):
        assert PromotionRecord.from_json(original.as_json()) == original


def test_only_a_rejection_leaves_the_champion_in_place() -> None:
    assert record().moves_champion
    assert record(decision=ROLLBACK).moves_champion
    assert not record(decision=REJECTED).moves_champion


def test_the_row_has_the_promotions_columns(tmp_path: Path) -> None:
    with connect(tmp_path / "w.duckdb") as con:
        ensure_schema(con)
        append_rows(con, "metrics.promotions", record().frame())
        row = con.execute(
            "SELECT model_version, decision, champion_score, eval_month, created_at "
            "FROM metrics.promotions"
        ).fetchone()
    assert row[:4] == ("7", PROMOTED, 0.7, date(2024, 3, 1))
    assert row[4] is not None


def test_previous_champion_skips_rejections_and_the_current_one(tmp_path: Path) -> None:
    history = [("1", PROMOTED), ("2", REJECTED), ("3", PROMOTED), ("1", ROLLBACK), ("5", "kept")]
    with connect(tmp_path / "w.duckdb") as con:
        ensure_schema(con)
        assert previous_champion(con, None) is None
        for minute, (version, decision) in enumerate(history):
            frame = record(model_version=version, decision=decision).frame()
            frame["created_at"] = pd.Timestamp("2024-04-01") + pd.Timedelta(minutes=minute)
            append_rows(con, "metrics.promotions", frame)
        assert previous_champion(con, "1") == "3"
        assert previous_champion(con, "3") == "1"
        assert previous_champion(con, None) == "1"
