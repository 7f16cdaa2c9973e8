from sentiment_assets.lib.models.families import family_names
from sentiment_assets.lib.models.training import (
    EMBEDDING_LOGREG,
    FINETUNED_TRANSFORMER,
    TFIDF_LOGREG,
)
from sentiment_assets.lib.stats import drift
from sentiment_assets.lib.versions.retrain_policy import (
    DriftEvent,
    cursor_storage_id,
    dump_cursor,
    fast_families,
    follow_up_families,
    follow_up_run_key,
    recalibrate_run_key,
)


def test_the_cursor_round_trips_and_reads_the_older_format():
    assert cursor_storage_id(dump_cursor(12)) == 12
    assert cursor_storage_id(None) == 0
    assert cursor_storage_id('{"after_storage_id": 7, "requested_at": {}}') == 7


def test_only_a_drifted_balance_shift_alone_is_recalibrated():
    prior = (drift.PREDICTED_POSITIVE_RATE, drift.PREDICTION_PSI)
    assert DriftEvent(1, "2024-05-01", True, prior).needs_recalibration
    assert not DriftEvent(1, "2024-05-01", False, prior).needs_recalibration
    content = (drift.PREDICTED_POSITIVE_RATE, drift.EMBEDDING_MMD)
    assert not DriftEvent(1, "2024-05-01", True, content).needs_recalibration
    assert not DriftEvent(1, "2024-05-01", True).needs_recalibration


def test_recalibration_run_keys_differ_per_drift_report():
    first, second = (DriftEvent(n, "2024-05-01", True) for n in (7, 8))
    assert recalibrate_run_key(first) != recalibrate_run_key(second)
    assert "2024-05-01" in recalibrate_run_key(first)


def test_a_fast_retrain_leaves_the_fine_tuned_family_to_one_follow_up() -> None:
    assert fast_families() == [TFIDF_LOGREG, EMBEDDING_LOGREG]
    assert follow_up_families(fast_families(), model_materialized=True) == [FINETUNED_TRANSFORMER]
    # Nothing trained: nothing to follow up; everything trained: nothing left.
    assert follow_up_families(fast_families(), model_materialized=False) == []
    assert follow_up_families(family_names(), model_materialized=True) == []
    assert follow_up_families([FINETUNED_TRANSFORMER], model_materialized=True) == []
    assert follow_up_run_key("abc") == follow_up_run_key("abc") != follow_up_run_key("abd")
