"""A month trains when its decision says so, once per decision: three small synthetic months
built for real against a persistent instance, training_decision_sensor evaluated tick by
tick between and during the runs, as the daemon would."""

import os

import dagster as dg
import pytest
from mlflow.tracking import MlflowClient

from sentiment_assets.definitions import defs
from sentiment_assets.defs.models.decision import DECISION, DECISION_KEY
from sentiment_assets.defs.platform.jobs import MONTH_BUILD
from sentiment_assets.lib.data import synthetic
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.retrain_policy import fast_families
from sentiment_assets.lineage import SENTIMENT_MODEL, TRAINING_DECISION
from sentiment_assets.ops.build import build_months
from sentiment_assets.ops.decided_training import follow_up_requests
from sentiment_assets.ops.instance import prepare_environment
from sentiment_assets.ops.sensor_runs import execute
from tests.conftest import use_home

pytestmark = pytest.mark.slow
FIRST, QUIET, DRIFTED = "2024-01-01", "2024-02-01", "2024-03-01"
# Small enough for a test: the fine-tuned follow-up trains on the few tweets this buys.
BUDGET_SECONDS = "5"


class Home:
    def __init__(self, settings) -> None:
        self.settings = settings
        self.instance = dg.DagsterInstance.get()
        self.definitions = defs()

    def build(self, month: str, policy: str = "") -> dg.ExecuteInProcessResult:
        """The month run as new_data_sensor and month_build_job make it: no training."""
        config = {"ops": {TRAINING_DECISION: {"config": {"policy": policy}}}}
        result = dg.materialize(
            list(self.definitions.assets or []),
            partition_key=month,
            instance=self.instance,
            resources=self.definitions.resources,
            selection=MONTH_BUILD,
            run_config=config,
        )
        assert result.success
        return result

    def decide(self, month: str, policy: str) -> None:
        """The month decided again under `policy`, as from the Launchpad."""
        config = {"ops": {TRAINING_DECISION: {"config": {"policy": policy}}}}
        dg.materialize(
            list(self.definitions.assets or []),
            partition_key=month,
            instance=self.instance,
            resources=self.definitions.resources,
            selection=[TRAINING_DECISION],
            run_config=config,
        )

    def tick(self, cursor: str | None) -> tuple[list[dg.RunRequest], str | None]:
        sensor = self.definitions.resolve_sensor_def("training_decision_sensor")
        result = sensor(
            dg.build_sensor_context(
                instance=self.instance,
                cursor=cursor,
                resources={"platform": self.definitions.resources["platform"]},
            )
        )
        if isinstance(result, dg.SkipReason):
            return [], cursor
        return list(result.run_requests), result.cursor

    def decision(self, month: str) -> dict:
        records = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(TRAINING_DECISION), asset_partitions=[month]
            ),
            limit=1,
        ).records
        return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_home(monkeypatch, tmp_path_factory.mktemp("home"))
        monkeypatch.setenv("SENTIMENT_SYNTHETIC_TWEETS_PER_MONTH", "300")
        monkeypatch.setenv("SENTIMENT_RETRAIN_POLICY", "on_drift")
        monkeypatch.setenv("SENTIMENT_FINETUNE_CPU_BUDGET_SECONDS", BUDGET_SECONDS)
        # A quiet month is kept for being quiet, not for having too few labels.
        monkeypatch.setenv("SENTIMENT_MIN_LABELLED_ROWS", "50")
        settings = prepare_environment()
        # The first month as `sentiment pipeline` builds it: no champion, so it trains.
        (first,) = build_months([FIRST])
        yield Home(settings), first


def test_the_first_month_trains_because_there_is_no_champion(home):
    _, first = home
    assert first.training.decision == "train"
    retrain, follow_up = first.training.runs
    assert retrain.success and follow_up.success
    families = retrain.dagster_run.run_config["ops"][SENTIMENT_MODEL]["config"]["families"]
    assert families == fast_families()
    config = follow_up.dagster_run.run_config["ops"][SENTIMENT_MODEL]["config"]
    assert config["families"] == ["finetuned_transformer"]
    assert config["finetune_cpu_budget_seconds"] == float(BUDGET_SECONDS)
    assert registry.champion(MlflowClient()) is not None
    # The month build itself trained nothing.
    built_assets = {
        e.asset_key.to_user_string() for e in first.build.get_asset_materialization_events()
    }
    assert SENTIMENT_MODEL not in built_assets and TRAINING_DECISION in built_assets


def test_a_quiet_month_keeps_and_a_drifted_one_trains_once(home):
    built, _ = home
    _, cursor = built.tick(None)  # the first month's decision, already trained
    built.build(QUIET)
    quiet = built.decision(QUIET)
    assert quiet[DECISION] == "keep", quiet["reasons"]
    assert built.tick(cursor)[0] == []
    _, cursor = built.tick(cursor)

    champion = registry.champion(MlflowClient())
    built.build(DRIFTED)
    drifted = built.decision(DRIFTED)
    assert drifted[DECISION] == "train", drifted["reasons"]
    (request,), cursor = built.tick(cursor)
    assert request.run_key == drifted[DECISION_KEY] and request.partition_key == DRIFTED
    # More ticks while the run has not run yet: nothing new.
    assert built.tick(cursor)[0] == []
    # The month decided again on the same inputs before it trained: the same run key, which
    # the daemon launches once.
    built.decide(DRIFTED, "")
    (again,), cursor = built.tick(cursor)
    assert again.run_key == request.run_key

    retrain = execute(built.definitions, "training_decision_sensor", request, built.instance, {})
    assert retrain.success, "a rejected challenger is a decision: the run stays green"
    (follow_up,) = follow_up_requests(built.definitions, retrain, built.instance)
    assert follow_up.run_config["ops"][SENTIMENT_MODEL]["config"]["families"] == [
        "finetuned_transformer"
    ]
    assert built.tick(cursor)[0] == []
    with connect(built.settings.warehouse, read_only=True) as con:
        decided = con.execute(
            "SELECT month, decision FROM metrics.training_decisions ORDER BY created_at"
        ).fetchall()
    assert [d for _, d in decided] == ["train", "keep", "train", "train"]
    assert champion is not None


@pytest.mark.parametrize(("policy", "expected"), [("always", "train"), ("never", "keep")])
def test_the_policy_chosen_in_the_launchpad_decides(home, policy, expected):
    built, _ = home
    _, cursor = built.tick(None)
    for month in (QUIET, DRIFTED):
        built.decide(month, policy)
        assert built.decision(month)["policy"] == policy
        assert built.decision(month)[DECISION] == expected
    requests, _ = built.tick(cursor)
    assert [r.partition_key for r in requests] == ([QUIET, DRIFTED] if policy == "always" else [])


def test_the_synthetic_drift_month_is_the_one_decided_to_train():
    config = synthetic.config_from_env(dict(os.environ))
    drifted = [synthetic.months(config)[i].isoformat() for i in config.drift]
    assert drifted == [DRIFTED]
