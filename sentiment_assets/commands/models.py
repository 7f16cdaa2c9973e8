"""The model commands: `predict`, `champion`, `rollback` and `prune-cache`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from sentiment_assets.environment import current_settings
from sentiment_assets.lib.core.months import iso_or_empty
from sentiment_assets.lib.data.batch_io import (
    InputFileError,
    label_scores,
    read_text_stream,
    read_texts,
    with_predictions,
    write_predictions,
)
from sentiment_assets.lib.store.warehouse import connect, ensure_schema
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.cache_pruning import prune_caches, prune_caches_safely
from sentiment_assets.lib.versions.promotion import (
    ROLLBACK,
    PromotionRecord,
    previous_champion,
    record_champion_change,
)
from sentiment_assets.lib.versions.serving import (
    NoChampionError,
    champion_info,
    load_champion,
    serving_runtime,
)

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
    if argument == "-":
        return read_text_stream(sys.stdin.read())
    if Path(argument).exists() or looks_like_path(argument):
        return read_texts(Path(argument).expanduser())
    if not argument.strip():
        raise InputFileError("the text is empty")
    return pd.DataFrame({"text": [argument]})


def command_predict(args: argparse.Namespace) -> int:
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
        trained_through=info.trained_through,
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
        f"({info.family}, trained through {iso_or_empty(info.trained_through)})"
    )
    if pruned is not None:
        print(pruned.summary(), file=sys.stderr)
    return 0


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def command_prune_cache(args: argparse.Namespace) -> int:
    """Prune registry_cache/ and onnx_cache/ to champion + previous + newest N versions."""
    settings = current_settings()
    # Read-only: the warehouse is only read (metrics.promotions), and a running pipeline
    # may hold it for writing.
    with connect(settings.warehouse, read_only=True) as con:
        pruned = prune_caches(settings, MlflowClient(settings.mlflow_tracking_uri), con)
    print(pruned.summary())
    return 0


def command_champion(args: argparse.Namespace) -> int:
    try:
        info = champion_info(current_settings())
    except NoChampionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    trained_through = iso_or_empty(info.trained_through)
    print(f"version {info.version} ({info.family}, trained through {trained_through})")
    return 0
