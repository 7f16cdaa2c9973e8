"""Encoder precision: the int8 quality gate, fingerprints that keep precisions apart, and
models served by the graph their training vectors came from (real MiniLM, real ONNX Runtime;
the graphs come from the session's cache, exported and gated once)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict
from datetime import date
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from sentiment_assets.lib.data.sources import labelled_texts
from sentiment_assets.lib.data.synthetic import SyntheticConfig, write_month
from sentiment_assets.lib.encoding.embedding_store import embed_month, load_tweets
from sentiment_assets.lib.encoding.encoder import TextEncoder
from sentiment_assets.lib.encoding.encoder_choice import ServingRuntime, pipeline_encoder
from sentiment_assets.lib.encoding.encoder_precision import (
    DEFAULT_GATE,
    PROBE_SIZE,
    PROBE_TRAIN,
    EncoderSpec,
    GateMeasurement,
    PrecisionRefused,
    QualityGate,
    measure_gate,
    same_vectors,
    source_probe,
)
from sentiment_assets.lib.encoding.onnx_encoder import INT8_RECIPE, OnnxTextEncoder
from sentiment_assets.lib.models.model_bundle import ModelCard, load_predictor, save_bundle
from sentiment_assets.lib.models.training import EMBEDDING_LOGREG
from sentiment_assets.lib.settings import load_settings
from sentiment_assets.lib.store import warehouse
from tests.unit.test_encoder import TEXTS
from tests.unit.test_int8_graph import SATURATING_CPU

JAN = date(2024, 1, 1)
ENCODER = "all-MiniLM-L6-v2"
SAMPLE = os.environ.get("SENTIMENT140_CSV")


@pytest.fixture(scope="module")
def fp32(onnx_cache: Path) -> OnnxTextEncoder:
    return OnnxTextEncoder(cache_dir=onnx_cache, threads=1)


@pytest.fixture(scope="module")
def int8(onnx_cache: Path) -> OnnxTextEncoder:
    try:
        return OnnxTextEncoder(cache_dir=onnx_cache, threads=1, precision="int8")
    except PrecisionRefused as refused:  # measured on this CPU; the refusal tests still run
        pytest.skip(f"the int8 graph fails the gate on this machine: {refused}")


def _copy(cache: Path, tmp_path: Path) -> Path:
    target = tmp_path / "cache"
    shutil.copytree(cache, target)
    return target


def _card(fingerprint: str) -> ModelCard:
    return ModelCard(
        family=EMBEDDING_LOGREG,
        trained_through=JAN,
        window_start=JAN,
        params={},
        data_fingerprint=fingerprint[-12:],
        encoder=ENCODER,
        encoder_fingerprint=fingerprint,
    )


# ----------------------------------------------------------------- fingerprints, pure
def test_a_fingerprint_names_runtime_and_precision_and_old_ones_are_torch_fp32() -> None:
    base = "all-MiniLM-L6-v2@0.1.0|model|mean|max_length=128"
    int8 = EncoderSpec.parse(f"{base}|onnx-int8")
    assert (int8.base, int8.runtime, int8.precision) == (base, "onnx", "int8")
    fp16 = EncoderSpec.parse(f"{base}|torch-fp16")
    assert (fp16.base, fp16.runtime, fp16.precision) == (base, "torch", "fp16")
    old = EncoderSpec.parse(base)
    assert (old.base, old.runtime, old.precision) == (base, "torch", "fp32")
    assert same_vectors(base, f"{base}|onnx-fp32")
    assert same_vectors(f"{base}|torch-fp32", f"{base}|onnx-fp32")
    assert not same_vectors(f"{base}|onnx-fp32", f"{base}|onnx-int8")
    assert not same_vectors(base, f"{base}|torch-fp16")
    assert not same_vectors(f"{base}|onnx-int8", "other|onnx-int8")


# --------------------------------------------------------------------------- the gate
def test_the_gate_refuses_lossy_vectors_and_passes_faithful_ones() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 600)
    texts = [f"text {i}" for i in range(600)]
    # Vectors that separate the labels, and a "graph" whose vectors are mostly noise.
    table = {
        t: rng.normal(0, 1, 16) + 2.0 * (2 * y - 1) for t, y in zip(texts, labels, strict=True)
    }
    noise = {t: rng.normal(0, 4, 16) for t in texts}

    def reference(batch: list[str]) -> np.ndarray:
        return np.stack([table[t] for t in batch])

    def lossy(batch: list[str]) -> np.ndarray:
        return reference(batch) + np.stack([noise[t] for t in batch])

    faithful = measure_gate(reference, reference, texts, labels, train=400)
    assert (faithful.mean_cosine, faithful.label_agreement) == pytest.approx((1.0, 1.0))
    assert DEFAULT_GATE.verdict(faithful) is None
    broken = measure_gate(reference, lossy, texts, labels, train=400)
    assert broken.heldout_texts == 200
    assert broken.mean_cosine < 0.9
    assert "mean cosine" in DEFAULT_GATE.verdict(broken)
    with pytest.raises(ValueError, match="held-out"):
        measure_gate(reference, reference, texts, labels, train=600)


def test_the_int8_graph_carries_its_gate_measurements(
    int8: OnnxTextEncoder, fp32: OnnxTextEncoder
) -> None:
    manifest = json.loads(int8.model_path.with_suffix(".json").read_text())
    assert GateMeasurement(**manifest["gate"]) == int8.gate_measurement
    measured = int8.gate_measurement
    assert measured.heldout_texts == measured.probe_texts - PROBE_TRAIN > 400
    assert DEFAULT_GATE.verdict(measured) is None
    assert int8.model_path != fp32.model_path
    # Every product with a weight matrix is an integer one; only attention's stay fp32.
    graph = onnx.load(str(int8.model_path))
    weights = {init.name for init in graph.graph.initializer}
    ops = [node.op_type for node in graph.graph.node]
    assert not [n for n in graph.graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    # Six layers of six products: Q, K, V (one shared input), attention output, FFN in, and
    # FFN out (GELU-fed, one scale per token); the other five carry their bias inside.
    assert ops.count("MatMulIntegerToFloat") == 36
    assert ops.count("QuantizeLinear") == 6 * 4
    rewrite = manifest["rewrite"]
    assert (rewrite["calibrated_groups"], rewrite["per_token_groups"]) == (18, 6)
    assert rewrite["biases_in_products"] == 30
    got, expected = int8.encode(TEXTS), fp32.encode(TEXTS)
    cosine = (got * expected).sum(axis=1)  # both unit-norm
    assert cosine.mean() > 0.995
    assert np.abs(got - expected).max() > 1e-4  # really another graph
    # The recipe is in the fingerprint: vectors of an older int8 graph are other vectors.
    assert INT8_RECIPE in int8.fingerprint and int8.fingerprint.endswith("|onnx-int8")
    assert not same_vectors(int8.fingerprint, f"{fp32.base_fingerprint}|onnx-int8")


def test_an_int8_vector_does_not_depend_on_the_batch_it_is_in(int8: OnnxTextEncoder) -> None:
    # Calibrated scales, or one per token: a long, loud neighbour cannot coarsen a short tweet.
    loud = "WORST. DAY. EVER!!! my phone died, i missed the bus and it is raining " * 4
    texts = [*TEXTS, loud]
    together = int8.encode_with(int8._session, batch_size=len(texts))(texts)
    alone = np.stack([int8.encode_with(int8._session, batch_size=1)([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_the_gate_verdict_does_not_depend_on_the_loaders_batch_size_or_threads(
    onnx_cache: Path, tmp_path: Path
) -> None:
    # Measured on this machine with an earlier int8 recipe: agreement 0.9917 when the first
    # loader encoded in batches of 32, 0.9876 (refused) in batches of 16. The fp32 graph is
    # reused; only the int8 one is remade.
    cache = _copy(onnx_cache, tmp_path)
    int8_graphs = [p for p in cache.glob("*.json") if '"gate"' in p.read_text()]
    assert int8_graphs, "the session cache holds a gated int8 graph"
    for manifest in int8_graphs:
        session_made = json.loads(manifest.read_text())["gate"]
        manifest.unlink()
        manifest.with_suffix(".onnx").unlink()
    remade = OnnxTextEncoder(
        cache_dir=cache, batch_size=16, threads=2, precision="int8", gate=QualityGate(0, 0)
    )
    assert asdict(remade.gate_measurement) == session_made


def test_an_int8_graph_failing_the_gate_is_refused_and_fp32_is_used(
    onnx_cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = _copy(onnx_cache, tmp_path)
    manifests = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.json")}
    impossible = QualityGate(min_mean_cosine=1.01)

    with caplog.at_level(logging.WARNING, logger="sentiment_assets.lib.encoding.encoder_choice"):
        chosen = pipeline_encoder(ENCODER, "cpu", "auto", cache, gate=impossible)
    assert isinstance(chosen, OnnxTextEncoder)
    assert (chosen.precision, chosen.fingerprint.endswith("|onnx-fp32")) == ("fp32", True)
    assert "fails the quality gate" in chosen.precision_note
    assert "mean cosine to fp32" in caplog.text
    # Asked for explicitly, int8 is an error rather than a quiet switch of vectors.
    with pytest.raises(PrecisionRefused, match="fails the quality gate"):
        pipeline_encoder(ENCODER, "cpu", "int8", cache, gate=impossible)
    # The measurements were read from the manifest, not measured again.
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.json")} == manifests


def test_a_source_probe_is_the_first_distinct_labelled_tweets_ingestion_accepts(
    tmp_path: Path,
) -> None:
    source = tmp_path / "tweets.csv"
    pd.DataFrame(
        {
            "tweet_id": ["1", "2", "3", "4", "5", "6", "7"],
            "created_at": ["2024-01-02"] * 3 + [""] + ["2024-01-03"] * 3,
            "text": [
                "Loving it &amp; more",  # cleaned like tweets_clean
                "no label here",
                "Loving it &amp; more",  # a repeat: one probe text
                "undated, so rejected",
                "   ",  # empty: rejected
                "worst day",
                "best day",
            ],
            "label": ["4", "", "4", "0", "0", "0", "4"],
        }
    ).to_csv(source, index=False)

    texts, labels = labelled_texts(str(source), size=2)
    assert (texts, labels) == (["Loving it & more", "worst day"], [1, 0])
    assert labelled_texts(str(source), size=10)[1] == [1, 0, 1]
    assert source_probe(str(source)) is None  # too few to judge: the synthetic set does
    assert labelled_texts(str(tmp_path / "gone.csv"), size=2) == ([], [])
    # A file that cannot be read is raw_tweets' error to report; the probe reads the others.
    (tmp_path / "a-broken.parquet").write_bytes(b"not parquet")
    assert labelled_texts(str(tmp_path), size=2) == (["Loving it & more", "worst day"], [1, 0])

    big = tmp_path / "big.csv"
    write_month(SyntheticConfig(seed=7), JAN, big, 1700)
    probe = source_probe(str(big))
    assert probe is not None and len(probe.texts) == PROBE_SIZE
    assert probe.train == PROBE_SIZE * 2 // 3 and str(big) in probe.name
    assert source_probe(str(big)) == probe  # the same texts in the same order, every start


def test_the_gate_judges_int8_on_the_source_once_and_refuses_on_it(
    onnx_cache: Path, tmp_path: Path
) -> None:
    cache = _copy(onnx_cache, tmp_path)
    source = tmp_path / "source.csv"
    write_month(SyntheticConfig(seed=11), JAN, source, 1700)
    before = set(cache.iterdir())

    # A gate that passes anything: this test is about what judges, not the verdict.
    lenient = QualityGate(0, 0)
    chosen = pipeline_encoder(ENCODER, "cpu", "int8", cache, gate=lenient, probe_source=str(source))
    measured = chosen.gate_measurement
    assert measured.probe.startswith(f"source {source}")
    assert (measured.probe_texts, measured.heldout_texts) == (PROBE_SIZE, PROBE_SIZE // 3)
    synthetic = json.loads(chosen.model_path.with_suffix(".json").read_text())["gate"]
    assert asdict(measured) != synthetic
    (record,) = set(cache.iterdir()) - before
    stamp = record.stat().st_mtime_ns

    # Every later start reads the measurement: nothing is encoded or written again.
    again = pipeline_encoder(ENCODER, "cpu", "auto", cache, gate=lenient, probe_source=str(source))
    assert again.gate_measurement == measured and record.stat().st_mtime_ns == stamp

    # Judged on the source, a graph below the gate is refused there and fp32 is used.
    strict = QualityGate(min_mean_cosine=measured.mean_cosine + 1e-6, min_label_agreement=0)
    fallback = pipeline_encoder(
        ENCODER, "cpu", "auto", cache, gate=strict, probe_source=str(source)
    )
    assert fallback.fingerprint.endswith("|onnx-fp32")
    assert f"source {source}" in fallback.precision_note
    assert f"mean cosine to fp32 {measured.mean_cosine:.4f}" in fallback.precision_note


def test_precisions_that_a_device_cannot_run_are_errors() -> None:
    with pytest.raises(ValueError, match="CUDA only"):
        pipeline_encoder(ENCODER, "cpu", "fp16", None)
    with pytest.raises(ValueError, match="int8 is an ONNX Runtime CPU graph"):
        pipeline_encoder(ENCODER, "cuda", "int8", None)
    with pytest.raises(ValueError, match="one of"):
        pipeline_encoder(ENCODER, "cpu", "bf16", None)
    with pytest.raises(ValueError, match="not 'fp16'"):
        TextEncoder(device="cpu", precision="fp16")


def test_precision_and_graph_cache_are_settings(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "SENTIMENT_HOME": str(tmp_path),
            "SENTIMENT_ENCODER_PRECISION": "INT8",
            "SENTIMENT_ONNX_CACHE": str(tmp_path / "graphs"),
        }
    )
    assert settings.encoder_precision == "int8"
    assert settings.onnx_cache_dir == tmp_path / "graphs"
    assert settings.environment()["SENTIMENT_ONNX_CACHE"] == str(tmp_path / "graphs")
    assert settings.environment()["SENTIMENT_ENCODER_PRECISION"] == "INT8"
    defaults = load_settings({"SENTIMENT_HOME": str(tmp_path)})
    assert (defaults.encoder_precision, defaults.onnx_cache_dir) == (
        "auto",
        tmp_path / "onnx_cache",
    )
    with pytest.raises(ValueError, match="precision must be one of"):
        load_settings({"SENTIMENT_HOME": str(tmp_path), "SENTIMENT_ENCODER_PRECISION": "int4"})


# --------------------------------------------------------------- separation in use
def test_two_precisions_never_share_cache_rows_or_a_model(
    tmp_path: Path, fp32: OnnxTextEncoder, int8: OnnxTextEncoder, onnx_cache: Path
) -> None:
    db = tmp_path / "warehouse.duckdb"
    rows = pd.DataFrame(
        {
            "tweet_id": [f"t{i}" for i in range(len(TEXTS))],
            "month": JAN,
            "text": TEXTS,
            "label": [i % 2 for i in range(len(TEXTS))],
        }
    )
    with warehouse.connect(db) as con:
        warehouse.ensure_schema(con)
        con.execute("CREATE SCHEMA IF NOT EXISTS clean")
        con.register("incoming", rows)
        con.execute(
            "CREATE TABLE clean.tweets_clean AS SELECT tweet_id, month::DATE AS month, text, "
            "md5(text) AS text_hash, label::INTEGER AS label FROM incoming"
        )
    vectors = {}
    for encoder in (fp32, int8):
        assert embed_month(db, JAN, encoder).encoded == len(set(TEXTS))
        frame, vectors[encoder.precision] = load_tweets(db, [JAN], encoder.fingerprint)
        np.testing.assert_allclose(
            vectors[encoder.precision], encoder.encode(frame["text"].tolist()), atol=1e-6
        )
    with warehouse.connect(db) as con:
        counts = con.execute(
            "SELECT encoder, count(*) FROM features.embedding_cache GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert counts == sorted((e.fingerprint, len(set(TEXTS))) for e in (fp32, int8))
    # The month now holds int8 vectors: asking for fp32 ones is an error, not a mix...
    with pytest.raises(ValueError, match="no embedding for encoder"):
        load_tweets(db, [JAN], fp32.fingerprint)
    # ...until fp32 is embedded again, from its own cache rows.
    assert embed_month(db, JAN, fp32).encoded == 0
    np.testing.assert_array_equal(load_tweets(db, [JAN], fp32.fingerprint)[1], vectors["fp32"])
    labels = frame["label"].to_numpy()

    # One model per precision, each trained on its own vectors; a serving runtime that has
    # just served one precision must switch graphs for the other.
    runtime = ServingRuntime("auto", cache_dir=onnx_cache, threads=1)
    for encoder in (int8, fp32, int8):
        model = LogisticRegression().fit(vectors[encoder.precision], labels)
        bundle = save_bundle(tmp_path / encoder.precision, _card(encoder.fingerprint), model)
        served = load_predictor(bundle, device="cpu", runtime=runtime)
        assert served._encoder.fingerprint == encoder.fingerprint
        texts = frame["text"].tolist()
        np.testing.assert_allclose(
            served.predict_proba_clean(texts),
            model.predict_proba(vectors[encoder.precision])[:, 1],
            atol=1e-5,
        )
        # An encoder of the other precision handed in by a caller is not used.
        other = fp32 if encoder is int8 else int8
        scored = load_predictor(bundle, device="cpu", encoder=other)
        scored.predict_proba_clean(texts[:2])
        assert scored._encoder is not other
        assert same_vectors(scored._encoder.fingerprint, encoder.fingerprint)


def test_a_card_from_before_precisions_is_served_by_fp32(
    fp32: OnnxTextEncoder, tmp_path: Path, onnx_cache: Path
) -> None:
    torch_fp32 = TextEncoder(device="cpu")
    vectors = torch_fp32.encode(TEXTS)
    model = LogisticRegression().fit(vectors, np.arange(len(TEXTS)) % 2)
    # What registries written before this change hold: the fingerprint without a suffix.
    bundle = save_bundle(tmp_path / "old", _card(torch_fp32.base_fingerprint), model)
    expected = model.predict_proba(vectors)[:, 1]

    served = load_predictor(bundle, device="cpu", runtime=ServingRuntime("auto", onnx_cache))
    assert served.runtime == "onnxruntime"
    assert served._encoder.fingerprint.endswith("|onnx-fp32")
    np.testing.assert_allclose(served.predict_proba_clean(TEXTS), expected, atol=1e-4)
    as_trained = load_predictor(bundle, device="cpu")  # no runtime: torch, as it was trained
    np.testing.assert_allclose(as_trained.predict_proba_clean(TEXTS), expected, atol=1e-6)
    assert as_trained.runtime == "torch"
    # An fp16 card cannot be served on a CPU: refused, never fed fp32 vectors.
    fp16 = save_bundle(tmp_path / "fp16", _card(f"{torch_fp32.base_fingerprint}|torch-fp16"), model)
    with pytest.raises(ValueError, match="not 'fp16'"):
        load_predictor(fp16, device="cpu", runtime=ServingRuntime("auto", onnx_cache))


@pytest.mark.real_data
@pytest.mark.skipif(not SAMPLE, reason="SENTIMENT140_CSV is not set (.ci/run sets it)")
@SATURATING_CPU
def test_on_real_tweets_the_gate_judges_int8_on_them(onnx_cache: Path, tmp_path: Path) -> None:
    # Measured here on the sample's first 1,500 tweets: agreement 0.994 and mean cosine
    # 0.9987 (passed); one activation scale per batch gave 0.984 and 0.9905 (refused).
    cache = _copy(onnx_cache, tmp_path)
    lenient = pipeline_encoder(
        ENCODER, "cpu", "int8", cache, gate=QualityGate(0, 0), probe_source=SAMPLE
    )
    measured = lenient.gate_measurement
    assert measured.probe.startswith(f"source {SAMPLE}")
    assert measured.heldout_texts == PROBE_SIZE // 3

    assert measured.mean_cosine > 0.998 and measured.label_agreement > 0.985
    chosen = pipeline_encoder(ENCODER, "cpu", "auto", cache, probe_source=SAMPLE)
    passes = DEFAULT_GATE.verdict(measured) is None
    assert chosen.precision == ("int8" if passes else "fp32")
    assert passes or "fails the quality gate" in chosen.precision_note


def test_on_the_cpu_the_pipeline_runs_small_batches_one_per_core(onnx_cache: Path) -> None:
    cores = os.cpu_count() or 1
    chosen = pipeline_encoder(ENCODER, "cpu", "fp32", onnx_cache)
    assert (chosen.batch_size, chosen._threads, chosen.batch_workers) == (16, 1, cores)
    # Threads given: the workers fill the cores that leaves, at least one.
    two = pipeline_encoder(ENCODER, "cpu", "fp32", onnx_cache, batch_size=8, threads=2)
    assert (two.batch_size, two._threads, two.batch_workers) == (8, 2, max(1, cores // 2))
    # Side by side or one after another, the pipeline's vectors are the same.
    serial = OnnxTextEncoder(cache_dir=onnx_cache, batch_size=16, threads=1)
    many = TEXTS * 20  # several batches
    assert np.array_equal(chosen.encode(many), serial.encode(many))
