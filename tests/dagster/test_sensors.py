"""drift_sensor and new_data_sensor evaluated against a real ephemeral Dagster instance
(training_decision_sensor: tests/dagster/test_decision_loop.py)."""

import json

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import RUN_KEY_TAG
from dagster._core.utils import make_new_run_id

from sentiment_assets.defs.ingest.landing_sensor import LANDING_CHECK, new_data_sensor
from sentiment_assets.defs.models.decision import training_decision_sensor
from sentiment_assets.defs.monitoring.sensors import drift_sensor
from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.environment import current_settings
from sentiment_assets.lib.stats import drift
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.lineage import RAW_TWEETS
from tests import loaded
from tests.conftest import use_home


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def report(instance: dg.DagsterInstance, asset: str, partition: str, **metadata) -> int:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=asset, partition=partition, metadata=metadata)
    )
    return instance.fetch_materializations(dg.AssetKey(asset), limit=1).records[0].storage_id


def tick(sensor, instance, cursor=None):
    """One evaluation, with the platform resource of the current environment's settings."""
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"platform": PlatformResource.of(current_settings())},
    )
    result = sensor(context)
    if isinstance(result, dg.SkipReason):
        return [], cursor
    return list(result.run_requests or []), result.cursor


def test_no_drift_requests_nothing(instance):
    report(instance, "drift_report", "2024-02-01", drifted=False)
    requests, cursor = tick(drift_sensor, instance)
    assert requests == []
    assert json.loads(cursor)["after_storage_id"] > 0, "the event is consumed"
    assert tick(drift_sensor, instance, cursor)[0] == []


PRIOR_ONLY = [drift.PREDICTED_POSITIVE_RATE, drift.PREDICTION_PSI]


@pytest.mark.parametrize(
    ("statistics", "jobs"),
    [
        # The class balance moved, the content did not: the prior is re-estimated.
        (PRIOR_ONLY, ["recalibrate_job"]),
        # The same with labels showing a drop: re-estimated too; whether the month also
        # retrains is its training_decision's call.
        ([drift.LABEL_PRIOR, drift.PERFORMANCE_DROP], ["recalibrate_job"]),
        # The content moved: new weights are needed, which the decision requests.
        ([drift.PREDICTED_POSITIVE_RATE, drift.EMBEDDING_MMD], []),
        # A report without drifted_statistics: nothing says the balance alone moved.
        (None, []),
    ],
)
def test_drift_sensor_answers_only_a_balance_shift_alone(instance, statistics, jobs):
    metadata = {"drifted": True}
    if statistics is not None:
        metadata["drifted_statistics"] = dg.MetadataValue.json(statistics)
    storage_id = report(instance, "drift_report", "2024-03-01", **metadata)
    requests, cursor = tick(drift_sensor, instance)
    assert [r.job_name for r in requests] == jobs
    assert all(str(storage_id) in r.run_key for r in requests)
    assert tick(drift_sensor, instance, cursor)[0] == [], "each drift report is answered once"


def test_a_newer_balance_shift_of_the_same_month_is_answered_again(instance):
    shifted = {"drifted": True, "drifted_statistics": dg.MetadataValue.json(PRIOR_ONLY)}
    report(instance, "drift_report", "2024-03-01", **shifted)
    first, cursor = tick(drift_sensor, instance)
    report(instance, "drift_report", "2024-03-01", **shifted)
    second, _ = tick(drift_sensor, instance, cursor)
    assert len(first) == len(second) == 1
    assert first[0].run_key != second[0].run_key


GOOD_ROWS = "text,created_at,label\nlove this new phone,2024-02-10 10:00:00,positive\n" + (
    "worst coffee ever,2024-02-11 09:30:00,negative\n"
)


def test_new_data_sensor_requests_the_files_months_once(instance, tmp_path, monkeypatch):
    use_home(monkeypatch, tmp_path / "home")
    landing = current_settings().landing_dir
    landing.mkdir(parents=True)
    (landing / "february.csv").write_text(GOOD_ROWS)
    requests, cursor = tick(new_data_sensor, instance)
    assert [r.partition_key for r in requests] == ["2024-02-01"]
    assert tick(new_data_sensor, instance, cursor)[0] == []
    (landing / "february.csv").write_text(GOOD_ROWS + "meh,2024-03-02 08:00:00,negative\n")
    changed, _ = tick(new_data_sensor, instance, cursor)
    assert sorted(r.partition_key for r in changed) == ["2024-02-01", "2024-03-01"]


def test_a_malformed_file_fails_its_run_clearly_is_not_retried_and_is_shown(
    instance, tmp_path, monkeypatch
):
    use_home(monkeypatch, tmp_path / "home")
    settings = current_settings()
    settings.landing_dir.mkdir(parents=True)
    bad = settings.landing_dir / "broken.csv"
    bad.write_text("text,when\nhello,yesterday\n")
    requests, cursor = tick(new_data_sensor, instance)
    assert len(requests) == 1, "one run, so the error shows up in a run"
    assert tick(new_data_sensor, instance, cursor)[0] == []

    result = dg.materialize(
        [loaded.asset(RAW_TWEETS)],
        partition_key=requests[0].partition_key,
        resources={
            "warehouse": WarehouseResource(database=str(settings.duckdb_path)),
            "platform": PlatformResource.of(settings),
        },
        instance=instance,
        tags=requests[0].tags,
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "broken.csv" in failure.step_failure_data.error.message
    assert not bad.exists()
    assert (settings.landing_dir / "quarantine" / "broken.csv").exists()
    assert (settings.landing_dir / "quarantine" / "broken.csv.reason.txt").read_text().strip()

    # The next tick records the file as quarantined and says so on raw_tweets' check.
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"platform": PlatformResource.of(settings)}
    )
    result = new_data_sensor(context)
    assert not result.run_requests
    (evaluation,) = result.asset_events
    assert not evaluation.passed
    assert evaluation.metadata["quarantined"].value == ["broken.csv"]
    with connect(settings.duckdb_path, read_only=True) as con:
        (state,) = con.execute("SELECT state FROM raw.landing_files").fetchall()
    assert state == ("quarantined",)
    # The same check, executed on its own (as from the UI), reads the ledger and the folder.
    landing_check = loaded.asset_check(RAW_TWEETS, LANDING_CHECK)
    checked = dg.materialize(
        [loaded.asset(RAW_TWEETS), landing_check],
        selection=dg.AssetSelection.checks(landing_check),
        resources={
            "warehouse": WarehouseResource(database=str(settings.duckdb_path)),
            "platform": PlatformResource.of(settings),
        },
        instance=instance,
    )
    (check,) = checked.get_asset_check_evaluations()
    assert not check.passed and check.metadata["quarantined"].value == ["broken.csv"]


def decided(instance: dg.DagsterInstance, key: str) -> None:
    """A month decided `train` under `key`, as training_decision records it."""
    report(
        instance,
        "training_decision",
        "2024-02-01",
        decision="train",
        families="tfidf_logreg,embedding_logreg",
        window_months=1,
        decision_key=key,
    )


def ended(instance: dg.DagsterInstance, request: dg.RunRequest, status) -> None:
    """The requested training as the daemon would launch it, ended with `status`."""
    run = instance.add_run(
        DagsterRun(
            job_name=request.job_name,
            run_id=make_new_run_id(),
            status=status,
            tags={**request.tags, RUN_KEY_TAG: request.run_key},
        )
    )
    assert run.status == status


def test_a_decision_whose_training_died_is_trained_when_the_month_is_decided_again(instance):
    """A training killed with its process (marked failed at the next start) must not leave
    the month untrained for good: Dagster never launches a run key twice."""
    decided(instance, "train-2024-02-always-abc")
    (first,), cursor = tick(training_decision_sensor, instance)
    assert first.run_key == "train-2024-02-always-abc"
    ended(instance, first, dg.DagsterRunStatus.FAILURE)

    decided(instance, "train-2024-02-always-abc")  # the month rerun on the same inputs
    (again,), cursor = tick(training_decision_sensor, instance, cursor)
    assert again.run_key not in {first.run_key, None}

    ended(instance, again, dg.DagsterRunStatus.SUCCESS)
    decided(instance, "train-2024-02-always-abc")
    assert tick(training_decision_sensor, instance, cursor)[0] == [], "trained: once is enough"
