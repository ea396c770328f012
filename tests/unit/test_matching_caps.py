"""Cap windows on the campaign's wall clock: local midnight, DST days, Monday weeks, months."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.matching import Cap, CapWindow, cap_reason, validate_caps, window_bounds, window_key
from exchange.matching.caps import TIME_WINDOWS, cap_breach

UTC = dt.timezone.utc
NY = "America/New_York"
HOUR, DAY, WEEK, MONTH = CapWindow.HOUR, CapWindow.DAY, CapWindow.WEEK, CapWindow.MONTH


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "now", "key", "start", "end"),
    [
        # An ordinary day: local midnight is 05:00 UTC in EST.
        (DAY, utc(2026, 11, 23, 15, 0), "day:2026-11-23", utc(2026, 11, 23, 5), utc(2026, 11, 24, 5)),
        # Resets at LOCAL midnight: UTC midnight is still the 23rd in New York.
        (DAY, utc(2026, 11, 24, 0, 0), "day:2026-11-23", utc(2026, 11, 23, 5), utc(2026, 11, 24, 5)),
        (DAY, utc(2026, 11, 24, 4, 59), "day:2026-11-23", utc(2026, 11, 23, 5), utc(2026, 11, 24, 5)),
        (DAY, utc(2026, 11, 24, 5, 0), "day:2026-11-24", utc(2026, 11, 24, 5), utc(2026, 11, 25, 5)),
        # Spring forward, 2026-03-08: a 23-hour day.
        (DAY, utc(2026, 3, 8, 12, 0), "day:2026-03-08", utc(2026, 3, 8, 5), utc(2026, 3, 9, 4)),
        (DAY, utc(2026, 3, 9, 3, 59), "day:2026-03-08", utc(2026, 3, 8, 5), utc(2026, 3, 9, 4)),
        (DAY, utc(2026, 3, 9, 4, 0), "day:2026-03-09", utc(2026, 3, 9, 4), utc(2026, 3, 10, 4)),
        # Fall back, 2026-11-01: a 25-hour day.
        (DAY, utc(2026, 11, 1, 12, 0), "day:2026-11-01", utc(2026, 11, 1, 4), utc(2026, 11, 2, 5)),
        (DAY, utc(2026, 11, 2, 4, 59), "day:2026-11-01", utc(2026, 11, 1, 4), utc(2026, 11, 2, 5)),
        # Hours: the repeated 01:00 on 2026-11-01 is two windows, told apart by their offset.
        (HOUR, utc(2026, 11, 1, 5, 30), "hour:2026-11-01T01:00-04:00", utc(2026, 11, 1, 5), utc(2026, 11, 1, 6)),
        (HOUR, utc(2026, 11, 1, 6, 30), "hour:2026-11-01T01:00-05:00", utc(2026, 11, 1, 6), utc(2026, 11, 1, 7)),
        (HOUR, utc(2026, 11, 1, 7, 0), "hour:2026-11-01T02:00-05:00", utc(2026, 11, 1, 7), utc(2026, 11, 1, 8)),
        # ... and 02:00 never happens on 2026-03-08: 01:00 EST is followed by 03:00 EDT.
        (HOUR, utc(2026, 3, 8, 6, 59), "hour:2026-03-08T01:00-05:00", utc(2026, 3, 8, 6), utc(2026, 3, 8, 7)),
        (HOUR, utc(2026, 3, 8, 7, 0), "hour:2026-03-08T03:00-04:00", utc(2026, 3, 8, 7), utc(2026, 3, 8, 8)),
        # Weeks start on Monday at local midnight.
        (WEEK, utc(2026, 11, 29, 12, 0), "week:2026-11-23", utc(2026, 11, 23, 5), utc(2026, 11, 30, 5)),
        (WEEK, utc(2026, 11, 30, 4, 59), "week:2026-11-23", utc(2026, 11, 23, 5), utc(2026, 11, 30, 5)),
        (WEEK, utc(2026, 11, 30, 5, 0), "week:2026-11-30", utc(2026, 11, 30, 5), utc(2026, 12, 7, 5)),
        (WEEK, utc(2026, 11, 23, 5, 0), "week:2026-11-23", utc(2026, 11, 23, 5), utc(2026, 11, 30, 5)),
        # The week holding the spring-forward Sunday is an hour short.
        (WEEK, utc(2026, 3, 8, 12, 0), "week:2026-03-02", utc(2026, 3, 2, 5), utc(2026, 3, 9, 4)),
        # Months: local midnight on the 1st, across a DST change and a year end.
        (MONTH, utc(2026, 11, 15, 12, 0), "month:2026-11", utc(2026, 11, 1, 4), utc(2026, 12, 1, 5)),
        (MONTH, utc(2026, 12, 1, 4, 59), "month:2026-11", utc(2026, 11, 1, 4), utc(2026, 12, 1, 5)),
        (MONTH, utc(2026, 12, 1, 5, 0), "month:2026-12", utc(2026, 12, 1, 5), utc(2027, 1, 1, 5)),
        (MONTH, utc(2026, 2, 10, 12, 0), "month:2026-02", utc(2026, 2, 1, 5), utc(2026, 3, 1, 5)),
    ],
)
def test_windows_in_new_york(
    window: CapWindow, now: dt.datetime, key: str, start: dt.datetime, end: dt.datetime
) -> None:
    assert window_key(window, NY, now) == key
    assert window_bounds(window, NY, now) == (start, end)


def test_day_lengths_on_dst_days() -> None:
    spring = window_bounds(DAY, NY, utc(2026, 3, 8, 12))
    fall = window_bounds(DAY, NY, utc(2026, 11, 1, 12))
    assert spring[1] - spring[0] == dt.timedelta(hours=23)
    assert fall[1] - fall[0] == dt.timedelta(hours=25)


def test_half_hour_offset_zone() -> None:
    now = utc(2026, 11, 23, 15, 0)  # 20:30 in Kolkata (+05:30)
    assert window_key(HOUR, "Asia/Kolkata", now) == "hour:2026-11-23T20:00+05:30"
    assert window_bounds(HOUR, "Asia/Kolkata", now) == (utc(2026, 11, 23, 14, 30), utc(2026, 11, 23, 15, 30))
    assert window_key(DAY, "Asia/Kolkata", utc(2026, 11, 23, 18, 30)) == "day:2026-11-24"


def test_windows_ignore_the_system_clock() -> None:
    with freeze_time("2031-06-01 12:00:00"):
        assert window_key(DAY, NY, utc(2026, 11, 24, 4, 59)) == "day:2026-11-23"


DAILY_10 = Cap(window=DAY, max_count=10)
DAILY_100_DOLLARS = Cap(window=DAY, max_spend_minor=10_000)
NOW = utc(2026, 11, 23, 15, 0)


@pytest.mark.parametrize(
    ("caps", "usage", "price", "expected"),
    [
        ([DAILY_10], {}, 100, None),
        ([DAILY_10], {"day:2026-11-23": (9, 0)}, 100, None),
        ([DAILY_10], {"day:2026-11-23": (10, 0)}, 100, "cap_reached:day"),
        ([DAILY_10], {"day:2026-11-22": (10, 0)}, 100, None),  # yesterday's usage does not count
        ([Cap(window=DAY, max_count=0)], {}, 100, "cap_reached:day"),
        ([DAILY_100_DOLLARS], {"day:2026-11-23": (3, 9_000)}, 1_000, None),  # lands exactly on it
        ([DAILY_100_DOLLARS], {"day:2026-11-23": (3, 9_000)}, 1_001, "budget_reached:day"),
        ([DAILY_100_DOLLARS], {"day:2026-11-23": (3, 10_000)}, 0, "budget_reached:day"),
        ([Cap(window=HOUR, max_count=1)], {"hour:2026-11-23T10:00-05:00": (1, 0)}, 0, "cap_reached:hour"),
        ([Cap(window=WEEK, max_count=5)], {"week:2026-11-23": (5, 0)}, 0, "cap_reached:week"),
        ([Cap(window=MONTH, max_spend_minor=50)], {"month:2026-11": (1, 49)}, 2, "budget_reached:month"),
        # One cap with both limits: the count is checked first.
        ([Cap(window=DAY, max_count=1, max_spend_minor=1)], {"day:2026-11-23": (1, 1)}, 5, "cap_reached:day"),
        # Several breached caps: the first in the campaign's order is the reason.
        (
            [Cap(window=WEEK, max_spend_minor=1), DAILY_10],
            {"week:2026-11-23": (10, 1), "day:2026-11-23": (10, 1)},
            5,
            "budget_reached:week",
        ),
        (
            [DAILY_10, Cap(window=WEEK, max_spend_minor=1)],
            {"week:2026-11-23": (10, 1), "day:2026-11-23": (10, 1)},
            5,
            "cap_reached:day",
        ),
    ],
)
def test_cap_reason(caps: list[Cap], usage: dict, price: int, expected: str | None) -> None:
    assert cap_reason(caps, usage, price, NY, NOW) == expected


def test_daily_cap_resets_at_local_midnight_not_utc() -> None:
    usage = {"day:2026-11-23": (10, 0)}
    assert cap_reason([DAILY_10], usage, 0, NY, utc(2026, 11, 24, 4, 59)) == "cap_reached:day"
    assert cap_reason([DAILY_10], usage, 0, NY, utc(2026, 11, 24, 5, 0)) is None


def test_breach_carries_the_numbers_for_traces() -> None:
    breach = cap_breach([DAILY_100_DOLLARS], {"day:2026-11-23": (3, 9_500)}, 600, NY, NOW)
    assert breach is not None
    assert (breach.reason, breach.window_key, breach.used, breach.limit) == (
        "budget_reached:day", "day:2026-11-23", 9_500, 10_000,
    )  # fmt: skip


def test_validate_caps() -> None:
    assert validate_caps([DAILY_10, Cap(window=WEEK, max_count=1)]) == []
    assert validate_caps([Cap(window=DAY), DAILY_10]) == [
        ("caps[0]", "give max_count, max_spend_minor or both"),
        ("caps[1].window", "same window as caps[0]"),
    ]


ZONES = [NY, "America/Chicago", "America/Phoenix", "America/St_Johns", "Europe/London",
         "Asia/Kolkata", "Australia/Sydney", "America/Havana"]  # fmt: skip
instants = st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2028, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@settings(max_examples=300, deadline=None)
@given(window=st.sampled_from(TIME_WINDOWS), tz=st.sampled_from(ZONES), now=instants)
def test_window_contains_now_and_its_key_covers_exactly_it(window: CapWindow, tz: str, now: dt.datetime) -> None:
    start, end = window_bounds(window, tz, now)
    assert start <= now < end
    key = window_key(window, tz, now)
    assert window_key(window, tz, start) == key
    assert window_key(window, tz, end - dt.timedelta(microseconds=1)) == key
    assert window_key(window, tz, end) != key
    assert window_bounds(window, tz, end)[0] == end  # windows tile time without gaps


def test_memoised_keys_tell_the_repeated_hour_apart_by_instant() -> None:
    """``window_key`` is memoised; two wall times of New York that differ only in ``fold`` are
    equal as datetimes, yet they are different instants in different hour windows."""
    from zoneinfo import ZoneInfo

    first = dt.datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo(NY))  # 05:30 UTC, EDT
    second = first.replace(fold=1)  # 06:30 UTC, EST
    assert first == second  # same zone: fold is ignored by the comparison
    assert window_key(HOUR, NY, first) == "hour:2026-11-01T01:00-04:00"
    assert window_key(HOUR, NY, second) == "hour:2026-11-01T01:00-05:00"
    assert window_key(HOUR, NY, first) == "hour:2026-11-01T01:00-04:00"
    with pytest.raises(ValueError):
        window_key(HOUR, NY, dt.datetime(2026, 11, 1, 1, 30))
