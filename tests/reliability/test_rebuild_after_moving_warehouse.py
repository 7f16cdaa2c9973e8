"""The obvious repair of a damaged warehouse, moving it aside and rebuilding, loses nothing:
the published history never shrinks, the new warehouse starts from the published history
instead of from nothing, and no registry version is deleted for lacking a training row in it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.reliability.conftest import (
    BUILD_TIMEOUT_S,
    JANUARY,
    champion,
    copy_home,
    published_rows,
    succeeds,
    versions,
)

pytestmark = [pytest.mark.reliability, pytest.mark.slow]


def test_moving_the_warehouse_aside_and_rebuilding_keeps_history_and_versions(
    january_home: Path, tmp_path: Path, record_property
) -> None:
    home = copy_home(january_home, tmp_path / "home")
    # More history than one month's build makes: an operator's rollback and its undo.
    first = champion(home)
    succeeds(home, "rollback", "--to", next(v for v in versions(home) if v != first))
    succeeds(home, "rollback", "--to", first)
    published_before, registered = published_rows(home), versions(home)
    (home / "warehouse.duckdb").rename(tmp_path / "warehouse-aside.duckdb")

    output = succeeds(home, "pipeline", "--month", JANUARY, timeout=BUILD_TIMEOUT_S)
    output += succeeds(home, "prepare")  # the next start judges the registry against it

    published_after = published_rows(home)
    record_property("measured", f"published rows {published_before} -> {published_after}")
    for table, rows in published_before.items():
        assert published_after[table] >= rows, (table, output[-3000:])
    assert set(registered) <= set(versions(home)), "no healthy version deleted"
    assert "] removed (" not in output, "recovery deleted versions"
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        recorded = con.execute("SELECT count(*) FROM metrics.promotions").fetchone()[0]
    # January's rebuild keeps its champion (the month is in its training window), so the
    # rows come from the published history alone: none of them is lost.
    assert recorded >= published_before["promotions"] > 0, "the old history is in the warehouse"
