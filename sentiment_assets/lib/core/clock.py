"""The one clock the warehouse's timestamps are read from."""

from __future__ import annotations

import pandas as pd


def utc_now() -> pd.Timestamp:
    """Now in UTC without a time zone: the warehouse's TIMESTAMP columns (created_at,
    ingested_at) hold naive UTC, and a zone-aware value would be shifted on insert."""
    return pd.Timestamp.now(tz="UTC").tz_localize(None)
