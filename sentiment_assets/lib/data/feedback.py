"""Reading the app's append-only JSONL files (predictions, corrections, batches).

The app appends one JSON object per line (gradio_app/feedback.py); a crash can leave a torn
last line, which readers skip (the next append completes the file). The pipeline's
user_feedback asset and the tests read through these two functions.
"""

from __future__ import annotations

import json
from pathlib import Path


def read_jsonl(path: Path) -> list[dict]:
    """Every complete line of a JSONL file; a torn last line (a crash mid-write) is skipped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def latest_corrections(path: Path) -> list[dict]:
    """Valid corrections (a 0/1 label and some text), the latest one per prediction winning."""
    latest: dict[str, dict] = {}
    for record in read_jsonl(path):
        if record.get("label") in (0, 1) and str(record.get("text", "")).strip():
            latest[record.get("prediction_id") or record["feedback_id"]] = record
    return list(latest.values())
