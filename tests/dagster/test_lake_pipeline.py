"""The lake warehouse (SENTIMENT_WAREHOUSE=lake, the prod profile's) gives the same tables
as the DuckDB file: the same months built through Dagster on each, compared row for row."""

import pandas as pd
import pytest

from sentiment_assets.lib.store.lake import Lake
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.lib.versions.publish import query_history
from sentiment_assets.ops.build import build_months
from sentiment_assets.ops.instance import prepare_environment
from tests.conftest import use_home

pytestmark = pytest.mark.slow
MONTHS = ["2024-01-01", "2024-02-01"]
# What differs between two builds by design: clocks, run ids and where files live.
VOLATILE = {
    "created_at",
    "ingested_at",
    "dagster_run_id",
    "mlflow_run_id",
    "model_uri",
    "train_seconds",
    "inference_ms_per_tweet",
    "reliability",
}
TABLES = {
    "raw.tweets": "month, tweet_id",
    "raw.rejected_tweets": "month, source_row",
    "raw.ingested_files": "month, file",
    "clean.tweets_clean": "month, tweet_id",
    "clean.tweets_dropped": "month, tweet_id, reason",
    "features.tweet_embeddings": "month, tweet_id",
    "metrics.training_runs": "model_version",
    "metrics.model_evaluations": "model_version, eval_month, eval_set",
    "metrics.drift_reports": "month, statistic",
    "metrics.promotions": "model_version, decision",
    "metrics.slice_evaluations": "model_version, eval_month, slice",
}


def build(monkeypatch: pytest.MonkeyPatch, home, warehouse: str):
    use_home(monkeypatch, home)
    monkeypatch.setenv("SENTIMENT_WAREHOUSE", warehouse)
    monkeypatch.setenv("SENTIMENT_SYNTHETIC_MONTHS", str(len(MONTHS)))
    settings = prepare_environment()
    results = build_months(MONTHS)
    return settings, results


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    built = {}
    for warehouse in ("duckdb", "lake"):
        with pytest.MonkeyPatch.context() as monkeypatch:
            built[warehouse] = build(monkeypatch, tmp_path_factory.mktemp(warehouse), warehouse)
    return built


def table(settings, name: str) -> pd.DataFrame:
    with connect(settings.warehouse, read_only=True) as con:
        frame = con.execute(f"SELECT * FROM {name} ORDER BY {TABLES[name]}").df()
    return frame.drop(columns=[c for c in frame.columns if c in VOLATILE or c == "file"])


def test_the_lake_holds_its_tables_as_files_and_no_duckdb_file(both):
    settings, results = both["lake"]
    assert isinstance(settings.warehouse, Lake)
    assert not settings.duckdb_path.exists()
    lake = settings.warehouse
    assert [m.isoformat() for m in lake.months("clean.tweets_clean")] == MONTHS
    assert [m.isoformat() for m in lake.months("features.tweet_embeddings")] == MONTHS
    assert lake.files("features.embedding_cache"), "the encoded texts were cached"
    # dbt's scratch databases are gone once their months are in the lake.
    assert list(lake.scratch_dir.glob("*.duckdb")) == []
    assert all(r.success for month in results for r in month.runs)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_table_matches_the_duckdb_warehouse(both, name):
    embedded, lake = table(both["duckdb"][0], name), table(both["lake"][0], name)
    assert len(lake) > 0 or name in {"raw.rejected_tweets", "clean.tweets_dropped"}
    pd.testing.assert_frame_equal(
        lake[embedded.columns].reset_index(drop=True),
        embedded.reset_index(drop=True),
        check_dtype=False,
    )


def test_sql_reads_the_published_history_of_the_lake(both):
    settings, _ = both["lake"]
    result = query_history(settings.published_dir, "SELECT count(*) FROM metrics.model_evaluations")
    with connect(settings.warehouse, read_only=True) as con:
        live = con.execute("SELECT count(*) FROM metrics.model_evaluations").fetchone()[0]
    assert result.rows == [(live,)] and live > 0


def test_rebuilding_a_month_replaces_its_files(both):
    settings, _ = both["lake"]
    before = table(settings, "clean.tweets_clean")
    with pytest.MonkeyPatch.context() as patch:
        use_home(patch, settings.home)
        patch.setenv("SENTIMENT_WAREHOUSE", "lake")
        patch.setenv("SENTIMENT_SYNTHETIC_MONTHS", str(len(MONTHS)))
        prepare_environment()
        build_months([MONTHS[1]], selection=["raw_tweets", "stg_tweets", "tweets_clean"])
    pd.testing.assert_frame_equal(table(settings, "clean.tweets_clean"), before)
    assert [p.name for p in settings.warehouse.files("clean.tweets_clean")] == [
        f"{m}.parquet" for m in MONTHS
    ]
