"""The History tab's monitoring panel: estimated vs realised accuracy, the champion's
reliability diagram and the slices, read from a snapshot the pipeline's own code published."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from gradio_app import history
from gradio_app.ui import AppContext, read_monitoring
from sentiment_assets.lib.stats.calibration import (
    fit_temperature,
    reliability_bins,
    reliability_json,
)
from sentiment_assets.lib.store.warehouse import connect, ensure_schema
from sentiment_assets.lib.versions.publish import publish_history
from tests.app.champions import home_settings

NOW = pd.Timestamp("2025-01-01 10:00")


@pytest.fixture
def context(tmp_path: Path) -> AppContext:
    # read_monitoring reads the settings' published folder and nothing else of the context.
    return cast(AppContext, SimpleNamespace(settings=home_settings(tmp_path / "home")))


def calibration_row(version: str) -> dict:
    rng = np.random.default_rng(int(version))
    x = rng.normal(size=500)
    labels = (rng.random(500) < 1 / (1 + np.exp(-x))).astype(int)
    proba = 1 / (1 + np.exp(-3 * x))
    calibration = fit_temperature(proba, labels)
    bins = (reliability_bins(proba, labels), reliability_bins(calibration.apply(proba), labels))
    return {
        "model_family": "embedding_logreg",
        "model_version": version,
        "trained_through": date(2024, 1, 1),
        "calibration_method": calibration.method,
        "temperature": calibration.temperature,
        "ece_before": calibration.ece_before,
        "ece_after": calibration.ece_after,
        "reliability": reliability_json(*bins),
        "created_at": NOW,
    }


def publish_monitoring(context: AppContext) -> None:
    evaluation = {
        "model_family": "embedding_logreg",
        "trained_through": date(2024, 1, 1),
        "n": 200,
        "created_at": NOW,
    }
    evaluations = pd.DataFrame(
        [
            {
                **evaluation,
                "model_version": "2",
                "eval_month": date(2024, 2, 1),
                "eval_set": "estimated",
                "accuracy": 0.80,
                "macro_f1": 0.79,
                "accuracy_lower": 0.75,
                "accuracy_upper": 0.85,
            },
            {
                **evaluation,
                "model_version": "2",
                "eval_month": date(2024, 2, 1),
                "eval_set": "next_month",
                "accuracy": 0.78,
                "macro_f1": 0.77,
            },
            # A month without labels yet: an estimate and nothing beside it.
            {
                **evaluation,
                "model_version": "2",
                "eval_month": date(2024, 3, 1),
                "eval_set": "estimated",
                "accuracy": 0.70,
                "macro_f1": 0.69,
                "accuracy_lower": 0.65,
                "accuracy_upper": 0.75,
            },
        ]
    )
    slices = pd.DataFrame(
        [
            {
                "model_family": "embedding_logreg",
                "model_version": "2",
                "eval_month": date(2024, 2, 1),
                "slice": name,
                "n": n,
                "accuracy": acc,
                "macro_f1": acc,
                "created_at": NOW,
            }
            for name, n, acc in (("negation", 40, 0.6), ("short", 30, 0.9))
        ]
    )
    with connect(context.settings.duckdb_path) as con:
        ensure_schema(con)
        for table, frame in (
            ("model_evaluations", evaluations),
            ("slice_evaluations", slices),
            ("training_runs", pd.DataFrame([calibration_row("1"), calibration_row("2")])),
        ):
            con.register("incoming", frame)
            con.execute(f"INSERT INTO metrics.{table} BY NAME SELECT * FROM incoming")
            con.unregister("incoming")
        publish_history(con, context.settings.published_dir)
    champion = {"version": "2", "family": "embedding_logreg", "trained_through": "2024-01-01"}
    (context.settings.published_dir / "champion.json").write_text(json.dumps(champion))


def test_monitoring_panel_shows_estimates_beside_realised_values(context: AppContext) -> None:
    publish_monitoring(context)
    note, estimates, figure, slices = read_monitoring(context)
    assert list(estimates["eval_month"]) == ["2024-03", "2024-02"]
    labelled = estimates.iloc[1]
    assert (labelled["estimated_accuracy"], labelled["realised_accuracy"]) == (0.80, 0.78)
    assert labelled["error"] == -0.02
    assert labelled["interval"] == "[0.750, 0.850]"
    assert pd.isna(estimates.iloc[0]["realised_accuracy"])
    assert "2 estimates, 1 with labels" in note
    assert isinstance(figure, Figure)
    assert "champion v2" in figure.axes[0].get_title(loc="left")
    assert sorted(slices["slice"]) == ["negation", "short"]


def test_an_empty_snapshot_leaves_the_panel_empty(context: AppContext) -> None:
    note, estimates, figure, slices = read_monitoring(context)
    assert estimates.empty and figure is None and slices is None
    assert "No estimates yet" in note
    snapshot = history.read_snapshot(context.settings.published_dir)
    assert history.reliability_of(snapshot.calibrations, None) is None
