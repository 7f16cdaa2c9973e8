"""The published snapshot: what readers outside the pipeline (the app) may open.

The app must never open the live warehouse: DuckDB admits one writing process, and a reader
holding the file would block the pipeline. After every write to the metric history the
pipeline copies the history tables to Parquet files under SENTIMENT_HOME/published/history,
each written atomically (lib/atomic.py), so a reader sees the previous snapshot or the new
one, never a torn file.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from sentiment_assets.lib.atomic import replacing, write_text
from sentiment_assets.lib.registry import VersionInfo

HISTORY_TABLES = {
    "model_evaluations": "metrics.model_evaluations",
    "training_runs": "metrics.training_runs",
    "promotions": "metrics.promotions",
    "drift_reports": "metrics.drift_reports",
}


def history_dir(published_dir: Path) -> Path:
    return published_dir / "history"


def publish_history(con: duckdb.DuckDBPyConnection, published_dir: Path) -> dict[str, int]:
    target_dir = history_dir(published_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, table in HISTORY_TABLES.items():
        with replacing(target_dir / f"{name}.parquet", suffix=".parquet") as staging:
            con.execute(f"COPY (SELECT * FROM {table}) TO '{staging}' (FORMAT parquet)")
        counts[name] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return counts


def champion_file(published_dir: Path) -> Path:
    return published_dir / "champion.json"


def publish_champion(published_dir: Path, info: VersionInfo, decision: str) -> Path:
    """Write champion.json atomically: readers see the old file or the new one, never half."""
    published_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "version": info.version,
        "family": info.family,
        "trained_through": info.trained_through,
        "promoted_at": datetime.now(UTC).isoformat(),
        "decision": decision,
    }
    return write_text(champion_file(published_dir), json.dumps(payload, indent=2))
