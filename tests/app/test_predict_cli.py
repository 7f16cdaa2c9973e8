"""`sentiment predict` as people call it (issue 26 item 6, issue 24 item 7), through the real
command on the app tests' registry: a text argument, stdin, files whose other columns come
back with the scores, and CSV cells a spreadsheet would run as formulas written inert."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sentiment_assets.lib.models.model_bundle import load_predictor
from sentiment_assets.lib.versions import registry
from tests.app.conftest import RegistryHome

PREDICTION_COLUMNS = ["label", "score", "model_version"]
# Each would run as a formula in a spreadsheet; the last two hide it behind a tab / a CR.
INJECTED = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def run_predict(
    home: RegistryHome, *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentiment_assets.cli", "predict", *args],
        env={**os.environ, **home.settings.environment()},
        input=stdin,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def v1_predictor(registry_home: RegistryHome, tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.mktemp("v1-cache")
    return load_predictor(registry.download_bundle(registry_home.v1, cache))


def test_a_text_argument_is_scored(registry_home: RegistryHome, v1_predictor) -> None:
    done = run_predict(registry_home, "I love this")
    assert done.returncode == 0, done.stderr
    scored = pd.read_csv(io.StringIO(done.stdout), dtype={"model_version": str})
    assert list(scored.columns) == ["text", *PREDICTION_COLUMNS]
    assert scored["text"].tolist() == ["I love this"]
    assert scored["score"][0] == pytest.approx(v1_predictor.predict_proba(["I love this"])[0])
    assert scored["model_version"][0] == registry_home.v1.version


@pytest.mark.parametrize("argument", ["foo.csv", "./tweets", "data/may.jsonl"])
def test_a_missing_file_is_named_not_scored(
    registry_home: RegistryHome, tmp_path: Path, argument: str
) -> None:
    done = run_predict(registry_home, argument, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {argument.removeprefix('./')}: no such file"
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("stdin", "columns"),
    [
        ("good morning, lovely day\n\nworst service ever\n", ["text"]),
        ("id,text\n7,good morning\n8,worst service ever\n", ["id", "text"]),
        ('{"text": "good morning", "id": 7}\n{"text": "worst", "id": 8}\n', ["text", "id"]),
    ],
    ids=["lines", "csv", "jsonl"],
)
def test_stdin_is_read_for_a_dash(
    registry_home: RegistryHome, stdin: str, columns: list[str]
) -> None:
    done = run_predict(registry_home, "-", stdin=stdin)
    assert done.returncode == 0, done.stderr
    scored = pd.read_csv(io.StringIO(done.stdout))
    assert list(scored.columns) == [*columns, *PREDICTION_COLUMNS]
    assert len(scored) == 2
    if "id" in columns:
        assert scored["id"].tolist() == [7, 8]


def test_a_scored_file_keeps_every_input_column(
    registry_home: RegistryHome, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    rows = [
        {"id": 1, "text": "so happy today", "label": "positive", "delta": -0.5},
        {"id": 2, "text": "awful, just awful", "label": "negative", "delta": 2},
    ]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out.jsonl"
    done = run_predict(registry_home, str(source), "--out", str(out))
    assert done.returncode == 0, done.stderr
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert list(scored[0]) == ["id", "text", "label_input", "delta", *PREDICTION_COLUMNS]
    assert [(r["id"], r["label_input"], r["delta"]) for r in scored] == [
        (1, "positive", -0.5),
        (2, "negative", 2),
    ]


def test_predict_out_csv_neutralises_formulas(registry_home: RegistryHome, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    rows = [{"id": -i, "text": text, "delta": -0.25} for i, text in enumerate(INJECTED)]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out.csv"
    done = run_predict(registry_home, str(source), "--out", str(out))
    assert done.returncode == 0, done.stderr
    with out.open(newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [row["text"] for row in written] == ["'" + text for text in INJECTED]
    # Numbers stay numbers: negative ids and deltas are not text to neutralise.
    assert [row["id"] for row in written] == [str(-i) for i in range(len(INJECTED))]
    assert {row["delta"] for row in written} == {"-0.25"}
    assert all(0 <= float(row["score"]) <= 1 for row in written)
