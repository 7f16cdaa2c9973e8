"""App feedback flows into a month's raw data through user_feedback and the landing folder."""

import json

import dagster as dg

from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.environment import current_settings
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.lineage import RAW_TWEETS, USER_FEEDBACK
from tests import loaded
from tests.conftest import use_home


def feedback_record(prediction_id: str, text: str, label: int) -> str:
    return json.dumps(
        {
            "feedback_id": f"f-{prediction_id}-{label}",
            "prediction_id": prediction_id,
            "text": text,
            "label": label,
            "corrected_label": "positive" if label else "negative",
        }
    )


def test_corrections_become_labelled_rows_of_the_month(tmp_path, monkeypatch):
    home = use_home(monkeypatch, tmp_path / "home")
    settings = current_settings()
    (home / "feedback").mkdir(parents=True)
    (home / "feedback" / "feedback.jsonl").write_text(
        "\n".join(
            [
                feedback_record("p1", "this update is actually great", 1),
                feedback_record("p2", "not impressed by the new camera", 1),
                # A later correction of the same prediction wins.
                feedback_record("p2", "not impressed by the new camera", 0),
                '{"feedback_id": "torn',
            ]
        )
        + "\n"
    )
    resources = {
        "warehouse": WarehouseResource(database=str(settings.duckdb_path)),
        "platform": PlatformResource.of(settings),
    }
    with dg.instance_for_test() as instance:
        first = dg.materialize(
            [loaded.asset(USER_FEEDBACK)],
            partition_key="2024-03-01",
            resources=resources,
            instance=instance,
        )
        second = dg.materialize(
            [loaded.asset(RAW_TWEETS)],
            partition_key="2024-03-01",
            resources=resources,
            instance=instance,
        )
    assert first.success and second.success
    (event,) = first.get_asset_materialization_events()
    assert event.materialization.metadata["feedback_rows"].value == 2
    with connect(settings.duckdb_path, read_only=True) as con:
        rows = con.execute(
            "SELECT text, label_raw, month FROM raw.tweets "
            "WHERE source LIKE '%user_feedback.jsonl' ORDER BY text"
        ).fetchall()
    assert [(t, label) for t, label, _ in rows] == [
        ("not impressed by the new camera", "negative"),
        ("this update is actually great", "positive"),
    ]
    assert {str(m) for _, _, m in rows} == {"2024-03-01"}
