"""`sentiment`: the command line for building, serving and using the platform.

This module only parses the arguments; each subcommand lives in sentiment_assets/commands/.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence

from sentiment_assets.commands.sql_limits import (
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_TIMEOUT_S,
    memory_size,
    seconds,
)
from sentiment_assets.lib.core.ports import DEFAULT_PORTS


def handler(name: str) -> Callable[[argparse.Namespace], int]:
    """The subcommand's function, "module:function" under sentiment_assets.commands.

    Imported only once chosen: the command modules import at their top what they use, and
    all of them together (torch, MLflow, Dagster, the definitions) took 34 s against 0.4 s
    for this module alone (2 busy cores, measured), which `sentiment --help` or a mistyped
    flag should not pay, nor one command for the others' imports.
    """
    module, function = name.split(":")
    return getattr(importlib.import_module(f"sentiment_assets.commands.{module}"), function)


DESCRIPTION = "The command line for building, serving and using the platform."


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sentiment", description=DESCRIPTION)
    parser.add_argument(
        "--verbose", action="store_true", help="show the traceback of an error, not one line"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_build_parsers(commands)
    add_model_parsers(commands)
    add_serve_parsers(commands)
    add_store_parsers(commands)
    add_prod_parser(commands)
    args = parser.parse_args(argv)
    if not args.verbose:
        # Dagster marks APIs it may still change as beta at every import; an operator can do
        # nothing about it, and the lines bury the command's own output.
        warnings.filterwarnings("ignore", message=r".* is currently in beta")
    return run_handler(args)


def run_handler(args: argparse.Namespace) -> int:
    """Run the command; a damaged or busy store ends it with one line (the traceback only
    with --verbose)."""
    from sentiment_assets.environment import current_settings
    from sentiment_assets.lib.store.damage import StoreBusy, damage_in

    try:
        return handler(args.handler)(args)
    except StoreBusy as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        damage = damage_in(error, current_settings())
        if damage is None:
            raise
        if args.verbose:
            traceback.print_exc()
        print(f"error: {damage}", file=sys.stderr)
        return 2


def add_build_parsers(commands: argparse._SubParsersAction) -> None:
    """`pipeline`, `prepare` and `drift-demo`."""
    pipeline = commands.add_parser("pipeline", help="build every month (or --month ones) in order")
    pipeline.add_argument("--month", action="append", help="partition key YYYY-MM-01 (repeatable)")
    pipeline.add_argument(
        "--select",
        type=lambda value: [k.strip() for k in value.split(",") if k.strip()],
        help="comma-separated asset keys, e.g. raw_tweets,stg_tweets (default: all)",
    )
    pipeline.set_defaults(handler="pipeline:command_pipeline")

    prepare = commands.add_parser("prepare", help="create SENTIMENT_HOME and DAGSTER_HOME")
    prepare.set_defaults(handler="prepare:command_prepare")

    demo = commands.add_parser("drift-demo", help="the drift -> retrain loop, self-checking")
    demo.set_defaults(handler="drift_demo:command_drift_demo")


def add_model_parsers(commands: argparse._SubParsersAction) -> None:
    """`predict`, `rollback`, `prune-cache` and `champion`."""
    predict = commands.add_parser(
        "predict", help="score a text, a CSV/JSONL file's `text` column, or stdin (-)"
    )
    predict.add_argument(
        "input",
        metavar="TEXT|FILE|-",
        help="a text to score, a .csv/.jsonl file, or - for stdin (one text per line, or "
        "CSV/JSONL); the output keeps every input column (one named like an added one as "
        "NAME_input) and adds label, score, model_version",
    )
    predict.add_argument("--out", help="write here (.csv or .jsonl) instead of stdout")
    predict.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    predict.add_argument("--batch-size", type=int, default=512)
    predict.add_argument(
        "--encoder-runtime",
        choices=["auto", "onnx", "torch"],
        default="auto",
        help="transformer models: auto = ONNX Runtime on the CPU (faster, same scores), else torch",
    )
    predict.set_defaults(handler="models:command_predict")

    rollback = commands.add_parser("rollback", help="move the champion alias to an earlier version")
    rollback.add_argument("--to", help="registry version (default: the previous champion)")
    rollback.set_defaults(handler="models:command_rollback")

    prune = commands.add_parser(
        "prune-cache",
        help="drop cached bundles and ONNX graphs of all but the champion, the previous "
        "champion and the newest SENTIMENT_CACHE_KEEP_VERSIONS versions",
    )
    prune.set_defaults(handler="models:command_prune_cache")

    show = commands.add_parser("champion", help="print the current champion")
    show.set_defaults(handler="models:command_champion")


def add_serve_parsers(commands: argparse._SubParsersAction) -> None:
    """`serve` and `sql`."""
    serve = commands.add_parser(
        "serve",
        help="the Dagster UI and daemon, the MLflow UI (on MLFLOW_UI_URL's port) and the app; "
        "each URL is printed once it answers, a service that dies is restarted, Ctrl-C stops all",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--dagster-port", type=int, default=DEFAULT_PORTS.dagster)
    serve.add_argument("--app-port", type=int, default=DEFAULT_PORTS.app)
    serve.add_argument(
        "--mlflow-port",
        type=int,
        help=f"serve the MLflow UI on this port (default: MLFLOW_UI_URL's, {DEFAULT_PORTS.mlflow}); "
        "Dagster's MLflow links follow",
    )
    serve.add_argument(
        "--log-dir",
        help="write each service's output to DIR/<service>.log (default: SENTIMENT_HOME/logs)",
    )
    serve.set_defaults(handler="serve:command_serve")

    sql = commands.add_parser(
        "sql",
        help="query the published snapshot: metrics.*, raw.ingested_files, "
        "raw.rejected_tweets, clean.tweets_dropped (safe while the pipeline runs)",
    )
    sql.add_argument("query", nargs="?", help='e.g. "SELECT * FROM metrics.model_evaluations"')
    sql.add_argument("--tables", action="store_true", help="list the tables and their rows")
    sql.add_argument("--describe", metavar="TABLE", help="list a table's columns and types")
    sql.add_argument("--format", choices=["table", "csv", "json"], default="table")
    sql.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT_S,
        help=f"stop the query after this many seconds (default {DEFAULT_TIMEOUT_S:g}; 0: never)",
    )
    sql.add_argument(
        "--memory-limit",
        type=memory_size,
        default=DEFAULT_MEMORY_LIMIT,
        help=f"DuckDB's memory limit for the query (default {DEFAULT_MEMORY_LIMIT})",
    )
    sql.add_argument(
        "--multi",
        action="store_true",
        help="run every statement of QUERY in order and show the last one's result",
    )
    sql.set_defaults(handler="sql:command_sql")


def add_store_parsers(commands: argparse._SubParsersAction) -> None:
    """`doctor`, `backup`, `restore` and `publish`."""
    doctor = commands.add_parser(
        "doctor",
        help="check every store (warehouse, MLflow, the Dagster instance, the published "
        "snapshot, caches): ok or damaged, with the next step",
    )
    doctor.add_argument(
        "--repair",
        action="store_true",
        help="first remove what is rebuilt on demand and found damaged (cached ONNX graphs)",
    )
    doctor.set_defaults(handler="doctor:command_doctor")

    backup = commands.add_parser(
        "backup",
        help="copy the warehouse, mlflow.db, mlartifacts and published/ to "
        "SENTIMENT_HOME/backups/<time>",
    )
    backup.add_argument("--list", action="store_true", help="list the backups instead")
    backup.set_defaults(handler="backup:command_backup")

    restore = commands.add_parser(
        "restore", help="put a backup (default: the newest) back; the current files are kept aside"
    )
    restore.add_argument(
        "name", nargs="?", help="a backup's folder name (`sentiment backup --list`)"
    )
    restore.set_defaults(handler="backup:command_restore")

    publish = commands.add_parser(
        "publish", help="write the published snapshot (what the app reads) from the warehouse"
    )
    publish.add_argument(
        "--allow-shrink",
        action="store_true",
        help="replace a published table even with fewer rows (default: keep the longer one)",
    )
    publish.set_defaults(handler="publish:command_publish")


def add_prod_parser(commands: argparse._SubParsersAction) -> None:
    """`sentiment prod up|down|status|worker`; options left out take commands.prod.Options's
    defaults."""
    parser = commands.add_parser(
        "prod",
        help="start/stop the prod profile's services on this machine (PostgreSQL, Redis, "
        "MLflow server, Dagster webserver and daemon, Celery workers)",
    )
    parser.add_argument(
        "action",
        choices=["up", "down", "status", "worker", "supervise"],
        help="worker: become one Celery worker (--name) on the current environment's "
        "broker, as containers and other machines run them; supervise: what `up` starts "
        "to keep the Dagster webserver and daemon and the workers running",
    )
    parser.add_argument("--name", default="worker", help="worker name (Celery appends @<hostname>)")
    parser.add_argument(
        "--folder", help="where their state, logs and pids go ($SENTIMENT_HOME/prod)"
    )
    parser.add_argument("--workers", type=int, help="Celery workers (default 2)")
    parser.add_argument("--pg-port", type=int, help=f"(default {DEFAULT_PORTS.postgres})")
    parser.add_argument("--redis-port", type=int, help=f"(default {DEFAULT_PORTS.redis})")
    parser.add_argument("--mlflow-port", type=int, help=f"(default {DEFAULT_PORTS.mlflow})")
    parser.add_argument("--dagster-port", type=int, help=f"(default {DEFAULT_PORTS.dagster})")
    parser.add_argument(
        "--timeout", type=float, help="seconds to wait for each service (default 600)"
    )
    parser.set_defaults(handler="prod:command")


def run() -> None:
    """The `sentiment` command: main(), then the process ends without the interpreter's
    teardown. Every store is closed by then; the teardown would only let DuckDB's bindings
    print a screen of "leaked instance" lines after the command's own output."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    run()
