"""Unit tests for sentiment_assets.lib.data.sources: formats, rejection reasons, row conservation."""

from __future__ import annotations

import json
import os
import shutil
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from sentiment_assets.lib.data import sources
from sentiment_assets.lib.data.landing import file_fingerprint
from sentiment_assets.lib.data.sources import (
    RAW_COLUMNS,
    REJECTED_COLUMNS,
    load_month,
    months_in_source,
    parse_created_at,
)
from sentiment_assets.lib.data.synthetic import SyntheticConfig

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
    sources.clear_cache()
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


def test_file_without_any_date_is_an_error(tmp_path: Path) -> None:
    # Its rows have no month to be recorded under: an error naming the file, not "0 rows".
    path = tmp_path / "nodates.csv"
    path.write_text("text,created_at\nundated,\n")
    with pytest.raises(sources.SourceFileError, match=r"nodates\.csv: no row has a usable date"):
        months_in_source(str(path))
    with pytest.raises(sources.SourceFileError, match=r"missing_date=1"):
        load_month(str(path), date(2024, 1, 1))


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
            "Mon Apr 06 21:05:09 PDT 2009",
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
        pd.Timestamp("2009-04-06 21:05:09"),
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
    sources.clear_cache()
    months = months_in_source(REAL_CSV)
    assert months == [date(2009, 4, 1), date(2009, 5, 1), date(2009, 6, 1)]
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


# --- every row and every file accounted for (issue 11) ------------------------------------------

JAN, FEB, MAR, APR = (date(2024, m, 1) for m in (1, 2, 3, 4))
# Bytes no tweet file starts with: a PNG signature, NULs and undecodable bytes.
BINARY = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40 + b"\n\x00\xff\xfe\n" * 20


@pytest.mark.parametrize("name", ["blob.csv", "blob.jsonl", "blob.parquet"])
def test_binary_file_is_an_error_naming_it(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(BINARY)
    with pytest.raises(sources.SourceFileError, match=name) as raised:
        load_month(str(path), JAN)
    assert list(raised.value.problems) == [str(path)]
    with pytest.raises(sources.SourceFileError, match=name):
        months_in_source(str(path))


def test_csv_with_the_wrong_columns_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("a,b,c\n1,2,3\n4,5,6\n")
    with pytest.raises(sources.SourceFileError, match=r"wrong\.csv.*(text|Sentiment140)"):
        load_month(str(path), JAN)
    # Six columns look like Sentiment140 without a header, but no row has a usable date.
    six = tmp_path / "six.csv"
    six.write_text("a,b,c,d,e,f\n1,2,3,4,5,6\n")
    with pytest.raises(sources.SourceFileError, match=r"six\.csv.*date"):
        months_in_source(str(six))


@pytest.mark.parametrize("content", [b"", b"\n\n", b"text,created_at\n"], ids=repr)
def test_file_without_data_rows_is_an_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(sources.SourceFileError, match=r"empty\.csv.*no data rows"):
        load_month(str(path), JAN)


def test_one_bad_file_in_a_folder_names_it_and_only_it(tmp_path: Path) -> None:
    shutil.copy(GENERIC, tmp_path / "good.csv")
    (tmp_path / "bad.jsonl").write_bytes(BINARY)
    (tmp_path / "worse.csv").write_text("")
    with pytest.raises(sources.SourceFileError) as raised:
        load_month(str(tmp_path), MAR)
    assert sorted(Path(p).name for p in raised.value.problems) == ["bad.jsonl", "worse.csv"]


def test_per_file_counts_add_up(tmp_path: Path) -> None:
    shutil.copy(GENERIC, tmp_path / "a.csv")
    shutil.copy(JSONL, tmp_path / "b.jsonl")
    totals: dict[str, int] = {}
    for month in months_in_source(str(tmp_path)):
        result = load_month(str(tmp_path), month)
        files = result.files
        assert list(files.columns) == sources.FILE_COLUMNS
        assert (files["month"] == month).all()
        assert (files["rows"] == files["accepted"] + files["rejected"]).all()
        assert int(files["rows"].sum()) == result.rows_in
        assert int(files["accepted"].sum()) == len(result.accepted)
        for row in files.to_dict("records"):
            assert row["fingerprint"] == file_fingerprint(Path(row["file"]))
            totals[Path(row["file"]).name] = totals.get(Path(row["file"]).name, 0) + row["rows"]
    assert totals == {"a.csv": DATA_ROWS[GENERIC], "b.jsonl": DATA_ROWS[JSONL]}

    march = load_month(str(tmp_path / "a.csv"), MAR).files.iloc[0]
    assert (march["rows"], march["accepted"], march["rejected"]) == (7, 4, 3)
    assert march["status"] == "loaded_with_rejects"
    assert march["reason"] == "bad_label=1, malformed_row=1, unparseable_date=1"
    april = load_month(str(tmp_path / "a.csv"), APR).files.iloc[0]
    assert (april["status"], april["reason"]) == ("loaded", None)


def test_synthetic_source_has_one_file_row() -> None:
    config = SyntheticConfig(seed=3, n_months=1, tweets_per_month=50, bad_row_rate=0.1)
    result = load_month("synthetic", JAN, synthetic=config)
    assert result.files[["file", "rows", "accepted", "rejected"]].values.tolist() == [
        ["synthetic", 50, len(result.accepted), len(result.rejected)]
    ]


def _dated_rows(path: Path, dates: list[str]) -> None:
    lines = ["text,created_at,label"] + [f"tweet {i},{d},1" for i, d in enumerate(dates, 1)]
    path.write_text("\n".join(lines) + "\n")


def test_rows_outside_the_plausible_window_are_rejected_not_months(tmp_path: Path) -> None:
    path = tmp_path / "dates.csv"
    _dated_rows(
        path,
        ["2024-03-05", "1970-01-01", "2024-04-02", "2099-12-31", "2024-05-01", "2024-02-29"],
    )
    window = {"earliest": MAR, "latest": APR}
    # Without a window, every dated month is a month: today's behaviour.
    assert months_in_source(str(path)) == [
        date(1970, 1, 1),
        FEB,
        MAR,
        APR,
        date(2024, 5, 1),
        date(2099, 12, 1),
    ]
    assert months_in_source(str(path), **window) == [MAR, APR]
    march = load_month(str(path), MAR, **window)
    # Out-of-range rows have no month of their own: they go to the file's earliest month in
    # the window, like undated rows, so they are counted exactly once whichever month loads.
    assert march.accepted["source_row"].tolist() == [1]
    assert march.rejected[["source_row", "reason"]].values.tolist() == [
        [2, "date_out_of_range"],
        [4, "date_out_of_range"],
        [5, "date_out_of_range"],
        [6, "date_out_of_range"],
    ]
    assert set(march.rejected["month"]) == {MAR}
    assert json.loads(march.rejected["raw_record"].iloc[0])["created_at"] == "1970-01-01"
    assert march.files[["rows", "accepted", "rejected"]].values.tolist() == [[5, 1, 4]]
    april = load_month(str(path), APR, **window)
    assert april.accepted["source_row"].tolist() == [3] and april.rejected.empty
    # Only a bound that is given applies.
    assert months_in_source(str(path), latest=APR)[0] == date(1970, 1, 1)
    assert months_in_source(str(path), earliest=MAR)[-1] == date(2099, 12, 1)


def test_a_file_with_no_row_in_the_window_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "old.csv"
    _dated_rows(path, ["1999-01-01", "1999-02-01"])
    with pytest.raises(sources.SourceFileError, match=r"old\.csv.*2024-03.*2024-04"):
        months_in_source(str(path), earliest=MAR, latest=APR)
    # In a folder, such a file's rows borrow the folder's earliest month in the window.
    _dated_rows(tmp_path / "new.csv", ["2024-04-10"])
    assert months_in_source(str(tmp_path), earliest=MAR, latest=APR) == [APR]
    rejected = load_month(str(tmp_path), APR, earliest=MAR, latest=APR).rejected
    assert rejected["reason"].tolist() == ["date_out_of_range"] * 2


def test_a_200000_character_field_is_text_too_long(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(f"text,created_at\n{'x' * 200_000},2024-01-05\nshort,2024-01-06\n")
    result = load_month(str(path), JAN)
    assert result.rejected[["source_row", "reason"]].values.tolist() == [[1, "text_too_long"]]
    assert result.accepted["text"].tolist() == ["short"]


def test_an_unterminated_quote_costs_one_row(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text(
        "text,created_at,label\n"
        "fine before,2024-01-01,1\n"
        '"never closed,2024-01-02,0\n'
        "fine after,2024-01-03,1\n"
        '"a quoted, multi\nline text",2024-01-04,0\n'
        "last one,2024-01-05,1\n"
    )
    result = load_month(str(path), JAN)
    assert result.rejected[["source_row", "reason"]].values.tolist() == [[2, "malformed_row"]]
    assert "never closed" in result.rejected["raw_record"].iloc[0]
    assert result.accepted["text"].tolist() == [
        "fine before",
        "fine after",
        "a quoted, multi\nline text",
        "last one",
    ]
    assert result.accepted["source_row"].tolist() == [1, 3, 4, 5]


def test_an_unterminated_quote_in_a_headerless_sentiment140_file(tmp_path: Path) -> None:
    path = tmp_path / "s140.csv"
    path.write_text(
        '"0","1","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","a","one"\n'
        '"4","2","Mon Apr 06 22:19:46 PDT 2009","NO_QUERY","b","never closed\n'
        '"4","3","Mon Apr 06 22:19:47 PDT 2009","NO_QUERY","c","three"\n'
    )
    result = load_month(str(path), date(2009, 4, 1))
    assert result.accepted["tweet_id"].tolist() == ["1", "3"]
    assert result.rejected[["source_row", "reason"]].values.tolist() == [[2, "malformed_row"]]


def test_a_list_typed_text_column_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "lists.parquet"
    pd.DataFrame(
        {
            "created_at": pd.to_datetime(["2024-01-02", "2024-01-03"]),
            "text": [["a", "b"], ["c"]],
        }
    ).to_parquet(path)
    result = load_month(str(path), JAN)
    assert result.accepted.empty
    assert result.rejected["reason"].tolist() == ["bad_text_type"] * 2
    assert json.loads(json.loads(result.rejected["raw_record"].iloc[0])["text"]) == ["a", "b"]

    jsonl = tmp_path / "types.jsonl"
    jsonl.write_text(
        '{"created_at": "2024-01-02", "text": ["a", "b"]}\n'
        '{"created_at": "2024-01-02", "text": {"nested": 1}}\n'
        '{"created_at": "2024-01-02", "text": 42}\n'
        '{"created_at": "2024-01-02", "text": "a real tweet"}\n'
    )
    result = load_month(str(jsonl), JAN)
    assert result.rejected["reason"].tolist() == ["bad_text_type"] * 3
    assert result.accepted["text"].tolist() == ["a real tweet"]


def test_a_files_months_are_remembered_across_processes_until_it_changes(tmp_path: Path) -> None:
    source, record = tmp_path / "tweets.csv", tmp_path / "home" / "source_months.json"

    def write(created_at: str) -> None:
        pd.DataFrame({"created_at": [created_at], "text": ["hello"], "label": ["4"]}).to_csv(
            source, index=False
        )

    def months() -> list[date]:
        sources.clear_cache()  # a new process: nothing remembered in memory
        return sources.file_months_remembered(
            source, record, earliest=date(2000, 1, 1), latest=date(2030, 1, 1)
        )

    write("2024-01-05")
    assert months() == [date(2024, 1, 1)]
    stamp = source.stat().st_mtime_ns
    # Same size and mtime, other bytes: the record answers, so the file was not read.
    write("2024-02-05")
    os.utime(source, ns=(stamp, stamp))
    assert months() == [date(2024, 1, 1)]
    # A new mtime is a changed file: read again, and its old entry replaced.
    os.utime(source, ns=(stamp + 10**9, stamp + 10**9))
    assert months() == [date(2024, 2, 1)]
    assert len(json.loads(record.read_text())) == 1


def test_the_synthetic_source_generates_only_its_configured_months() -> None:
    config = SyntheticConfig(seed=3, n_months=2, tweets_per_month=50)
    assert load_month("synthetic", date(2024, 2, 1), synthetic=config).rows_in == 50
    for outside in (date(2023, 12, 1), date(2024, 3, 1), date(2026, 12, 1)):
        result = load_month("synthetic", outside, synthetic=config)
        assert result.rows_in == 0 and result.accepted.empty and result.rejected.empty
