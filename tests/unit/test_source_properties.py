"""Property tests of the file readers: whatever a file holds, every row is accounted for.

Any bytes under any supported extension either give, month by month, results in which rows in
= rows accepted + rows rejected, or fail as one SourceFileError naming the file; no other
exception escapes. Files made of N records (CSV rows, JSON lines) with arbitrary cells
account for exactly N rows over their months.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentiment_assets.lib.data.sources import SourceFileError, load_month, months_in_source

WINDOW = {"earliest": date(2024, 1, 1), "latest": date(2024, 12, 1)}
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Cells as people's files hold them: any text (quotes, commas, newlines, odd characters).
CELL = st.text(max_size=40)
DATE = st.one_of(
    st.dates(date(2024, 1, 1), date(2024, 12, 31)).map(lambda d: f"{d} 10:00:00"),
    CELL,
)
LABEL = st.one_of(st.sampled_from(["positive", "negative", "0", "4", ""]), CELL)


@contextmanager
def written(name: str, content: bytes) -> Iterator[Path]:
    # A folder per example: file summaries are cached by path, size and mtime.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        yield path


def accounted_rows(path: Path) -> int | None:
    """The file's rows over every month it holds, each month's accounting checked; None for
    a file rejected as a whole (then named in the error)."""
    try:
        months = months_in_source(str(path), **WINDOW)
    except SourceFileError as error:
        assert list(error.problems) == [str(path)]
        return None
    total = 0
    for month in months:
        result = load_month(str(path), month, **WINDOW)
        assert result.rows_in == len(result.accepted) + len(result.rejected)
        assert set(result.files["file"]) == {str(path)}
        total += result.rows_in
    return total


@PROPERTY
@given(
    content=st.binary(max_size=600),
    name=st.sampled_from(["any.csv", "any.jsonl", "any.parquet"]),
)
def test_any_bytes_are_accounted_for_or_the_file_is_named(content: bytes, name: str) -> None:
    with written(name, content) as path:
        accounted_rows(path)


@PROPERTY
@given(records=st.lists(st.tuples(CELL, DATE, LABEL), min_size=1, max_size=25))
def test_every_csv_record_is_one_row(records: list[tuple[str, str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "created_at", "label"])
    writer.writerows(records)
    with written("rows.csv", buffer.getvalue().encode("utf-8", "surrogatepass")) as path:
        assert accounted_rows(path) in (None, len(records))


@PROPERTY
@given(
    objects=st.lists(
        st.dictionaries(
            st.sampled_from(["text", "created_at", "label", "id", "user", "other"]),
            st.one_of(CELL, DATE, st.integers(), st.none(), st.lists(CELL, max_size=2)),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_every_json_line_is_one_row(objects: list[dict]) -> None:
    content = "".join(json.dumps(obj) + "\n" for obj in objects).encode()
    with written("rows.jsonl", content) as path:
        assert accounted_rows(path) in (None, len(objects))
