"""Serving benchmark: the app's prediction path per model family, its HTTP API, and a
Hugging Face `pipeline` over the same fine-tuned model as a peer.

    python -m bench.bench_serving --out bench/results/serving.json

What it builds: one small model per family on seeded synthetic tweets (TF-IDF + logistic
regression, MiniLM embeddings + logistic regression, and a briefly fine-tuned MiniLM), saved
as the pipeline saves them and registered in a throwaway MLflow registry, so every number
goes through the app's real loading path (`registry_holder`: download, load, warm up).

What it measures, after a warm-up, for each thread count in --threads (torch's intra-op
threads, and the ONNX Runtime session's, with the batch workers the app takes at that count:
SENTIMENT_APP_BATCH_WORKERS=auto, cores // threads; the contenders take turns call by call,
so load from other processes hits them alike):

- **function**: `ModelHolder.predict([tweet])` per family, one distinct tweet per call, as
  the app serves them (on the CPU the transformers run on ONNX Runtime), plus the embedding
  version with the torch encoder (`embedding_logreg+torch_encoder`):
  p50/p90/p99 wall milliseconds, and the process CPU milliseconds per call (less sensitive to
  a busy machine than wall time). Batch throughput: the texts in chunks of 256, as the batch
  tab scores them, tweets per second (best of --repeats).
- **http**: the app on a local port, champion = embedding family, through gradio_client:
  single-tweet round trip p50/p99 and a CSV upload → scored CSV download (rows per second);
  and the same single tweets through the plain JSON endpoint (POST /api/predict, httpx).
  Client and server share the machine, as on a laptop demo.
- **hf_pipeline**: `transformers.pipeline("text-classification")` over the fine-tuned
  model's own weights and tokenizer (wrapped in a PreTrainedModel whose forward is the
  platform's network), on the same cleaned texts, batch size 64, against the platform's
  serving path through the holder. The report checks both give the same
  probabilities (max absolute difference) before comparing their speed.

Wall times depend on what else runs: the 1-minute load average before and after is recorded.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.machine import describe, load_average_1m
from sentiment_assets.lib.data.sampling import holdout_mask
from sentiment_assets.lib.data.synthetic import labelled_sample
from sentiment_assets.lib.data.text import clean_text
from sentiment_assets.lib.models.families import family_names
from sentiment_assets.lib.models.model_bundle import ModelCard, data_fingerprint, save_bundle
from sentiment_assets.lib.models.params import LogRegParams
from sentiment_assets.lib.models.training import (
    EMBEDDING_LOGREG,
    FINETUNED_TRANSFORMER,
    TFIDF_LOGREG,
    fit_embedding_logreg,
    fit_finetuned_transformer,
    fit_tfidf_logreg,
)
from sentiment_assets.lib.settings import Settings, load_settings
from sentiment_assets.lib.versions import registry

FAMILIES = tuple(family_names())

MONTH = date(2024, 1, 1)
BATCH_CHUNK = 256
TARGET_P50_MS = 10.0
HF_PEER = "hf_pipeline"
TORCH_FP32 = f"{EMBEDDING_LOGREG}+torch_fp32"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    parser.add_argument(
        "--threads",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[1, 2],
        help="intra-op thread counts to measure, comma-separated (default 1,2)",
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--train-tweets", type=int, default=3000)
    parser.add_argument("--single", type=int, default=300, help="single-tweet calls per path")
    parser.add_argument("--http-single", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000, help="texts per throughput pass")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--finetune-steps", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--precision",
        default="auto",
        help="the pipeline's encoder precision the embedding version is trained (and served) "
        "at: auto (int8 where the gate passes it), fp32 (what real tweets get), int8",
    )
    parser.add_argument("--skip-http", action="store_true")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------- the models
def register(settings: Settings, bundle: Path, card: ModelCard) -> registry.VersionInfo:
    import mlflow
    from mlflow.tracking import MlflowClient

    experiment_id = registry.configure(settings.mlflow_tracking_uri, settings.mlflow_artifacts_dir)
    with mlflow.start_run(experiment_id=experiment_id, run_name=card.version) as run:
        return registry.register_bundle(
            MlflowClient(settings.mlflow_tracking_uri),
            run.info.run_id,
            run.info.artifact_uri,
            bundle,
            card,
        )


def build_models(
    settings: Settings, frame: pd.DataFrame, args: argparse.Namespace
) -> dict[str, registry.VersionInfo]:
    """One version per family, the embedding one on the vectors the pipeline computes
    (`pipeline_encoder`: on the CPU the gated int8 graph, else fp32), plus TORCH_FP32: the
    embedding family on torch fp32 vectors, served by torch, the path before ONNX."""
    from sentiment_assets.lib.encoding.encoder import TextEncoder
    from sentiment_assets.lib.encoding.encoder_choice import pipeline_encoder
    from sentiment_assets.lib.models.params import FinetuneParams

    texts = frame["text"].tolist()
    labels = frame["label"].to_numpy(dtype=int)
    ids = frame["tweet_id"].tolist()
    holdout = holdout_mask(ids, 0.1)
    params = LogRegParams(seed=args.seed)
    encoder = TextEncoder(device=args.device)
    pipeline = pipeline_encoder(
        encoder.name, args.device, settings.encoder_precision, settings.onnx_cache_dir
    )
    versions = {}
    for family in (*FAMILIES, TORCH_FP32):
        started = time.perf_counter()
        encoder_fields: dict[str, Any] = {}
        if family == TFIDF_LOGREG:
            fit = fit_tfidf_logreg(texts, labels, holdout, params)
            card_params = params.as_dict()
        elif family in (EMBEDDING_LOGREG, TORCH_FP32):
            vectors_from = pipeline if family == EMBEDDING_LOGREG else encoder
            fit = fit_embedding_logreg(vectors_from.encode(texts), labels, holdout, params)
            card_params = params.as_dict()
            encoder_fields = {
                "encoder": vectors_from.name,
                "encoder_fingerprint": vectors_from.fingerprint,
            }
        else:
            finetune = FinetuneParams(
                max_steps=args.finetune_steps,
                max_train_samples=args.finetune_steps * 32,
                batch_size=32,
                max_length=48,
                learning_rate=1e-4,
                freeze_layers=2,
                seed=args.seed,
                device=args.device,
            )
            fit = fit_finetuned_transformer(texts, labels, holdout, finetune, encoder.path)
            card_params = {k: v for k, v in finetune.__dict__.items() if v is not None}
            encoder_fields = {"encoder": encoder.name}
        card = ModelCard(
            family=EMBEDDING_LOGREG if family == TORCH_FP32 else family,
            trained_through=MONTH,
            window_start=MONTH,
            params=card_params,
            data_fingerprint=data_fingerprint(ids, labels),
            metrics={"validation": fit.validation},
            **encoder_fields,
        )
        with tempfile.TemporaryDirectory() as tmp:
            bundle = save_bundle(Path(tmp) / family, card, fit.estimator)
            versions[family] = register(settings, bundle, card)
        print(
            f"  {family}: version {versions[family].version}, validation accuracy "
            f"{fit.validation.get('accuracy', float('nan')):.3f}, "
            f"built in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    return versions


# ---------------------------------------------------------------------------- measuring
def _stats(wall: list[float], cpu: list[float]) -> dict:
    wall_ms, cpu_ms = 1000 * np.array(wall), 1000 * np.array(cpu)
    p50, p90, p99 = np.percentile(wall_ms, [50, 90, 99])
    return {
        "n": len(wall),
        "p50_ms": round(float(p50), 3),
        "p90_ms": round(float(p90), 3),
        "p99_ms": round(float(p99), 3),
        "mean_ms": round(float(wall_ms.mean()), 3),
        "cpu_ms_p50": round(float(np.percentile(cpu_ms, 50)), 3),
    }


def latency(call: Callable[[str], object], texts: Sequence[str], warmup: int = 20) -> dict:
    return interleaved_latency({"only": call}, texts, warmup)["only"]


def interleaved_latency(
    calls: dict[str, Callable[[str], object]], texts: Sequence[str], warmup: int = 20
) -> dict[str, dict]:
    """Per-call wall and process-CPU time; the contenders take turns, in rotating order."""
    names = list(calls)
    for text in texts[:warmup]:
        for name in names:
            calls[name](text)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for i, text in enumerate(texts):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            calls[name](text)
            wall[name].append(time.perf_counter() - wall_start)
            cpu[name].append(time.process_time() - cpu_start)
    return {name: _stats(wall[name], cpu[name]) for name in names}


def throughput(run: Callable[[list[str]], object], texts: list[str], repeats: int) -> dict:
    return interleaved_throughput({"only": run}, texts, repeats)["only"]


def interleaved_throughput(
    runs: dict[str, Callable[[list[str]], object]], texts: list[str], repeats: int
) -> dict[str, dict]:
    """Best of `repeats` full passes each; one pass of every contender per round."""
    best = dict.fromkeys(runs, float("inf"))
    for run in runs.values():
        run(texts[:BATCH_CHUNK])  # warm-up
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            run(texts)
            best[name] = min(best[name], time.perf_counter() - started)
    return {
        name: {
            "n": len(texts),
            "best_seconds": round(seconds, 3),
            "tweets_per_s": round(len(texts) / seconds, 1),
        }
        for name, seconds in best.items()
    }


def chunked(predict: Callable[[list[str]], object]) -> Callable[[list[str]], None]:
    def run(texts: list[str]) -> None:
        for start in range(0, len(texts), BATCH_CHUNK):
            predict(texts[start : start + BATCH_CHUNK])

    return run


# ---------------------------------------------------------------------------- the HF peer
def hf_text_classification(classifier: Any) -> Any:
    """A transformers pipeline over a FinetunedClassifier's own network and tokenizer.

    The fine-tuned family is MiniLM + masked mean pooling + a linear head: not one of the
    `AutoModelForSequenceClassification` architectures (BERT's own head pools the [CLS]
    token), so the weights are wrapped in a PreTrainedModel whose forward is the platform's
    network. Tokenisation, batching and post-processing are the pipeline's own.
    """
    import copy

    from torch import nn
    from transformers import PreTrainedModel, pipeline
    from transformers.modeling_outputs import SequenceClassifierOutput
    from transformers.utils import logging as transformers_logging

    config = copy.deepcopy(classifier.network.encoder.config)
    config.id2label = {0: "negative", 1: "positive"}
    config.label2id = {"negative": 0, "positive": 1}
    config.problem_type = "single_label_classification"

    class MeanPooledClassifier(PreTrainedModel):
        config_class = type(config)
        base_model_prefix = "network"
        # The wrapped encoder was built already; nothing here picks an attention kernel.
        _supports_sdpa = True

        def __init__(self, config: Any, network: nn.Module) -> None:
            super().__init__(config)
            self.network = network

        def forward(self, input_ids: Any, attention_mask: Any = None, **_: Any) -> Any:
            return SequenceClassifierOutput(logits=self.network(input_ids, attention_mask))

    model = MeanPooledClassifier(config, classifier.network).eval()
    # The pipeline logs an error that it does not know this class; it runs it all the same.
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity(logging.CRITICAL)
    try:
        return pipeline(
            "text-classification",
            model=model,
            tokenizer=classifier.tokenizer,
            device=classifier.device,
        )
    finally:
        transformers_logging.set_verbosity(verbosity)


def hf_scores(pipe: Any, texts: list[str], max_length: int, batch_size: int) -> np.ndarray:
    outputs = pipe(texts, batch_size=batch_size, top_k=None, truncation=True, max_length=max_length)
    return np.array([next(o["score"] for o in out if o["label"] == "positive") for out in outputs])


def print_row(path: str, family: str, single: dict, bulk: dict) -> None:
    print(
        f"{path:9s} {family:31s} p50 {single['p50_ms']:8.2f} ms  p99 {single['p99_ms']:8.2f} ms"
        f"  cpu p50 {single['cpu_ms_p50']:7.2f} ms  batch {bulk['tweets_per_s']:9.1f} tweets/s",
        flush=True,
    )


# ---------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import torch
    from mlflow.tracking import MlflowClient

    from gradio_app.config import AppConfig
    from gradio_app.model_holder import registry_holder

    load_before = load_average_1m()
    home = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    settings = load_settings(
        {
            "SENTIMENT_HOME": str(home),
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
            "SENTIMENT_DEVICE": args.device,
            "SENTIMENT_ENCODER_PRECISION": args.precision,
        }
    )
    print(f"building one model per family in {home} ...", flush=True)
    train = labelled_sample(args.train_tweets, args.seed, MONTH)
    versions = build_models(settings, train, args)
    # Texts the models never saw, one distinct tweet per call (no cache can help).
    pool = labelled_sample(max(args.batch, args.single + 50), args.seed + 1, date(2024, 2, 1))
    raw_texts = pool["text"].tolist()
    singles = raw_texts[: args.single]
    batch = (raw_texts * (args.batch // len(raw_texts) + 1))[: args.batch]

    report: dict[str, Any] = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": describe(("transformers", "gradio")),
        "function": {},
    }
    # One holder per family, each loaded through the app's real path (alias -> download ->
    # load -> warm-up) and then left alone: no poller runs, so nothing reloads mid-measure.
    client = MlflowClient(settings.mlflow_tracking_uri)
    holders = {}
    for family, info in versions.items():
        registry.set_champion(client, info.version)
        runtime = "torch" if family == TORCH_FP32 else "auto"
        holders[family] = registry_holder(settings, reload_seconds=3600, encoder_runtime=runtime)
        assert holders[family].refresh(), holders[family].status().failure
        report["function"][family] = {
            "version": info.version,
            "load_seconds": round(holders[family].status().load_seconds, 3),
            "threads": {},
        }

    # The app serves the embedding family with the graph its card names (on the CPU: the
    # gated int8 ONNX graph); the same family trained and served on torch fp32, the path
    # before ONNX, is measured next to it and checked for agreement.
    served = np.array(holders[EMBEDDING_LOGREG].predict(batch).scores)
    on_torch = np.array(holders[TORCH_FP32].predict(batch).scores)
    report["function"][EMBEDDING_LOGREG]["vs_torch_fp32"] = {
        "max_abs_probability_difference": float(np.abs(served - on_torch).max()),
        "label_agreement": float(((served >= 0.5) == (on_torch >= 0.5)).mean()),
    }
    for key, holder in holders.items():
        report["function"][key]["runtime"] = holder.status().runtime
        scorer = holder.current().scorer
        encoder = getattr(scorer, "_encoder", None)
        report["function"][key]["encoder"] = getattr(encoder, "fingerprint", None)

    # The HF peer: the fine-tuned bundle loaded a second time (it must not share the served
    # model's lock), wrapped into a text-classification pipeline.
    from sentiment_assets.lib.models.finetune import FinetunedClassifier

    bundle_dir = holders[FINETUNED_TRANSFORMER].current().scorer.directory
    classifier = FinetunedClassifier.load(bundle_dir, device=args.device)
    pipe = hf_text_classification(classifier)
    cleaned = [clean_text(t) for t in batch]
    # Our served path (ONNX Runtime on the CPU) against the peer, on the same texts.
    difference = np.abs(
        np.array(holders[FINETUNED_TRANSFORMER].predict(batch).scores)
        - hf_scores(pipe, cleaned, classifier.max_length, batch_size=64)
    ).max()
    report["hf_pipeline"] = {
        "what": "transformers.pipeline('text-classification') over the fine-tuned weights, "
        "batch size 64, same cleaned texts, same thread count",
        "max_abs_probability_difference": float(difference),
        "threads": {},
    }
    report["target"] = {
        "what": "p50 of the embedding family through the prediction function",
        "target_ms": TARGET_P50_MS,
        "threads": {},
    }

    for threads in args.threads:
        torch.set_num_threads(threads)
        key = str(threads)
        workers = AppConfig(threads=threads).serving_batch_workers()
        for family in (*FAMILIES, TORCH_FP32):
            if holders[family].status().runtime == "onnxruntime":
                # An ONNX Runtime session takes its thread count when it is created.
                registry.set_champion(client, versions[family].version)
                holders[family] = registry_holder(
                    settings, reload_seconds=3600, threads=threads, batch_workers=workers
                )
                assert holders[family].refresh()
        print(
            f"-- threads: {threads}, batch workers {workers} (load average {load_average_1m()})",
            flush=True,
        )
        # Every contender in turn on each text (and in turn for each batch pass), so a load
        # spike on the shared machine hits them all alike and the ratios stay meaningful.
        singles_by = interleaved_latency(
            {
                **{f: (lambda text, h=h: h.predict([text])) for f, h in holders.items()},
                HF_PEER: lambda text: hf_scores(pipe, [clean_text(text)], classifier.max_length, 1),
            },
            singles,
        )
        batches_by = interleaved_throughput(
            {
                **{f: chunked(h.current().predict) for f, h in holders.items()},
                HF_PEER: lambda texts: hf_scores(
                    pipe, [clean_text(t) for t in texts], classifier.max_length, 64
                ),
            },
            batch,
            args.repeats,
        )
        for family in holders:
            single, bulk = singles_by[family], batches_by[family]
            report["function"][family]["threads"][key] = {
                "single": single,
                "batch": bulk,
                "batch_workers": workers,
            }
            print_row("function", family, single, bulk)
        hf_single, hf_batch = singles_by[HF_PEER], batches_by[HF_PEER]
        ours = report["function"][FINETUNED_TRANSFORMER]["threads"][key]
        report["hf_pipeline"]["threads"][key] = {
            "single": hf_single,
            "batch": hf_batch,
            "ratio_single_p50_hf_over_ours": round(
                hf_single["p50_ms"] / ours["single"]["p50_ms"], 2
            ),
            "ratio_batch_throughput_ours_over_hf": round(
                ours["batch"]["tweets_per_s"] / hf_batch["tweets_per_s"], 2
            ),
        }
        print_row("hf pipe", FINETUNED_TRANSFORMER, hf_single, hf_batch)
        for variant in (EMBEDDING_LOGREG, TORCH_FP32):
            if variant in report["function"]:
                p50 = report["function"][variant]["threads"][key]["single"]["p50_ms"]
                report["target"]["threads"].setdefault(key, {})[variant] = {
                    "p50_ms": p50,
                    "met": p50 < TARGET_P50_MS,
                }

    report["cli_predict"] = bench_cli_predict(settings, versions[EMBEDDING_LOGREG], batch, args)
    if not args.skip_http:
        http = bench_http(settings, versions[EMBEDDING_LOGREG], singles, batch, args)
        # Ratios against the function measured with the thread count the app used.
        function = report["function"][EMBEDDING_LOGREG]["threads"].get(str(http["threads"]))
        if function is not None:
            http["ratio_single_p50_http_over_function"] = round(
                http["single"]["p50_ms"] / function["single"]["p50_ms"], 2
            )
            http["ratio_single_p50_json_api_over_function"] = round(
                http["single_json_api"]["p50_ms"] / function["single"]["p50_ms"], 2
            )
            http["ratio_batch_function_over_http"] = round(
                function["batch"]["tweets_per_s"] / http["batch_upload"]["tweets_per_s"], 2
            )
        report["http"] = http
    report["load_average_1m"] = {"before": load_before, "after": load_average_1m()}
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


def bench_cli_predict(
    settings: Settings, info: registry.VersionInfo, batch: list[str], args: argparse.Namespace
) -> dict:
    """`sentiment predict` with the embedding champion: its scoring loop in this process
    (load_champion + predict_proba in the CLI's 512-text batches, all cores), and the whole
    command in a fresh process on a CSV of the batch (start-up and model load included)."""
    import subprocess

    from mlflow.tracking import MlflowClient

    from sentiment_assets.lib.versions.serving import load_champion, serving_runtime

    registry.set_champion(MlflowClient(settings.mlflow_tracking_uri), info.version)
    champion = load_champion(settings, serving_runtime(settings))
    cli_batch = 512

    def score(texts: list[str]) -> None:
        for start in range(0, len(texts), cli_batch):
            champion.predictor.predict_proba(texts[start : start + cli_batch])

    in_process = throughput(score, batch, args.repeats)
    source = Path(tempfile.mkdtemp(prefix="bench-cli-")) / "batch.csv"
    pd.DataFrame({"text": batch}).to_csv(source, index=False)
    command = [sys.executable, "-m", "sentiment_assets.cli", "predict", str(source)]
    command += ["--out", str(source.with_name("scored.csv"))]
    started = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, **settings.environment()})
    whole = time.perf_counter() - started
    print(
        f"cli       {EMBEDDING_LOGREG:31s} scoring {in_process['tweets_per_s']:9.1f} tweets/s"
        f"  whole command {whole:.1f} s for {len(batch)} tweets",
        flush=True,
    )
    return {
        "what": "sentiment predict: load_champion + predict_proba in 512-text batches "
        "(in process), and the command in a fresh process",
        "version": info.version,
        "runtime": champion.predictor.runtime,
        "scoring": in_process,
        "whole_command_seconds": round(whole, 2),
        "whole_command_tweets": len(batch),
    }


def bench_http(
    settings: Settings,
    info: registry.VersionInfo,
    singles: list[str],
    batch: list[str],
    args: argparse.Namespace,
) -> dict:
    import httpx
    from gradio_client import Client, handle_file
    from mlflow.tracking import MlflowClient

    from gradio_app.config import AppConfig
    from gradio_app.server import BackgroundServer, create_app

    registry.set_champion(MlflowClient(settings.mlflow_tracking_uri), info.version)
    config = AppConfig(reload_seconds=3600)  # the app's defaults: threads, encoder runtime
    app = create_app(settings, config, wait_for_model=True)
    server = BackgroundServer(app.asgi).start()
    downloads = Path(tempfile.mkdtemp(prefix="bench-downloads-"))
    client = Client(server.url, verbose=False, download_files=str(downloads))
    try:
        versions = set()

        def call(text: str) -> None:
            versions.add(client.predict(text, api_name="/predict")[2])

        single = latency(call, singles[: args.http_single])
        assert versions == {info.version}, versions
        with httpx.Client(base_url=server.url, timeout=30) as rest:

            def post(text: str) -> None:
                response = rest.post("/api/predict", json={"texts": [text]})
                response.raise_for_status()
                versions.add(response.json()["model_version"])

            rest_single = latency(post, singles[: args.http_single])
        assert versions == {info.version}, versions
        source = downloads / "batch.csv"
        pd.DataFrame({"text": batch}).to_csv(source, index=False)

        def upload(_: list[str]) -> None:
            out, _summary, _preview = client.predict(
                handle_file(str(source)), api_name="/predict_batch"
            )
            assert len(pd.read_csv(out)) == len(batch)

        bulk = throughput(upload, batch, args.repeats)
    finally:
        client.close()
        server.stop()
        app.close()
    print(
        f"http      {EMBEDDING_LOGREG:31s} p50 {single['p50_ms']:8.2f} ms  p99 {single['p99_ms']:8.2f} ms"
        f"  batch upload {bulk['tweets_per_s']:9.1f} tweets/s",
        flush=True,
    )
    print(
        f"json api  {EMBEDDING_LOGREG:31s} p50 {rest_single['p50_ms']:8.2f} ms  "
        f"p99 {rest_single['p99_ms']:8.2f} ms  (POST /api/predict with httpx)",
        flush=True,
    )
    return {
        "what": "gradio_client round trips to the app on 127.0.0.1 (embedding family champion)",
        "version": info.version,
        "threads": config.threads,
        "batch_workers": config.serving_batch_workers(),
        "encoder_runtime": config.encoder_runtime,
        "single": single,
        "single_json_api": rest_single,
        "batch_upload": bulk,
    }


if __name__ == "__main__":
    sys.exit(main())
