"""Reading and validating tweet sources for the raw layer (raw.tweets / raw.rejected_tweets).

A source is either ``"synthetic"`` (the seeded generator) or a file path, a directory or a glob of
files (.csv, .parquet, .jsonl/.ndjson). Every data row of a source ends up in exactly one place:
accepted for its month, or rejected with a reason and attributed to a month, so
rows in == rows accepted + rows rejected holds per month and per file (``IngestResult.files``).
A file that yields no row that could be attributed to a month (binary, wrong columns, empty,
nothing dated inside the plausible window) is a ``SourceFileError`` naming it, never a silent
"0 rows".

Files are read ``chunk_rows`` records at a time (CSV cut only where a record ends), so memory
follows the chunk, not the file: ``stage_month`` writes each chunk's rows to Parquet for DuckDB
to copy into the warehouse, and only small per-file summaries are kept (and cached, for
listing months). ``load_month`` returns the same rows as frames.

The frames returned here carry every contract column except ``ingested_at``, which the caller
adds when it writes, so that one load has one timestamp. ``month`` holds ``datetime.date``
objects and ``created_at`` is naive ``datetime64[us]``. Columns are plain object dtype, so an
empty or all-NULL frame carries no SQL types: insert into pre-created tables (or cast).
"""

from __future__ import annotations

import contextlib
import csv
import glob
import hashlib
import json
import math
import re
from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sentiment_assets.lib.core.atomic import write_text
from sentiment_assets.lib.data import synthetic as syn
from sentiment_assets.lib.data.landing import file_fingerprint
from sentiment_assets.lib.data.synthetic import SyntheticConfig
from sentiment_assets.lib.store.warehouse import WarehouseConnection

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
# Rows read and validated at a time: memory follows the chunk, not the file (a month can hold
# a million tweets). Large enough that per-chunk overhead is noise.
DEFAULT_CHUNK_ROWS = 50_000

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
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> IngestResult:
    """Accepted and rejected rows of ``source`` that belong to ``month`` (any day of it).

    ``earliest``/``latest`` (months, each optional) bound the plausible dates: a row dated in a
    month before ``earliest`` or after ``latest`` is rejected as ``date_out_of_range`` and, having
    no partition month, is attributed like an undated row (see ``_scan_source``).
    Files are read ``chunk_rows`` rows at a time, but the month's rows are returned in memory:
    for months too large for that, ``stage_month`` writes them to Parquet instead.
    Raises ``SourceFileError`` naming every file of the source that cannot be ingested.
    """
    parts = _scan_source(
        source, _month(month), max_text_chars, synthetic, _Window.of(earliest, latest), chunk_rows
    )
    accepted = [frame for part in parts for frame in part.rows.accepted_frames]
    rejected = [frame for part in parts for frame in part.rows.rejected_frames]
    files = _files_frame(parts, _month(month))
    return IngestResult(
        _concat(accepted, _empty_accepted()),
        _concat(rejected, _empty_rejected()),
        int(files["rows"].sum()),
        files,
    )


@dataclass(frozen=True)
class StagedMonth:
    """One month of one source written to Parquet files (see ``stage_month``), with counts."""

    month: date
    files: pd.DataFrame
    accepted_paths: list[Path]
    rejected_paths: list[Path]
    rows_in: int
    accepted: int
    rejected: int
    labelled: int
    reasons: dict[str, int]

    def __post_init__(self) -> None:
        assert self.rows_in == self.accepted + self.rejected, "rows were lost"
        assert int(self.files["rows"].sum()) == self.rows_in, "a file's rows were lost"


def stage_month(
    source: str,
    month: date,
    staging_dir: Path,
    *,
    max_text_chars: int = 1000,
    synthetic: SyntheticConfig | None = None,
    earliest: date | None = None,
    latest: date | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> StagedMonth:
    """``load_month``, but each chunk's rows go to Parquet files under ``staging_dir`` at once.

    Memory is bounded by one chunk whatever the size of the month, and the warehouse is not
    opened: ``write_staged_months`` moves the files into it in one short transaction.
    """
    parts = _scan_source(
        source,
        _month(month),
        max_text_chars,
        synthetic,
        _Window.of(earliest, latest),
        chunk_rows,
        staging_dir,
    )
    files = _files_frame(parts, _month(month))
    reasons: Counter[str] = Counter()
    for part in parts:
        reasons.update(part.rows.reasons)
    return StagedMonth(
        month=_month(month),
        files=files,
        accepted_paths=[p for part in parts for p in part.rows.accepted_paths],
        rejected_paths=[p for part in parts for p in part.rows.rejected_paths],
        rows_in=int(files["rows"].sum()),
        accepted=sum(part.rows.accepted for part in parts),
        rejected=sum(part.rows.rejected for part in parts),
        labelled=sum(part.rows.labelled for part in parts),
        reasons=dict(sorted(reasons.items())),
    )


def write_staged_months(
    con: WarehouseConnection,
    month: date,
    staged: Sequence[StagedMonth],
    ingested_at: datetime,
) -> None:
    """Replace ``month`` in raw.tweets, raw.rejected_tweets and raw.ingested_files with the
    staged rows, in one transaction: DuckDB reads the Parquet files itself, so the rows never
    pass through Python again, and a failure leaves the previous load in place. (The lake
    replaces one file per table in this order: a reader in between sees the new rows with the
    previous file accounting.)"""
    tables = (
        ("raw.tweets", RAW_COLUMNS, [p for s in staged for p in s.accepted_paths]),
        ("raw.rejected_tweets", REJECTED_COLUMNS, [p for s in staged for p in s.rejected_paths]),
    )
    files = pd.concat([s.files for s in staged], ignore_index=True).assign(ingested_at=ingested_at)
    with con.transaction():
        for table, columns, paths in tables:
            query = (
                f"SELECT {', '.join(columns)}, ?::TIMESTAMP AS ingested_at FROM read_parquet(?)"
                if paths
                else "SELECT NULL::DATE AS month WHERE false"
            )
            params = [ingested_at, [str(p) for p in paths]] if paths else []
            con.replace_month_with(table, month, query, params)
        con.replace_rows("raw.ingested_files", files, "month = ?", [month])


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
    Each file's summary is cached by (path, mtime, size), so asking again reads nothing.
    Raises ``SourceFileError`` like ``load_month``.
    """
    if source == SYNTHETIC_SOURCE:
        return syn.months(_required(synthetic))
    window = _Window.of(earliest, latest)
    found: set[date] = set()
    for part in _scan_source(source, None, 1000, synthetic, window, DEFAULT_CHUNK_ROWS):
        found.update(part.summary.months)
    return sorted(found)


def file_months_remembered(
    path: Path, record: Path, *, earliest: date | None, latest: date | None
) -> list[date]:
    """`months_in_source` of one file, remembered across processes in the JSON `record`.

    Every process that loads the definitions (code server, each run, the daemon) asks which
    months a source holds; for a month of a million tweets, reading the file to answer took
    longer than the rest of the start. The answer is kept by (path, mtime, size, window), the
    same key the in-process summary cache trusts; a changed file is read again.
    """
    stat = path.stat()
    file_key = str(path.resolve())
    key = f"{file_key}|{stat.st_mtime_ns}|{stat.st_size}|{earliest}|{latest}"
    try:
        known = json.loads(record.read_text())
    except (FileNotFoundError, ValueError):
        known = {}
    if isinstance(known.get(key), list):
        return [date.fromisoformat(month) for month in known[key]]
    months = months_in_source(str(path), earliest=earliest, latest=latest)
    known = {k: v for k, v in known.items() if not k.startswith(f"{file_key}|")}
    known[key] = [month.isoformat() for month in months]
    # Only a memo: a home that cannot be written still lists its months, just more slowly.
    with contextlib.suppress(OSError):
        record.parent.mkdir(parents=True, exist_ok=True)
        write_text(record, json.dumps(known, indent=1, sort_keys=True))
    return months


def labelled_texts(
    source: str, size: int, max_text_chars: int = 1000
) -> tuple[list[str], list[int]]:
    """Up to `size` distinct labelled texts of `source` as the pipeline trains on them
    (cleaned like tweets_clean, label 0/1), from rows ingestion accepts, in file order.

    Reads only as far as it needs: the int8 quality gate judges the graph on them
    (encoder_precision.source_probe) at every process start.
    """
    from sentiment_assets.lib.data.text import clean_text, map_label

    texts: dict[str, int] = {}
    if source == SYNTHETIC_SOURCE or not (glob.has_magic(source) or Path(source).exists()):
        return [], []
    for path in source_files(source):
        try:
            for records in _file_records(path, chunk_rows=max(size, 1000)):
                frame = _validate(records, max_text_chars, str(path))
                accepted = frame[frame["reason"].isna()]
                for text, label_raw in zip(accepted["text"], accepted["label_raw"], strict=True):
                    label, cleaned = map_label(label_raw), clean_text(text)
                    if label is not None and 0 < len(cleaned) <= max_text_chars:
                        texts.setdefault(cleaned, label)
                    if len(texts) == size:
                        return list(texts), list(texts.values())
        except Exception:  # unreadable for any reason: raw_tweets reports it, not the probe
            continue
    return list(texts), list(texts.values())


def clear_cache() -> None:
    """Forget every file summary, so the next call reads the files again."""
    _SUMMARIES.clear()


def _month(month: date) -> date:
    return date(month.year, month.month, 1)


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

    Sentiment140 style ('Mon Apr 06 21:05:09 PDT 2009') keeps the wall-clock time whatever the
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
    # source_row of the first record: a file read in chunks numbers its rows across chunks.
    first_row: int = 1

    def add(
        self,
        values: Mapping[str, str | None],
        raw: Any,
        pre_reason: str | None,
        bad_text: bool = False,
    ) -> None:
        self.source_row.append(self.first_row + len(self.source_row))
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


@dataclass
class _FileSummary:
    """What a whole file holds under one window: enough to list its months and to place its
    undated rows, without keeping a single row (see ``_scan_source``)."""

    rows: int = 0
    structural: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    months: Counter[date] = field(default_factory=Counter)
    unplaced: int = 0
    hint: str = ""

    def add(self, frame: pd.DataFrame) -> None:
        self.rows += len(frame)
        self.structural += int(frame["reason"].isin(STRUCTURAL_REASONS).sum())
        self.reasons.update(frame["reason"].dropna())
        placed = frame["month"].dropna()
        self.months.update(placed)
        self.unplaced += len(frame) - len(placed)

    @property
    def earliest(self) -> date | None:
        return min(self.months, default=None)

    def unusable(self) -> str | None:
        """Why the file has no row worth recording one by one, or None if it has such rows."""
        if self.rows == 0:
            return "no data rows (the file is empty or holds only a header)"
        if self.structural == self.rows:
            return (
                f"no row could be read ({_reason_counts(self.reasons)}), so it does not look "
                f"like a tweet file of its format{self.hint}"
            )
        return None


# Summaries of files already read, by (path, mtime_ns, size, max_text_chars, window): listing
# a source's months again (the sensor, each start-up) reads nothing. Small, unlike the rows.
_SUMMARIES: OrderedDict[tuple[object, ...], _FileSummary] = OrderedDict()
_SUMMARY_CACHE_SIZE = 256

ACCEPTED_SCHEMA = pa.schema(
    [
        ("tweet_id", pa.string()),
        ("created_at", pa.timestamp("us")),
        ("month", pa.date32()),
        ("text", pa.string()),
        ("label_raw", pa.string()),
        ("user_name", pa.string()),
        ("source", pa.string()),
        ("source_row", pa.int64()),
    ]
)
REJECTED_SCHEMA = pa.schema(
    [
        ("month", pa.date32()),
        ("source", pa.string()),
        ("source_row", pa.int64()),
        ("raw_record", pa.string()),
        ("reason", pa.string()),
    ]
)


class _MonthRows:
    """The rows one file gives the month: kept as frames, or, with a directory, appended to
    Parquet files chunk by chunk so that nothing but the counts stays in memory."""

    def __init__(self, directory: Path | None, stem: str) -> None:
        self._directory = directory
        self._stem = stem
        self._writers: dict[str, pq.ParquetWriter] = {}
        self.accepted_frames: list[pd.DataFrame] = []
        self.rejected_frames: list[pd.DataFrame] = []
        self.accepted_paths: list[Path] = []
        self.rejected_paths: list[Path] = []
        self.accepted = 0
        self.rejected = 0
        self.labelled = 0
        self.reasons: Counter[str] = Counter()

    def add(self, frame: pd.DataFrame, names: tuple[str, ...]) -> None:
        if frame.empty:
            return
        ok = frame["reason"].isna()
        accepted = frame.loc[ok, RAW_COLUMNS].reset_index(drop=True)
        # Microseconds: DuckDB maps datetime64[us] to TIMESTAMP (ns would become TIMESTAMP_NS).
        accepted["created_at"] = accepted["created_at"].astype("datetime64[us]")
        bad = frame.loc[~ok]
        rejected = pd.DataFrame(
            {
                "month": pd.Series(bad["month"].to_list(), dtype=object),
                "source": pd.Series(bad["source"].to_list(), dtype=object),
                "source_row": pd.Series(bad["source_row"].to_list(), dtype="int64"),
                # CSV rows are still field lists: only rejected ones are rendered.
                "raw_record": [_raw_record(r, names) for r in bad["raw"]],
                "reason": pd.Series(bad["reason"].to_list(), dtype=object),
            },
            columns=REJECTED_COLUMNS,
        )
        self.accepted += len(accepted)
        self.rejected += len(rejected)
        self.labelled += int(accepted["label_raw"].notna().sum())
        self.reasons.update(rejected["reason"])
        if self._directory is None:
            self.accepted_frames.append(accepted)
            self.rejected_frames.append(rejected)
            return
        self._write("accepted", accepted, ACCEPTED_SCHEMA, self.accepted_paths)
        self._write("rejected", rejected, REJECTED_SCHEMA, self.rejected_paths)

    def _write(self, kind: str, frame: pd.DataFrame, schema: pa.Schema, paths: list[Path]) -> None:
        if frame.empty:
            return
        assert self._directory is not None
        writer = self._writers.get(kind)
        if writer is None:
            path = self._directory / f"{self._stem}-{kind}.parquet"
            writer = self._writers[kind] = pq.ParquetWriter(path, schema)
            paths.append(path)
        writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def absorb(self, other: _MonthRows) -> None:
        """Take over ``other``'s rows (a file's undated rows, once their month is known)."""
        other.close()
        self.accepted_frames += other.accepted_frames
        self.rejected_frames += other.rejected_frames
        self.accepted_paths += other.accepted_paths
        self.rejected_paths += other.rejected_paths
        self.accepted += other.accepted
        self.rejected += other.rejected
        self.labelled += other.labelled
        self.reasons.update(other.reasons)


@dataclass
class _FilePart:
    """One file of a source (or the generator): its summary and, when a month is loaded, the
    rows it gives that month."""

    path: str
    summary: _FileSummary
    rows: _MonthRows

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


@lru_cache(maxsize=64)
def _fingerprint(path: str, mtime_ns: int, size: int) -> str:
    del mtime_ns, size  # cache key only: hashing a big file once is enough
    return file_fingerprint(Path(path))


def _scan_source(
    source: str,
    month: date | None,
    max_text_chars: int,
    synthetic: SyntheticConfig | None,
    window: _Window,
    chunk_rows: int,
    staging_dir: Path | None = None,
) -> list[_FilePart]:
    """Every file of the source read chunk by chunk; with ``month``, the rows it gives ``month``.

    Rows without a usable date, and rows dated outside ``window`` (``date_out_of_range``), have
    no partition month of their own. They go to the earliest month of their own file that is
    inside the window, else to the earliest such month of the whole source. That choice is
    deterministic, so each such row is recorded once, in one month, whichever month is loaded,
    and re-loading that month replaces it (idempotent), like every other row. A file none of
    whose rows can be placed that way, or that has no readable row at all, is an error.
    Memory holds one chunk, the summaries, and (without ``staging_dir``) the month's rows.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be >= 1")
    if source == SYNTHETIC_SOURCE:
        if month is None:
            raise ValueError("the synthetic source lists its months from its config")
        records = _synthetic_records(_required(synthetic), month)
        frame = _validate(records, max_text_chars, SYNTHETIC_SOURCE)
        # Generated rows belong to the month they were generated for, dated or not.
        frame["month"] = [month] * len(frame)
        rows = _MonthRows(staging_dir, "synthetic")
        rows.add(frame, records.names)
        rows.close()
        summary = _FileSummary()
        summary.add(frame)
        return [_FilePart(SYNTHETIC_SOURCE, summary, rows)]
    problems: dict[str, str] = {}
    scanned: list[tuple[Path, _FileSummary, _MonthRows, _MonthRows]] = []
    for index, path in enumerate(source_files(source)):
        rows = _MonthRows(staging_dir, f"{index:04d}-rows")
        undated = _MonthRows(staging_dir, f"{index:04d}-undated")
        try:
            summary = _scan_file(path, month, max_text_chars, window, chunk_rows, rows, undated)
        except Exception as error:  # unreadable for any reason (bad parquet, missing columns)
            problems[str(path)] = f"{type(error).__name__}: {error}"
            continue
        finally:
            rows.close()
            undated.close()
        unusable = summary.unusable()
        if unusable:
            problems[str(path)] = unusable
            continue
        scanned.append((path, summary, rows, undated))
    source_earliest = min(
        (s.earliest for _, s, _, _ in scanned if s.earliest is not None), default=None
    )
    parts = []
    for path, summary, rows, undated in scanned:
        target = summary.earliest if summary.earliest is not None else source_earliest
        if summary.unplaced and target is None:
            problems[str(path)] = (
                f"no row has a usable date{window.describe()}, so its {summary.unplaced} rows "
                f"cannot be attributed to a month ({_reason_counts(summary.reasons)})"
                f"{summary.hint}"
            )
            continue
        if target == month:
            rows.absorb(undated)
        parts.append(_FilePart(str(path), summary, rows))
    if problems:
        raise SourceFileError(problems)
    return parts


def _scan_file(
    path: Path,
    month: date | None,
    max_text_chars: int,
    window: _Window,
    chunk_rows: int,
    rows: _MonthRows,
    undated: _MonthRows,
) -> _FileSummary:
    """Read one file chunk by chunk: its summary, and (with ``month``) the month's rows into
    ``rows`` and the rows without a month, marked with ``month``, into ``undated``."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, max_text_chars, window)
    if month is None and key in _SUMMARIES:
        _SUMMARIES.move_to_end(key)
        return _SUMMARIES[key]
    summary = _FileSummary()
    for records in _file_records(path, chunk_rows):
        frame = _validate(records, max_text_chars, str(path))
        summary.hint = records.hint or summary.hint
        outside = window.outside(frame["created_at"])
        if outside.any():
            frame.loc[outside, "reason"] = "date_out_of_range"
            frame.loc[outside, "month"] = None
        summary.add(frame)
        if month is not None:
            rows.add(frame[frame["month"] == month], records.names)
            no_month = frame["month"].isna()
            if no_month.any():
                undated.add(frame[no_month].assign(month=month), records.names)
    _SUMMARIES[key] = summary
    while len(_SUMMARIES) > _SUMMARY_CACHE_SIZE:
        _SUMMARIES.popitem(last=False)
    return summary


def _files_frame(parts: list[_FilePart], month: date) -> pd.DataFrame:
    """raw.ingested_files rows (without ingested_at): one per file with rows in the month."""
    file_rows = []
    for part in parts:
        rows = part.rows
        n = rows.accepted + rows.rejected
        if n == 0:
            continue  # a file is listed for the months it has rows in
        file_rows.append(
            {
                "month": month,
                "file": part.path,
                "fingerprint": part.fingerprint(),
                "rows": n,
                "accepted": rows.accepted,
                "rejected": rows.rejected,
                "status": (
                    "loaded"
                    if rows.rejected == 0
                    else "all_rejected"
                    if rows.rejected == n
                    else "loaded_with_rejects"
                ),
                "reason": _reason_counts(rows.reasons) or None,
            }
        )
    files = pd.DataFrame(file_rows, columns=FILE_COLUMNS) if file_rows else _empty_files()
    for column in ("rows", "accepted", "rejected"):
        files[column] = files[column].astype("int64")
    return files


def _reason_counts(reasons: Mapping[str, int]) -> str:
    return ", ".join(f"{reason}={int(reasons[reason])}" for reason in sorted(reasons))


def _concat(frames: list[pd.DataFrame], empty: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else empty


def _empty_accepted() -> pd.DataFrame:
    accepted = pd.DataFrame({c: pd.Series(dtype=object) for c in RAW_COLUMNS})
    accepted["source_row"] = accepted["source_row"].astype("int64")
    accepted["created_at"] = accepted["created_at"].astype("datetime64[us]")
    return accepted


def _empty_rejected() -> pd.DataFrame:
    rejected = pd.DataFrame({c: pd.Series(dtype=object) for c in REJECTED_COLUMNS})
    rejected["source_row"] = rejected["source_row"].astype("int64")
    return rejected


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
