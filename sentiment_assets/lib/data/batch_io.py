"""Batch prediction files: CSV or JSONL with a `text` column in, labels and scores out."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

TEXT_COLUMN = "text"
LABEL_NAMES = np.array(["negative", "positive"])
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
# OWASP's CSV injection rule: a spreadsheet reads a cell starting with one of these as a
# formula (`=HYPERLINK(...)`, `@SUM(...)`, a tab then `=`), unless it is just a number.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class InputFileError(ValueError):
    """A prediction input the user must fix; the message says how."""


def read_texts(path: Path, max_rows: int | None = None) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    if suffix not in {".csv", *JSONL_SUFFIXES}:
        raise InputFileError(f"{path}: expected a .csv or .jsonl file, got {suffix or 'none'}")
    return _checked(_parse(path, suffix, str(path)), str(path), max_rows)


def read_text_stream(data: str, name: str = "stdin") -> pd.DataFrame:
    """Texts piped in: JSONL when the first line is a JSON object, CSV when it is a header
    with a `text` column, else one text per non-blank line (blank lines are no texts)."""
    lines = data.lstrip().splitlines()
    if not lines:
        raise InputFileError(f"{name}: no texts")
    first = lines[0]
    if first.startswith("{"):
        frame = _parse(io.StringIO(data), ".jsonl", name)
    elif _is_csv_header(first):
        frame = _parse(io.StringIO(data), ".csv", name)
    else:
        frame = pd.DataFrame({TEXT_COLUMN: [line for line in lines if line.strip()]})
    return _checked(frame, name)


def _is_csv_header(line: str) -> bool:
    """A header names a `text` column and its names are not padded ("text, with a comma" is
    a tweet)."""
    names = next(csv.reader([line]))
    return TEXT_COLUMN in names and all(name == name.strip() for name in names)


def _parse(source: Path | io.StringIO, suffix: str, name: str) -> pd.DataFrame:
    try:
        if suffix == ".csv":
            return pd.read_csv(source, dtype=str, keep_default_na=False)
        return pd.read_json(source, lines=True, dtype=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InputFileError(f"{name}: cannot be parsed as {suffix[1:].upper()}: {error}") from None


def _checked(frame: pd.DataFrame, name: str, max_rows: int | None = None) -> pd.DataFrame:
    if TEXT_COLUMN not in frame.columns:
        raise InputFileError(
            f"{name}: no '{TEXT_COLUMN}' column (columns found: {', '.join(map(str, frame.columns))})"
        )
    if frame.empty:
        raise InputFileError(f"{name}: the file has a header but no rows")
    if max_rows is not None and len(frame) > max_rows:
        raise InputFileError(f"{name}: {len(frame)} rows, more than the limit of {max_rows}")
    frame[TEXT_COLUMN] = frame[TEXT_COLUMN].fillna("").astype(str)
    return frame


def label_scores(scores: np.ndarray) -> pd.DataFrame:
    scores = np.asarray(scores, dtype=float)
    return pd.DataFrame({"label": LABEL_NAMES[(scores >= 0.5).astype(int)], "score": scores})


def with_predictions(inputs: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """Every input column, then the prediction columns: the rows can be joined back (by `id`,
    say). An input column named like a prediction column is kept as `<name>_input`."""
    clashing = {name: f"{name}_input" for name in predictions.columns if name in inputs.columns}
    kept = inputs.rename(columns=clashing).reset_index(drop=True)
    return pd.concat([kept, predictions.reset_index(drop=True)], axis=1)


def neutralise_formula(value: object) -> object:
    """`value` with a leading single quote when a spreadsheet would evaluate it; numbers and
    other non-text values are returned as they are."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    return value if PLAIN_NUMBER.fullmatch(value) else "'" + value


def safe_csv(frame: pd.DataFrame) -> str:
    """`frame` as CSV text for people: every text cell and header neutralised.

    Rows end in CRLF (RFC 4180's line end), which also makes the writer quote a text holding
    a lone CR: ended by LF alone, such a row is torn in two by every CSV reader.
    """
    safe = frame.copy()
    safe.columns = [neutralise_formula(str(name)) for name in frame.columns]
    for position, dtype in enumerate(frame.dtypes):
        if not pd.api.types.is_numeric_dtype(dtype):
            # Not Series.map, which infers a new dtype: 3 beside a None would become 3.0.
            cells = [neutralise_formula(value) for value in frame.iloc[:, position]]
            safe.isetitem(position, pd.Series(cells, index=frame.index, dtype=object))
    return safe.to_csv(index=False, lineterminator="\r\n")


def write_predictions(frame: pd.DataFrame, out: Path | None, fmt: str) -> str | None:
    """Write to `out` (format by suffix) or return the text for stdout in `fmt`."""
    if out is not None:
        fmt = "jsonl" if out.suffix.lower() in JSONL_SUFFIXES else "csv"
    if fmt == "jsonl":
        records = frame.to_dict("records")
        text = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)
    else:
        text = safe_csv(frame)
    if out is None:
        return text
    out.write_text(text, encoding="utf-8")
    return None
