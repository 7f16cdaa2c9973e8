"""MLflow as a person finds it: parent runs named for the job or asset and month, nested
runs for the family and month, and an experiment that opens on its training runs."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import mlflow as mlflow_api
import pytest
from mlflow.tracking import MlflowClient

from sentiment_assets.defs.models.resources import platform_mlflow
from sentiment_assets.defs.models.tracking import parent_run_name, tracked_step
from sentiment_assets.defs.monitoring.sensors import retrain_job
from sentiment_assets.lib.versions import registry

MONTHS = dg.MonthlyPartitionsDefinition(start_date="2024-01-01", end_date="2024-04-01")


@dg.asset(partitions_def=MONTHS)
def sentiment_model(context: dg.AssetExecutionContext, mlflow: dg.ResourceParam[Any]) -> None:
    """Stands in for the real asset: the same tracked step and nested run per family."""
    with tracked_step(mlflow, context):
        month = context.partition_key[:7]
        with mlflow_api.start_run(run_name=f"tfidf_logreg {month}", nested=True):
            mlflow_api.log_metric("accuracy", 1.0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    previous = mlflow_api.get_tracking_uri()
    try:
        yield uri
    finally:
        while mlflow_api.active_run() is not None:
            mlflow_api.end_run()
        # configure() sets the process-wide URI: later tests must not log into this store.
        mlflow_api.set_tracking_uri(previous)


def resources(uri: str, tmp_path: Path) -> dict[str, Any]:
    return {
        "mlflow": platform_mlflow.configured(
            {
                "experiment_name": registry.EXPERIMENT_NAME,
                "mlflow_tracking_uri": uri,
                "artifacts_dir": str(tmp_path / "mlartifacts"),
            }
        )
    }


def runs_by_name(uri: str) -> dict[str, dict[str, str]]:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(registry.EXPERIMENT_NAME)
    runs = client.search_runs([experiment.experiment_id])
    return {run.info.run_name: run.data.tags for run in runs}


def test_runs_are_named_for_the_job_or_asset_and_the_month(store: str, tmp_path: Path) -> None:
    bare = dg.materialize(
        [sentiment_model], partition_key="2024-02-01", resources=resources(store, tmp_path)
    )
    assert bare.success and bare.dagster_run.job_name == "__ephemeral_asset_job__"

    # The real retrain_job's name and tags, over the stand-in asset.
    job = dg.define_asset_job(
        retrain_job.name, selection=[sentiment_model], partitions_def=MONTHS, tags=retrain_job.tags
    )
    defs = dg.Definitions(
        assets=[sentiment_model], jobs=[job], resources=resources(store, tmp_path)
    )
    retrain = defs.resolve_job_def(retrain_job.name).execute_in_process(partition_key="2024-03-01")
    assert retrain.success

    runs = runs_by_name(store)
    assert set(runs) == {
        "sentiment_model 2024-02",
        "tfidf_logreg 2024-02",
        "retrain 2024-03",
        "tfidf_logreg 2024-03",
    }
    assert runs["sentiment_model 2024-02"]["dagster_run_id"] == bare.run_id
    assert runs["retrain 2024-03"]["dagster_run_id"] == retrain.run_id
    assert "mlflow.parentRunId" not in runs["retrain 2024-03"]
    assert "mlflow.parentRunId" in runs["tfidf_logreg 2024-03"]


def test_the_experiment_is_marked_as_model_training(store: str, tmp_path: Path) -> None:
    # An experiment made before the kind tag existed gets it on the next configure().
    MlflowClient(store).create_experiment(registry.EXPERIMENT_NAME)
    experiment_id = registry.configure(store, tmp_path / "mlartifacts")
    tags = MlflowClient(store).get_experiment(experiment_id).tags
    assert (
        tags[registry.EXPERIMENT_KIND_TAG] == registry.EXPERIMENT_KIND == "custom_model_development"
    )


def test_a_new_experiment_is_made_with_the_kind_tag(store: str, tmp_path: Path) -> None:
    experiment_id = registry.configure(store, tmp_path / "mlartifacts")
    tags = MlflowClient(store).get_experiment(experiment_id).tags
    assert tags[registry.EXPERIMENT_KIND_TAG] == registry.EXPERIMENT_KIND


@pytest.mark.parametrize(
    ("job", "tags", "assets", "partition", "expected"),
    [
        (
            "retrain_job",
            {"sentiment/job": "retrain"},
            ["sentiment_model"],
            "2009-06-01",
            "retrain 2009-06",
        ),
        ("retrain_job", {}, ["sentiment_model"], "2009-06-01", "retrain 2009-06"),
        (
            "__ephemeral_asset_job__",
            {},
            ["sentiment_model"],
            "2024-02-01",
            "sentiment_model 2024-02",
        ),
        ("__ASSET_JOB", {}, ["sentiment_model"], None, "sentiment_model"),
    ],
)
def test_parent_run_name(
    job: str, tags: dict[str, str], assets: list[str], partition: str | None, expected: str
) -> None:
    assert parent_run_name(job, tags, assets, partition) == expected
