"""Calendar-month arithmetic on `date` objects that are always the first of a month."""

from __future__ import annotations

from datetime import date


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, n: int) -> date:
    """The first of the month `n` calendar months after `month`'s (before it when negative)."""
    total = month.year * 12 + (month.month - 1) + n
    return date(total // 12, total % 12 + 1, 1)


def months_between(start: date, month: date) -> int:
    """How many calendar months `month` lies after `start` (negative before it)."""
    return (month.year - start.year) * 12 + (month.month - start.month)


def next_month(month: date) -> date:
    return add_months(month, 1)


def previous_month(month: date) -> date:
    return add_months(month, -1)


def parse_month_range(value: str) -> list[date]:
    """'2009-04-01..2009-06-01' -> the three months, inclusive; a single date is one month."""
    start_text, _, end_text = value.partition("..")
    start = date.fromisoformat(start_text.strip())
    return month_range(start, date.fromisoformat((end_text or start_text).strip()))


def month_range(start: date, end: date) -> list[date]:
    """The months from `start`'s through `end`'s, inclusive."""
    start, end = month_start(start), month_start(end)
    if end < start:
        raise ValueError(f"month range {start}..{end}: the end month is before the start month")
    months = [start]
    while months[-1] < end:
        months.append(next_month(months[-1]))
    return months


def iso_or_empty(day: date | None) -> str:
    """ISO text for a date that may be unknown: "" for None, as an absent tag or field reads."""
    return day.isoformat() if day else ""


def date_or_none(text: str | None) -> date | None:
    """The inverse of iso_or_empty: None for "" or None."""
    return date.fromisoformat(text) if text else None


def trailing_window(month: date, window_months: int, earliest: date) -> list[date]:
    """The `window_months` months ending with `month`, never reaching before `earliest`."""
    if window_months < 1:
        raise ValueError("a training window holds at least one month")
    months = [month]
    while len(months) < window_months and months[0] > earliest:
        months.insert(0, previous_month(months[0]))
    return months
