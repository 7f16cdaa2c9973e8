"""The snapshot reader (newest run wins, empty and damaged files) and the env configuration."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from gradio_app.config import AppConfig, ConfigError, load_config
from gradio_app.history import (
    decision_history,
    drift_history,
    metric_history,
    promotion_table,
    read_snapshot,
)
from gradio_app.ui import decision_figure, drift_figure
from sentiment_assets.lib.stats.drift import (
    StatResult,
    combine,
    not_judged_report,
    registered,
    report_rows,
)
from sentiment_assets.lib.store.warehouse import connect, ensure_schema, replace_rows
from sentiment_assets.lib.versions.publish import publish_history
from sentiment_assets.lib.versions.training_decision import (
    DecisionInputs,
    StatisticMove,
    decide_training,
    record_decision,
)


def test_an_empty_home_reads_as_an_empty_snapshot_with_a_note(tmp_path: Path) -> None:
    snapshot = read_snapshot(tmp_path / "published")
    assert snapshot.evaluations.empty and snapshot.drift.empty and snapshot.promotions.empty
    assert snapshot.champion is None and snapshot.published_at is None
    assert any("make pipeline" in note for note in snapshot.notes)
    assert metric_history(snapshot.evaluations).empty
    assert drift_history(snapshot.drift).empty
    assert drift_figure(drift_history(snapshot.drift)) is None


def test_a_damaged_file_is_a_note_not_a_crash(tmp_path: Path) -> None:
    history = tmp_path / "published" / "history"
    history.mkdir(parents=True)
    (history / "model_evaluations.parquet").write_bytes(b"PAR1 but not really")
    (tmp_path / "published" / "champion.json").write_text("{not json")
    snapshot = read_snapshot(tmp_path / "published")
    assert snapshot.evaluations.empty
    assert any("model_evaluations.parquet could not be read" in n for n in snapshot.notes)
    assert any("champion.json could not be read" in n for n in snapshot.notes)


def test_a_rerun_month_shows_the_newest_evaluation_only() -> None:
    evaluations = pd.DataFrame(
        {
            "model_family": ["tfidf_logreg", "tfidf_logreg", "tfidf_logreg", "tfidf_logreg"],
            "model_version": ["1", "3", "4", "9"],
            "trained_through": [date(2024, 1, 1)] * 2 + [date(2024, 2, 1)] * 2,
            "eval_month": [date(2024, 2, 1)] * 2 + [date(2024, 3, 1), date(2024, 3, 1)],
            "eval_set": ["next_month", "next_month", "next_month", "holdout"],
            "n": [100, 100, 100, 50],
            "accuracy": [0.7, 0.8, 0.75, 0.99],
            "macro_f1": [0.69, 0.79, 0.74, 0.99],
            "created_at": pd.to_datetime(["2024-03-01", "2024-03-05", "2024-04-01", "2024-04-02"]),
        }
    )
    history = metric_history(evaluations)
    assert history["model_version"].tolist() == ["3", "4"]
    assert history["accuracy"].tolist() == [0.8, 0.75]


def test_drift_history_and_figure_mark_the_drifted_months() -> None:
    drift = pd.DataFrame(
        {
            "month": [date(2024, 2, 1), date(2024, 3, 1), date(2024, 3, 1), date(2024, 3, 1)],
            "reference": "champion",
            "statistic": ["psi", "psi", "psi", "vocab_jsd"],
            "kind": ["label", "label", "label", "vocabulary"],
            "value": [0.1, 0.5, 0.4, 0.05],
            "threshold": [0.2, 0.2, 0.2, 0.1],
            "drifted": [False, True, True, False],
            "severity": None,
            "champion_version": "1",
            "created_at": pd.to_datetime(["2024-03-01", "2024-04-01", "2024-04-02", "2024-04-02"]),
        }
    )
    history = drift_history(drift)
    assert len(history) == 3  # the March psi rerun replaced the first March row
    march_psi = history[(history["statistic"] == "psi") & (history["month"] == "2024-03-01")]
    assert march_psi["value"].tolist() == [0.4]
    figure = drift_figure(history)
    assert len(figure.axes) == 2


def test_the_decisions_published_per_month_are_plotted_as_train_and_keep(tmp_path: Path) -> None:
    drifted = (StatisticMove("embedding_mmd", 0.02, 0.005, True),)
    champion = {"champion_version": "2", "champion_trained_through": date(2024, 1, 1)}
    months = [
        DecisionInputs(date(2024, 1, 1), 1000),  # no champion: trains
        DecisionInputs(
            date(2024, 2, 1), 1000, (), **champion, reference_accuracy=0.8, estimated_accuracy=0.79
        ),
        DecisionInputs(
            date(2024, 3, 1),
            1000,
            drifted,
            **champion,
            reference_accuracy=0.8,
            realised_accuracy=0.5,
        ),
    ]
    published = tmp_path / "published"
    with connect(tmp_path / "warehouse.duckdb") as con:
        ensure_schema(con)
        for inputs in months:
            record_decision(decide_training(inputs, "on_drift"), con, published)
        # February decided again under `always`: the newest decision is the month's.
        record_decision(decide_training(months[1], "always"), con, published)

    history = decision_history(read_snapshot(published).decisions)
    assert history["decision"].tolist() == ["train", "train", "train"]
    assert history["policy"].tolist() == ["on_drift", "always", "on_drift"]
    assert pd.isna(history["accuracy_kind"][0]), "no champion scored the first month"
    assert history["accuracy_kind"].tolist()[1:] == ["estimated", "realised"]
    assert history["accuracy"].tolist()[1:] == [0.79, 0.5]
    on_drift = decision_history(read_snapshot(published).decisions.iloc[:3])
    assert on_drift["decision"].tolist() == ["train", "keep", "train"]

    (axis,) = decision_figure(on_drift).axes
    legend = [text.get_text() for text in axis.get_legend().get_texts()]
    assert legend == ["accuracy", "train", "keep"]
    train, keep = axis.collections
    assert len(train.get_offsets()) == 2 and len(keep.get_offsets()) == 1
    assert decision_figure(decision_history(read_snapshot(tmp_path / "none").decisions)) is None


def test_promotions_are_newest_first() -> None:
    promotions = pd.DataFrame(
        {
            "created_at": pd.to_datetime(["2024-02-01 10:00", "2024-03-01 10:00"]),
            "decision": ["promoted", "rejected"],
            "model_version": ["1", "4"],
            "trained_through": [date(2024, 1, 1), date(2024, 2, 1)],
            "eval_month": [date(2024, 2, 1), date(2024, 3, 1)],
            "challenger_score": [0.8, 0.712345678],
            "champion_score": [None, 0.8],
            "margin": [0.0, 0.01],
        }
    )
    table = promotion_table(promotions)
    assert table["decision"].tolist() == ["rejected", "promoted"]
    assert table["created_at"].tolist() == ["2024-03-01 10:00", "2024-02-01 10:00"]
    assert table["challenger_score"].tolist() == [0.7123, 0.8]


def test_config_defaults_are_the_safe_ones() -> None:
    config = load_config({})
    assert config == AppConfig()
    assert (config.host, config.port, config.auth_enabled) == ("127.0.0.1", 7860, False)
    assert config.threads == 1
    assert config.encoder_runtime == "auto"
    assert not config.exposed_without_auth


def test_config_reads_the_environment() -> None:
    config = load_config(
        {
            "SENTIMENT_APP_HOST": "0.0.0.0",
            "SENTIMENT_APP_PORT": "8080",
            "SENTIMENT_APP_USER": "ana",
            "SENTIMENT_APP_PASSWORD": "pw",
            "SENTIMENT_APP_RELOAD_SECONDS": "0.5",
            "SENTIMENT_APP_MAX_UPLOAD_MB": "2",
            "SENTIMENT_APP_MAX_ROWS": "10",
            "SENTIMENT_APP_MAX_CHARS": "280",
            "SENTIMENT_APP_THREADS": "2",
            "SENTIMENT_APP_ENCODER_RUNTIME": "torch",
        }
    )
    assert (config.host, config.port, config.user, config.password) == (
        "0.0.0.0",
        8080,
        "ana",
        "pw",
    )
    assert config.reload_seconds == 0.5
    assert config.max_upload_bytes == 2 * 1024 * 1024
    assert (config.max_batch_rows, config.max_text_chars) == (10, 280)
    assert config.threads == 2
    assert config.encoder_runtime == "torch"
    assert load_config({"SENTIMENT_APP_THREADS": "auto"}).threads is None
    assert not config.exposed_without_auth
    assert load_config({"SENTIMENT_APP_HOST": "0.0.0.0"}).exposed_without_auth


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SENTIMENT_APP_USER": "ana"}, "set both"),
        ({"SENTIMENT_APP_PASSWORD": "pw"}, "set both"),
        ({"SENTIMENT_APP_PORT": "http"}, "SENTIMENT_APP_PORT='http' is not a valid int"),
        ({"SENTIMENT_APP_PORT": "70000"}, "at most 65535"),
        ({"SENTIMENT_APP_RELOAD_SECONDS": "0"}, "must be positive"),
        ({"SENTIMENT_APP_ENCODER_RUNTIME": "tpu"}, "is not one of auto, onnx, torch"),
        ({"SENTIMENT_APP_THREADS": "0"}, "must be positive"),
    ],
)
def test_config_errors_name_the_variable(env: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(env)


def test_a_rerun_that_judges_nothing_is_the_months_verdict_everywhere(tmp_path: Path) -> None:
    """March drifted against champion v1; the rerun's champion v2 trained on March, so the
    newest report judges nothing. The table and the app both say so: neither keeps the old
    "drift" nor calls it "no drift"."""
    march = date(2024, 3, 1)
    drifted = [
        StatResult(s.name, 0.5, 0.1, True, 0.001, {}, s.kind, s.severity) for s in registered()
    ]
    first = report_rows([*drifted, combine(drifted)], march, "champion v1", "1", "run-1")
    note = "2024-03 is part of the champion's training window: nothing to compare"
    rerun = report_rows(not_judged_report(note), march, "champion v2", "2", "run-2")
    published = tmp_path / "published"
    with connect(tmp_path / "warehouse.duckdb") as con:
        ensure_schema(con)
        for rows in (first, rerun):
            replace_rows(
                con,
                "metrics.drift_reports",
                rows,
                "month = ? AND champion_version = ?",
                [march, rows["champion_version"].iloc[0]],
            )
        publish_history(con, published)
        newest = con.execute(
            "SELECT drifted FROM metrics.drift_reports WHERE statistic = 'combined' "
            "ORDER BY created_at DESC LIMIT 1"
        ).fetchone()[0]
    assert newest is None
    shown = drift_history(read_snapshot(published).drift)
    assert set(shown["verdict"]) == {"not judged"} and not shown["drifted"].any()
