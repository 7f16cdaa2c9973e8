"""Where each row of a file goes: per-file summaries (cached, for listing months), the rows
of one month, and the accounting that keeps rows in == accepted + rejected per file."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sentiment_assets.lib.data.landing import file_fingerprint
from sentiment_assets.lib.data.sources.discovery import _required, source_files
from sentiment_assets.lib.data.sources.formats import _file_records, _synthetic_records
from sentiment_assets.lib.data.sources.records import (
    FILE_COLUMNS,
    RAW_COLUMNS,
    REJECTED_COLUMNS,
    STRUCTURAL_REASONS,
    SYNTHETIC_SOURCE,
    SourceFileError,
    _empty_files,
)
from sentiment_assets.lib.data.sources.validation import _raw_record, _validate
from sentiment_assets.lib.data.synthetic import SyntheticConfig


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
