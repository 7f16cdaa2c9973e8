"""`sentiment prepare`: create SENTIMENT_HOME and DAGSTER_HOME (healing them first)."""

from __future__ import annotations

import argparse

from sentiment_assets.ops.instance import prepare_environment


def command_prepare(args: argparse.Namespace) -> int:
    settings = prepare_environment()
    print(settings.dagster_home)
    return 0
