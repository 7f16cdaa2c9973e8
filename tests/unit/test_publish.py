"""The published history (lib/versions/publish.py) and `sentiment sql`, which reads it.

A real DuckDB warehouse file is written with the pipeline's schema, published, and read back
through the snapshot: the same query must give the same answer as the live file did.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from sentiment_assets.cli import main
from sentiment_assets.environment import current_settings
from sentiment_assets.lib.store.warehouse import append_rows, connect, ensure_schema, replace_rows
from sentiment_assets.lib.versions.publish import (
    HISTORY_TABLES,
    HistoryError,
    HistoryQueryError,
    HistoryRows,
    NoPublishedHistoryError,
    history_dir,
    publish_history,
    query_history,
    record_history,
)
from tests.conftest import use_home

CREATED = datetime(2024, 3, 5, 12, 30)


def evaluations(family: str, months: list[date]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model_family": family,
            "model_version": [str(i + 1) for i in range(len(months))],
            "trained_through": months,
            "eval_month": months,
            "eval_set": "next_month",
            "n": [100 + i for i in range(len(months))],
            "accuracy": [0.7 + i / 100 for i in range(len(months))],
            "macro_f1": [0.65 + i / 100 for i in range(len(months))],
            "created_at": CREATED,
        }
    )


def promotion(version: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model_version": [version],
            "model_family": ["tfidf_logreg"],
            "decision": ["promoted"],
            "challenger_score": [0.71],
            "created_at": [CREATED],
        }
    )


def build_warehouse(path: Path, published_dir: Path) -> None:
    """What the pipeline leaves behind: metric rows in the live file, then a publish."""
    with connect(path) as con:
        ensure_schema(con)
        replace_rows(
            con,
            "metrics.model_evaluations",
            evaluations("tfidf_logreg", [date(2024, 1, 1), date(2024, 2, 1)]),
            "true",
            [],
        )
        append_rows(con, "metrics.promotions", promotion("1"))
        publish_history(con, published_dir)


def test_history_tables_are_every_table_of_the_metrics_schema() -> None:
    # A metrics table left out of HISTORY_TABLES would never reach the app or `sentiment sql`.
    con = duckdb.connect(":memory:")
    ensure_schema(con)
    tables = con.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        "WHERE table_schema = 'metrics'"
    ).fetchall()
    assert {t for (t,) in tables} == set(HISTORY_TABLES.values())


def test_the_snapshot_answers_as_the_live_warehouse_did(tmp_path: Path) -> None:
    warehouse, published = tmp_path / "warehouse.duckdb", tmp_path / "published"
    build_warehouse(warehouse, published)
    for table in HISTORY_TABLES.values():
        query = f"SELECT * FROM {table} ORDER BY ALL"
        with connect(warehouse, read_only=True) as con:
            live = con.execute(query)
            live_columns = [c[0] for c in live.description]
            live_rows = live.fetchall()
        result = query_history(published, query)
        assert result.columns == live_columns, table
        assert result.rows == live_rows, table  # types too: DATE stays a date, not a string
    counted = query_history(published, "SELECT count(*) FROM metrics.model_evaluations")
    assert counted.rows == [(2,)]


def test_a_republish_is_seen_by_the_next_query(tmp_path: Path) -> None:
    warehouse, published = tmp_path / "warehouse.duckdb", tmp_path / "published"
    build_warehouse(warehouse, published)
    with connect(warehouse) as con:
        append_rows(con, "metrics.promotions", promotion("2"))
        publish_history(con, published)
    result = query_history(
        published, "SELECT model_version FROM metrics.promotions ORDER BY model_version"
    )
    assert result.rows == [("1",), ("2",)]


def test_recorded_rows_replace_their_match_and_are_published_at_once(tmp_path: Path) -> None:
    warehouse, published = tmp_path / "warehouse.duckdb", tmp_path / "published"
    build_warehouse(warehouse, published)
    february = evaluations("tfidf_logreg", [date(2024, 2, 1)]).assign(accuracy=0.9)
    with connect(warehouse) as con:
        record_history(
            con,
            published,
            HistoryRows(
                "metrics.model_evaluations", february, "eval_month = ?", (date(2024, 2, 1),)
            ),
            HistoryRows("metrics.promotions", promotion("2")),
        )
    accuracy = query_history(
        published, "SELECT eval_month, accuracy FROM metrics.model_evaluations ORDER BY ALL"
    )
    assert accuracy.rows == [(date(2024, 1, 1), 0.7), (date(2024, 2, 1), 0.9)]
    promoted = query_history(published, "SELECT model_version FROM metrics.promotions ORDER BY 1")
    assert promoted.rows == [("1",), ("2",)]


def test_a_failed_write_records_none_of_its_rows(tmp_path: Path) -> None:
    warehouse, published = tmp_path / "warehouse.duckdb", tmp_path / "published"
    build_warehouse(warehouse, published)
    with connect(warehouse) as con, pytest.raises(duckdb.Error):
        record_history(
            con,
            published,
            HistoryRows("metrics.promotions", promotion("2")),
            HistoryRows("metrics.promotions", promotion("3").assign(no_such_column=1)),
        )
    with connect(warehouse, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM metrics.promotions").fetchone() == (1,)
    assert query_history(published, "SELECT count(*) FROM metrics.promotions").rows == [(1,)]


def test_no_snapshot_says_to_build_the_pipeline(tmp_path: Path) -> None:
    with pytest.raises(NoPublishedHistoryError, match="pipeline"):
        query_history(tmp_path / "published", "SELECT 1")


def test_a_half_written_staging_file_is_never_read(tmp_path: Path) -> None:
    # lib/core/atomic.py stages under a hidden name beside the target; a writer killed mid-COPY
    # leaves such a file, and the reader must only ever open the renamed-in ones.
    warehouse, published = tmp_path / "warehouse.duckdb", tmp_path / "published"
    build_warehouse(warehouse, published)
    (history_dir(published) / ".model_evaluations-abc123.parquet").write_bytes(b"PAR1 torn")
    result = query_history(published, "SELECT count(*) FROM metrics.model_evaluations")
    assert result.rows == [(2,)]


def test_a_damaged_snapshot_file_is_a_clear_error(tmp_path: Path) -> None:
    warehouse, published = tmp_path / "warehouse.duckdb", tmp_path / "published"
    build_warehouse(warehouse, published)
    (history_dir(published) / "promotions.parquet").write_bytes(b"not parquet")
    with pytest.raises(HistoryError, match=r"promotions\.parquet"):
        query_history(published, "SELECT 1")


@pytest.mark.parametrize(
    "query",
    [
        "SELEC * FROM metrics.model_evaluations",
        "SELECT * FROM metrics.no_such_table",
        "SELECT no_such_column FROM metrics.promotions",
    ],
)
def test_a_bad_query_is_a_query_error(tmp_path: Path, query: str) -> None:
    build_warehouse(tmp_path / "warehouse.duckdb", tmp_path / "published")
    with pytest.raises(HistoryQueryError):
        query_history(tmp_path / "published", query)


@pytest.mark.parametrize(
    "query",
    [
        "ATTACH '{warehouse}' AS live (READ_ONLY)",
        "SELECT * FROM read_parquet('{published}/history/promotions.parquet')",
        "COPY (SELECT 1) TO '{published}/history/promotions.parquet'",
        "SET enable_external_access = true",
    ],
)
def test_a_query_cannot_reach_files(tmp_path: Path, query: str) -> None:
    # The snapshot is the only thing a query sees: it may not open the live warehouse (the
    # lock this command exists to avoid) nor overwrite the published files.
    warehouse, published = tmp_path / "warehouse.duckdb", tmp_path / "published"
    build_warehouse(warehouse, published)
    with pytest.raises(HistoryQueryError):
        query_history(published, query.format(warehouse=warehouse, published=published))
    assert query_history(published, "SELECT count(*) FROM metrics.promotions").rows == [(1,)]


@pytest.fixture
def published_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    use_home(monkeypatch, tmp_path / "home")
    settings = current_settings()
    build_warehouse(settings.duckdb_path, settings.published_dir)
    return settings.home


QUERY = "SELECT model_family, eval_month, n, macro_f1 FROM metrics.model_evaluations ORDER BY eval_month"


def test_cli_sql_prints_a_table(published_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", QUERY]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model_family", "eval_month", "n", "macro_f1"]
    assert lines[1].split() == ["tfidf_logreg", "2024-01-01", "100", "0.65"]
    assert len(lines) == 3


def test_cli_sql_csv_and_json(published_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", QUERY, "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["model_family", "eval_month", "n", "macro_f1"]
    assert rows[2] == ["tfidf_logreg", "2024-02-01", "101", "0.66"]

    full = "SELECT eval_month, created_at, precision_negative FROM metrics.model_evaluations"
    assert main(["sql", full + " ORDER BY eval_month", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert records[0] == {
        "eval_month": "2024-01-01",
        "created_at": "2024-03-05T12:30:00",
        "precision_negative": None,
    }
    assert len(records) == 2


def test_cli_sql_empty_result(published_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "SELECT * FROM metrics.drift_reports"]) == 0
    assert capsys.readouterr().out.strip() == "(no rows)"


def test_cli_sql_bad_query_exits_2(
    published_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sql", "SELECT * FROM metrics.nope"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and "nope" in captured.err


def test_cli_sql_without_a_snapshot_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_home(monkeypatch, tmp_path / "empty-home")
    assert main(["sql", "SELECT * FROM metrics.model_evaluations"]) == 2
    err = capsys.readouterr().err
    assert "no published metric history" in err and "pipeline" in err
    assert not current_settings().duckdb_path.exists(), "must not create or open the warehouse"
