"""The shapes every reader shares: contract columns, the error a file raises, the summary of an
ingest, dates and labels as tweets write them, and the columns of records before validation."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

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
