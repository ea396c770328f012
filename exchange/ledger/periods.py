"""Accounting periods: UTC calendar months, spelled ``YYYY-MM`` (they sort as strings)."""

from __future__ import annotations

import datetime as dt
import re

PERIOD = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


def period_of(moment: dt.datetime) -> str:
    """The UTC month a moment falls in."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: the ledger's periods are UTC months")
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m")


def is_period(text: str) -> bool:
    return bool(PERIOD.match(text))


def period_start(period: str) -> dt.datetime:
    year, month = (int(part) for part in period.split("-"))
    return dt.datetime(year, month, 1, tzinfo=dt.timezone.utc)


def period_end(period: str) -> dt.datetime:
    """The first instant after the period (the start of the next month)."""
    start = period_start(period)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return dt.datetime(year, month, 1, tzinfo=dt.timezone.utc)
