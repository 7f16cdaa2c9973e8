"""bench/bench_finetune_budget.py's smoke path end to end, on tiny Sentiment140-shaped files:
both arms fit, are saved, reloaded and scored, and the result names its machine."""

import csv
import json
from pathlib import Path

from bench.bench_finetune_budget import AFTER, BEFORE, SMOKE_FIXED, SMOKE_TRAIN, main
from bench.machine import one_line

POSITIVE = ("love this", "great day", "so happy", "best song ever", "what fun")
NEGATIVE = ("hate this", "awful day", "so sad", "worst song ever", "what a bore")


def write_s140(path: Path, rows: int, first_id: int) -> None:
    """`rows` short tweets in Sentiment140's six-column layout, alternating labels 0 and 4."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        for i in range(rows):
            positive = i % 2 == 0
            words = (POSITIVE if positive else NEGATIVE)[i // 2 % 5]
            when = f"Mon May {11 + i % 10:02d} 03:17:40 UTC 2009"
            text = f"{words} #{i}"
            writer.writerow(["4" if positive else "0", first_id + i, when, "NO_QUERY", "u", text])


def test_smoke_run_writes_both_arms_and_the_budget_buys_more_tweets(tmp_path: Path):
    train_csv, test_csv = tmp_path / "train.csv", tmp_path / "test.csv"
    # 260 tweets: the 10% validation split leaves more than the smoke path's 200 to train on.
    write_s140(train_csv, 260, 1)
    write_s140(test_csv, 30, 10_000)
    out, md = tmp_path / "result.json", tmp_path / "result.md"

    argv = ["--smoke", "--train-csv", str(train_csv), "--test-csv", str(test_csv)]
    assert main([*argv, "--out", str(out), "--md", str(md)]) == 0

    result = json.loads(out.read_text())
    assert result["smoke"] is True
    assert result["protocol"]["n_train_offered"] == SMOKE_TRAIN
    assert set(result["arms"]) == {BEFORE, AFTER}
    before, after = result["arms"][BEFORE], result["arms"][AFTER]
    for arm in (before, after):
        assert arm["test"]["n"] == 30
        low, high = arm["test"]["accuracy_ci95"]
        assert low <= arm["test"]["accuracy"] <= high
        assert 0.0 <= arm["test"]["macro_f1"] <= 1.0
        assert arm["validation"]["accuracy_ci95"][0] <= arm["validation"]["accuracy"]
        assert arm["fit_cpu_seconds"] > 0 and arm["train_minutes"] > 0
        assert arm["epochs"] >= 1 and arm["samples"] == arm["training_size"]["samples"]
    assert before["training_size"]["basis"] == "fixed" and before["samples"] == SMOKE_FIXED
    assert after["training_size"]["basis"] == "cpu budget"
    assert after["samples"] > before["samples"]
    assert isinstance(result["difference"]["test_intervals_overlap"], bool)

    text = md.read_text()
    assert one_line(result["machine"]).split(", load")[0] in text
    assert "| before | 100 of 200 |" in text and "| after | 200 of 200 |" in text
    assert "intervals" in text.splitlines()[-1]
