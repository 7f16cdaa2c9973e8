from datetime import date

import pytest

from sentiment_assets.lib.core.months import (
    date_or_none,
    iso_or_empty,
    next_month,
    parse_month_range,
    previous_month,
    trailing_window,
)


def test_month_arithmetic_crosses_year_boundaries():
    assert next_month(date(2024, 12, 1)) == date(2025, 1, 1)
    assert previous_month(date(2025, 1, 1)) == date(2024, 12, 1)
    assert previous_month(next_month(date(2009, 6, 1))) == date(2009, 6, 1)


def test_parse_month_range_is_inclusive():
    assert parse_month_range("2009-04-01..2009-06-01") == [
        date(2009, 4, 1),
        date(2009, 5, 1),
        date(2009, 6, 1),
    ]
    assert parse_month_range("2024-02-15") == [date(2024, 2, 1)]
    with pytest.raises(ValueError, match="before the start"):
        parse_month_range("2024-05-01..2024-01-01")


def test_trailing_window_stops_at_the_first_month():
    first = date(2024, 1, 1)
    assert trailing_window(date(2024, 4, 1), 3, first) == [
        date(2024, 2, 1),
        date(2024, 3, 1),
        date(2024, 4, 1),
    ]
    assert trailing_window(date(2024, 2, 1), 3, first) == [date(2024, 1, 1), date(2024, 2, 1)]
    with pytest.raises(ValueError):
        trailing_window(first, 0, first)


def test_an_unknown_date_is_empty_text_and_back():
    assert iso_or_empty(date(2024, 3, 1)) == "2024-03-01"
    assert date_or_none("2024-03-01") == date(2024, 3, 1)
    assert (iso_or_empty(None), date_or_none(""), date_or_none(None)) == ("", None, None)
