from datetime import UTC, datetime

import duckdb
import pandas as pd

from sentiment_assets.lib.core.clock import utc_now


def test_utc_now_is_naive_utc_and_stored_unshifted():
    before = datetime.now(UTC).replace(tzinfo=None)
    now = utc_now()
    after = datetime.now(UTC).replace(tzinfo=None)
    assert now.tzinfo is None
    assert pd.Timestamp(before) <= now <= pd.Timestamp(after)
    con = duckdb.connect()
    con.execute("CREATE TABLE t (created_at TIMESTAMP)")
    con.register("rows", pd.DataFrame({"created_at": [now]}))
    con.execute("INSERT INTO t SELECT * FROM rows")
    assert con.execute("SELECT created_at FROM t").fetchone()[0] == now.to_pydatetime()
