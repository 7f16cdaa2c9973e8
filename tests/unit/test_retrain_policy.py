from sentiment_assets.lib.models.families import family_names
from sentiment_assets.lib.models.training import (
    EMBEDDING_LOGREG,
    FINETUNED_TRANSFORMER,
    TFIDF_LOGREG,
)
from sentiment_assets.lib.versions.retrain_policy import (
    DriftEvent,
    SensorCursor,
    fast_families,
    follow_up_families,
    follow_up_run_key,
    plan_retrains,
    run_key,
)


def event(storage_id: int, partition: str = "2024-05-01", drifted: bool = True) -> DriftEvent:
    return DriftEvent(storage_id, partition, drifted, timestamp=0.0)


def test_cursor_round_trips():
    cursor = SensorCursor(12, {"2024-05-01": 100.0})
    assert SensorCursor.parse(cursor.dump()) == cursor
    assert SensorCursor.parse(None) == SensorCursor()


def test_only_new_drifted_events_request_and_the_cursor_advances():
    plan = plan_retrains([event(3, drifted=False), event(5)], SensorCursor(4), {}, 1000.0, 60)
    assert [e.storage_id for e in plan.requests] == [5]
    assert plan.cursor.after_storage_id == 5
    assert plan.cursor.requested_at == {"2024-05-01": 1000.0}


def test_cooldown_and_staleness_and_one_request_per_month_per_tick():
    cursor = SensorCursor(0, {"2024-05-01": 990.0})
    plan = plan_retrains([event(7)], cursor, {}, now=1000.0, cooldown_seconds=60)
    assert plan.requests == [] and "cooldown" in plan.skipped[0][1]
    stale = plan_retrains([event(7)], SensorCursor(), {"2024-05-01": 9}, 1000.0, 0)
    assert stale.requests == [] and "after this drift" in stale.skipped[0][1]
    twice = plan_retrains([event(7), event(8)], SensorCursor(), {}, 1000.0, 0)
    assert len(twice.requests) == 1


def test_run_keys_differ_per_drift_event():
    assert run_key(event(7)) != run_key(event(8))
    assert "2024-05-01" in run_key(event(7))


def test_a_fast_retrain_leaves_the_fine_tuned_family_to_one_follow_up() -> None:
    assert fast_families() == [TFIDF_LOGREG, EMBEDDING_LOGREG]
    assert follow_up_families(fast_families(), model_materialized=True) == [FINETUNED_TRANSFORMER]
    # Nothing trained: nothing to follow up; everything trained: nothing left.
    assert follow_up_families(fast_families(), model_materialized=False) == []
    assert follow_up_families(family_names(), model_materialized=True) == []
    assert follow_up_families([FINETUNED_TRANSFORMER], model_materialized=True) == []
    assert follow_up_run_key("abc") == follow_up_run_key("abc") != follow_up_run_key("abd")
