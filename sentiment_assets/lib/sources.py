"""Reading and validating tweet sources for the raw layer (raw.tweets / raw.rejected_tweets).

A source is either ``"synthetic"`` (the seeded generator) or a file path, a directory or a glob of
files (.csv, .parquet, .jsonl/.ndjson). Every data row of a source ends up in exactly one place:
accepted for its month, or rejected with a reason and attributed to a month, so
rows in == rows accepted + rows rejected holds per month and per file (``IngestResult.files``).
A file that yields no row that could be attributed to a month (binary, wrong columns, empty,
nothing dated inside the plausible window) is a ``SourceFileError`` naming it, never a silent
"0 rows".

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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sentiment_assets.lib import synthetic as syn
from sentiment_assets.lib.landing import file_fingerprint
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
# One row per file (and month) a load took rows from: raw.ingested_files without ingested_at.
FILE_COLUMNS = [
    "month",
    "file",
    "fingerprint",
    "rows",
    "accepted",
    "rejected",
    "status",
    "reason",
]
# Reasons that mean the row's structure could not be read at all; a file made only of such
# rows is not a tweet file (binary data, another format), so it is an error, not N rejects.
STRUCTURAL_REASONS = frozenset({"malformed_row", "invalid_encoding"})
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


class SourceFileError(ValueError):
    """Files of a source that cannot be ingested at all; ``problems`` maps each path to why.

    Raised for the whole source so that one run names every such file at once.
    """

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__(
            "cannot ingest " + "; ".join(f"{path}: {why}" for path, why in self.problems.items())
        )


def _empty_files() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in FILE_COLUMNS})


@dataclass
class IngestResult:
    """One month of one source: accepted rows (RAW_COLUMNS), rejected rows (REJECTED_COLUMNS)
    and per-file counts (FILE_COLUMNS) of every file that has rows in the month."""

    accepted: pd.DataFrame
    rejected: pd.DataFrame
    rows_in: int
    files: pd.DataFrame = field(default_factory=_empty_files)

    def __post_init__(self) -> None:
        assert self.rows_in == len(self.accepted) + len(self.rejected), "rows were lost"
        assert int(self.files["rows"].sum()) == self.rows_in, "a file's rows were lost"


# --- public API -------------------------------------------------------------------------------


def load_month(
    source: str,
    month: date,
    *,
    max_text_chars: int = 1000,
    synthetic: SyntheticConfig | None = None,
    earliest: date | None = None,
    latest: date | None = None,
) -> IngestResult:
    """Accepted and rejected rows of ``source`` that belong to ``month`` (any day of it).

    ``earliest``/``latest`` (months, each optional) bound the plausible dates: a row dated in a
    month before ``earliest`` or after ``latest`` is rejected as ``date_out_of_range`` and, having
    no partition month, is attributed like an undated row (see ``_attributed_frames``).
    Raises ``SourceFileError`` naming every file of the source that cannot be ingested.
    """
    month = date(month.year, month.month, 1)
    if source == SYNTHETIC_SOURCE:
        records = _synthetic_records(_required(synthetic), month)
        frame = _validate(records, max_text_chars, SYNTHETIC_SOURCE)
        # Generated rows belong to the month they were generated for, dated or not.
        frame["month"] = [month] * len(frame)
        return _split([_FileRows(SYNTHETIC_SOURCE, frame, records.names)], month)
    window = _Window.of(earliest, latest)
    return _split(_attributed_frames(source, max_text_chars, window), month)


def months_in_source(
    source: str,
    synthetic: SyntheticConfig | None = None,
    *,
    earliest: date | None = None,
    latest: date | None = None,
) -> list[date]:
    """Sorted distinct months that hold at least one row of the source, accepted or rejected.

    Months whose rows were all rejected count too; otherwise those rejects would never be
    recorded anywhere and rows would be lost silently. Months outside ``earliest``..``latest``
    never count: their rows are ``date_out_of_range`` rejects of a month inside the window.
    Raises ``SourceFileError`` like ``load_month``.
    """
    if source == SYNTHETIC_SOURCE:
        return syn.months(_required(synthetic))
    found: set[date] = set()
    for part in _attributed_frames(source, 1000, _Window.of(earliest, latest)):
        found.update(m for m in part.frame["month"].unique() if m is not None)
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
    # The text cell was there but was not a string (a list, a number): never str() it into a
    # tweet such as "['a' 'b']".
    bad_text: list[bool] = field(default_factory=list)
    names: tuple[str, ...] = ()
    # Sentiment140 and synthetic rows always carry a label, so an empty one is an error there;
    # in generic files it just means "unlabelled".
    label_required: bool = False
    # Why a file with no usable row may look that way (e.g. which layout it was read as).
    hint: str = ""

    def add(
        self,
        values: Mapping[str, str | None],
        raw: Any,
        pre_reason: str | None,
        bad_text: bool = False,
    ) -> None:
        self.source_row.append(len(self.source_row) + 1)
        self.tweet_id.append(values.get("tweet_id"))
        self.created_at.append(values.get("created_at"))
        self.text.append(values.get("text"))
        self.label.append(values.get("label"))
        self.user_name.append(values.get("user_name"))
        self.raw.append(raw)
        self.pre_reason.append(pre_reason)
        self.bad_text.append(bad_text)

    def reject(self, raw: Any, reason: str) -> None:
        self.add({}, raw, reason)


@dataclass(frozen=True)
class _Parsed:
    """A file's validated rows (see _validate), cached; callers never mutate ``frame``."""

    frame: pd.DataFrame
    names: tuple[str, ...]
    hint: str


@dataclass
class _FileRows:
    """One file's rows with every row given its month, ready to be split by month."""

    path: str
    frame: pd.DataFrame
    names: tuple[str, ...]

    def fingerprint(self) -> str | None:
        """The file's content fingerprint (None for the generator). Asked only when a month is
        loaded: listing a source's months (at start-up, in the sensor) reads no hashes."""
        if self.path == SYNTHETIC_SOURCE:
            return None
        stat = Path(self.path).stat()
        return _fingerprint(self.path, stat.st_mtime_ns, stat.st_size)


@dataclass(frozen=True)
class _Window:
    """The plausible months, each bound optional; both None keeps every dated month."""

    earliest: date | None = None
    latest: date | None = None

    @classmethod
    def of(cls, earliest: date | None, latest: date | None) -> _Window:
        return cls(
            date(earliest.year, earliest.month, 1) if earliest else None,
            date(latest.year, latest.month, 1) if latest else None,
        )

    def outside(self, created: pd.Series) -> np.ndarray:
        """Rows whose timestamp falls in a month outside the window (NaT is never outside)."""
        out = np.zeros(len(created), dtype=bool)
        if self.earliest is not None:
            out |= (created < pd.Timestamp(self.earliest)).to_numpy()
        if self.latest is not None:
            after = pd.Timestamp(self.latest) + pd.DateOffset(months=1)
            out |= (created >= after).to_numpy()
        return out

    def describe(self) -> str:
        """' inside 2009-04 .. 2024-06' for messages, or '' when the window is open."""
        if self.earliest is None and self.latest is None:
            return ""
        lo = f"{self.earliest:%Y-%m}" if self.earliest else "any month"
        hi = f"{self.latest:%Y-%m}" if self.latest else "any month"
        return f" inside {lo} .. {hi}"


@lru_cache(maxsize=16)
def _parse_file(path: str, mtime_ns: int, size: int, max_text_chars: int) -> _Parsed:
    # mtime and size are part of the key so that a rewritten file is read again.
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
    return _Parsed(_validate(records, max_text_chars, path), records.names, records.hint)


@lru_cache(maxsize=64)
def _fingerprint(path: str, mtime_ns: int, size: int) -> str:
    del mtime_ns, size  # cache key only, as for _parse_file: hashing a big file once is enough
    return file_fingerprint(Path(path))


def _attributed_frames(source: str, max_text_chars: int, window: _Window) -> list[_FileRows]:
    """Validated rows per file, every row given the month it is recorded under.

    Rows without a usable date, and rows dated outside ``window`` (``date_out_of_range``), have
    no partition month of their own. They go to the earliest month of their own file that is
    inside the window, else to the earliest such month of the whole source. That choice is
    deterministic, so each such row is recorded once, in one month, whichever month is loaded,
    and re-loading that month replaces it (idempotent), like every other row. A file none of
    whose rows can be placed that way, or that has no readable row at all, is an error.
    """
    problems: dict[str, str] = {}
    parsed: list[tuple[Path, _Parsed, pd.DataFrame]] = []
    for path in source_files(source):
        try:
            stat = path.stat()
            result = _parse_file(str(path), stat.st_mtime_ns, stat.st_size, max_text_chars)
        except Exception as error:  # unreadable for any reason (bad parquet, missing columns)
            problems[str(path)] = f"{type(error).__name__}: {error}"
            continue
        frame = result.frame
        unusable = _unusable(frame, result.hint)
        if unusable:
            problems[str(path)] = unusable
            continue
        outside = window.outside(frame["created_at"])
        if outside.any():
            frame = frame.copy()
            frame.loc[outside, "reason"] = "date_out_of_range"
            frame.loc[outside, "month"] = None
        parsed.append((path, result, frame))
    earliest = [min((m for m in f["month"] if m is not None), default=None) for _, _, f in parsed]
    source_earliest = min((m for m in earliest if m is not None), default=None)
    out = []
    for (path, result, frame), own in zip(parsed, earliest, strict=True):
        unplaced = frame["month"].isna()
        target = own if own is not None else source_earliest
        if unplaced.any():
            if target is None:
                problems[str(path)] = (
                    f"no row has a usable date{window.describe()}, so its "
                    f"{int(unplaced.sum())} rows cannot be attributed to a month "
                    f"({_reason_counts(frame['reason'])}){result.hint}"
                )
                continue
            frame = frame.copy()
            frame["month"] = frame["month"].where(~unplaced, target)
        out.append(_FileRows(str(path), frame, result.names))
    if problems:
        raise SourceFileError(problems)
    return out


def _unusable(frame: pd.DataFrame, hint: str) -> str | None:
    """Why a file has no row worth recording one by one, or None if it has such rows."""
    if frame.empty:
        return "no data rows (the file is empty or holds only a header)"
    if frame["reason"].isin(STRUCTURAL_REASONS).all():
        return (
            f"no row could be read ({_reason_counts(frame['reason'])}), so it does not look "
            f"like a tweet file of its format{hint}"
        )
    return None


def _reason_counts(reasons: pd.Series) -> str:
    counts = reasons.dropna().value_counts().sort_index()
    return ", ".join(f"{reason}={int(n)}" for reason, n in counts.items())


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
    # The csv module refuses fields over 128 KiB by default, which would turn one over-long
    # tweet into a malformed_row; no field can be longer than the file, so that is the limit
    # (the setting is process-wide, and is only ever raised).
    if csv.field_size_limit() <= len(text):
        csv.field_size_limit(len(text) + 1)
    pieces = text.split("\n")
    lines = [p + "\n" for p in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])

    rows = _csv_rows(lines, keep_raw=not clean)
    if not rows:
        return _Records(label_required=True)
    layout = _csv_layout(rows)
    if any(f is None or len(f) != len(layout.names) for f, _ in rows[layout.skip :]):
        # Some record is broken: read again, this time able to stop an unterminated quote from
        # swallowing the rows after it (that needs the expected width).
        rows = _csv_rows(lines, keep_raw=True, width=len(layout.names))
        layout = _csv_layout(rows)

    records = _Records(names=layout.names, label_required=layout.label_required, hint=layout.hint)
    width = len(layout.names)
    for fields, raw in rows[layout.skip :]:
        if raw is not None and _SURROGATE.search(raw):
            records.reject(_escape_bad_bytes(raw.rstrip("\r\n")), "invalid_encoding")
        elif fields is None:
            records.reject(json.dumps({"_unparsed": (raw or "").rstrip("\r\n")}), "malformed_row")
        elif len(fields) != width:
            records.reject(_fields_record(layout.names, fields), "malformed_row")
        else:
            records.add({column: fields[i] for column, i in layout.positions.items()}, fields, None)
    return records


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
    lines: list[str], keep_raw: bool, width: int | None = None
) -> list[tuple[list[str] | None, str | None]]:
    """(fields, raw text) per non-blank CSV record; fields None where the csv module gave up.

    With ``width``, a record that spans several lines and still has the wrong number of fields
    (or fails) is an unterminated quote that ran on: only its first line is kept, as a broken
    record, and reading starts again on the line after it, so the rows it swallowed survive.
    """

    def blank(fields: list[str]) -> bool:
        return not fields or (len(fields) == 1 and not fields[0].strip())

    if not keep_raw and width is None:
        try:  # the common case: one pass, no per-row bookkeeping
            return [(f, None) for f in csv.reader(lines) if not blank(f)]
        except csv.Error:
            pass
    # Slow path: track which physical lines each record used, to keep its raw text.
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
            if fields is None or not blank(fields):
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
    records = _Records(label_required=True)
    for row in syn.generate_month(config, month).to_dict("records"):
        records.add(row, row, None)
    return records


# --- validation -------------------------------------------------------------------------------


def _validate(records: _Records, max_text_chars: int, source: str) -> pd.DataFrame:
    """One row per record: parsed fields, month (None if undated) and reason (None if accepted).

    ``date_out_of_range`` is not decided here (the window is the caller's, the parse is
    cached); it comes right after ``unparseable_date`` in the order of checks.
    """
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
        elif records.bad_text[i]:
            reasons.append("bad_text_type")
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
            # CSV rows stay field lists here; only rejected ones are rendered (in _split).
            "raw": pd.Series(records.raw, dtype=object),
            "reason": pd.Series(reasons, dtype=object),
        }
    )


def _content_id(text: str | None, created_at: str | None) -> str:
    # Stable across runs and machines (unlike hash()), so re-ingesting yields the same ids.
    key = f"{text or ''}\x1f{(created_at or '').strip()}".encode("utf-8", "surrogateescape")
    return "h" + hashlib.sha1(key).hexdigest()[:16]


def _raw_record(raw: Any, names: tuple[str, ...]) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list):
        raw = dict(zip(names, raw, strict=False))
    return json.dumps(raw, ensure_ascii=False, default=str)


def _split(parts: list[_FileRows], month: date) -> IngestResult:
    accepted_parts, rejected_parts, file_rows = [], [], []
    for part in parts:
        mine = part.frame[part.frame["month"] == month]
        if mine.empty:
            continue  # a file is listed for the months it has rows in
        ok = mine["reason"].isna()
        accepted_parts.append(mine.loc[ok, RAW_COLUMNS])
        bad = mine.loc[~ok]
        rejected_parts.append(
            pd.DataFrame(
                {
                    "month": pd.Series(bad["month"].to_list(), dtype=object),
                    "source": pd.Series(bad["source"].to_list(), dtype=object),
                    "source_row": pd.Series(bad["source_row"].to_list(), dtype="int64"),
                    "raw_record": [_raw_record(r, part.names) for r in bad["raw"]],
                    "reason": pd.Series(bad["reason"].to_list(), dtype=object),
                },
                columns=REJECTED_COLUMNS,
            )
        )
        n_bad = len(bad)
        file_rows.append(
            {
                "month": month,
                "file": part.path,
                "fingerprint": part.fingerprint(),
                "rows": len(mine),
                "accepted": len(mine) - n_bad,
                "rejected": n_bad,
                "status": (
                    "loaded"
                    if n_bad == 0
                    else "all_rejected"
                    if n_bad == len(mine)
                    else "loaded_with_rejects"
                ),
                "reason": _reason_counts(bad["reason"]) or None,
            }
        )
    if accepted_parts:
        accepted = pd.concat(accepted_parts, ignore_index=True)
        rejected = pd.concat(rejected_parts, ignore_index=True)
    else:
        accepted = pd.DataFrame({c: pd.Series(dtype=object) for c in RAW_COLUMNS})
        accepted["source_row"] = accepted["source_row"].astype("int64")
        accepted["created_at"] = accepted["created_at"].astype("datetime64[ns]")
        rejected = pd.DataFrame({c: pd.Series(dtype=object) for c in REJECTED_COLUMNS})
        rejected["source_row"] = rejected["source_row"].astype("int64")
    # Microseconds: DuckDB maps datetime64[us] to TIMESTAMP (ns would become TIMESTAMP_NS).
    accepted["created_at"] = accepted["created_at"].astype("datetime64[us]")
    files = pd.DataFrame(file_rows, columns=FILE_COLUMNS) if file_rows else _empty_files()
    for column in ("rows", "accepted", "rejected"):
        files[column] = files[column].astype("int64")
    return IngestResult(accepted, rejected, len(accepted) + len(rejected), files)
