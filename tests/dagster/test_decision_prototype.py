"""The prototype training_decision_sensor (prototypes/decision_wiring.py), evaluated tick by tick
against a real Dagster instance: one training request per `train` decision, none for `keep`,
and the same run key when a tick sees the same decision again."""

import json
from datetime import date

import dagster as dg
import pandas as pd
import pytest

from prototypes.decision_wiring import (
    TRAINING_DECISION,
    decision_metadata,
    gather_inputs,
    training_decision_sensor,
)
from sentiment_assets.lib.store.warehouse import append_rows, connect, ensure_schema
from sentiment_assets.lib.versions.registry import VersionInfo
from sentiment_assets.lib.versions.training_decision import (
    DecisionInputs,
    StatisticMove,
    decide_training,
)

DRIFTED = StatisticMove("embedding_mmd", 0.02, 0.005, True)


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def decide(instance: dg.DagsterInstance, month: date, drifted: bool) -> str:
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


def tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult | dg.SkipReason:
    return training_decision_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))


def test_one_request_per_train_decision_and_none_for_keep(instance):
    quiet = decide(instance, date(2024, 2, 1), drifted=False)
    drifted = decide(instance, date(2024, 3, 1), drifted=True)
    first = tick(instance, None)
    (request,) = first.run_requests
    assert request.run_key == drifted != quiet
    assert request.partition_key == "2024-03-01"
    assert request.run_config["ops"]["sentiment_model"]["config"] == {
        "window_months": 1,
        "families": ["tfidf_logreg", "embedding_logreg"],
    }
    assert isinstance(tick(instance, first.cursor), dg.SkipReason)

    # The month is decided again on the same inputs: the same key, which Dagster runs once.
    again = decide(instance, date(2024, 3, 1), drifted=True)
    (repeat,) = tick(instance, first.cursor).run_requests
    assert repeat.run_key == again == drifted


def test_inputs_are_gathered_from_the_warehouse(tmp_path):
    month = date(2024, 5, 1)
    champion = VersionInfo("2", "embedding_logreg", "2024-02-01", None, "")
    with connect(tmp_path / "w.duckdb") as con:
        ensure_schema(con)
        con.execute("CREATE SCHEMA clean")
        con.execute(
            "CREATE TABLE clean.tweets_clean AS SELECT DATE '2024-05-01' AS month, 1 AS label"
        )
        old, new = pd.Timestamp("2024-06-01"), pd.Timestamp("2024-06-02")
        drop = {"accuracy_reference": 0.83, "accuracy_current": 0.68}
        rows = [
            ("embedding_mmd", True, "{}", old),
            ("embedding_mmd", False, "{}", new),
            ("performance_drop", True, json.dumps(drop), new),
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
        ("embedding_mmd", False),
        ("performance_drop", True),
    ]
    assert (inputs.reference_accuracy, inputs.realised_accuracy) == (0.83, 0.68)
    assert (inputs.labelled_rows, inputs.champion_age_months) == (1, 3)
    assert inputs.estimated_accuracy is None and inputs.seconds_since_trained is None
