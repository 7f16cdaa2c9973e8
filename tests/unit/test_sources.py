"""Unit tests for sentiment_assets.lib.sources: formats, rejection reasons, row conservation."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from sentiment_assets.lib import sources
from sentiment_assets.lib.sources import (
    RAW_COLUMNS,
    REJECTED_COLUMNS,
    load_month,
    months_in_source,
    parse_created_at,
)
from sentiment_assets.lib.synthetic import SyntheticConfig

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
S140_NOHEADER = FIXTURES / "src_s140_noheader.csv"
S140_HEADER = FIXTURES / "src_s140_header.csv"
GENERIC = FIXTURES / "src_generic.csv"
GENERIC_NOLABEL = FIXTURES / "src_generic_nolabel.csv"
JSONL = FIXTURES / "src_tweets.jsonl"

# Data rows per fixture (blank lines and header lines excluded), counted by hand.
DATA_ROWS = {S140_NOHEADER: 13, S140_HEADER: 3, GENERIC: 9, GENERIC_NOLABEL: 2, JSONL: 9}


def _by_row(result: sources.IngestResult) -> tuple[dict[int, dict], dict[int, str]]:
    accepted = {int(r["source_row"]): r for r in result.accepted.to_dict("records")}
    rejected = {int(r["source_row"]): r["reason"] for r in result.rejected.to_dict("records")}
    return accepted, rejected


def _everything(path: Path) -> tuple[dict[int, dict], dict[int, tuple[date, str]]]:
    accepted: dict[int, dict] = {}
    rejected: dict[int, tuple[date, str]] = {}
    for month in months_in_source(str(path)):
        result = load_month(str(path), month)
        assert result.rows_in == len(result.accepted) + len(result.rejected)
        assert list(result.accepted.columns) == RAW_COLUMNS
        assert list(result.rejected.columns) == REJECTED_COLUMNS
        for row in result.accepted.to_dict("records"):
            assert row["month"] == month
            accepted[int(row["source_row"])] = row
        for row in result.rejected.to_dict("records"):
            assert row["month"] == month
            rejected[int(row["source_row"])] = (row["month"], row["reason"])
    return accepted, rejected


@pytest.mark.parametrize("path", list(DATA_ROWS), ids=lambda p: p.name)
def test_every_data_row_lands_exactly_once(path: Path) -> None:
    accepted, rejected = _everything(path)
    assert not set(accepted) & set(rejected)
    assert sorted([*accepted, *rejected]) == list(range(1, DATA_ROWS[path] + 1))


def test_sentiment140_without_header_reasons_and_attribution() -> None:
    accepted, rejected = _everything(S140_NOHEADER)
    april, may = date(2009, 4, 1), date(2009, 5, 1)
    assert months_in_source(str(S140_NOHEADER)) == [april, may]
    assert sorted(accepted) == [1, 2, 3, 11, 13]
    assert rejected == {
        # Rows without a trustworthy date go to the file's earliest month (April), even the
        # malformed row whose date field says May.
        4: (april, "malformed_row"),
        5: (april, "missing_date"),
        6: (april, "unparseable_date"),
        12: (april, "invalid_encoding"),
        7: (may, "empty_text"),
        8: (may, "bad_label"),
        9: (may, "bad_label"),  # an empty polarity is an error in Sentiment140's layout
        10: (may, "text_too_long"),
    }
    first = accepted[1]
    assert first["tweet_id"] == "101"
    assert first["created_at"] == pd.Timestamp("2009-04-06 21:05:30")  # PDT kept as written
    assert first["label_raw"] == "0"
    assert first["user_name"] == "alice"
    assert accepted[3]["created_at"] == pd.Timestamp("2009-05-01 09:00:00")  # UTC zone name too
    assert accepted[11]["label_raw"] == "2"  # neutral is kept; it maps to NULL downstream
    assert accepted[13]["text"] == "naïve café ☕ is fine"  # valid UTF-8 survives untouched
    assert accepted[2]["text"] == "@coachpat swam three laps &amp; loved it"  # not unescaped


def test_raw_records_keep_the_original_fields() -> None:
    result = load_month(str(S140_NOHEADER), date(2009, 4, 1))
    raw = dict(zip(result.rejected["source_row"], result.rejected["raw_record"], strict=True))
    assert json.loads(raw[5]) == {
        "polarity": "2",
        "id": "105",
        "date": "",
        "query": "NO_QUERY",
        "user": "erin",
        "text": "no date here",
    }
    assert json.loads(raw[4])["user"] == "dave"  # malformed: the 5 fields it had
    # The undecodable row comes back as its line, the bad byte escaped.
    assert "caf\\xe9 written as latin-1" in raw[12]
    assert result.rejected["source"].unique().tolist() == [str(S140_NOHEADER)]


def test_text_too_long_threshold_is_a_parameter() -> None:
    strict = load_month(str(S140_HEADER), date(2009, 6, 1), max_text_chars=20)
    assert strict.rejected[["source_row", "reason"]].values.tolist() == [
        [1, "text_too_long"],  # 29 characters
        [3, "text_too_long"],  # 22 characters
    ]
    assert strict.accepted["tweet_id"].tolist() == ["2002"]  # exactly 20 characters is fine
    lenient = load_month(str(S140_HEADER), date(2009, 6, 1))
    assert len(lenient.accepted) == 3 and lenient.rejected.empty


def test_sentiment140_with_kaggle_header() -> None:
    result = load_month(str(S140_HEADER), date(2009, 6, 1))
    accepted, rejected = _by_row(result)
    assert rejected == {}
    assert [accepted[i]["tweet_id"] for i in (1, 2, 3)] == ["2001", "2002", "2003"]
    assert accepted[2]["text"] == 'hello, "world" &lt;3'  # quoted comma and doubled quotes
    assert accepted[1]["text"] == "@someone my phone died again "  # as given, not stripped
    assert accepted[1]["label_raw"] == "0" and accepted[2]["label_raw"] == "4"


def test_generic_csv_aliases_labels_ids_and_offsets() -> None:
    accepted, rejected = _everything(GENERIC)
    march, april = date(2024, 3, 1), date(2024, 4, 1)
    assert months_in_source(str(GENERIC)) == [march, april]
    assert rejected == {
        5: (march, "bad_label"),
        7: (march, "malformed_row"),
        8: (march, "unparseable_date"),
    }
    assert accepted[1]["label_raw"] == "positive"  # 'Positive' normalised
    # -02:00 offset converted to UTC, which moves the row into April.
    assert accepted[2]["created_at"] == pd.Timestamp("2024-04-01 01:30:00")
    assert accepted[2]["month"] == april
    assert accepted[3]["label_raw"] == "neutral"  # '  NEUTRAL ' stripped and lower-cased
    assert accepted[3]["created_at"] == pd.Timestamp("2024-03-15")  # date without time
    assert accepted[3]["user_name"] is None
    assert accepted[3]["tweet_id"].startswith("h")  # no id in the file: content hash
    assert accepted[4]["label_raw"] is None  # empty label in a generic file: unlabelled
    assert accepted[4]["created_at"] == pd.Timestamp("2024-03-16 10:00:00")  # Z = UTC
    assert accepted[6]["text"] == "multi\nline text, with comma"
    assert accepted[6]["label_raw"] == "1"


def test_content_hash_ids_are_stable_and_distinct() -> None:
    ids_first = load_month(str(GENERIC_NOLABEL), date(2024, 7, 1)).accepted["tweet_id"].tolist()
    sources._parse_file.cache_clear()
    ids_again = load_month(str(GENERIC_NOLABEL), date(2024, 7, 1)).accepted["tweet_id"].tolist()
    assert ids_first == ids_again
    assert len(set(ids_first)) == 2


def test_missing_label_column_means_null_labels() -> None:
    result = load_month(str(GENERIC_NOLABEL), date(2024, 7, 1))
    assert result.rejected.empty
    assert result.accepted["label_raw"].isna().all()
    assert result.accepted["user_name"].tolist() == ["ola", None]


def test_jsonl_reasons_types_and_blank_lines() -> None:
    accepted, rejected = _everything(JSONL)
    may, june = date(2024, 5, 1), date(2024, 6, 1)
    assert months_in_source(str(JSONL)) == [may, june]
    # Row numbers skip the blank line: it is not a data row.
    assert rejected == {
        3: (may, "malformed_row"),  # invalid JSON
        4: (may, "malformed_row"),  # valid JSON but not an object
        5: (may, "invalid_encoding"),
        6: (may, "empty_text"),  # text: null
        7: (may, "missing_date"),  # created_at: null
    }
    assert accepted[1]["tweet_id"] == "1"  # integer id becomes its string
    assert accepted[1]["label_raw"] == "4"  # integer label too
    assert accepted[1]["user_name"] == "hal"
    assert accepted[8]["tweet_id"] == "j9"
    assert accepted[8]["created_at"] == pd.Timestamp("2024-05-31 22:30:00")  # +02:00 -> UTC
    assert accepted[9]["month"] == june and accepted[9]["label_raw"] == "neutral"


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "tweets.parquet"
    pd.DataFrame(
        {
            "tweet_id": ["p1", "p2", "p3", "p4"],
            "created_at": pd.to_datetime(
                ["2024-08-01 10:00", "2024-08-02 11:00", None, "2024-09-03 12:00"]
            ),
            "text": ["parquet one", "parquet two", "parquet undated", "  "],
            "label": [0.0, None, 4.0, 4.0],  # float because of the null, like real exports
            "user": ["u1", None, "u3", "u4"],
        }
    ).to_parquet(path)
    assert months_in_source(str(path)) == [date(2024, 8, 1), date(2024, 9, 1)]
    august = load_month(str(path), date(2024, 8, 1))
    assert august.accepted["tweet_id"].tolist() == ["p1", "p2"]
    assert august.accepted["label_raw"].tolist() == ["0", None]
    assert august.accepted["created_at"].tolist() == [
        pd.Timestamp("2024-08-01 10:00"),
        pd.Timestamp("2024-08-02 11:00"),
    ]
    assert august.rejected[["source_row", "reason"]].values.tolist() == [[3, "missing_date"]]
    september = load_month(str(path), date(2024, 9, 1))
    assert september.rejected["reason"].tolist() == ["empty_text"]


def test_directory_and_glob_sources(tmp_path: Path) -> None:
    shutil.copy(GENERIC, tmp_path / "a.csv")
    shutil.copy(JSONL, tmp_path / "b.jsonl")
    (tmp_path / "README.md").write_text("not data")
    (tmp_path / "c.csv").write_text("text,created_at\nundated only,\nstill undated,  \n")
    expected = [date(2024, 3, 1), date(2024, 4, 1), date(2024, 5, 1), date(2024, 6, 1)]
    assert months_in_source(str(tmp_path)) == expected
    assert months_in_source(str(tmp_path / "*.*")) == expected
    total = 0
    per_source: dict[str, int] = {}
    for month in expected:
        result = load_month(str(tmp_path), month)
        total += result.rows_in
        for frame in (result.accepted, result.rejected):
            for name, count in frame["source"].value_counts().items():
                per_source[Path(name).name] = per_source.get(Path(name).name, 0) + count
    assert per_source == {"a.csv": 9, "b.jsonl": 9, "c.csv": 2}
    assert total == 20
    # c.csv has no date at all: its rows borrow the earliest month of the whole source.
    march = load_month(str(tmp_path), date(2024, 3, 1)).rejected
    assert (march["source"].str.endswith("c.csv")).sum() == 2


def test_file_without_any_date_warns(tmp_path: Path) -> None:
    path = tmp_path / "nodates.csv"
    path.write_text("text,created_at\nundated,\n")
    with pytest.warns(UserWarning, match="no usable date"):
        assert months_in_source(str(path)) == []


def test_bad_inputs_raise(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        months_in_source(str(tmp_path / "missing.csv"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="unsupported"):
        months_in_source(str(tmp_path / "notes.txt"))
    (tmp_path / "nodate.csv").write_text("text,label\nhello,1\n")
    with pytest.raises(ValueError, match="created_at"):
        months_in_source(str(tmp_path / "nodate.csv"))
    assert months_in_source(str(tmp_path / "*.jsonl")) == []  # a glob may match nothing


def test_rewritten_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "landing.csv"
    path.write_text("text,created_at\nfirst,2024-01-05\n")
    assert months_in_source(str(path)) == [date(2024, 1, 1)]
    path.write_text("text,created_at\nfirst,2024-01-05\nsecond file version,2024-02-05\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert months_in_source(str(path)) == [date(2024, 1, 1), date(2024, 2, 1)]


def test_crlf_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "windows.csv"
    path.write_bytes(
        b"\xef\xbb\xbftext,created_at,label\r\nwindows line,2024-01-05 10:00:00,Negative\r\n"
    )
    result = load_month(str(path), date(2024, 1, 1))
    assert result.rejected.empty
    assert result.accepted[["text", "label_raw"]].values.tolist() == [["windows line", "negative"]]


def test_parse_created_at_formats() -> None:
    parsed = parse_created_at(
        [
            "Mon Apr 06 23:11:14 PDT 2009",
            "Sat Jun 13 01:02:03 CEST 2009",
            "2024-01-05",
            "2024-01-05T10:00:00+02:00",
            "2024-01-05 10:00:00",
            "yesterday",
            "",
            None,
            "2024-02-30 10:00:00",
        ]
    )
    assert parsed.tolist()[:5] == [
        pd.Timestamp("2009-04-06 23:11:14"),
        pd.Timestamp("2009-06-13 01:02:03"),
        pd.Timestamp("2024-01-05"),
        pd.Timestamp("2024-01-05 08:00:00"),
        pd.Timestamp("2024-01-05 10:00:00"),
    ]
    assert parsed.iloc[5:].isna().all()


def test_synthetic_source_matches_generator_and_quarantines_bad_rows() -> None:
    config = SyntheticConfig(seed=3, n_months=2, tweets_per_month=500, bad_row_rate=0.04)
    assert months_in_source("synthetic", synthetic=config) == [date(2024, 1, 1), date(2024, 2, 1)]
    result = load_month("synthetic", date(2024, 2, 14), synthetic=config)
    assert result.rows_in == 500
    assert result.rejected["reason"].value_counts().to_dict() == {
        reason: 4
        for reason in (
            "empty_text",
            "missing_date",
            "unparseable_date",
            "bad_label",
            "text_too_long",
        )
    }
    assert set(result.rejected["month"]) == {date(2024, 2, 1)}
    assert (result.accepted["source"] == "synthetic").all()
    assert set(result.accepted["label_raw"]) == {"0", "4"}
    assert result.accepted["created_at"].between(datetime(2024, 2, 1), datetime(2024, 3, 1)).all()
    clean = SyntheticConfig(seed=3, n_months=2, tweets_per_month=500, bad_row_rate=0.0)
    assert load_month("synthetic", date(2024, 2, 1), synthetic=clean).rejected.empty


def test_synthetic_source_needs_its_config() -> None:
    with pytest.raises(ValueError, match="SyntheticConfig"):
        load_month("synthetic", date(2024, 1, 1))
    with pytest.raises(ValueError, match="SyntheticConfig"):
        months_in_source("synthetic")


# --- the real Sentiment140 files (path from the environment, never copied into the repo) --------

REAL_CSV = os.environ.get("SENTIMENT140_CSV")
needs_real = pytest.mark.skipif(
    not REAL_CSV, reason="set SENTIMENT140_CSV to the path of sentiment140_sample.csv"
)


@pytest.mark.real_data
@needs_real
def test_real_sentiment140_sample() -> None:
    assert REAL_CSV is not None
    sources._parse_file.cache_clear()
    started = time.perf_counter()
    months = months_in_source(REAL_CSV)
    first_read = time.perf_counter() - started
    assert months == [date(2009, 4, 1), date(2009, 5, 1), date(2009, 6, 1)]
    assert first_read < 2.0
    counts = {}
    negatives = {}
    for month in months:
        result = load_month(REAL_CSV, month)
        assert result.rejected.empty
        counts[month] = len(result.accepted)
        negatives[month] = int((result.accepted["label_raw"] == "0").sum())
    assert list(counts.values()) == [1228, 7297, 11475]
    assert list(negatives.values()) == [503, 2804, 6635]  # the data README's month x label table
    may = load_month(REAL_CSV, date(2009, 5, 1)).accepted
    # The one contradictory duplicate of the sample is kept here; dbt removes it.
    assert sorted(may.loc[may["tweet_id"] == "1835531233", "label_raw"]) == ["0", "4"]


@pytest.mark.real_data
@needs_real
def test_real_sentiment140_test_set() -> None:
    assert REAL_CSV is not None
    path = Path(REAL_CSV).with_name("sentiment140_test.csv")
    if not path.exists():
        pytest.skip(f"{path} not found next to SENTIMENT140_CSV")
    months = months_in_source(str(path))
    assert months == [date(2009, 5, 1), date(2009, 6, 1)]
    results = [load_month(str(path), m) for m in months]
    assert [len(r.accepted) for r in results] == [248, 250]
    assert all(r.rejected.empty for r in results)
    labels = pd.concat([r.accepted for r in results])["label_raw"].value_counts().to_dict()
    assert labels == {"0": 177, "2": 139, "4": 182}
