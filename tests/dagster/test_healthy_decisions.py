"""Expected decisions look like decisions: a rejected challenger (a tie included) leaves a
green run with its reason on model_champion, and drift findings are warnings, never red."""

from __future__ import annotations

import math

import dagster as dg
import pytest
from mlflow.tracking import MlflowClient

from sentiment_assets.defs.models.promotion import _gate_result
from sentiment_assets.defs.monitoring.assets import DRIFT_CHECKS, drift_check_results
from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.environment import current_settings
from sentiment_assets.lib.stats import drift
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.promotion import REJECTED, PromotionRecord, decide
from sentiment_assets.lineage import MODEL_CHALLENGER, MODEL_CHAMPION
from tests import loaded
from tests.conftest import use_home

MONTH = "2024-02-01"


def register(client: MlflowClient, family: str) -> registry.VersionInfo:
    experiment = client.get_experiment_by_name(registry.EXPERIMENT_NAME)
    run = client.create_run(experiment.experiment_id)
    tags = {"family": family, "trained_through": MONTH}
    return registry.register_version(client, run.info.run_id, run.info.artifact_uri, tags)


def tie_record(champion: registry.VersionInfo, challenger: registry.VersionInfo):
    decision = decide(challenger.version, 0.8312, champion.version, 0.8312, margin=0.0)
    return decision, PromotionRecord(
        model_version=challenger.version,
        model_family=challenger.family,
        trained_through=None,
        decision=decision.decision,
        reason=decision.reason,
        champion_version=champion.version,
        champion_score=0.8312,
        challenger_score=0.8312,
        metric="macro_f1",
        margin=0.0,
    )


def test_the_gate_rejects_a_tie_as_a_warning_not_an_error():
    decision = decide("2", 0.8312, "1", 0.8312, margin=0.0)
    check = _gate_result(decision, {"challenger_score": 0.8312, "champion_score": 0.8312})
    assert decision.decision == REJECTED and "+0.0000" in decision.reason
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN


def test_a_rejected_challenger_leaves_a_green_run_and_the_champion_in_place(tmp_path, monkeypatch):
    use_home(monkeypatch, tmp_path / "home")
    settings = current_settings()
    registry.configure(settings.mlflow_tracking_uri, settings.mlflow_artifacts_dir)
    client = MlflowClient(settings.mlflow_tracking_uri)
    champion = register(client, "tfidf_logreg")
    registry.set_champion(client, champion.version)
    challenger = register(client, "embedding_logreg")
    decision, record = tie_record(champion, challenger)
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=MODEL_CHALLENGER,
                partition=MONTH,
                metadata={"decision_record": dg.MetadataValue.json(record.as_json())},
            )
        )
        result = dg.materialize(
            [loaded.asset(MODEL_CHAMPION)],
            partition_key=MONTH,
            instance=instance,
            resources={
                "warehouse": WarehouseResource(database=str(settings.duckdb_path)),
                "platform": PlatformResource.of(settings),
            },
            raise_on_error=False,
        )
        errors = [
            event
            for event in instance.all_logs(result.run_id)
            if event.level >= 40  # logging.ERROR: no stack trace in a healthy run
        ]
    assert result.success and errors == []
    (event,) = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["decision"] == REJECTED
    assert metadata["reason"] == decision.reason and "tie" in metadata["reason"]
    assert metadata["champion_version"] == champion.version
    assert registry.champion(client).version == champion.version
    with connect(settings.duckdb_path, read_only=True) as con:
        recorded = con.execute("SELECT model_version, decision FROM metrics.promotions").fetchall()
    assert recorded == [(challenger.version, REJECTED)]


def stat(name: str, drifted: bool | None) -> drift.StatResult:
    spec = drift.statistic_named(name) if name != drift.COMBINED else None
    kind, severity = (spec.kind, spec.severity) if spec else ("combined", "error")
    p_value = None if drifted is None else (0.001 if drifted else 0.5)
    return drift.StatResult(name, 0.123456789, 0.05, drifted, p_value, {}, kind, severity)


@pytest.mark.parametrize("drifted", [True, None])
def test_drift_findings_are_warnings_never_failed_errors(drifted):
    results = [stat(name, drifted) for name in drift.report_names()]
    checks = list(drift_check_results(results, summary="a finding"))
    assert [c.check_name for c in checks] == DRIFT_CHECKS
    assert all(c.severity == dg.AssetCheckSeverity.WARN for c in checks)
    assert all(c.passed is (drifted is not True) for c in checks)
    value = checks[0].metadata["value"]
    assert value.value == 0.1235 and not math.isnan(value.value)
