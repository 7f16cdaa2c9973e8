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

from sentiment_assets.lib.stats.calibration import Calibration, ReliabilityBin, bins_from_json
from sentiment_assets.lib.stats.drift import verdict_word
from sentiment_assets.lib.versions.evaluation import CHAMPION_EVAL, ESTIMATED_EVAL, NEXT_MONTH_EVAL
from sentiment_assets.lib.versions.publish import HISTORY_TABLES, champion_file, history_dir

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
    "accuracy_lower",
    "accuracy_upper",
    "macro_f1_lower",
    "macro_f1_upper",
    "created_at",
]
# The calibration of each trained version (training_runs' calibration columns).
CALIBRATION_COLUMNS = [
    "model_family",
    "model_version",
    "trained_through",
    "calibration_method",
    "temperature",
    "ece_before",
    "ece_after",
    "reliability",
    "created_at",
]
SLICE_COLUMNS = [
    "model_family",
    "model_version",
    "eval_month",
    "slice",
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
# One row per decision of the retraining policy (metrics.training_decisions).
DECISION_COLUMNS = [
    "month",
    "policy",
    "decision",
    "reasons",
    "realised_accuracy",
    "estimated_accuracy",
    "champion_version",
    "created_at",
]


@dataclass
class Snapshot:
    evaluations: pd.DataFrame
    drift: pd.DataFrame
    promotions: pd.DataFrame
    champion: dict | None
    published_at: pd.Timestamp | None
    notes: list[str] = field(default_factory=list)
    calibrations: pd.DataFrame = field(default_factory=lambda: _empty(CALIBRATION_COLUMNS))
    slices: pd.DataFrame = field(default_factory=lambda: _empty(SLICE_COLUMNS))
    decisions: pd.DataFrame = field(default_factory=lambda: _empty(DECISION_COLUMNS))


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def _read(path: Path, columns: list[str], notes: list[str]) -> pd.DataFrame:
    empty = _empty(columns)
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
    calibrations = _read(files["training_runs"], CALIBRATION_COLUMNS, notes)
    slices = _read(files["slice_evaluations"], SLICE_COLUMNS, notes)
    decisions = _read(files["training_decisions"], DECISION_COLUMNS, notes)
    return Snapshot(
        evaluations,
        drift,
        promotions,
        champion,
        published_at,
        notes,
        calibrations,
        slices,
        decisions,
    )


def decision_history(decisions: pd.DataFrame) -> pd.DataFrame:
    """The retraining policy's decision per month, the newest when a month was decided
    again, with the champion's accuracy on the month it read: realised where the month had
    labels, else estimated (`accuracy_kind` says which; None before there is a champion)."""
    columns = ["month", "decision", "policy", "accuracy", "accuracy_kind", "reasons"]
    if decisions.empty:
        return _empty(columns)
    frame = decisions.assign(
        month=pd.to_datetime(decisions["month"]),
        created_at=pd.to_datetime(decisions["created_at"]),
    )
    latest = frame.sort_values(["month", "created_at"]).groupby("month").tail(1)
    realised = pd.to_numeric(latest["realised_accuracy"], errors="coerce")
    estimated = pd.to_numeric(latest["estimated_accuracy"], errors="coerce")
    kind = realised.notna().map({True: "realised", False: "estimated"})
    out = latest.assign(
        accuracy=realised.fillna(estimated),
        accuracy_kind=kind.where(realised.notna() | estimated.notna()),
    )
    return out[columns].reset_index(drop=True)


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
    """One row per (month, statistic): the newest report of that month, with its verdict in
    the words drift_report and drift_sensor use ("not judged" is never "no drift")."""
    columns = ["month", "statistic", "kind", "value", "threshold", "verdict", "drifted", "severity"]
    if drift.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    frame = drift.assign(
        month=pd.to_datetime(drift["month"]), created_at=pd.to_datetime(drift["created_at"])
    )
    frame = frame.sort_values(["month", "statistic", "created_at"])
    latest = frame.groupby(["month", "statistic"], as_index=False).tail(1)
    latest = latest.assign(
        verdict=[verdict_word(None if pd.isna(d) else bool(d)) for d in latest["drifted"]]
    )
    out = latest[columns].reset_index(drop=True)
    out["value"] = out["value"].astype(float)
    out["threshold"] = out["threshold"].astype(float)
    out["drifted"] = out["drifted"].eq(True)
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


def _newest(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    ordered = frame.assign(created_at=pd.to_datetime(frame["created_at"])).sort_values(
        [*keys, "created_at"]
    )
    return ordered.groupby(keys, as_index=False).tail(1)


ESTIMATE_TABLE_COLUMNS = [
    "eval_month",
    "model_family",
    "model_version",
    "estimated_accuracy",
    "interval",
    "realised_accuracy",
    "error",
    "estimated_macro_f1",
    "realised_macro_f1",
]


def estimated_vs_realised(evaluations: pd.DataFrame) -> pd.DataFrame:
    """One row per (month, version) with an estimate: the accuracy expected before labels
    with its 95% interval, and beside it the realised accuracy once labels exist (blank
    until then). error = realised - estimated. Newest month first."""
    if evaluations.empty or not (evaluations["eval_set"] == ESTIMATED_EVAL).any():
        return _empty(ESTIMATE_TABLE_COLUMNS)
    keys = ["eval_month", "model_version"]
    latest = _newest(evaluations, [*keys, "eval_set"])
    estimated = latest[latest["eval_set"] == ESTIMATED_EVAL]
    realised = latest[latest["eval_set"].isin([NEXT_MONTH_EVAL, CHAMPION_EVAL])]
    joined = estimated.merge(
        realised[[*keys, "accuracy", "macro_f1"]], on=keys, how="left", suffixes=("", "_real")
    )
    out = pd.DataFrame(
        {
            "eval_month": pd.to_datetime(joined["eval_month"]).dt.strftime("%Y-%m"),
            "model_family": joined["model_family"],
            "model_version": joined["model_version"].astype(str),
            "estimated_accuracy": joined["accuracy"].astype(float).round(4),
            "interval": [
                f"[{low:.3f}, {high:.3f}]"
                for low, high in zip(
                    joined["accuracy_lower"].astype(float),
                    joined["accuracy_upper"].astype(float),
                    strict=True,
                )
            ],
            "realised_accuracy": joined["accuracy_real"].astype(float).round(4),
            "error": (
                joined["accuracy_real"].astype(float) - joined["accuracy"].astype(float)
            ).round(4),
            "estimated_macro_f1": joined["macro_f1"].astype(float).round(4),
            "realised_macro_f1": joined["macro_f1_real"].astype(float).round(4),
        }
    )
    return out.sort_values(["eval_month", "model_family"], ascending=[False, True]).reset_index(
        drop=True
    )


def slice_history(slices: pd.DataFrame) -> pd.DataFrame:
    """Newest score of each (month, version, slice); newest month first."""
    columns = ["eval_month", "model_family", "model_version", "slice", "n", "accuracy", "macro_f1"]
    if slices.empty:
        return _empty(columns)
    latest = _newest(slices, ["eval_month", "model_version", "slice"])
    out = latest[columns].assign(
        eval_month=pd.to_datetime(latest["eval_month"]).dt.strftime("%Y-%m"),
        model_version=latest["model_version"].astype(str),
        accuracy=latest["accuracy"].astype(float).round(4),
        macro_f1=latest["macro_f1"].astype(float).round(4),
    )
    return out.sort_values(
        ["eval_month", "model_family", "model_version", "slice"],
        ascending=[False, True, True, True],
    ).reset_index(drop=True)


@dataclass(frozen=True)
class Reliability:
    version: str
    family: str
    trained_through: str
    calibration: Calibration
    before: list[ReliabilityBin]
    after: list[ReliabilityBin]


def reliability_of(calibrations: pd.DataFrame, version: str | None) -> Reliability | None:
    """The reliability diagram of `version` (the champion), or of the newest calibrated
    version when that one has none; None before any version was calibrated."""
    frame = calibrations[calibrations["reliability"].notna()]
    if frame.empty:
        return None
    chosen = frame[frame["model_version"].astype(str) == str(version)]
    ordered = (chosen if len(chosen) else frame).sort_values("created_at")
    row = ordered.iloc[-1]
    before, after = bins_from_json(row["reliability"])
    calibration = Calibration(
        method=str(row["calibration_method"]),
        temperature=float(row["temperature"]),
        n=sum(b.n for b in after),
        ece_before=None if pd.isna(row["ece_before"]) else float(row["ece_before"]),
        ece_after=None if pd.isna(row["ece_after"]) else float(row["ece_after"]),
    )
    return Reliability(
        str(row["model_version"]),
        str(row["model_family"]),
        f"{pd.Timestamp(row['trained_through']):%Y-%m}",
        calibration,
        before,
        after,
    )
