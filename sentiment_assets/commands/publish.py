"""`sentiment publish`: write the published snapshot (what the app reads) again from the
warehouse; a table with fewer rows than its published file is kept unless --allow-shrink."""

from __future__ import annotations

import argparse

from sentiment_assets.environment import current_settings
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.lib.versions.publish import publish_history


def command_publish(args: argparse.Namespace) -> int:
    settings = current_settings()
    with connect(settings.warehouse, read_only=not settings.uses_lake) as con:
        counts = publish_history(con, settings.published_dir, allow_shrink=args.allow_shrink)
    print(", ".join(f"{name} {rows}" for name, rows in counts.items()))
    return 0
