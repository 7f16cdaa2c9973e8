"""Only real months are built: a month no source has a row for is refused by raw_tweets,
with its reason, and nothing downstream runs; the run itself is not a failure."""

from __future__ import annotations

import dagster as dg
import duckdb

from sentiment_assets.definitions import defs
from sentiment_assets.environment import current_settings
from sentiment_assets.lib.store.warehouse import connect
from tests.conftest import use_home

# The session's synthetic source covers 2024-01..2024-03; this home's covers January alone.
EMPTY_MONTH = "2024-02-01"


def test_a_month_without_data_is_refused_and_nothing_downstream_runs(tmp_path, monkeypatch):
    use_home(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("SENTIMENT_SYNTHETIC_MONTHS", "1")
    # An explicit range makes February a partition although no source has a row for it.
    monkeypatch.setenv("SENTIMENT_MONTHS", f"2024-01-01..{EMPTY_MONTH}")
    settings = current_settings()
    definitions = defs()
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            list(definitions.assets),
            selection=[dg.AssetKey(k) for k in ("raw_tweets", "stg_tweets", "tweets_clean")],
            partition_key=EMPTY_MONTH,
            resources=definitions.resources,
            instance=instance,
            raise_on_error=False,
        )
        logs = instance.all_logs(result.run_id)
    assert result.success
    assert result.get_asset_materialization_events() == []
    skipped = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"}
    assert skipped, "the dbt step must not run"
    refusals = [e.user_message for e in logs if "refused" in (e.user_message or "")]
    assert any(line.startswith("2024-02 refused: no source has a row for it") for line in refusals)
    assert all("\n" not in line for line in refusals)
    assert not [e for e in logs if e.level >= 40], "a refusal is not an error"
    try:
        with connect(settings.duckdb_path, read_only=True) as con:
            rows = con.execute("SELECT count(*) FROM raw.tweets").fetchone()[0]
    except duckdb.Error:
        rows = 0  # not even created: nothing was written
    assert rows == 0


def test_a_month_with_data_is_still_built(tmp_path, monkeypatch):
    use_home(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("SENTIMENT_SYNTHETIC_MONTHS", "1")
    definitions = defs()
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            list(definitions.assets),
            selection=[dg.AssetKey("raw_tweets")],
            partition_key="2024-01-01",
            resources=definitions.resources,
            instance=instance,
        )
    (event,) = result.get_asset_materialization_events()
    assert event.materialization.metadata["rows_in"].value == 240
