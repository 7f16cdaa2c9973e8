"""What people read about drift: drift_report's summary and drift_sensor's `retrain`
observation, the latter evaluated against a real ephemeral Dagster instance."""

import dagster as dg
import pytest

from sentiment_assets.defs.monitoring.assets import report_summary
from sentiment_assets.defs.monitoring.sensors import RETRAIN_DECISION, drift_sensor
from sentiment_assets.defs.platform.resources import PlatformResource
from sentiment_assets.environment import current_settings
from sentiment_assets.lib.stats import drift
from sentiment_assets.lib.stats.drift import StatResult, combine
from sentiment_assets.lineage import DRIFT_REPORT, SENTIMENT_MODEL

COOLDOWN_ENV = "SENTIMENT_RETRAIN_COOLDOWN_SECONDS"


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def report(
    instance: dg.DagsterInstance, partition: str, drifted: bool, statistics: list[str] | None = None
) -> int:
    metadata: dict = {"drifted": drifted}
    if statistics is not None:
        metadata["drifted_statistics"] = dg.MetadataValue.json(statistics)
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=DRIFT_REPORT, partition=partition, metadata=metadata)
    )
    return instance.fetch_materializations(dg.AssetKey(DRIFT_REPORT), limit=1).records[0].storage_id


def tick(instance: dg.DagsterInstance, cursor: str | None = None) -> dg.SensorResult:
    """One evaluation, then what the daemon does with its asset_events: it reports each one
    to the instance (dagster/_daemon/sensor.py, after get_sensor_execution_data)."""
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"platform": PlatformResource.of(current_settings())},
    )
    result = drift_sensor(context)
    assert isinstance(result, dg.SensorResult)
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    return result


def decisions(instance: dg.DagsterInstance, partition: str) -> list[str]:
    """The `retrain` texts observed on one drift_report partition, oldest first."""
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(DRIFT_REPORT), asset_partitions=[partition]),
        limit=10,
        ascending=True,
    ).records
    return [r.asset_observation.metadata[RETRAIN_DECISION].value for r in records]


def test_the_sensor_says_on_the_drift_report_whether_it_retrains(instance, monkeypatch):
    monkeypatch.setenv(COOLDOWN_ENV, "3600")
    calm = report(instance, "2024-02-01", drifted=False)
    first = report(instance, "2024-03-01", drifted=True)
    result = tick(instance)
    (request,) = result.run_requests
    assert decisions(instance, "2024-03-01") == [f"requested (run_key {request.run_key})"]
    assert str(first) in request.run_key
    assert decisions(instance, "2024-02-01") == [], f"#{calm} was not drifted: nothing to say"

    # The same month drifts again within the cooldown: no run, and the report says why.
    again = report(instance, "2024-03-01", drifted=True)
    second = tick(instance, result.cursor)
    assert second.run_requests == []
    observed = decisions(instance, "2024-03-01")
    assert len(observed) == 2
    assert observed[1].startswith("not requested: cooldown: retrained ")
    records = instance.fetch_observations(dg.AssetKey(DRIFT_REPORT), limit=1).records
    assert records[0].asset_observation.metadata["drift_report_storage_id"].value == again


def test_a_stale_drift_report_is_said_to_be_stale(instance, monkeypatch):
    monkeypatch.setenv(COOLDOWN_ENV, "0")
    report(instance, "2024-03-01", drifted=True)
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=SENTIMENT_MODEL, partition="2024-03-01")
    )
    assert tick(instance).run_requests == []
    assert decisions(instance, "2024-03-01") == [
        "not requested: the month's model was retrained after this drift report"
    ]


def result(name: str, drifted: bool) -> StatResult:
    kind = "label" if name == drift.LABEL_PRIOR else "prediction"
    p_value = 0.001 if drifted else 0.5
    return StatResult(name, 0.2, 0.1, drifted, p_value, {"alpha": 0.01}, kind, "error")


def test_drift_reports_summary_points_at_the_sensor_only_when_drifted():
    drifted = [result(drift.LABEL_PRIOR, True), result(drift.PREDICTION_KS, False)]
    text = report_summary([*drifted, combine(drifted)])
    assert text.startswith("drift: 1 of 2 deciding statistics beyond threshold (label_prior); ")
    assert "drift_sensor will request retrain_job for this month unless" in text
    calm = [result(drift.LABEL_PRIOR, False), result(drift.PREDICTION_KS, False)]
    assert report_summary([*calm, combine(calm)]) == (
        "no drift: 0 of 2 deciding statistics beyond threshold; no retrain"
    )


@pytest.mark.parametrize(
    ("statistics", "jobs"),
    [
        # The class balance moved, the content did not: the prior is re-estimated, no retrain.
        ([drift.PREDICTED_POSITIVE_RATE, drift.PREDICTION_PSI], ["recalibrate_job"]),
        # The same with labels showing a drop: re-estimate first, then retrain.
        (
            [drift.LABEL_PRIOR, drift.PERFORMANCE_DROP],
            ["recalibrate_job", "retrain_job"],
        ),
        # The content moved too: new weights are needed.
        ([drift.PREDICTED_POSITIVE_RATE, drift.EMBEDDING_MMD], ["retrain_job"]),
        # A report written before drifted_statistics existed: retrained as it always was.
        (None, ["retrain_job"]),
    ],
)
def test_a_prior_only_shift_is_answered_by_recalibration_first(
    instance, monkeypatch, statistics, jobs
):
    monkeypatch.setenv(COOLDOWN_ENV, "0")
    storage_id = report(instance, "2024-03-01", drifted=True, statistics=statistics)
    result = tick(instance)
    assert [r.job_name for r in result.run_requests] == jobs
    assert all(str(storage_id) in r.run_key for r in result.run_requests)
    assert len({r.run_key for r in result.run_requests}) == len(jobs)
    (said,) = decisions(instance, "2024-03-01")
    assert said.startswith("requested recalibrate" if "recalibrate_job" in jobs else "requested (")
