"""Three synthetic months built end to end through Dagster, against a real instance."""

from datetime import date

import pytest

from sentiment_assets.cli import build_months, prepare_environment
from sentiment_assets.lib import synthetic
from sentiment_assets.lib.warehouse import connect
from tests.conftest import use_home

pytestmark = pytest.mark.slow
MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01"]


def materialization_metadata(result, asset: str) -> dict:
    (event,) = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == asset
    ]
    return {k: v.value for k, v in event.materialization.metadata.items()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        home = use_home(monkeypatch, tmp_path_factory.mktemp("home"))
        settings = prepare_environment()
        results = build_months()
        rerun = build_months(["2024-02-01"])[0]
        yield settings, dict(zip(MONTHS, results, strict=True)), rerun


def count(con, sql: str, *params) -> int:
    return con.execute(sql, list(params)).fetchone()[0]


def test_every_default_month_was_built(built):
    settings, results, _ = built
    assert list(results) == MONTHS
    for result in results.values():
        assert result.success
        checks = result.get_asset_check_evaluations()
        assert checks, "dbt tests and the reject-rate check should run as asset checks"
        failed = [c.check_name for c in checks if not c.passed]
        assert failed == []


def test_rows_are_conserved_per_month(built):
    settings, results, _ = built
    config = synthetic.config_from_env({"SENTIMENT_SYNTHETIC_TWEETS_PER_MONTH": "240"})
    with connect(settings.duckdb_path, read_only=True) as con:
        for key, result in results.items():
            month = date.fromisoformat(key)
            meta = materialization_metadata(result, "raw_tweets")
            accepted = count(con, "SELECT count(*) FROM raw.tweets WHERE month = ?", month)
            rejected = count(con, "SELECT count(*) FROM raw.rejected_tweets WHERE month = ?", month)
            generated = len(synthetic.generate_month(config, month))
            assert accepted + rejected == generated == meta["rows_in"]
            assert (meta["rows_accepted"], meta["rows_rejected"]) == (accepted, rejected)
            assert rejected > 0, "the generator's broken rows must be quarantined, not dropped"
            clean = count(con, "SELECT count(*) FROM clean.tweets_clean WHERE month = ?", month)
            distinct_ids = count(
                con, "SELECT count(DISTINCT tweet_id) FROM raw.tweets WHERE month = ?", month
            )
            assert 0.9 * distinct_ids <= clean <= distinct_ids
            embedded = count(
                con, "SELECT count(*) FROM features.tweet_embeddings WHERE month = ?", month
            )
            assert embedded == clean


def test_rerun_replaces_a_month_instead_of_appending(built):
    settings, results, rerun = built
    with connect(settings.duckdb_path, read_only=True) as con:
        for table in (
            "raw.tweets",
            "raw.rejected_tweets",
            "clean.tweets_clean",
            "features.tweet_embeddings",
        ):
            per_month = con.execute(
                f"SELECT month, count(*) FROM {table} GROUP BY month ORDER BY month"
            ).fetchall()
            assert len(per_month) == 3
            assert max(n for _, n in per_month) < 2 * min(n for _, n in per_month), table
        evaluations = count(
            con,
            "SELECT count(*) FROM metrics.model_evaluations WHERE eval_month = ?",
            date(2024, 2, 1),
        )
        assert evaluations == 2, "one row per (model, eval month), also after a rerun"
    first = materialization_metadata(results["2024-02-01"], "tweet_embeddings")
    again = materialization_metadata(rerun, "tweet_embeddings")
    assert first["encoded"] > 0
    assert again["encoded"] == 0 and again["from_cache"] == first["unique_texts"]
    assert materialization_metadata(rerun, "raw_tweets")["rows_in"] == (
        materialization_metadata(results["2024-02-01"], "raw_tweets")["rows_in"]
    )


def test_forward_chained_metrics_are_recorded(built):
    settings, _, _ = built
    with connect(settings.duckdb_path, read_only=True) as con:
        rows = con.execute(
            "SELECT model_family, trained_through, eval_month, n, accuracy, macro_f1 "
            "FROM metrics.model_evaluations ORDER BY eval_month, model_family"
        ).fetchall()
    assert {(r[0], r[1], r[2]) for r in rows} == {
        (family, date(2024, m - 1, 1), date(2024, m, 1))
        for family in ("embedding_logreg", "tfidf_logreg")
        for m in (2, 3)
    }
    for family, _, eval_month, n, accuracy, macro_f1 in rows:
        assert n > 150
        assert 0.0 <= macro_f1 <= 1.0
        if eval_month == date(2024, 2, 1):
            # Undrifted month: a model trained on one month must beat chance clearly.
            assert accuracy > 0.6, (family, accuracy)


def test_model_bundles_hold_no_pickles(built):
    settings, _, _ = built
    files = [p for p in (settings.home / "models").rglob("*") if p.is_file()]
    assert any(p.name == "model.skops" for p in files)
    assert not [p for p in files if p.suffix in {".pkl", ".pickle", ".joblib"}]
