"""`sentiment`: the command line for building, serving and using the platform."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sentiment_assets.lib.settings import REPO_ROOT, Settings, export_environment, load_settings

if TYPE_CHECKING:
    import dagster as dg


def prepare_environment() -> Settings:
    """Resolve the settings once and hand the same absolute paths to every child process."""
    settings = load_settings()
    os.environ.update(export_environment(settings))
    for folder in (
        settings.home,
        settings.dagster_home,
        settings.landing_dir,
        settings.published_dir,
    ):
        folder.mkdir(parents=True, exist_ok=True)
    # dagster.yaml is read only from DAGSTER_HOME: the repo keeps the template.
    shutil.copyfile(REPO_ROOT / "dagster.yaml", settings.dagster_home / "dagster.yaml")
    return settings


def build_months(
    months: Sequence[str] | None = None, selection: str | None = None
) -> list[dg.ExecuteInProcessResult]:
    """Materialize every asset (or `selection`) for each month in order: a sequential backfill.

    Months run oldest first because a month's model reads the months before it and its
    evaluation needs the previous month's model. Runs are recorded in the instance under
    DAGSTER_HOME, so they show up in the Dagster UI afterwards.
    """
    import dagster as dg

    from sentiment_assets.definitions import defs
    from sentiment_assets.partitions import monthly_partitions

    definitions = defs()
    assets = list(definitions.assets or [])
    partition_keys = list(months) if months else monthly_partitions.get_partition_keys()
    instance = dg.DagsterInstance.get()
    results = []
    for key in partition_keys:
        print(f"== building {key}", flush=True)
        result = dg.materialize(
            assets,
            partition_key=key,
            instance=instance,
            resources=definitions.resources,
            selection=selection,
            raise_on_error=False,
        )
        if not result.success:
            raise SystemExit(f"the build of {key} failed (run {result.run_id})")
        results.append(result)
    return results


def print_evaluations(settings: Settings) -> None:
    from sentiment_assets.lib.warehouse import connect

    with connect(settings.duckdb_path, read_only=True) as con:
        table = con.execute(
            "SELECT model_family, trained_through, eval_month, n, round(accuracy, 4) AS accuracy, "
            "round(macro_f1, 4) AS macro_f1 FROM metrics.model_evaluations "
            "ORDER BY eval_month, model_family"
        ).df()
    print("\nmetrics.model_evaluations (forward chaining: trained through M, scored on M+1)")
    print(table.to_string(index=False) if len(table) else "(no rows)")


def command_pipeline(args: argparse.Namespace) -> int:
    settings = prepare_environment()
    print(f"SENTIMENT_HOME={settings.home}\nsource: {settings.source}", flush=True)
    build_months(args.month, args.select)
    print_evaluations(settings)
    return 0


def command_prepare(args: argparse.Namespace) -> int:
    settings = prepare_environment()
    print(settings.dagster_home)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sentiment", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    pipeline = commands.add_parser("pipeline", help="build every month (or --month ones) in order")
    pipeline.add_argument("--month", action="append", help="partition key YYYY-MM-01 (repeatable)")
    pipeline.add_argument("--select", help="asset selection, e.g. 'raw_tweets+' (default: all)")
    pipeline.set_defaults(handler=command_pipeline)

    prepare = commands.add_parser("prepare", help="create SENTIMENT_HOME and DAGSTER_HOME")
    prepare.set_defaults(handler=command_prepare)

    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
