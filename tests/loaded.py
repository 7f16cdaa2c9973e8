"""The definitions as a process loads them now: monthly assets and checks whose partitions and
pools follow the current settings (sentiment_assets/partitions.py)."""

import dagster as dg

from sentiment_assets.definitions import defs


def asset(key: str) -> dg.AssetsDefinition:
    return defs().get_assets_def(key)


def asset_check(asset_key: str, name: str) -> dg.AssetChecksDefinition:
    return defs().get_asset_checks_def(dg.AssetCheckKey(dg.AssetKey(asset_key), name))
