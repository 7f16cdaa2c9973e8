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
import glob
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from sentiment_assets.lib.core.atomic import write_text
from sentiment_assets.lib.data import synthetic as syn
from sentiment_assets.lib.data.sources.accounting import (
    _SUMMARIES,
    _concat,
    _empty_accepted,
    _empty_rejected,
    _files_frame,
    _scan_source,
    _Window,
)
from sentiment_assets.lib.data.sources.discovery import _month, _required, source_files
from sentiment_assets.lib.data.sources.formats import _file_records
from sentiment_assets.lib.data.sources.records import (
    DEFAULT_CHUNK_ROWS,
    FILE_COLUMNS,
    RAW_COLUMNS,
    REJECTED_COLUMNS,
    SUPPORTED_EXTENSIONS,
    SYNTHETIC_SOURCE,
    IngestResult,
    SourceFileError,
    normalise_label,
    parse_created_at,
)
from sentiment_assets.lib.data.sources.validation import _validate
from sentiment_assets.lib.data.synthetic import SyntheticConfig
from sentiment_assets.lib.store.warehouse import WarehouseConnection

# The readers' public API; the modules of this package hold the parts.
__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "FILE_COLUMNS",
    "RAW_COLUMNS",
    "REJECTED_COLUMNS",
    "SUPPORTED_EXTENSIONS",
    "SYNTHETIC_SOURCE",
    "IngestResult",
    "SourceFileError",
    "StagedMonth",
    "clear_cache",
    "file_months_remembered",
    "labelled_texts",
    "load_month",
    "months_in_source",
    "normalise_label",
    "parse_created_at",
    "source_files",
    "stage_month",
    "write_staged_months",
]


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
