"""The lake warehouse: every table a folder of Parquet files, so writers never share a lock.

DuckDB admits one writing process per database file, which serialises every month of the
embedded profile. In the lake, a month-partitioned table keeps one file per month, replaced
atomically (written aside, then renamed), so two months are written at once without waiting
for each other, and readers never lock anything: a connection is an in-memory DuckDB whose
tables are views over the files present when it opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Lake:
    """A lake warehouse rooted at `root` (`<root>/<schema>/<table>/*.parquet`)."""

    root: Path

    def table_dir(self, table: str) -> Path:
        schema, _, name = table.partition(".")
        return self.root / schema / name
