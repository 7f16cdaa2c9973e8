"""The metric, drift and promotion history, read from the published snapshot only.

The pipeline rewrites SENTIMENT_HOME/published/history/*.parquet atomically after each write
to the warehouse; the app never opens warehouse.duckdb, so it cannot block (or be blocked
by) the single DuckDB writer. A missing or unreadable file becomes an empty table plus a
note, never a crash: the app must start before the first pipeline run too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sentiment_assets.lib.evaluation import NEXT_MONTH_EVAL
from sentiment_assets.lib.publish import HISTORY_TABLES, champion_file, history_dir

# The columns the app reads from each table (a subset of warehouse.py's DDL).
EVALUATION_COLUMNS = [
    "model_family",
    "model_version",
    "trained_through",
    "eval_month",
    "eval_set",
    "n",
    "accuracy",
    "macro_f1",
    "created_at",
]
DRIFT_COLUMNS = [
    "month",
    "reference",
    "statistic",
    "kind",
    "value",
    "threshold",
    "drifted",
    "severity",
    "champion_version",
    "created_at",
]
PROMOTION_COLUMNS = [
    "created_at",
    "decision",
    "model_version",
    "model_family",
    "trained_through",
    "champion_version",
    "metric",
    "challenger_score",
    "champion_score",
    "margin",
    "eval_month",
    "n_eval",
    "reason",
]


@dataclass
class Snapshot:
    evaluations: pd.DataFrame
    drift: pd.DataFrame
    promotions: pd.DataFrame
    champion: dict | None
    published_at: pd.Timestamp | None
    notes: list[str] = field(default_factory=list)


def _read(path: Path, columns: list[str], notes: list[str]) -> pd.DataFrame:
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    if not path.exists():
        return empty
    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # a foreign or damaged file must not take the page down
        notes.append(f"{path.name} could not be read: {error}")
        return empty
    for column in columns:
        if column not in frame.columns:
            frame[column] = None
    return frame[columns]


def read_snapshot(published_dir: Path) -> Snapshot:
    notes: list[str] = []
    folder = history_dir(published_dir)
    files = {name: folder / f"{name}.parquet" for name in HISTORY_TABLES}
    evaluations = _read(files["model_evaluations"], EVALUATION_COLUMNS, notes)
    drift = _read(files["drift_reports"], DRIFT_COLUMNS, notes)
    promotions = _read(files["promotions"], PROMOTION_COLUMNS, notes)
    champion = None
    champion_path = champion_file(published_dir)
    if champion_path.exists():
        try:
            champion = json.loads(champion_path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            notes.append(f"champion.json could not be read: {error}")
    stamps = [p.stat().st_mtime for p in files.values() if p.exists()]
    published_at = pd.Timestamp(max(stamps), unit="s", tz="UTC") if stamps else None
    if published_at is None:
        notes.append(
            f"no published history under {folder.name}/ yet: run the pipeline (make pipeline)"
        )
    return Snapshot(evaluations, drift, promotions, champion, published_at, notes)


def metric_history(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Forward-chained scores: one row per (family, eval month), the newest evaluation wins.

    Re-running a month appends a new version's row for the same family and month; the plot
    shows what the latest run measured, not a zig-zag between reruns.
    """
    columns = ["eval_month", "model_family", "model_version", "n", "accuracy", "macro_f1"]
    frame = evaluations
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    if "eval_set" in frame and frame["eval_set"].notna().any():
        frame = frame[frame["eval_set"] == NEXT_MONTH_EVAL]
    frame = frame.assign(
        eval_month=pd.to_datetime(frame["eval_month"]),
        created_at=pd.to_datetime(frame["created_at"]),
    )
    frame = frame.sort_values(["eval_month", "model_family", "created_at"])
    latest = frame.groupby(["eval_month", "model_family"], as_index=False).tail(1)
    out = latest[columns].reset_index(drop=True)
    out["accuracy"] = out["accuracy"].astype(float)
    out["macro_f1"] = out["macro_f1"].astype(float)
    return out


def drift_history(drift: pd.DataFrame) -> pd.DataFrame:
    """One row per (month, statistic): the newest report of that month."""
    columns = ["month", "statistic", "kind", "value", "threshold", "drifted", "severity"]
    if drift.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    frame = drift.assign(
        month=pd.to_datetime(drift["month"]), created_at=pd.to_datetime(drift["created_at"])
    )
    frame = frame.sort_values(["month", "statistic", "created_at"])
    latest = frame.groupby(["month", "statistic"], as_index=False).tail(1)
    out = latest[columns].reset_index(drop=True)
    out["value"] = out["value"].astype(float)
    out["threshold"] = out["threshold"].astype(float)
    out["drifted"] = out["drifted"].fillna(False).astype(bool)
    return out


def promotion_table(promotions: pd.DataFrame) -> pd.DataFrame:
    """Newest decision first, dates as plain strings for the table."""
    if promotions.empty:
        return promotions
    frame = promotions.sort_values("created_at", ascending=False).reset_index(drop=True)
    for column in ("created_at", "trained_through", "eval_month"):
        frame[column] = pd.to_datetime(frame[column]).dt.strftime(
            "%Y-%m-%d %H:%M" if column == "created_at" else "%Y-%m"
        )
    for column in ("challenger_score", "champion_score", "margin"):
        frame[column] = pd.to_numeric(frame[column]).round(4)
    return frame
