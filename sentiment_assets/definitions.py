"""The code location: everything under defs/ is discovered and loaded."""

from pathlib import Path

import dagster as dg

from sentiment_assets.partitions import load_months


@dg.definitions
def defs() -> dg.Definitions:
    # The months are read at each load (the sources and landing files may have new ones);
    # every defs module builds its monthly assets on them.
    load_months()
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
