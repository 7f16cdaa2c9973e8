import json
import math
from datetime import date

import numpy as np
import pytest

from sentiment_assets.lib.models.families import family_names
from sentiment_assets.lib.settings import load_settings
from sentiment_assets.lib.stats.drift import DriftSample, DriftThresholds, drift_report
from sentiment_assets.lib.store.warehouse import connect, ensure_schema
from sentiment_assets.lib.versions.publish import query_history
from sentiment_assets.lib.versions.training_decision import (
    KEEP,
    TRAIN,
    DecisionInputs,
    PolicyThresholds,
    StatisticMove,
    content_drift,
    decide_training,
    record_decision,
    report_accuracies,
    statistic_moves,
)

MONTH = date(2024, 6, 1)
EMBEDDING_DRIFT = StatisticMove("embedding_mmd", 0.02, 0.005, True)
PRIOR_DRIFT = StatisticMove("predicted_positive_rate", 0.31, 0.08, True)
VOCABULARY_WARN = StatisticMove("vocabulary_oov", 0.2, 0.1, True)
QUIET = StatisticMove("embedding_mean_distance", 0.01, 0.03, False)


def inputs(**changes) -> DecisionInputs:
    """A quiet month: a 2-month-old champion, accuracy as on its reference, no drift."""
    values = {
        "month": MONTH,
        "labelled_rows": 1500,
        "statistics": (QUIET,),
        "champion_version": "3",
        "champion_trained_through": date(2024, 4, 1),
        "reference_accuracy": 0.82,
        "realised_accuracy": 0.81,
        "estimated_accuracy": 0.83,
    }
    return DecisionInputs(**{**values, **changes})


def test_an_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="unknown retrain policy 'sometimes'"):
        decide_training(inputs(), "sometimes")


@pytest.mark.parametrize("policy", ["always", "on_drift", "never"])
def test_every_policy_trains_the_first_model(policy):
    decision = decide_training(inputs(champion_version=None, champion_trained_through=None), policy)
    assert decision.decision == TRAIN
    assert "no champion yet" in decision.reasons[0]


@pytest.mark.parametrize("policy", ["always", "on_drift"])
def test_too_few_labels_keep_the_champion_whatever_the_drift(policy):
    decision = decide_training(inputs(labelled_rows=50, statistics=(EMBEDDING_DRIFT,)), policy)
    assert decision.decision == KEEP
    assert decision.reasons == ("only 50 labelled rows, fewer than 200",)


def test_never_keeps_a_drifted_old_champion():
    drifted = inputs(statistics=(EMBEDDING_DRIFT,), champion_trained_through=date(2023, 1, 1))
    decision = decide_training(drifted, "never")
    assert (decision.decision, decision.families, decision.window_months) == (KEEP, (), None)


def test_always_trains_a_quiet_month_on_the_default_window():
    decision = decide_training(inputs(), "always")
    assert decision.decision == TRAIN
    assert decision.window_months == 3 and decision.window_start == date(2024, 4, 1)


def test_on_drift_keeps_a_quiet_month_and_says_why():
    decision = decide_training(inputs(), "on_drift")
    assert decision.decision == KEEP
    assert decision.reasons == (
        "no content drift, realised accuracy within 0.050 of the reference, "
        "champion 2 months old (maximum 6)",
    )


def test_content_drift_trains_fast_families_first_on_the_drifted_month_alone():
    decision = decide_training(inputs(statistics=(QUIET, EMBEDDING_DRIFT)), "on_drift")
    assert decision.decision == TRAIN
    assert decision.reasons == ("content drift: embedding_mmd 0.02 beyond 0.005",)
    assert decision.families == ("tfidf_logreg", "embedding_logreg")
    assert decision.follow_up_families == ("finetuned_transformer",)
    assert decision.families + decision.follow_up_families == tuple(family_names())
    assert decision.window_months == 1 and decision.window_start == MONTH


def test_a_prior_shift_alone_or_a_new_vocabulary_does_not_train():
    decision = decide_training(inputs(statistics=(PRIOR_DRIFT, VOCABULARY_WARN)), "on_drift")
    assert decision.decision == KEEP


def test_embeddings_moved_with_the_class_balance_need_new_words_to_be_content_drift():
    balance_only = inputs(statistics=(EMBEDDING_DRIFT, PRIOR_DRIFT))
    assert decide_training(balance_only, "on_drift").decision == KEEP
    new_topic = inputs(statistics=(EMBEDDING_DRIFT, PRIOR_DRIFT, VOCABULARY_WARN))
    decision = decide_training(new_topic, "on_drift")
    assert decision.decision == TRAIN
    assert [reason.split(":")[1].split()[0] for reason in decision.reasons] == [
        "embedding_mmd",
        "vocabulary_oov",
    ]


def test_a_realised_drop_trains_even_without_drift_statistics():
    decision = decide_training(
        inputs(statistics=(PRIOR_DRIFT,), realised_accuracy=0.70), "on_drift"
    )
    assert decision.decision == TRAIN and decision.window_months == 1
    assert decision.reasons[0].startswith("realised accuracy 0.700 is 0.120 below")


def test_realised_accuracy_outranks_the_estimate():
    # Concept drift fools the estimate (0.84) while the labels show the drop (0.55).
    concept = decide_training(inputs(realised_accuracy=0.55, estimated_accuracy=0.84), "on_drift")
    assert concept.decision == TRAIN and "realised accuracy 0.550" in concept.reasons[0]
    fine = decide_training(inputs(realised_accuracy=0.81, estimated_accuracy=0.60), "on_drift")
    assert fine.decision == KEEP


def test_without_labels_the_estimated_drop_decides():
    unlabelled = inputs(realised_accuracy=None, estimated_accuracy=0.70)
    decision = decide_training(unlabelled, "on_drift")
    assert decision.decision == TRAIN and decision.reasons[0].startswith("estimated accuracy")
    nothing = inputs(realised_accuracy=None, estimated_accuracy=None)
    kept = decide_training(nothing, "on_drift")
    assert kept.decision == KEEP and "no accuracy to compare" in kept.reasons[0]


def test_a_drop_within_the_threshold_keeps():
    at_threshold = inputs(realised_accuracy=0.77)  # 0.82 - 0.77 = 0.05: not beyond
    assert decide_training(at_threshold, "on_drift").decision == KEEP
    strict = PolicyThresholds(accuracy_drop=0.02)
    assert decide_training(at_threshold, "on_drift", strict).decision == TRAIN


def test_an_old_champion_trains_on_the_default_window():
    old = inputs(champion_trained_through=date(2023, 12, 1))
    decision = decide_training(old, "on_drift")
    assert decision.decision == TRAIN and decision.window_months == 3
    assert decision.reasons == ("champion is 6 months old (maximum 6)",)
    young = decide_training(old, "on_drift", PolicyThresholds(max_age_months=7))
    assert young.decision == KEEP


def test_an_old_drifted_champion_gives_both_reasons_and_the_drift_window():
    both = inputs(champion_trained_through=date(2023, 1, 1), statistics=(EMBEDDING_DRIFT,))
    decision = decide_training(both, "on_drift")
    assert len(decision.reasons) == 2 and decision.window_months == 1


def test_cooldown_keeps_a_month_trained_moments_ago():
    recent = inputs(statistics=(EMBEDDING_DRIFT,), seconds_since_trained=60.0)
    decision = decide_training(recent, "on_drift", PolicyThresholds(cooldown_seconds=3600))
    assert decision.decision == KEEP and decision.reasons[0].startswith("cooldown")
    later = inputs(statistics=(EMBEDDING_DRIFT,), seconds_since_trained=7200.0)
    decision = decide_training(later, "on_drift", PolicyThresholds(cooldown_seconds=3600))
    assert decision.decision == TRAIN


def test_the_key_is_stable_for_the_same_inputs_and_new_for_new_ones():
    first = decide_training(inputs(statistics=(EMBEDDING_DRIFT,)), "on_drift")
    again = decide_training(inputs(statistics=(EMBEDDING_DRIFT,)), "on_drift")
    moved = decide_training(inputs(statistics=(EMBEDDING_DRIFT, PRIOR_DRIFT)), "on_drift")
    assert first.key == again.key != moved.key
    assert first.key.startswith("train-2024-06-on_drift-")


def test_a_real_drift_report_feeds_the_decision():
    rng = np.random.default_rng(0)
    n, dim = 400, 16

    def side(shift: float) -> DriftSample:
        vectors = rng.normal(size=(n, dim)).astype(np.float32)
        vectors[:, 0] += shift
        scores = rng.uniform(size=n)
        return DriftSample(vectors, scores, ["a tweet"] * n, (scores > 0.5).astype(float))

    report = drift_report(side(0.0), side(1.0), DriftThresholds(permutations=400))
    moves = statistic_moves(r.as_dict() for r in report)
    assert "combined" not in {m.statistic for m in moves}
    assert {m.statistic for m in content_drift(moves)} >= {"embedding_mean_distance"}
    decision = decide_training(inputs(statistics=moves), "on_drift")
    assert (
        decision.decision == TRAIN
        and "embedding_mean_distance" in decision.row()["drifted_statistics"]
    )


def test_the_report_gives_the_champion_accuracies_when_labels_exist():
    rows = [
        {"statistic": "embedding_mmd", "detail": "{}"},
        {
            "statistic": "performance_drop",
            "detail": '{"accuracy_reference": 0.83, "accuracy_current": 0.68}',
        },
    ]
    assert report_accuracies(rows) == (0.83, 0.68)
    unlabelled = [{"statistic": "performance_drop", "detail": {"reason": "no labels"}}]
    assert report_accuracies(unlabelled) == (None, None)
    assert report_accuracies([]) == (None, None)


def test_warehouse_rows_with_missing_verdicts_read_as_not_judged():
    rows = [
        {"statistic": "label_prior", "value": None, "threshold": None, "drifted": None},
        {"statistic": "embedding_mmd", "value": 0.1, "threshold": 0.01, "drifted": float("nan")},
    ]
    moves = statistic_moves(rows)
    assert [m.drifted for m in moves] == [None, None] and math.isnan(moves[1].value)
    assert decide_training(inputs(statistics=moves), "on_drift").decision == KEEP


def test_a_recorded_decision_is_queryable_from_the_published_snapshot(tmp_path):
    decision = decide_training(inputs(statistics=(EMBEDDING_DRIFT,)), "on_drift")
    with connect(tmp_path / "warehouse.duckdb") as con:
        ensure_schema(con)
        record_decision(decision, con, tmp_path / "published", dagster_run_id="run-1")
    result = query_history(
        tmp_path / "published",
        "SELECT month, decision, families, window_months, statistics, champion_age_months, "
        "decision_key FROM metrics.training_decisions",
    )
    ((month, verdict, families, window, statistics, age, key),) = result.rows
    assert (month, verdict, families, window, age) == (
        MONTH,
        TRAIN,
        "tfidf_logreg,embedding_logreg",
        1,
        2,
    )
    assert json.loads(statistics)[0]["statistic"] == "embedding_mmd"
    assert key == decision.key


def test_settings_choose_the_policy_and_its_thresholds():
    settings = load_settings(
        {
            "SENTIMENT_HOME": "/tmp/policy-home",
            "SENTIMENT_RETRAIN_POLICY": "Never",
            "SENTIMENT_RETRAIN_ACCURACY_DROP": "0.1",
            "SENTIMENT_MAX_CHAMPION_AGE_MONTHS": "4",
        }
    )
    thresholds = PolicyThresholds.from_settings(settings)
    assert settings.retrain_policy == "never"
    assert (thresholds.accuracy_drop, thresholds.max_age_months) == (0.1, 4)
    assert load_settings({}).retrain_policy == "on_drift"
    with pytest.raises(ValueError, match="SENTIMENT_RETRAIN_POLICY='sometimes'"):
        load_settings({"SENTIMENT_RETRAIN_POLICY": "sometimes"})
    with pytest.raises(ValueError, match="accuracy_drop must be within"):
        PolicyThresholds.from_settings(load_settings({"SENTIMENT_RETRAIN_ACCURACY_DROP": "1.5"}))
