"""What the Dagster UI and logs tell a newcomer: every dbt check explained, no policy warning."""

from __future__ import annotations

import warnings

import dagster as dg

from sentiment_assets.definitions import defs
from sentiment_assets.defs.ingest.landing_sensor import INGEST_SELECTION
from sentiment_assets.lineage import STG_TWEETS
from tests import loaded


def test_every_dbt_check_says_what_it_guarantees() -> None:
    specs = list(loaded.asset(STG_TWEETS).check_specs)
    assert specs, "the dbt tests should be Dagster asset checks"
    undescribed = [spec.key.to_user_string() for spec in specs if not spec.description]
    assert undescribed == []
    # The same specs as the code location serves them, not only the bare asset's.
    graph = defs().resolve_asset_graph()
    served = {key: graph.get_check_spec(key) for key in graph.asset_check_keys}
    assert {spec.key for spec in specs} <= set(served)
    assert all(served[spec.key].description for spec in specs)


def test_every_monthly_asset_builds_one_month_per_run() -> None:
    # One policy for all, so no run mixes policies (new_data_sensor's runs span them all).
    graph = defs().resolve_asset_graph()
    policies = {
        key.to_user_string(): graph.get(key).backfill_policy
        for key in graph.executable_asset_keys
        if graph.get(key).is_partitioned
    }
    assert INGEST_SELECTION.resolve(graph) <= {dg.AssetKey(k) for k in policies}
    assert set(policies.values()) == {dg.BackfillPolicy.multi_run(1)}, policies


def test_resolving_the_sensor_runs_job_warns_of_no_varying_policies() -> None:
    # The job new_data_sensor's runs execute: the implicit job over INGEST_SELECTION.
    job = dg.define_asset_job("__ephemeral_asset_job__", selection=INGEST_SELECTION)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        job.resolve(asset_graph=defs().resolve_asset_graph())
    assert not [w for w in caught if "BackfillPolic" in str(w.message)]
