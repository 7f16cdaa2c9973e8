"""Batch prediction files: CSV or JSONL with a `text` column in, labels and scores out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

TEXT_COLUMN = "text"
LABEL_NAMES = np.array(["negative", "positive"])


class InputFileError(ValueError):
    """A prediction input the user must fix; the message says how."""


def read_texts(path: Path, max_rows: int | None = None) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif suffix in {".jsonl", ".ndjson"}:
            frame = pd.read_json(path, lines=True, dtype=False)
        else:
            raise InputFileError(f"{path}: expected a .csv or .jsonl file, got {suffix or 'none'}")
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        if isinstance(error, InputFileError):
            raise
        raise InputFileError(f"{path}: cannot be parsed as {suffix[1:].upper()}: {error}") from None
    if TEXT_COLUMN not in frame.columns:
        raise InputFileError(
            f"{path}: no '{TEXT_COLUMN}' column (columns found: {', '.join(map(str, frame.columns))})"
        )
    if frame.empty:
        raise InputFileError(f"{path}: the file has a header but no rows")
    if max_rows is not None and len(frame) > max_rows:
        raise InputFileError(f"{path}: {len(frame)} rows, more than the limit of {max_rows}")
    frame[TEXT_COLUMN] = frame[TEXT_COLUMN].fillna("").astype(str)
    return frame


def label_scores(scores: np.ndarray) -> pd.DataFrame:
    scores = np.asarray(scores, dtype=float)
    return pd.DataFrame({"label": LABEL_NAMES[(scores >= 0.5).astype(int)], "score": scores})


def write_predictions(frame: pd.DataFrame, out: Path | None, fmt: str) -> str | None:
    """Write to `out` (format by suffix) or return the text for stdout in `fmt`."""
    if out is not None:
        fmt = "jsonl" if out.suffix.lower() in {".jsonl", ".ndjson"} else "csv"
    if fmt == "jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in frame.to_dict("records"))
    else:
        text = frame.to_csv(index=False)
    if out is None:
        return text
    out.write_text(text, encoding="utf-8")
    return None
