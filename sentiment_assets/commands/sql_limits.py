"""`sentiment sql`'s bounds and their argument types, apart from the command so that the CLI
parses them without importing what the command needs (the settings, DuckDB)."""

from __future__ import annotations

import argparse
import re

DEFAULT_TIMEOUT_S = 60.0
# DuckDB's own default is 80% of RAM: one careless join could starve a running pipeline.
DEFAULT_MEMORY_LIMIT = "2GB"
MEMORY_SIZE = re.compile(r"\d+(\.\d+)?\s*([KMGT]i?B|B)", re.IGNORECASE)


def seconds(value: str) -> float:
    """argparse type: a number of seconds, 0 or more."""
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number >= 0:  # also NaN
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds (0 or more)")
    return number


def memory_size(value: str) -> str:
    """argparse type: a DuckDB memory size such as 2GB or 512MiB."""
    if not MEMORY_SIZE.fullmatch(value.strip()):
        raise argparse.ArgumentTypeError(f"{value!r} is not a size such as 2GB or 512MiB")
    return value.strip()
