"""Atomic files (lib/core/atomic.py) and the JSONL readers (lib/data/feedback.py)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from sentiment_assets.lib.core.atomic import SHARED_FILE_MODE, replacing, write_text
from sentiment_assets.lib.data.feedback import latest_corrections, read_jsonl


def test_write_text_replaces_whole_and_shares_the_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "champion.json"
    write_text(target, "old")
    write_text(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == SHARED_FILE_MODE
    assert [p.name for p in target.parent.iterdir()] == ["champion.json"], "no staging left"


def test_a_failed_write_leaves_the_old_file_and_no_staging(tmp_path: Path) -> None:
    target = tmp_path / "history.parquet"
    target.write_text("previous snapshot")
    with pytest.raises(RuntimeError), replacing(target, suffix=".parquet") as staging:
        staging.write_text("half a file")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "previous snapshot"
    assert [p.name for p in tmp_path.iterdir()] == ["history.parquet"]


def test_read_jsonl_skips_a_torn_last_line_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    assert read_jsonl(path) == []
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": 3, "tor')
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]


def test_latest_corrections_keeps_the_last_valid_one_per_prediction(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    records = [
        {"feedback_id": "f1", "prediction_id": "p1", "text": "great", "label": 1},
        {"feedback_id": "f2", "prediction_id": "p2", "text": "meh", "label": 1},
        {"feedback_id": "f3", "prediction_id": "p2", "text": "meh", "label": 0},
        {"feedback_id": "f4", "prediction_id": "p3", "text": "  ", "label": 1},
        {"feedback_id": "f5", "prediction_id": "p4", "text": "odd", "label": 7},
        {"feedback_id": "f6", "text": "no prediction id", "label": 0},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    kept = {r["feedback_id"] for r in latest_corrections(path)}
    assert kept == {"f1", "f3", "f6"}
