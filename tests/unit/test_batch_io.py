"""Prediction files (lib/data/batch_io.py): texts from stdin, input columns kept beside the scores,
and CSV written for people with no cell a spreadsheet would evaluate (OWASP's rule)."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from sentiment_assets.lib.data.batch_io import (
    InputFileError,
    neutralise_formula,
    read_text_stream,
    safe_csv,
    with_predictions,
)


@pytest.mark.parametrize(
    "cell",
    ["=1+1", '=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "-", "+"],
)
def test_a_cell_a_spreadsheet_would_evaluate_gets_a_quote(cell: str) -> None:
    assert neutralise_formula(cell) == "'" + cell


@pytest.mark.parametrize(
    "value", ["-5", "+3", "-0.25", "-1e-3", ".5", "hello", "a=b", "", -5, -0.25, None, True]
)
def test_numbers_and_harmless_text_are_left_alone(value: object) -> None:
    assert neutralise_formula(value) == value


def test_safe_csv_neutralises_text_cells_and_headers_but_not_numbers() -> None:
    frame = pd.DataFrame(
        {"=cmd": ["=1+1", "fine"], "score": [-0.5, 0.25], "n": [-3, 4], "id": ["-7", "x"]}
    )
    rows = list(csv.reader(io.StringIO(safe_csv(frame), newline="")))
    assert rows == [
        ["'=cmd", "score", "n", "id"],
        ["'=1+1", "-0.5", "-3", "-7"],
        ["fine", "0.25", "4", "x"],
    ]


def test_safe_csv_keeps_a_row_with_a_carriage_return_whole() -> None:
    frame = pd.DataFrame({"text": ["one\rtwo", "\r=1"], "score": [0.1, 0.9]})
    read_back = pd.read_csv(io.StringIO(safe_csv(frame)))
    assert read_back["text"].tolist() == ["one\rtwo", "'\r=1"]
    assert read_back["score"].tolist() == [0.1, 0.9]


def test_safe_csv_keeps_integers_beside_missing_values_integers() -> None:
    frame = pd.DataFrame([(1, None), (2, 3)], columns=["a", "b"], dtype=object)
    assert safe_csv(frame).splitlines() == ["a,b", "1,", "2,3"]


@pytest.mark.parametrize(
    ("data", "columns", "texts"),
    [
        ("good day\n\n  \nbad day\n", ["text"], ["good day", "bad day"]),
        ("text, with a comma\n", ["text"], ["text, with a comma"]),
        ("id,text\n1,good day\n2,bad day\n", ["id", "text"], ["good day", "bad day"]),
        ('{"text": "good day", "id": 1}\n', ["text", "id"], ["good day"]),
    ],
    ids=["lines", "a line that is not a header", "csv", "jsonl"],
)
def test_stdin_format_is_recognised(data: str, columns: list[str], texts: list[str]) -> None:
    frame = read_text_stream(data)
    assert list(frame.columns) == columns
    assert frame["text"].tolist() == texts


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("", "stdin: no texts"),
        ("  \n\n", "stdin: no texts"),
        ("id,text\n", "stdin: the file has a header but no rows"),
        ('{"tweet": "x"}\n', "stdin: no 'text' column"),
        ('{"text": "x"}\n{broken\n', "stdin: cannot be parsed as JSONL"),
    ],
)
def test_bad_stdin_gets_a_clear_error(data: str, message: str) -> None:
    with pytest.raises(InputFileError, match=f"^{message}"):
        read_text_stream(data)


def test_with_predictions_keeps_every_input_column_and_renames_a_clash() -> None:
    inputs = pd.DataFrame({"id": [3, 4], "text": ["a", "b"], "label": ["positive", "negative"]})
    inputs.index = [10, 11]  # a filtered frame: rows must still line up
    predictions = pd.DataFrame({"label": ["negative", "negative"], "score": [0.2, 0.4]})
    joined = with_predictions(inputs, predictions)
    assert list(joined.columns) == ["id", "text", "label_input", "label", "score"]
    assert joined.to_dict("list") == {
        "id": [3, 4],
        "text": ["a", "b"],
        "label_input": ["positive", "negative"],
        "label": ["negative", "negative"],
        "score": [0.2, 0.4],
    }
