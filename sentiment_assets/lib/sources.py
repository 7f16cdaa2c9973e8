"""Reading and validating tweet sources for the raw layer (raw.tweets / raw.rejected_tweets).

A source is either ``"synthetic"`` (the seeded generator) or a file path, a directory or a glob of
files (.csv, .parquet, .jsonl/.ndjson). Every data row of a source ends up in exactly one place:
accepted for its month, or rejected with a reason and attributed to a month, so
rows in == rows accepted + rows rejected holds per month and per file.

The frames returned here carry every contract column except ``ingested_at``, which the caller
adds when it writes, so that one load has one timestamp. ``month`` holds ``datetime.date``
objects and ``created_at`` is naive ``datetime64[us]``. Columns are plain object dtype, so an
empty or all-NULL frame carries no SQL types: insert into pre-created tables (or cast).
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from sentiment_assets.lib import synthetic as syn
from sentiment_assets.lib.synthetic import SyntheticConfig

RAW_COLUMNS = [
    "tweet_id",
    "created_at",
    "month",
    "text",
    "label_raw",
    "user_name",
    "source",
    "source_row",
]
REJECTED_COLUMNS = ["month", "source", "source_row", "raw_record", "reason"]
ACCEPTED_LABELS = frozenset({"0", "1", "2", "4", "negative", "positive", "neutral"})
SUPPORTED_EXTENSIONS = (".csv", ".parquet", ".jsonl", ".ndjson")
# The seeded generator instead of files (SENTIMENT_SOURCE=synthetic, the offline default).
SYNTHETIC_SOURCE = "synthetic"

# Sentiment140's 6 columns: the names of the original README and of the Kaggle copy.
SENTIMENT140_FIELDS = ("polarity", "id", "date", "query", "user", "text")
SENTIMENT140_KAGGLE_FIELDS = ("target", "ids", "date", "flag", "user", "text")

# Accepted spellings of each column in generic files (lower-cased header / key names).
ALIASES: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "created_at": ("created_at", "date", "timestamp"),
    "label": ("label", "target", "polarity", "sentiment"),
    "tweet_id": ("tweet_id", "id", "ids"),
    "user_name": ("user_name", "user", "username", "screen_name"),
}

_S140_DATE = re.compile(
    r"[A-Za-z]{3} ([A-Za-z]{3}) +(\d{1,2}) (\d{1,2}:\d{2}:\d{2}) [A-Za-z]{3,4} (\d{4})"
)
# An explicit UTC offset after a clock time ('...10:00:00+02:00', '...10:00Z'); a bare date's
# '-05' day must not look like one.
_ISO_OFFSET = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$")
_SURROGATE = re.compile("[\udc80-\udcff]")


@dataclass
class IngestResult:
    """One month of one source: accepted rows (RAW_COLUMNS) and rejected rows (REJECTED_COLUMNS)."""

    accepted: pd.DataFrame
    rejected: pd.DataFrame
    rows_in: int

    def __post_init__(self) -> None:
        assert self.rows_in == len(self.accepted) + len(self.rejected), "rows were lost"


# --- public API -------------------------------------------------------------------------------


def load_month(
    source: str,
    month: date,
    *,
    max_text_chars: int = 1000,
    synthetic: SyntheticConfig | None = None,
) -> IngestResult:
    """Accepted and rejected rows of ``source`` that belong to ``month`` (any day of it)."""
    month = date(month.year, month.month, 1)
    if source == SYNTHETIC_SOURCE:
        frame = _validate(
            _synthetic_records(_required(synthetic), month), max_text_chars, SYNTHETIC_SOURCE
        )
        # Generated rows belong to the month they were generated for, dated or not.
        frame["month"] = [month] * len(frame)
        return _split(frame, month)
    parts = [_split(frame, month) for frame in _attributed_frames(source, max_text_chars)]
    if not parts:
        return _split(_validate(_Records(), max_text_chars, source), month)
    accepted = pd.concat([p.accepted for p in parts], ignore_index=True)
    rejected = pd.concat([p.rejected for p in parts], ignore_index=True)
    return IngestResult(accepted, rejected, len(accepted) + len(rejected))


def months_in_source(source: str, synthetic: SyntheticConfig | None = None) -> list[date]:
    """Sorted distinct months that hold at least one row of the source, accepted or rejected.

    Months whose rows were all rejected count too; otherwise those rejects would never be
    recorded anywhere and rows would be lost silently.
    """
    if source == SYNTHETIC_SOURCE:
        return syn.months(_required(synthetic))
    found: set[date] = set()
    for frame in _attributed_frames(source, 1000):
        found.update(m for m in frame["month"].unique() if m is not None)
    return sorted(found)


def _required(config: SyntheticConfig | None) -> SyntheticConfig:
    if config is None:
        raise ValueError("the synthetic source needs its SyntheticConfig (Settings.synthetic)")
    return config


def source_files(source: str) -> list[Path]:
    """The data files a path, directory or glob names (sorted, supported extensions only).

    An explicitly named file with another extension is an error; directories and globs simply
    skip such files (a README in the landing folder is not data).
    """
    if glob.has_magic(source):
        candidates = [Path(p) for p in sorted(glob.glob(source))]
    else:
        path = Path(source)
        if path.is_dir():
            candidates = sorted(path.iterdir())
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
                raise ValueError(f"unsupported file type {path.suffix!r}: {path}")
            return [path]
        else:
            raise FileNotFoundError(source)
    return [p for p in candidates if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS]


def parse_created_at(values: Sequence[str | None]) -> pd.Series:
    """Parse timestamps to a naive datetime64[ns] Series; NaT where a value cannot be parsed.

    Sentiment140 style ('Mon Apr 06 23:11:14 PDT 2009') keeps the wall-clock time whatever the
    zone name says (the contract); ISO 8601 with an offset is converted to UTC; naive ISO is
    taken as written.
    """
    s140: list[str | None] = []
    iso: list[str | None] = []
    for value in values:
        text = value.strip() if isinstance(value, str) else ""
        match = _S140_DATE.fullmatch(text) if text[:1].isalpha() else None
        if match:
            month_name, day, clock, year = match.groups()
            s140.append(f"{month_name} {day} {year} {clock}")
            iso.append(None)
        else:
            s140.append(None)
            iso.append(text or None)
    out = pd.Series(
        pd.to_datetime(s140, format="%b %d %Y %H:%M:%S", errors="coerce"), dtype="datetime64[ns]"
    )
    # Values with and without an offset are parsed apart: pandas 2.3's ISO8601 parser applies
    # the offset of one element to the naive elements that follow it.
    with_offset = [i for i, v in enumerate(iso) if v is not None and _ISO_OFFSET.search(v)]
    naive = [i for i, v in enumerate(iso) if v is not None and not _ISO_OFFSET.search(v)]
    if with_offset:
        parsed = pd.to_datetime(
            [iso[i] for i in with_offset], format="ISO8601", errors="coerce", utc=True
        )
        out.iloc[with_offset] = parsed.tz_localize(None).astype("datetime64[ns]")
    if naive:
        parsed = pd.to_datetime([iso[i] for i in naive], format="ISO8601", errors="coerce")
        out.iloc[naive] = parsed.astype("datetime64[ns]")
    return out


def normalise_label(value: str | None) -> str | None:
    """Stripped, lower-cased label if it is one of ACCEPTED_LABELS, else None."""
    if value is None:
        return None
    label = value.strip().lower()
    return label if label in ACCEPTED_LABELS else None


# --- records: rows of one file before validation ----------------------------------------------


@dataclass
class _Records:
    """Parallel lists, one entry per data row of one file (or one synthetic month)."""

    source_row: list[int] = field(default_factory=list)
    tweet_id: list[str | None] = field(default_factory=list)
    created_at: list[str | None] = field(default_factory=list)
    text: list[str | None] = field(default_factory=list)
    label: list[str | None] = field(default_factory=list)
    user_name: list[str | None] = field(default_factory=list)
    # The original row for raw_record: a str (already rendered), a dict of fields, or a list of
    # CSV fields named by ``names`` (turned into a dict only for rejected rows).
    raw: list[Any] = field(default_factory=list)
    pre_reason: list[str | None] = field(default_factory=list)
    names: tuple[str, ...] = ()
    # Sentiment140 and synthetic rows always carry a label, so an empty one is an error there;
    # in generic files it just means "unlabelled".
    label_required: bool = False

    def add(self, values: Mapping[str, str | None], raw: Any, pre_reason: str | None) -> None:
        self.source_row.append(len(self.source_row) + 1)
        self.tweet_id.append(values.get("tweet_id"))
        self.created_at.append(values.get("created_at"))
        self.text.append(values.get("text"))
        self.label.append(values.get("label"))
        self.user_name.append(values.get("user_name"))
        self.raw.append(raw)
        self.pre_reason.append(pre_reason)

    def reject(self, raw: Any, reason: str) -> None:
        self.add({}, raw, reason)


@lru_cache(maxsize=16)
def _parse_file(path: str, mtime_ns: int, size: int, max_text_chars: int) -> pd.DataFrame:
    # mtime and size are part of the key so that a rewritten file is read again; callers never
    # mutate the cached frame (they filter or copy it).
    del mtime_ns, size
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        records = _csv_records(Path(path).read_bytes())
    elif suffix in (".jsonl", ".ndjson"):
        records = _jsonl_records(Path(path).read_bytes())
    elif suffix == ".parquet":
        records = _parquet_records(path)
    else:
        raise ValueError(f"unsupported file type: {path}")
    return _validate(records, max_text_chars, path)


def _attributed_frames(source: str, max_text_chars: int) -> list[pd.DataFrame]:
    """Validated rows per file, every row given a month where any month can be found."""
    frames = []
    for path in source_files(source):
        stat = path.stat()
        frames.append(_parse_file(str(path), stat.st_mtime_ns, stat.st_size, max_text_chars))
    # Rows without a usable date go to the earliest month of their own file; a file without any
    # date borrows the earliest month of the whole source.
    earliest = [min((m for m in f["month"] if m is not None), default=None) for f in frames]
    source_earliest = min((m for m in earliest if m is not None), default=None)
    out = []
    for frame, own in zip(frames, earliest, strict=True):
        undated = frame["month"].isna()
        target = own if own is not None else source_earliest
        if undated.any():
            if target is None:
                warnings.warn(
                    f"{int(undated.sum())} rows of {frame['source'].iloc[0]} have no usable "
                    "date and there is no month to attribute them to; they are not ingested",
                    stacklevel=3,
                )
            else:
                frame = frame.copy()
                frame["month"] = frame["month"].where(~undated, target)
        out.append(frame)
    return out


def _csv_records(data: bytes) -> _Records:
    try:
        text = data.decode("utf-8")
        clean = True
    except UnicodeDecodeError:
        # surrogateescape keeps the bad bytes visible per row, so a bad row costs one row only.
        text = data.decode("utf-8", errors="surrogateescape")
        clean = False
    if text.startswith("\ufeff"):
        text = text[1:]  # a byte order mark is not part of the first header name
    pieces = text.split("\n")
    lines = [p + "\n" for p in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])

    rows = _csv_rows(lines, keep_raw=not clean)
    if not rows:
        return _Records(label_required=True)
    first_fields, first_raw = rows[0]
    header = [f.strip().lower() for f in first_fields or []]
    if "text" in header and not (first_raw and _SURROGATE.search(first_raw)):
        positions = _alias_positions(header)
        if "created_at" not in positions:
            raise ValueError("CSV header has a text column but no created_at/date column")
        names = tuple(first_fields or ())
        label_required = tuple(header) in (SENTIMENT140_FIELDS, SENTIMENT140_KAGGLE_FIELDS)
        rows = rows[1:]
    else:
        # No header: Sentiment140's own layout.
        names = SENTIMENT140_FIELDS
        positions = {"label": 0, "tweet_id": 1, "created_at": 2, "user_name": 4, "text": 5}
        label_required = True

    records = _Records(names=names, label_required=label_required)
    width = len(names)
    for fields, raw in rows:
        if raw is not None and _SURROGATE.search(raw):
            records.reject(_escape_bad_bytes(raw.rstrip("\r\n")), "invalid_encoding")
        elif fields is None:
            records.reject(json.dumps({"_unparsed": (raw or "").rstrip("\r\n")}), "malformed_row")
        elif len(fields) != width:
            records.reject(_fields_record(names, fields), "malformed_row")
        else:
            records.add({column: fields[i] for column, i in positions.items()}, fields, None)
    return records


def _csv_rows(lines: list[str], keep_raw: bool) -> list[tuple[list[str] | None, str | None]]:
    """(fields, raw text) per non-blank CSV record; fields None where the csv module gave up."""

    def blank(fields: list[str]) -> bool:
        return not fields or (len(fields) == 1 and not fields[0].strip())

    if not keep_raw:
        try:  # the common case: one pass, no per-row bookkeeping
            return [(f, None) for f in csv.reader(lines) if not blank(f)]
        except csv.Error:
            pass
    # Slow path: track which physical lines each record used, to keep its raw text.
    reader = csv.reader(lines)
    rows: list[tuple[list[str] | None, str | None]] = []
    consumed = 0
    while True:
        try:
            fields: list[str] | None = next(reader)
        except StopIteration:
            break
        except csv.Error:
            fields = None
        raw = "".join(lines[consumed : reader.line_num])
        consumed = reader.line_num
        if fields is None or not blank(fields):
            rows.append((fields, raw))
    return rows


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


def _jsonl_records(data: bytes) -> _Records:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    records = _Records()
    for line in data.split(b"\n"):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue  # blank lines are not data rows
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            records.reject(line.decode("utf-8", "backslashreplace"), "invalid_encoding")
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            _add_mapping(records, obj)
        else:
            records.reject(json.dumps({"_unparsed": text}, ensure_ascii=False), "malformed_row")
    return records


def _parquet_records(path: str) -> _Records:
    table = pd.read_parquet(path)
    positions = _alias_positions([str(c).strip().lower() for c in table.columns])
    if "text" not in positions or "created_at" not in positions:
        raise ValueError(f"{path}: a parquet source needs text and created_at columns")
    records = _Records()
    for obj in table.to_dict("records"):
        _add_mapping(records, obj)
    return records


def _add_mapping(records: _Records, obj: Mapping[Any, Any]) -> None:
    fields = {str(k): _as_text(v) for k, v in obj.items()}
    lowered = {k.strip().lower(): v for k, v in fields.items()}
    values = {
        column: next((lowered[a] for a in aliases if a in lowered), None)
        for column, aliases in ALIASES.items()
    }
    records.add(values, fields, None)


def _as_text(value: Any) -> str | None:
    """A cell as the string it would be in a CSV; None for nulls (JSON null, NaN, NaT)."""
    if value is None or value is pd.NaT:
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
    records = _Records(label_required=True)
    for row in syn.generate_month(config, month).to_dict("records"):
        records.add(row, row, None)
    return records


# --- validation -------------------------------------------------------------------------------


def _validate(records: _Records, max_text_chars: int, source: str) -> pd.DataFrame:
    """One row per record: parsed fields, month (None if undated) and reason (None if accepted)."""
    created = parse_created_at(records.created_at)
    # Structurally broken rows are not trusted for their date either.
    structural = [r is not None for r in records.pre_reason]
    created[structural] = pd.NaT
    is_nat = created.isna().to_list()

    reasons: list[str | None] = []
    labels: list[str | None] = []
    for i, pre in enumerate(records.pre_reason):
        label = normalise_label(records.label[i])
        labels.append(label)
        if pre is not None:
            reasons.append(pre)
            continue
        raw_date, text, raw_label = records.created_at[i], records.text[i], records.label[i]
        # First failing check wins, in the contract's order.
        if raw_date is None or not raw_date.strip():
            reasons.append("missing_date")
        elif is_nat[i]:
            reasons.append("unparseable_date")
        elif text is None or not text.strip():
            reasons.append("empty_text")
        elif label is None and (records.label_required or (raw_label or "").strip()):
            reasons.append("bad_label")
        elif len(text) > max_text_chars:
            reasons.append("text_too_long")
        else:
            reasons.append(None)

    month_start = created.to_numpy(dtype="datetime64[ns]").astype("datetime64[M]")
    tweet_ids = [
        tid.strip() if tid and tid.strip() else _content_id(text, when)
        for tid, text, when in zip(records.tweet_id, records.text, records.created_at, strict=True)
    ]
    users = [(u.strip() or None) if u is not None else None for u in records.user_name]
    # Only rejected rows need their original record, so render CSV field lists just for them.
    raws = [
        dict(zip(records.names, raw, strict=False)) if reason and isinstance(raw, list) else raw
        for raw, reason in zip(records.raw, reasons, strict=True)
    ]
    return pd.DataFrame(
        {
            "tweet_id": pd.Series(tweet_ids, dtype=object),
            "created_at": created,
            # datetime64[M] -> object gives datetime.date (first of month) and None for NaT.
            "month": pd.Series(month_start.astype(object), dtype=object),
            "text": pd.Series(records.text, dtype=object),
            "label_raw": pd.Series(labels, dtype=object),
            "user_name": pd.Series(users, dtype=object),
            "source": source,
            "source_row": pd.Series(records.source_row, dtype="int64"),
            "raw": pd.Series(raws, dtype=object),
            "reason": pd.Series(reasons, dtype=object),
        }
    )


def _content_id(text: str | None, created_at: str | None) -> str:
    # Stable across runs and machines (unlike hash()), so re-ingesting yields the same ids.
    key = f"{text or ''}\x1f{(created_at or '').strip()}".encode("utf-8", "surrogateescape")
    return "h" + hashlib.sha1(key).hexdigest()[:16]


def _split(frame: pd.DataFrame, month: date) -> IngestResult:
    mine = frame[frame["month"] == month]
    ok = mine["reason"].isna()
    accepted = mine.loc[ok, RAW_COLUMNS].reset_index(drop=True)
    # Microseconds: DuckDB maps datetime64[us] to TIMESTAMP (ns would become TIMESTAMP_NS).
    accepted["created_at"] = accepted["created_at"].astype("datetime64[us]")
    bad = mine.loc[~ok]
    rejected = pd.DataFrame(
        {
            "month": pd.Series(bad["month"].to_list(), dtype=object),
            "source": pd.Series(bad["source"].to_list(), dtype=object),
            "source_row": pd.Series(bad["source_row"].to_list(), dtype="int64"),
            "raw_record": [
                r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in bad["raw"]
            ],
            "reason": pd.Series(bad["reason"].to_list(), dtype=object),
        },
        columns=REJECTED_COLUMNS,
    )
    return IngestResult(accepted, rejected, len(accepted) + len(rejected))
