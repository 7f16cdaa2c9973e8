"""Served predictions and users' corrections, appended to JSONL files under SENTIMENT_HOME.

Not in the warehouse: DuckDB admits one writer and the pipeline is it. Append-only JSON lines
survive a crash with at most the last line lost, need no lock across processes for lines
this short (one write() call per line on a file opened with O_APPEND), and are trivially read
by the pipeline's feedback asset. The format is documented in gradio_app/README.md.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from gradio_app.model_holder import Prediction
from sentiment_assets.lib.core.clock import utc_now
from sentiment_assets.lib.core.months import iso_or_empty
from sentiment_assets.lib.settings import FEEDBACK_FILE

SCHEMA_VERSION = 1
PREDICTIONS_FILE = "predictions.jsonl"
BATCHES_FILE = "batches.jsonl"
LABEL_VALUES = {"negative": 0, "positive": 1}


def _now() -> str:
    return utc_now().isoformat(timespec="milliseconds") + "Z"


@dataclass(frozen=True)
class ServedPrediction:
    """One single-tweet answer, as remembered for a possible correction."""

    prediction_id: str
    text: str
    label: str
    score: float
    model_version: str
    model_family: str
    # As the log holds it (ISO text), like created_at: this is the record a correction copies.
    trained_through: str
    created_at: str


class FeedbackStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()

    @property
    def predictions_path(self) -> Path:
        return self.directory / PREDICTIONS_FILE

    @property
    def feedback_path(self) -> Path:
        return self.directory / FEEDBACK_FILE

    @property
    def batches_path(self) -> Path:
        return self.directory / BATCHES_FILE

    def _append(self, path: Path, record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write(line)

    def log_prediction(self, text: str, prediction: Prediction) -> ServedPrediction:
        served = ServedPrediction(
            prediction_id=uuid.uuid4().hex,
            text=text,
            label=prediction.labels[0],
            score=float(prediction.scores[0]),
            model_version=prediction.version,
            model_family=prediction.family,
            trained_through=iso_or_empty(prediction.trained_through),
            created_at=_now(),
        )
        self._append(
            self.predictions_path,
            {
                "schema_version": SCHEMA_VERSION,
                "prediction_id": served.prediction_id,
                "created_at": served.created_at,
                "text": text,
                "predicted_label": served.label,
                "predicted_score": served.score,
                "model_version": served.model_version,
                "model_family": served.model_family,
                "trained_through": served.trained_through,
                "latency_ms": round(prediction.latency_ms, 3),
            },
        )
        return served

    def log_feedback(self, served: ServedPrediction, corrected_label: str) -> dict:
        if corrected_label not in LABEL_VALUES:
            raise ValueError(f"the right label must be one of {sorted(LABEL_VALUES)}")
        if corrected_label == served.label:
            raise ValueError(
                f"the model already said '{served.label}': pick the other label to correct it"
            )
        record = {
            "schema_version": SCHEMA_VERSION,
            "feedback_id": uuid.uuid4().hex,
            "prediction_id": served.prediction_id,
            "created_at": _now(),
            "predicted_at": served.created_at,
            "text": served.text,
            "predicted_label": served.label,
            "predicted_score": served.score,
            "corrected_label": corrected_label,
            "label": LABEL_VALUES[corrected_label],
            "model_version": served.model_version,
            "model_family": served.model_family,
            "trained_through": served.trained_through,
        }
        self._append(self.feedback_path, record)
        return record

    def log_batch(self, file_name: str, rows: int, prediction: Prediction) -> None:
        self._append(
            self.batches_path,
            {
                "schema_version": SCHEMA_VERSION,
                "batch_id": uuid.uuid4().hex,
                "created_at": _now(),
                "file_name": file_name,
                "rows": rows,
                "positive_share": (prediction.labels.count("positive") / rows if rows else None),
                "model_version": prediction.version,
                "model_family": prediction.family,
                "trained_through": iso_or_empty(prediction.trained_through),
                "latency_ms": round(prediction.latency_ms, 3),
            },
        )
