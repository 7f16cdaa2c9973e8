"""Every History chart labels its x axis with months (YYYY-MM), read from what the History
tab's handler returns for a published snapshot."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import gradio as gr
import pandas as pd
import pytest
from matplotlib.figure import Figure

from gradio_app.config import AppConfig
from gradio_app.feedback import FeedbackStore
from gradio_app.model_holder import ModelHolder
from gradio_app.telemetry import Telemetry
from gradio_app.ui import MAX_MONTH_LABELS, AppContext, build_blocks, drift_figure, read_history
from sentiment_assets.lib.versions.publish import history_dir
from tests.app.champions import home_settings

MONTH = re.compile(r"\d{4}-\d{2}")


def months(first: date, count: int) -> list[date]:
    return [
        date(first.year + (first.month - 1 + i) // 12, (first.month - 1 + i) % 12 + 1, 1)
        for i in range(count)
    ]


def publish(published: Path, eval_months: list[date], drift_months: list[date]) -> None:
    """A snapshot as the pipeline writes it: two families' scores, two drift statistics."""
    folder = history_dir(published)
    folder.mkdir(parents=True)
    families = ["tfidf_logreg", "embedding_logreg"]
    pd.DataFrame(
        {
            "model_family": [f for _ in eval_months for f in families],
            "model_version": "1",
            "trained_through": date(2024, 1, 1),
            "eval_month": [m for m in eval_months for _ in families],
            "eval_set": "next_month",
            "n": 100,
            "accuracy": 0.8,
            "macro_f1": 0.79,
            "created_at": pd.Timestamp("2025-01-01"),
        }
    ).to_parquet(folder / "model_evaluations.parquet")
    statistics = ["label_psi", "vocab_jsd"]
    pd.DataFrame(
        {
            "month": [m for m in drift_months for _ in statistics],
            "reference": "champion",
            "statistic": statistics * len(drift_months),
            "kind": "label",
            "value": 0.1,
            "threshold": 0.2,
            "drifted": False,
            "severity": None,
            "champion_version": "1",
            "created_at": pd.Timestamp("2025-01-01"),
        }
    ).to_parquet(folder / "drift_reports.parquet")


def tick_labels(figure: Figure) -> list[list[str]]:
    figure.draw_without_rendering()  # tick labels are only computed when the figure is drawn
    return [[t.get_text() for t in axis.get_xticklabels()] for axis in figure.axes]


@pytest.fixture
def context(tmp_path: Path) -> AppContext:
    settings = home_settings(tmp_path / "home")
    return AppContext(
        settings=settings,
        config=AppConfig(),
        holder=ModelHolder(lambda: None, lambda info: None, reload_seconds=60),  # never started
        telemetry=Telemetry(),
        feedback=FeedbackStore(settings.feedback_dir),
        workdir=tmp_path / "work",
    )


def test_every_history_chart_labels_its_x_axis_with_months(context: AppContext) -> None:
    evaluated = months(date(2024, 2, 1), 3)
    drifted = months(date(2024, 2, 1), 4)
    publish(context.settings.published_dir, evaluated, drifted)
    _, accuracy, macro_f1, _decisions, _, figure, _, _ = read_history(context)

    # The metric line plots: months as "YYYY-MM" categories, which Gradio plots as they are.
    plots = [b for b in build_blocks(context).blocks.values() if isinstance(b, gr.LinePlot)]
    assert len(plots) == 2
    for plot, frame in zip(plots, (accuracy, macro_f1), strict=True):
        data = plot.postprocess(frame)
        assert data.datatypes[plot.x] == "nominal"
        column = data.columns.index(plot.x)
        assert sorted({row[column] for row in data.data}) == [f"{m:%Y-%m}" for m in evaluated]

    # The drift panels: one label per month on every panel, not only on the bottom one.
    assert tick_labels(figure) == [[f"{m:%Y-%m}" for m in drifted]] * 2


def test_a_long_drift_history_keeps_at_most_a_dozen_month_labels(context: AppContext) -> None:
    many = months(date(2022, 1, 1), 30)
    publish(context.settings.published_dir, many[:2], many)
    figure = read_history(context)[5]
    for labels in tick_labels(figure):
        assert 2 <= len(labels) <= MAX_MONTH_LABELS
        assert all(MONTH.fullmatch(label) for label in labels), labels
        assert labels[0] == "2022-01"


def test_a_single_drift_month_still_gets_its_label() -> None:
    drift = pd.DataFrame(
        {
            "month": pd.to_datetime(["2024-05-01"]),
            "statistic": ["label_psi"],
            "kind": ["label"],
            "value": [0.3],
            "threshold": [0.2],
            "drifted": [True],
            "severity": [None],
        }
    )
    assert tick_labels(drift_figure(drift)) == [["2024-05"]]
