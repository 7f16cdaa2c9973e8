"""A decided retrain in two runs: the fast families first, then one follow-up run for the
fine-tuned family, through the same gate.

A real ephemeral instance holds real runs: training_decision_sensor's request is executed as a
retrain_job run over stand-ins of the three retrain assets (the real ones need a built
warehouse; the sensors only read the run, its config and its materializations), and the
follow-up sensors are evaluated on that finished run as the daemon would.
"""

from datetime import date
from pathlib import Path

import dagster as dg
import mlflow as mlflow_api
import pytest
from mlflow.tracking import MlflowClient

from sentiment_assets.definitions import defs
from sentiment_assets.defs.models.decision import decision_metadata, training_decision_sensor
from sentiment_assets.defs.models.promotion import GATE_CHECK
from sentiment_assets.defs.models.training import TrainConfig
from sentiment_assets.defs.monitoring.sensors import (
    FOLLOW_UP_OF_TAG,
    RETRAIN_SELECTION,
    follow_up_after_failure_sensor,
    follow_up_job,
    follow_up_sensor,
    retrain_job,
)
from sentiment_assets.defs.platform.resources import PlatformResource
from sentiment_assets.environment import current_settings
from sentiment_assets.lib.models.behaviour import SuiteResult
from sentiment_assets.lib.models.families import family, family_names
from sentiment_assets.lib.models.training import (
    EMBEDDING_LOGREG,
    FINETUNED_TRANSFORMER,
    TFIDF_LOGREG,
)
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.promotion import KEPT, PROMOTED, decide, pick_challenger
from sentiment_assets.lib.versions.retrain_policy import fast_families
from sentiment_assets.lib.versions.training_decision import DecisionInputs, decide_training
from sentiment_assets.lineage import MODEL_CHALLENGER, MODEL_CHAMPION, TRAINING_DECISION
from sentiment_assets.ops.sensor_runs import run_status_tick

MONTHS = dg.MonthlyPartitionsDefinition(start_date="2024-01-01", end_date="2024-04-01")
MONTH = "2024-03-01"


@dg.asset(partitions_def=MONTHS)
def sentiment_model(config: TrainConfig) -> dg.MaterializeResult:
    """Stands in for the real asset, with its real config, and fails as it does on a family
    it does not know."""
    if not set(config.families) <= set(family_names()):
        raise dg.Failure(f"unknown families {config.families}")
    return dg.MaterializeResult(metadata={"families": ", ".join(config.families)})


class GateConfig(dg.Config):
    passes: bool = True


@dg.asset(
    partitions_def=MONTHS,
    deps=[sentiment_model],
    check_specs=[dg.AssetCheckSpec(GATE_CHECK, asset=MODEL_CHALLENGER, blocking=True)],
)
def model_challenger(config: GateConfig) -> dg.MaterializeResult:
    """The gate as the real asset has it: a blocking check that stops the run when it fails."""
    gate = dg.AssetCheckResult(
        check_name=GATE_CHECK, passed=config.passes, severity=dg.AssetCheckSeverity.ERROR
    )
    return dg.MaterializeResult(check_results=[gate])


@dg.asset(partitions_def=MONTHS, deps=[model_challenger])
def model_champion() -> None:
    """Moves the alias in the real asset."""


@pytest.fixture
def instance(monkeypatch):
    monkeypatch.setenv("SENTIMENT_RETRAIN_COOLDOWN_SECONDS", "0")
    with dg.instance_for_test() as test_instance:
        yield test_instance


def stand_in_job(name: str) -> dg.JobDefinition:
    definitions = dg.Definitions(
        assets=[sentiment_model, model_challenger, model_champion],
        jobs=[dg.define_asset_job(name, selection=RETRAIN_SELECTION, partitions_def=MONTHS)],
    )
    return definitions.resolve_job_def(name)


def execute(instance, job_name: str, request: dg.RunRequest, gate_passes: bool = True):
    run_config = {
        "ops": {**request.run_config["ops"], MODEL_CHALLENGER: {"config": {"passes": gate_passes}}}
    }
    return stand_in_job(job_name).execute_in_process(
        partition_key=request.partition_key,
        run_config=run_config,
        tags=request.tags,
        instance=instance,
        raise_on_error=False,
    )


def drift_retrain_request(instance) -> dg.RunRequest:
    """training_decision_sensor's request for the month decided `train` (no champion yet)."""
    decision = decide_training(DecisionInputs(date.fromisoformat(MONTH), 1000), "on_drift")
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=TRAINING_DECISION, partition=MONTH, metadata=decision_metadata(decision)
        )
    )
    result = training_decision_sensor(
        dg.build_sensor_context(
            instance=instance, resources={"platform": PlatformResource.of(current_settings())}
        )
    )
    (request,) = result.run_requests
    return request


def test_the_drift_retrain_trains_only_the_fast_families(instance):
    request = drift_retrain_request(instance)
    families = request.run_config["ops"]["sentiment_model"]["config"]["families"]
    assert families == fast_families() == [TFIDF_LOGREG, EMBEDDING_LOGREG]
    assert FINETUNED_TRANSFORMER not in families
    # The config is one TrainConfig accepts, as the real job's sentiment_model would.
    assert execute(instance, retrain_job.name, request).success


def test_the_cpu_budget_of_the_request_reaches_the_fine_tuned_familys_parameters(instance):
    config = drift_retrain_request(instance).run_config["ops"]["sentiment_model"]["config"]
    budget = current_settings().finetune_cpu_budget_seconds
    assert config["finetune_cpu_budget_seconds"] == budget
    knobs = TrainConfig(**config).knobs(device="cpu")
    assert family(FINETUNED_TRANSFORMER).params(knobs).cpu_budget_seconds == budget


def test_a_finished_retrain_gets_one_follow_up_for_the_fine_tuned_family(instance):
    request = drift_retrain_request(instance)
    retrain = execute(instance, retrain_job.name, request)
    assert retrain.success

    follow_up = run_status_tick(follow_up_sensor, instance, retrain)
    assert isinstance(follow_up, dg.RunRequest)
    assert follow_up.partition_key == MONTH
    config = follow_up.run_config["ops"]["sentiment_model"]["config"]
    assert config["families"] == family_names(fast=False) == [FINETUNED_TRANSFORMER]
    retrain_config = request.run_config["ops"]["sentiment_model"]["config"]
    assert config["window_months"] == retrain_config["window_months"], "the same rows"
    assert follow_up.tags[FOLLOW_UP_OF_TAG] == retrain.run_id
    assert retrain.run_id in follow_up.run_key
    # The daemon evaluates a run once, and dedups by run_key if it ever sees it again.
    again = run_status_tick(follow_up_sensor, instance, retrain)
    assert again.run_key == follow_up.run_key

    # The follow-up run itself asks for nothing more: it trained every family left.
    finished = execute(instance, follow_up_job.name, follow_up)
    assert finished.success
    assert isinstance(run_status_tick(follow_up_sensor, instance, finished), dg.SkipReason)


def test_a_retrain_stopped_by_the_gate_still_gets_its_follow_up(instance):
    retrain = execute(
        instance, retrain_job.name, drift_retrain_request(instance), gate_passes=False
    )
    assert not retrain.success
    follow_up = run_status_tick(follow_up_after_failure_sensor, instance, retrain)
    assert isinstance(follow_up, dg.RunRequest)
    assert follow_up.run_config["ops"]["sentiment_model"]["config"]["families"] == [
        FINETUNED_TRANSFORMER
    ]


def test_a_retrain_that_trained_nothing_gets_no_follow_up(instance):
    request = drift_retrain_request(instance)
    # The run fails in sentiment_model, before it materializes anything.
    broken = dg.RunRequest(
        partition_key=request.partition_key,
        run_config={"ops": {"sentiment_model": {"config": {"families": ["no_such_family"]}}}},
        tags=request.tags,
    )
    retrain = execute(instance, retrain_job.name, broken)
    assert not retrain.success
    assert isinstance(
        run_status_tick(follow_up_after_failure_sensor, instance, retrain), dg.SkipReason
    )


def test_a_retrain_of_every_family_gets_no_follow_up(instance):
    request = drift_retrain_request(instance)
    config = request.run_config["ops"]["sentiment_model"]["config"]
    every = dg.RunRequest(
        partition_key=request.partition_key,
        run_config={"ops": {"sentiment_model": {"config": {**config, "families": family_names()}}}},
        tags=request.tags,
    )
    retrain = execute(instance, retrain_job.name, every)
    assert isinstance(run_status_tick(follow_up_sensor, instance, retrain), dg.SkipReason)


def test_the_follow_up_job_runs_the_retrains_assets_and_gate():
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    selected = {
        job.name: {key.to_user_string() for key in job.selection.resolve(graph)}
        for job in (retrain_job, follow_up_job)
    }
    assert selected[follow_up_job.name] == selected[retrain_job.name]
    assert {MODEL_CHALLENGER, MODEL_CHAMPION} <= selected[follow_up_job.name]
    (gate,) = [
        graph.get_check_spec(key)
        for key in graph.get_check_keys_for_assets({dg.AssetKey(MODEL_CHALLENGER)})
    ]
    assert gate.name == GATE_CHECK and gate.blocking
    served = {name: definitions.resolve_job_def(name) for name in selected}
    assert {job.executor_def for job in served.values()} == {dg.in_process_executor}


@pytest.fixture
def client(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    previous = mlflow_api.get_tracking_uri()
    registry.configure(uri, tmp_path / "mlartifacts")
    try:
        yield MlflowClient(uri)
    finally:
        mlflow_api.set_tracking_uri(previous)


def register(client: MlflowClient, family: str, val_macro_f1: float) -> registry.VersionInfo:
    experiment = client.get_experiment_by_name(registry.EXPERIMENT_NAME)
    run = client.create_run(experiment.experiment_id)
    client.log_metric(run.info.run_id, "val_macro_f1", val_macro_f1)
    tags = {"family": family, "trained_through": MONTH}
    return registry.register_version(client, run.info.run_id, run.info.artifact_uri, tags)


def every_tweet_right(_: registry.VersionInfo) -> SuiteResult:
    return SuiteResult(correct=10, total=10, failures=())


@pytest.mark.parametrize(("fine_tuned_f1", "expected"), [(0.9, "fine-tuned"), (0.7, "kept")])
def test_the_fine_tuned_version_competes_with_the_fast_ones(client, fine_tuned_f1, expected):
    """model_challenger's rule, in the order the two runs register: the follow-up's
    challenger is the best of the month's newest version of every family, so it is the
    fine-tuned one only if it beats the fast champion on validation, and then the gate
    compares it with that champion."""
    month = MONTHS.time_window_for_partition_key(MONTH).start.date()
    register(client, TFIDF_LOGREG, 0.70)
    fast = register(client, EMBEDDING_LOGREG, 0.80)
    fast_pick, _, _ = pick_challenger(client, month, None, every_tweet_right, 0.8)
    assert fast_pick.version == fast.version
    registry.set_champion(client, fast.version)  # the fast retrain's gate promoted it

    fine_tuned = register(client, FINETUNED_TRANSFORMER, fine_tuned_f1)
    pick, validation, _ = pick_challenger(client, month, None, every_tweet_right, 0.8)
    assert set(validation) == {"1", fast.version, fine_tuned.version}
    champion = registry.champion(client)
    decision = decide(pick.version, 0.85, champion.version, 0.80, margin=0.0)
    if expected == "fine-tuned":
        assert pick.version == fine_tuned.version
        assert decision.decision == PROMOTED
    else:
        assert pick.version == fast.version
        assert decision.decision == KEPT
