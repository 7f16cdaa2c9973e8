"""`sentiment`: the command line for building, serving and using the platform."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sentiment_assets.environment import current_settings
from sentiment_assets.lib.settings import Settings
from sentiment_assets.prod import add_command as add_prod_command
from sentiment_assets.sql_command import add_command as add_sql_command

if TYPE_CHECKING:
    import pandas as pd


def print_evaluations(settings: Settings) -> None:
    from sentiment_assets.lib.store.warehouse import connect

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
    from sentiment_assets.build import build_months, prepare_environment

    settings = prepare_environment()
    print(f"SENTIMENT_HOME={settings.home}\nsource: {settings.source}", flush=True)
    build_months(args.month, args.select)
    print_evaluations(settings)
    return 0


# An argument without spaces ending like a data file, or starting like a path, names a file
# even when it is missing: `predict foo.csv` must say so, not score the words "foo.csv".
PATH_SUFFIXES = {".csv", ".jsonl", ".ndjson", ".json", ".parquet", ".tsv", ".txt"}
PATH_STARTS = ("/", "./", "../", "~")


def looks_like_path(argument: str) -> bool:
    if any(character.isspace() for character in argument):
        return False
    return Path(argument).suffix.lower() in PATH_SUFFIXES or argument.startswith(PATH_STARTS)


def predict_inputs(argument: str) -> pd.DataFrame:
    """The rows to score: `-` reads stdin, an existing or path-like argument a file, anything
    else is the text itself. Raises InputFileError for input the user must fix."""
    import pandas as pd

    from sentiment_assets.lib.data.batch_io import InputFileError, read_text_stream, read_texts

    if argument == "-":
        return read_text_stream(sys.stdin.read())
    if Path(argument).exists() or looks_like_path(argument):
        return read_texts(Path(argument).expanduser())
    if not argument.strip():
        raise InputFileError("the text is empty")
    return pd.DataFrame({"text": [argument]})


def command_predict(args: argparse.Namespace) -> int:
    from sentiment_assets.lib.data.batch_io import (
        InputFileError,
        label_scores,
        with_predictions,
        write_predictions,
    )
    from sentiment_assets.lib.versions.serving import (
        NoChampionError,
        load_champion,
        serving_runtime,
    )

    settings = current_settings()
    try:
        frame = predict_inputs(args.input)
        runtime = serving_runtime(
            settings,
            args.encoder_runtime,
            on_fallback=lambda why: print(f"note: encoder on torch: {why}", file=sys.stderr),
        )
        champion = load_champion(settings, runtime)
    except (InputFileError, NoChampionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    texts = frame["text"].tolist()
    scores = []
    for start in range(0, len(texts), args.batch_size):
        scores.extend(champion.predictor.predict_proba(texts[start : start + args.batch_size]))
    predictions = label_scores(scores)
    predictions["model_version"] = champion.info.version
    output = with_predictions(frame, predictions)
    text = write_predictions(output, Path(args.out) if args.out else None, args.format)
    if text is not None:
        sys.stdout.write(text)
    else:
        print(
            f"{len(output)} predictions by version {champion.info.version} -> {args.out}",
            file=sys.stderr,
        )
    return 0


def command_rollback(args: argparse.Namespace) -> int:
    """Move the champion alias to an earlier version (default: the previous champion)."""
    from mlflow.tracking import MlflowClient

    from sentiment_assets.lib.store.warehouse import connect, ensure_schema
    from sentiment_assets.lib.versions import registry
    from sentiment_assets.lib.versions.cache_pruning import prune_caches_safely
    from sentiment_assets.lib.versions.promotion import (
        ROLLBACK,
        PromotionRecord,
        previous_champion,
        record_champion_change,
    )

    settings = current_settings()
    client = MlflowClient(settings.mlflow_tracking_uri)
    current = registry.champion(client)
    current_version = current.version if current else None
    target = args.to
    if target is None:
        with connect(settings.warehouse, read_only=True) as con:
            target = previous_champion(con, current_version)
        if target is None:
            print("error: no earlier champion to roll back to", file=sys.stderr)
            return 2
    info = registry.version_info(client, str(target))
    record = PromotionRecord(
        model_version=info.version,
        model_family=info.family,
        trained_through=info.trained_month,
        decision=ROLLBACK,
        reason=f"manual rollback from {current_version or 'none'}",
        champion_version=current_version,
    )
    with connect(settings.warehouse) as con:
        ensure_schema(con)
        record_champion_change(record, client, con, settings.published_dir)
        # The rollback is done whatever pruning does: it only warns.
        pruned = prune_caches_safely(settings, client, con, _warn)
    print(
        f"champion: version {current_version or 'none'} -> {info.version} "
        f"({info.family}, trained through {info.trained_through})"
    )
    if pruned is not None:
        print(pruned.summary(), file=sys.stderr)
    return 0


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def command_prune_cache(args: argparse.Namespace) -> int:
    """Prune registry_cache/ and onnx_cache/ to champion + previous + newest N versions."""
    from mlflow.tracking import MlflowClient

    from sentiment_assets.lib.store.warehouse import connect
    from sentiment_assets.lib.versions.cache_pruning import prune_caches

    settings = current_settings()
    # Read-only: the warehouse is only read (metrics.promotions), and a running pipeline
    # may hold it for writing.
    with connect(settings.warehouse, read_only=True) as con:
        pruned = prune_caches(settings, MlflowClient(settings.mlflow_tracking_uri), con)
    print(pruned.summary())
    return 0


def command_champion(args: argparse.Namespace) -> int:
    from sentiment_assets.lib.versions.serving import NoChampionError, champion_info

    try:
        info = champion_info(current_settings())
    except NoChampionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"version {info.version} ({info.family}, trained through {info.trained_through})")
    return 0


def command_drift_demo(args: argparse.Namespace) -> int:
    from sentiment_assets.drift_demo import main as drift_demo_main

    return drift_demo_main()


def command_prepare(args: argparse.Namespace) -> int:
    from sentiment_assets.build import prepare_environment

    settings = prepare_environment()
    print(settings.dagster_home)
    return 0


def command_serve(args: argparse.Namespace) -> int:
    """The Dagster UI (webserver + daemon), the MLflow UI and the app until Ctrl-C."""
    import time

    started = time.monotonic()  # the times printed count from here, setup included
    from sentiment_assets.build import prepare_environment
    from sentiment_assets.serve import serve, with_port

    if args.mlflow_port is not None:
        # Before the settings are resolved and exported: the children link to this URL.
        os.environ["MLFLOW_UI_URL"] = with_port(current_settings().mlflow_ui_url, args.mlflow_port)
    settings = prepare_environment()
    log_dir = Path(args.log_dir) if args.log_dir else None
    return serve(settings, args.host, args.dagster_port, args.app_port, log_dir, started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sentiment", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    pipeline = commands.add_parser("pipeline", help="build every month (or --month ones) in order")
    pipeline.add_argument("--month", action="append", help="partition key YYYY-MM-01 (repeatable)")
    pipeline.add_argument(
        "--select",
        type=lambda value: [k.strip() for k in value.split(",") if k.strip()],
        help="comma-separated asset keys, e.g. raw_tweets,stg_tweets (default: all)",
    )
    pipeline.set_defaults(handler=command_pipeline)

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
    predict.set_defaults(handler=command_predict)

    rollback = commands.add_parser("rollback", help="move the champion alias to an earlier version")
    rollback.add_argument("--to", help="registry version (default: the previous champion)")
    rollback.set_defaults(handler=command_rollback)

    prune = commands.add_parser(
        "prune-cache",
        help="drop cached bundles and ONNX graphs of all but the champion, the previous "
        "champion and the newest SENTIMENT_CACHE_KEEP_VERSIONS versions",
    )
    prune.set_defaults(handler=command_prune_cache)

    show = commands.add_parser("champion", help="print the current champion")
    show.set_defaults(handler=command_champion)

    demo = commands.add_parser("drift-demo", help="the drift -> retrain loop, self-checking")
    demo.set_defaults(handler=command_drift_demo)

    prepare = commands.add_parser("prepare", help="create SENTIMENT_HOME and DAGSTER_HOME")
    prepare.set_defaults(handler=command_prepare)

    serve = commands.add_parser(
        "serve",
        help="the Dagster UI and daemon, the MLflow UI (on MLFLOW_UI_URL's port) and the app; "
        "each URL is printed once it answers, Ctrl-C stops all",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--dagster-port", type=int, default=3000)
    serve.add_argument("--app-port", type=int, default=7860)
    serve.add_argument(
        "--mlflow-port",
        type=int,
        help="serve the MLflow UI on this port (default: MLFLOW_UI_URL's, 5000); "
        "Dagster's MLflow links follow",
    )
    serve.add_argument("--log-dir", help="write each service's output to DIR/<service>.log")
    serve.set_defaults(handler=command_serve)

    add_sql_command(commands)
    add_prod_command(commands)

    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
