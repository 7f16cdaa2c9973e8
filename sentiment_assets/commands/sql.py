"""`sentiment sql`: query the metric history from the published snapshot."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys

import pandas as pd

from sentiment_assets.environment import current_settings
from sentiment_assets.lib.versions.publish import HistoryError, query_history


def command_sql(args: argparse.Namespace) -> int:
    """Query the metric history from the published snapshot, never the live warehouse: the
    pipeline holds that file read-write and DuckDB would refuse (or block) a second process."""
    try:
        result = query_history(current_settings().published_dir, args.query)
    except HistoryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    elif args.format == "json":

        def plain(value: object) -> object:
            if isinstance(value, float) and math.isnan(value):
                return None  # NaN is not JSON
            return value

        def text(value: object) -> str:  # dates and timestamps as ISO 8601, the rest as str()
            isoformat = getattr(value, "isoformat", None)
            return isoformat() if callable(isoformat) else str(value)

        records = [
            {column: plain(value) for column, value in zip(result.columns, row, strict=True)}
            for row in result.rows
        ]
        print(json.dumps(records, indent=2, default=text))
    elif result.rows:
        print(pd.DataFrame(result.rows, columns=result.columns).to_string(index=False))
    else:
        print("(no rows)")
    return 0
