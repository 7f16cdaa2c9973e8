"""What people read about drift and its decision: drift_report's summary, the month's
training_decision (its metadata, its inputs read from the warehouse) and the request
training_decision_sensor makes of it, against a real ephemeral Dagster instance."""

import json
from datetime import date

import dagster as dg
import pandas as pd
import pytest

from sentiment_assets.defs.models.decision import (
    decision_metadata,
    gather_inputs,
    training_decision_sensor,
)
from sentiment_assets.defs.monitoring.assets import report_summary
from sentiment_assets.defs.platform.resources import PlatformResource
from sentiment_assets.environment import current_settings
from sentiment_assets.lib.stats import drift
from sentiment_assets.lib.stats.drift import StatResult, combine
from sentiment_assets.lib.store.warehouse import append_rows, connect, ensure_schema
from sentiment_assets.lib.versions.registry import VersionInfo
from sentiment_assets.lib.versions.retrain_policy import fast_families
from sentiment_assets.lib.versions.training_decision import (
    DecisionInputs,
    StatisticMove,
    decide_training,
)
from sentiment_assets.lineage import TRAINING_DECISION

DRIFTED = StatisticMove(drift.EMBEDDING_MMD, 0.02, 0.005, True)


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def decide(instance: dg.DagsterInstance, month: date, drifted: bool) -> str:
    """A decision on a champion trained two months before, recorded as the asset records it."""
    inputs = DecisionInputs(
        month=month,
        labelled_rows=1000,
        statistics=(DRIFTED,) if drifted else (),
        champion_version="2",
        champion_trained_through=date(2024, 1, 1),
        reference_accuracy=0.8,
        realised_accuracy=0.8,
    )
    decision = decide_training(inputs, "on_drift")
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=TRAINING_DECISION,
            partition=month.isoformat(),
            metadata=decision_metadata(decision),
        )
    )
    return decision.key


def tick(instance: dg.DagsterInstance, cursor: str | None = None):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"platform": PlatformResource.of(current_settings())},
    )
    return training_decision_sensor(context)


def test_one_request_per_train_decision_and_none_for_keep(instance, monkeypatch):
    monkeypatch.setenv("SENTIMENT_FINETUNE_CPU_BUDGET_SECONDS", "600")
    quiet = decide(instance, date(2024, 2, 1), drifted=False)
    drifted = decide(instance, date(2024, 3, 1), drifted=True)
    first = tick(instance)
    (request,) = first.run_requests
    assert request.run_key == drifted != quiet
    assert request.partition_key == "2024-03-01"
    # The decided window (the default drift window: the month alone), the fast families first, and the fine-tuned
    # family's budget for the follow-up to inherit.
    assert request.run_config["ops"]["sentiment_model"]["config"] == {
        "window_months": 1,
        "families": fast_families(),
        "finetune_cpu_budget_seconds": 600.0,
    }
    assert isinstance(tick(instance, first.cursor), dg.SkipReason)


def test_a_decision_reads_as_one_on_the_partition():
    inputs = DecisionInputs(date(2024, 2, 1), 1000, (DRIFTED,), "2", date(2024, 1, 1), 0.8, 0.8)
    metadata = decision_metadata(decide_training(inputs, "on_drift"))
    assert (metadata["decision"], metadata["policy"]) == ("train", "on_drift")
    assert metadata["reasons"].value.startswith("- content drift: embedding_mmd 0.02 beyond")
    assert (metadata["champion_version"], metadata["champion_age_months"]) == ("2", 1)
    assert metadata["drifted_statistics"] == drift.EMBEDDING_MMD
    kept = decision_metadata(decide_training(inputs, "never"))
    assert (kept["decision"], kept["families"], kept["window_months"]) == ("keep", "", 0)


def test_inputs_are_gathered_from_the_warehouse(tmp_path):
    month = date(2024, 5, 1)
    champion = VersionInfo("2", "embedding_logreg", date(2024, 2, 1), None, "")
    with connect(tmp_path / "w.duckdb") as con:
        ensure_schema(con)
        con.execute("CREATE SCHEMA clean")
        con.execute(
            "CREATE TABLE clean.tweets_clean AS SELECT DATE '2024-05-01' AS month, 1 AS label"
        )
        old, new = pd.Timestamp("2024-06-01"), pd.Timestamp("2024-06-02")
        drop = {"accuracy_reference": 0.83, "accuracy_current": 0.68}
        rows = [
            (drift.EMBEDDING_MMD, True, "{}", old),
            (drift.EMBEDDING_MMD, False, "{}", new),
            (drift.PERFORMANCE_DROP, True, json.dumps(drop), new),
        ]
        frame = pd.DataFrame(
            [
                {
                    "month": month,
                    "statistic": s,
                    "value": 0.1,
                    "threshold": 0.01,
                    "drifted": d,
                    "detail": detail,
                    "champion_version": "2",
                    "created_at": at,
                }
                for s, d, detail, at in rows
            ]
        )
        append_rows(con, "metrics.drift_reports", frame)
        inputs = gather_inputs(con, month, champion)
    # Only the latest report counts: its embedding test is quiet, its accuracy fell.
    assert [(m.statistic, m.drifted) for m in inputs.statistics] == [
        (drift.EMBEDDING_MMD, False),
        (drift.PERFORMANCE_DROP, True),
    ]
    assert (inputs.reference_accuracy, inputs.realised_accuracy) == (0.83, 0.68)
    assert (inputs.labelled_rows, inputs.champion_age_months) == (1, 3)
    assert inputs.estimated_accuracy is None and inputs.seconds_since_trained is None


def result(name: str, drifted: bool) -> StatResult:
    kind = "label" if name == drift.LABEL_PRIOR else "prediction"
    p_value = 0.001 if drifted else 0.5
    return StatResult(name, 0.2, 0.1, drifted, p_value, {"alpha": 0.01}, kind, "error")


def test_drift_reports_summary_points_at_the_decision_only_when_drifted():
    drifted = [result(drift.LABEL_PRIOR, True), result(drift.PREDICTION_KS, False)]
    text = report_summary([*drifted, combine(drifted)])
    assert text.startswith("drift: 1 of 2 deciding statistics beyond threshold (label_prior); ")
    assert text.endswith("the month's training_decision says whether it retrains")
    calm = [result(drift.LABEL_PRIOR, False), result(drift.PREDICTION_KS, False)]
    assert report_summary([*calm, combine(calm)]) == (
        "no drift: 0 of 2 deciding statistics beyond threshold"
    )
