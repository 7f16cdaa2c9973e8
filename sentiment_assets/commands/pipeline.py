"""`sentiment pipeline`: build months in this process, then show their evaluations."""

from __future__ import annotations

import argparse

from sentiment_assets.commands.progress import quiet_console
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.ops.build import backup_before_build, build_months, months_with_data
from sentiment_assets.ops.instance import prepare_environment


def print_evaluations(settings: Settings) -> None:
    with connect(settings.warehouse, read_only=True) as con:
        table = con.execute(
            "SELECT model_family, trained_through, eval_month, eval_set, n, "
            "round(accuracy, 4) AS accuracy, round(macro_f1, 4) AS macro_f1 "
            "FROM metrics.model_evaluations ORDER BY eval_month, model_family, eval_set"
        ).df()
    print(
        "\nmetrics.model_evaluations (forward chaining: trained through M, scored on M+1; "
        "'estimated' = expected before labels)"
    )
    print(table.to_string(index=False) if len(table) else "(no rows)")


def command_pipeline(args: argparse.Namespace) -> int:
    settings = prepare_environment()
    months = args.month or months_with_data(settings)
    with quiet_console(settings.home, months, settings.source) as progress:
        backup_before_build(settings)
        build_months(months, args.select, progress.stage)
    print_evaluations(settings)
    return 0
