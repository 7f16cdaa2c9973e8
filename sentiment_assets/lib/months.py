"""Calendar-month arithmetic on `date` objects that are always the first of a month."""

from __future__ import annotations

from datetime import date


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def parse_month_range(value: str) -> list[date]:
    """'2009-04-01..2009-06-01' -> the three months, inclusive; a single date is one month."""
    start_text, _, end_text = value.partition("..")
    start = month_start(date.fromisoformat(start_text.strip()))
    end = month_start(date.fromisoformat((end_text or start_text).strip()))
    if end < start:
        raise ValueError(f"month range {value!r}: the end month is before the start month")
    months = [start]
    while months[-1] < end:
        months.append(next_month(months[-1]))
    return months


def trailing_window(month: date, window_months: int, earliest: date) -> list[date]:
    """The `window_months` months ending with `month`, never reaching before `earliest`."""
    if window_months < 1:
        raise ValueError("a training window holds at least one month")
    months = [month]
    while len(months) < window_months and months[0] > earliest:
        months.insert(0, previous_month(months[0]))
    return months
