"""Reading files chunk by chunk: CSV (Sentiment140's layout or named columns), JSON lines,
Parquet, and the synthetic generator, each into records before validation."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from sentiment_assets.lib.data import synthetic as syn
from sentiment_assets.lib.data.sources.records import (
    _SURROGATE,
    ALIASES,
    SENTIMENT140_FIELDS,
    SENTIMENT140_KAGGLE_FIELDS,
    _Records,
)
from sentiment_assets.lib.data.synthetic import SyntheticConfig

# --- reading files chunk by chunk -------------------------------------------------------------


def _file_records(path: Path, chunk_rows: int) -> Iterator[_Records]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_chunks(path, chunk_rows)
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_chunks(path, chunk_rows)
    if suffix == ".parquet":
        return _parquet_chunks(path, chunk_rows)
    raise ValueError(f"unsupported file type: {path}")


def _csv_chunks(path: Path, chunk_rows: int) -> Iterator[_Records]:
    """The CSV's records about ``chunk_rows`` at a time, each chunk cut where a record ends.

    One csv.reader runs over the whole file, so records that span lines (quoted newlines)
    never straddle a chunk. A chunk with undecodable bytes or a record the reader gave up on
    is read again on its own lines by the careful path (``_csv_chunk_records``).
    """
    # The csv module refuses fields over 128 KiB by default, which would turn one over-long
    # tweet into a malformed_row; no field can be longer than the file, so that is the limit
    # (the setting is process-wide, and is only ever raised).
    size = path.stat().st_size
    if csv.field_size_limit() <= size:
        csv.field_size_limit(size + 1)
    lines: list[str] = []
    undecodable = False

    def decoded_lines() -> Iterator[str]:
        nonlocal undecodable
        with path.open("rb") as handle:
            for number, raw in enumerate(handle):
                if number == 0 and raw.startswith(_BOM):
                    raw = raw[len(_BOM) :]  # a byte order mark is not part of the first header
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    # surrogateescape keeps the bad bytes visible per row: a bad row costs one
                    # row only.
                    line = raw.decode("utf-8", errors="surrogateescape")
                    undecodable = True
                lines.append(line)
                yield line

    reader = csv.reader(decoded_lines())
    fields_seen: list[list[str]] = []
    reader_failed = False
    layout: _CsvLayout | None = None
    first_row = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error:
            reader_failed = True
            continue
        if not _blank(fields):
            fields_seen.append(fields)
        if len(fields_seen) >= chunk_rows:
            fast = None if reader_failed or undecodable else fields_seen
            records, layout = _csv_chunk_records(lines, fast, layout, first_row)
            first_row += len(records.source_row)
            yield records
            lines.clear()
            fields_seen = []
            reader_failed = undecodable = False
    if lines:
        fast = None if reader_failed or undecodable else fields_seen
        records, layout = _csv_chunk_records(lines, fast, layout, first_row)
        yield records


_BOM = b"\xef\xbb\xbf"


def _blank(fields: list[str]) -> bool:
    return not fields or (len(fields) == 1 and not fields[0].strip())


def _csv_chunk_records(
    lines: list[str],
    parsed: list[list[str]] | None,
    layout: _CsvLayout | None,
    first_row: int,
) -> tuple[_Records, _CsvLayout | None]:
    """Records of one chunk of CSV lines; ``parsed`` holds its records when the single pass
    read them cleanly, else (None) the lines are read again keeping each record's raw text.
    The first chunk decides the layout (and holds the header); later chunks reuse it."""
    rows = [(f, None) for f in parsed] if parsed is not None else _csv_rows(lines)
    if not rows:
        return _Records(label_required=True, first_row=first_row), layout
    first_chunk = layout is None
    if layout is None:
        layout = _csv_layout(rows)
    width = len(layout.names)
    skip = layout.skip if first_chunk else 0
    if any(f is None or len(f) != width for f, _ in rows[skip:]):
        # Some record is broken: read again, this time able to stop an unterminated quote from
        # swallowing the rows after it (that needs the expected width).
        rows = _csv_rows(lines, width=width)
        if first_chunk:
            layout = _csv_layout(rows)
            width = len(layout.names)
            skip = layout.skip

    records = _Records(
        names=layout.names,
        label_required=layout.label_required,
        hint=layout.hint,
        first_row=first_row,
    )
    for fields, raw in rows[skip:]:
        if raw is not None and _SURROGATE.search(raw):
            records.reject(_escape_bad_bytes(raw.rstrip("\r\n")), "invalid_encoding")
        elif fields is None:
            records.reject(json.dumps({"_unparsed": (raw or "").rstrip("\r\n")}), "malformed_row")
        elif len(fields) != width:
            records.reject(_fields_record(layout.names, fields), "malformed_row")
        else:
            records.add({column: fields[i] for column, i in layout.positions.items()}, fields, None)
    return records, layout


@dataclass(frozen=True)
class _CsvLayout:
    names: tuple[str, ...]
    positions: dict[str, int]
    label_required: bool
    skip: int  # 1 when the first record is a header
    hint: str


def _csv_layout(rows: list[tuple[list[str] | None, str | None]]) -> _CsvLayout:
    first_fields, first_raw = rows[0]
    header = [f.strip().lower() for f in first_fields or []]
    if "text" in header and not (first_raw and _SURROGATE.search(first_raw)):
        positions = _alias_positions(header)
        if "created_at" not in positions:
            raise ValueError("CSV header has a text column but no created_at/date column")
        label_required = tuple(header) in (SENTIMENT140_FIELDS, SENTIMENT140_KAGGLE_FIELDS)
        return _CsvLayout(tuple(first_fields or ()), positions, label_required, 1, "")
    # No header: Sentiment140's own layout.
    hint = (
        "; read as Sentiment140's 6 columns without a header because the first line has no "
        f"'text' column (it has {len(header)} fields); a generic CSV needs a header with "
        "text and created_at"
    )
    positions = {"label": 0, "tweet_id": 1, "created_at": 2, "user_name": 4, "text": 5}
    return _CsvLayout(SENTIMENT140_FIELDS, positions, True, 0, hint)


def _csv_rows(
    lines: list[str], width: int | None = None
) -> list[tuple[list[str] | None, str | None]]:
    """(fields, raw text) per non-blank CSV record; fields None where the csv module gave up.

    The careful path, for chunks the single pass could not read cleanly: it tracks which
    physical lines each record used, to keep its raw text. With ``width``, a record that spans
    several lines and still has the wrong number of fields (or fails) is an unterminated quote
    that ran on: only its first line is kept, as a broken record, and reading starts again on
    the line after it, so the rows it swallowed survive.
    """
    rows: list[tuple[list[str] | None, str | None]] = []
    start = 0
    while start < len(lines):
        reader = csv.reader(_lines_from(lines, start))
        restart = None
        consumed = 0
        while True:
            try:
                fields: list[str] | None = next(reader)
            except StopIteration:
                break
            except csv.Error:
                fields = None
            first, end = start + consumed, start + reader.line_num
            consumed = reader.line_num
            broken = fields is None or (width is not None and len(fields) != width)
            if broken and width is not None and end - first > 1:
                rows.append((None, lines[first]))
                restart = first + 1
                break
            if fields is None or not _blank(fields):
                rows.append((fields, "".join(lines[first:end])))
        if restart is None:
            break
        start = restart
    return rows


def _lines_from(lines: list[str], start: int) -> Iterator[str]:
    # An iterator from `start` without copying the list (a restart per broken quote).
    return (lines[i] for i in range(start, len(lines)))


def _alias_positions(names: list[str]) -> dict[str, int]:
    positions: dict[str, int] = {}
    for column, aliases in ALIASES.items():
        for alias in aliases:
            if alias in names:
                positions[column] = names.index(alias)
                break
    return positions


def _fields_record(names: Sequence[str], fields: Sequence[str]) -> dict[str, str]:
    # Malformed rows have too many or too few fields; keep them all, surplus ones numbered.
    record = dict(zip(names, fields, strict=False))
    for extra, value in enumerate(fields[len(names) :], start=1):
        record[f"_extra_{extra}"] = value
    return record


def _escape_bad_bytes(raw: str) -> str:
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _jsonl_chunks(path: Path, chunk_rows: int) -> Iterator[_Records]:
    records = _Records()
    with path.open("rb") as handle:
        for number, line in enumerate(handle):
            if number == 0 and line.startswith(_BOM):
                line = line[len(_BOM) :]
            line = line.removesuffix(b"\n").rstrip(b"\r")
            if not line.strip():
                continue  # blank lines are not data rows
            _add_jsonl_line(records, line)
            if len(records.source_row) >= chunk_rows:
                yield records
                records = _Records(first_row=records.first_row + len(records.source_row))
    yield records


def _add_jsonl_line(records: _Records, line: bytes) -> None:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        records.reject(line.decode("utf-8", "backslashreplace"), "invalid_encoding")
        return
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        _add_mapping(records, obj)
    else:
        records.reject(json.dumps({"_unparsed": text}, ensure_ascii=False), "malformed_row")


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[_Records]:
    parquet = pq.ParquetFile(path)
    positions = _alias_positions([str(c).strip().lower() for c in parquet.schema_arrow.names])
    if "text" not in positions or "created_at" not in positions:
        raise ValueError(f"{path}: a parquet source needs text and created_at columns")
    first_row = 1
    for batch in parquet.iter_batches(batch_size=chunk_rows):
        records = _Records(first_row=first_row)
        for obj in batch.to_pandas().to_dict("records"):
            _add_mapping(records, obj)
        first_row += len(records.source_row)
        yield records


def _add_mapping(records: _Records, obj: Mapping[Any, Any]) -> None:
    fields = {str(k): _as_text(v) for k, v in obj.items()}
    lowered = {k.strip().lower(): v for k, v in fields.items()}
    values = {
        column: next((lowered[a] for a in aliases if a in lowered), None)
        for column, aliases in ALIASES.items()
    }
    originals = {str(k).strip().lower(): v for k, v in obj.items()}
    text = next((originals[a] for a in ALIASES["text"] if a in originals), None)
    bad_text = _as_text(text) is not None and not isinstance(text, str)
    if bad_text:
        values["text"] = None
    records.add(values, fields, None, bad_text=bad_text)


def _as_text(value: Any) -> str | None:
    """A cell as the string it would be in a CSV; None for nulls (JSON null, NaN, NaT, NA).

    Containers (JSON arrays and objects, parquet lists and structs) become JSON, so the raw
    record shows them as they were.
    """
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))  # parquet turns integer ids/labels with nulls into floats
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)


def _synthetic_records(config: SyntheticConfig, month: date) -> _Records:
    """The synthetic source's rows of `month`: none outside its configured months, so no
    month can be made up by asking for it."""
    records = _Records(label_required=True)
    if month not in syn.months(config):
        return records
    for row in syn.generate_month(config, month).to_dict("records"):
        records.add(row, row, None)
    return records
