"""Smoke tests of the pure parts of bench/compare_families.py (no model is loaded)."""

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from bench.compare_families import (
    folder_bytes,
    latency_summary,
    prepare_labelled,
    render_markdown,
    score_block,
    stratified_holdout,
)
from bench.machine import describe, one_line


def raw_frame(rows: list[tuple]) -> pd.DataFrame:
    """Rows of (tweet_id, text, label_raw, day, source_row) shaped like load_month's output."""
    return pd.DataFrame(
        [
            {
                "tweet_id": tweet_id,
                "created_at": datetime(2024, 1, day),
                "text": text,
                "label_raw": label_raw,
                "source": "synthetic",
                "source_row": source_row,
            }
            for tweet_id, text, label_raw, day, source_row in rows
        ]
    )


def test_prepare_labelled_mirrors_tweets_clean():
    frame = raw_frame(
        [
            ("a", "I &amp; @bob love it http://x.co/1", "4", 1, 1),
            ("b", "bad day", "0", 2, 2),
            ("b", "bad day", "0", 3, 3),  # exact duplicate: one copy kept
            ("c", "meh", "0", 4, 4),
            ("c", "meh", "4", 5, 5),  # contradictory labels: id dropped
            ("d", "neutral one", "2", 6, 6),  # neutral: unlabelled, not trained on
            ("e", "later copy", "4", 9, 8),
            ("e", "later copy", None, 1, 7),  # unlabelled copy does not contradict
            ("f", "   ", "4", 1, 9),  # empty after cleaning
            (None, "no id", "4", 1, 10),
        ]
    )
    out = prepare_labelled(frame)
    assert out["tweet_id"].tolist() == ["a", "b", "e"]
    assert out["label"].tolist() == [1, 0, 1]
    assert out.loc[0, "text"] == "I & @user love it http"
    assert out.loc[0, "text_raw"] == "I &amp; @bob love it http://x.co/1"
    assert out["label"].dtype.kind == "i"


def test_prepare_labelled_empty():
    out = prepare_labelled(raw_frame([]).reindex(columns=["tweet_id", "text", "label_raw"]))
    assert out.empty


def test_stratified_holdout_is_seeded_and_stratified():
    labels = np.array([0] * 60 + [1] * 40)
    first = stratified_holdout(labels, 0.1, seed=0)
    assert first.dtype == bool and first.sum() == 10
    assert labels[first].sum() == 4  # the 40% positive share is kept
    np.testing.assert_array_equal(first, stratified_holdout(labels, 0.1, seed=0))
    assert not np.array_equal(first, stratified_holdout(labels, 0.1, seed=1))
    assert not stratified_holdout(labels, 0.0, seed=0).any()


def test_score_block_and_latency_summary():
    block = score_block(np.array([1, 0, 1, 1]), np.array([0.9, 0.2, 0.4, 0.6]))
    assert block["correct"] == 3 and block["accuracy"] == 0.75
    low, high = block["accuracy_ci95"]
    assert 0.0 < low < 0.75 < high < 1.0
    summary = latency_summary([0.001, 0.002, 0.003, 0.010])
    assert summary["calls"] == 4
    assert summary["p50_ms"] == 2.5 and summary["min_ms"] == 1.0


def test_folder_bytes(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.bin").write_bytes(b"x" * 10)
    (tmp_path / "sub" / "b.bin").write_bytes(b"y" * 5)
    assert folder_bytes(tmp_path) == 15
    assert folder_bytes(tmp_path / "a.bin") == 10


def _family(acc: float, size: dict) -> dict:
    block = {"accuracy": acc, "accuracy_ci95": [acc - 0.05, acc + 0.05], "macro_f1": acc}
    return {
        "hyperparameters": {"C": 2.0, "selected_by": "x"},
        "validation": {"accuracy": 0.8},
        "train_seconds": 1.5,
        "eval": {
            "month4": {**block, "batch_ms_per_tweet": 0.5},
            "month5_drift": {**block, "batch_ms_per_tweet": 0.6},
        },
        "single_tweet": {"p50_ms": 3.25},
        "size": size,
    }


def _result(**machine_fields) -> dict:
    return {
        "dataset": "synthetic",
        "description": "three months",
        "eval_sets": ["month4", "month5_drift"],
        "families": {
            "tfidf_logreg": _family(0.9, {"model_mb": 2.0}),
            "embedding_logreg": _family(0.85, {"model_mb": 0.01, "encoder_mb": 90.9}),
        },
        **machine_fields,
        "date": "2024-01-01 00:00 UTC",
        "run_seconds": 120.0,
        "load1_start": 1.0,
        "load1_end": 2.0,
        "notes": "",
    }


def test_render_markdown_has_one_row_per_family_and_the_extra_column():
    machine = {**describe(), "cpu_model": "Test CPU", "cores": 2}
    text = render_markdown([_result(machine=machine, torch_threads=2)])
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 3  # header + two families
    assert "accuracy month5_drift [95% CI]" in rows[0]
    assert "| tfidf_logreg | 90.0% [85.0, 95.0] | 0.900 | 90.0% [85.0, 95.0] |" in text
    assert "0.01 (+90.9 encoder)" in text
    assert f"Hardware: {one_line(machine)}; torch threads 2;" in text
    assert "- tfidf_logreg: C=2.0; validation accuracy 80.0%" in text


def test_render_markdown_still_reads_results_written_before_the_machine_description():
    environment = {"nproc": 2, "cpu_model": "Test CPU", "cuda": False, "torch_threads": 2}
    text = render_markdown([_result(environment=environment)])
    assert "Hardware: 2 CPU cores (Test CPU), CUDA no; torch threads 2;" in text
