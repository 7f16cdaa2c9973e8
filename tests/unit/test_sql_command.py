"""`sentiment sql` (sentiment_assets/commands/sql.py) on a real published snapshot: what can be
queried is listed and described, the README's queries answer, a statement at a time, memory
bounded, and a table that fits the terminal. Stops by timeout and Ctrl-C are exercised on the
real process in tests/reliability/test_sql_bounded.py."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from sentiment_assets.cli import main
from sentiment_assets.environment import current_settings
from sentiment_assets.lib.settings import REPO_ROOT
from sentiment_assets.lib.store.warehouse import append_rows, connect, ensure_schema
from sentiment_assets.lib.versions.publish import publish_history
from tests.conftest import use_home

MONTH = pd.Timestamp("2024-01-01").date()
METRIC_TABLES = [
    "metrics.drift_reports",
    "metrics.model_evaluations",
    "metrics.promotions",
    "metrics.slice_evaluations",
    "metrics.training_decisions",
    "metrics.training_runs",
]


def fill_warehouse(path: Path, published_dir: Path, with_clean: bool = True) -> None:
    """A promotion, two files' accounting and (as dbt would make it) a dropped row."""
    with connect(path) as con:
        ensure_schema(con)
        append_rows(
            con, "metrics.promotions", pd.DataFrame({"model_version": ["1"], "decision": ["ok"]})
        )
        files = pd.DataFrame(
            {"month": [MONTH] * 2, "file": ["a.csv", "b.csv"], "rows": [3, 2], "accepted": [2, 2]}
        )
        append_rows(con, "raw.ingested_files", files)
        rejected = pd.DataFrame({"month": [MONTH], "reason": ["empty_text"]})
        append_rows(con, "raw.rejected_tweets", rejected)
        if with_clean:
            con.execute("CREATE SCHEMA clean")
            con.execute(
                "CREATE TABLE clean.tweets_dropped AS "
                "SELECT DATE '2024-01-01' AS month, 'duplicate' AS reason, 'hi' AS text"
            )
        publish_history(con, published_dir)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    use_home(monkeypatch, tmp_path / "home")
    settings = current_settings()
    fill_warehouse(settings.duckdb_path, settings.published_dir)
    return settings.home


def sql_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    assert main(["sql", *args, "--format", "json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def sql_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["sql", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1, err
    return err.strip()


def test_tables_lists_every_published_table_with_its_rows(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = {row["table"]: row["rows"] for row in sql_json(capsys, "--tables")}
    assert listed == {
        "clean.tweets_dropped": 1,
        "raw.ingested_files": 2,
        "raw.rejected_tweets": 1,
        "metrics.promotions": 1,
        **{table: 0 for table in METRIC_TABLES if table != "metrics.promotions"},
    }


def test_a_table_not_built_yet_is_not_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_home(monkeypatch, tmp_path / "fresh")
    settings = current_settings()
    fill_warehouse(settings.duckdb_path, settings.published_dir, with_clean=False)
    listed = [row["table"] for row in sql_json(capsys, "--tables")]
    assert "clean.tweets_dropped" not in listed
    assert "raw.ingested_files" in listed


@pytest.mark.parametrize("name", ["metrics.promotions", "promotions", "METRICS.Promotions"])
def test_describe_lists_columns_and_types(
    home: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    described = sql_json(capsys, "--describe", name)
    assert described[0] == {"column": "model_version", "type": "VARCHAR"}
    assert {"column": "created_at", "type": "TIMESTAMP"} in described


def test_describe_an_unknown_table_names_the_known_ones(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = sql_error(capsys, "--describe", "raw.tweets")
    assert message.startswith("error: no table 'raw.tweets'; the tables are: clean.tweets_dropped")


def test_show_tables_lists_the_tables(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = {row["name"] for row in sql_json(capsys, "SHOW TABLES")}
    assert {"promotions", "ingested_files", "rejected_tweets", "tweets_dropped"} <= names


def documented_queries() -> list[str]:
    """Every query the README and the docs run: their ```sql blocks and `sentiment sql "..."`."""
    pages = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    text = "\n".join(page.read_text() for page in pages)
    blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.DOTALL)
    statements = [line for block in blocks for line in block.splitlines() if line.strip()]
    return statements + re.findall(r'sentiment sql "([^"]+)"', text)


def test_the_documented_queries_answer(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    queries = documented_queries()
    assert any("clean.tweets_dropped" in query for query in queries)
    for query in queries:
        assert main(["sql", query]) == 0, (query, capsys.readouterr().err)
    assert capsys.readouterr().err == ""


def test_one_statement_unless_multi(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    two = "SELECT 1 AS one; SELECT 2 AS two"
    message = sql_error(capsys, two)
    assert message == "error: 2 statements given; one is run at a time (--multi runs them all)"
    assert sql_json(capsys, two, "--multi") == [{"two": 2}]


def test_the_memory_limit_stops_a_hungry_query(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Sorting 20M rows needs ~300 MB; the snapshot may not spill to disk.
    hungry = "SELECT count(*) FROM (SELECT range, random() AS r FROM range(20000000) ORDER BY r)"
    message = sql_error(capsys, hungry, "--memory-limit", "64MB")
    assert message == (
        "error: the query needed more than its 64MB memory limit and was stopped "
        "(--memory-limit to change it)"
    )


@pytest.mark.parametrize("limit", ["lots", "2 GB; DROP", "-1GB"])
def test_a_bad_memory_limit_is_refused(limit: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["sql", "SELECT 1", f"--memory-limit={limit}"])
    assert exit_info.value.code == 2
    assert "is not a size such as 2GB" in capsys.readouterr().err


def test_a_query_a_listing_or_nothing_at_all(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in ([], ["SELECT 1", "--tables"]):
        assert sql_error(capsys, *args) == (
            "error: give a QUERY, --tables or --describe TABLE (one of them)"
        )


def test_the_table_fits_the_terminal(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    query = "SELECT 42 AS n, repeat('long text ', 30) AS wide, 'kept' AS short, -1.5 AS x"
    assert main(["sql", query]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 60
    assert lines[0].split() == ["n", "wide", "short", "x"]
    assert "…" in lines[1] and lines[1].split()[-2:] == ["kept", "-1.5"]


def test_sql_csv_neutralises_formulas(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    query = "SELECT '=HYPERLINK(''http://x'')' AS link, -3 AS n, '@you' AS \"@col\", NULL AS gap"
    assert main(["sql", query, "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out, newline="")))
    assert rows == [["link", "n", "'@col", "gap"], ["'=HYPERLINK('http://x')", "-3", "'@you", ""]]
