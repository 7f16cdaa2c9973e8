"""Both warehouses (lib/store/warehouse.py's Warehouse protocol) give the same rows for the
same writes: a month replaced from a query, keyed rows added once, a failed write undone."""

from datetime import date

import pytest

from sentiment_assets.lib.store.duckdb_file import DuckDBFile
from sentiment_assets.lib.store.lake import Lake
from sentiment_assets.lib.store.warehouse import Warehouse, scratch_parent, warehouse_at

MARCH, APRIL = date(2024, 3, 1), date(2024, 4, 1)


@pytest.fixture(params=["duckdb", "lake"])
def store(request, tmp_path) -> Warehouse:
    if request.param == "lake":
        return Lake(tmp_path / "lake")
    return warehouse_at(tmp_path / "warehouse.duckdb")


def month_rows(month: date, ids: list[str]) -> str:
    values = ", ".join(f"('{i}', DATE '{month.isoformat()}')" for i in ids)
    return f"SELECT * FROM (VALUES {values}) v(tweet_id, month)"


def test_a_month_replaced_from_a_query_leaves_other_months(store):
    with store.connect() as con:
        con.ensure_schema()
        with con.transaction():
            con.replace_month_with("raw.tweets", MARCH, month_rows(MARCH, ["a", "b"]))
            con.replace_month_with("raw.tweets", APRIL, month_rows(APRIL, ["c"]))
        con.replace_month_with("raw.tweets", MARCH, month_rows(MARCH, ["d"]))
    with store.connect(read_only=True) as con:
        rows = con.execute("SELECT month, tweet_id FROM raw.tweets ORDER BY 1, 2").fetchall()
    assert rows == [(MARCH, "d"), (APRIL, "c")]


def test_keyed_rows_are_added_once_and_counted(store):
    select = (
        "SELECT ? AS encoder, h AS text_hash, [1.0]::FLOAT[] AS embedding, "
        "TIMESTAMP '2024-03-01' AS created_at FROM unnest(?) t(h)"
    )
    with store.connect() as con:
        con.ensure_schema()
        first = con.insert_new("features.embedding_cache", select, ["enc", ["x", "y"]])
        second = con.insert_new("features.embedding_cache", select, ["enc", ["y", "z"]])
        hashes = con.execute("SELECT text_hash FROM features.embedding_cache ORDER BY 1").fetchall()
    assert (first, second) == (2, 1)
    assert hashes == [("x",), ("y",), ("z",)]


def test_a_failed_transaction_keeps_the_file_warehouse_as_it_was(tmp_path):
    store = DuckDBFile(tmp_path / "warehouse.duckdb")
    with store.connect() as con:
        con.ensure_schema()
        con.replace_month_with("raw.tweets", MARCH, month_rows(MARCH, ["a"]))
        with pytest.raises(RuntimeError), con.transaction():
            con.replace_month_with("raw.tweets", MARCH, month_rows(MARCH, ["b"]))
            raise RuntimeError("the next table failed")
        assert con.execute("SELECT tweet_id FROM raw.tweets").fetchall() == [("a",)]


def test_scratch_files_go_on_the_warehouse_disk(tmp_path):
    assert scratch_parent(tmp_path / "warehouse.duckdb") == tmp_path
    assert scratch_parent(Lake(tmp_path / "lake")) == tmp_path / "lake" / ".scratch"
