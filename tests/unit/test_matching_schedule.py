"""Schedules on the campaign's wall clock, in America/New_York, across both US DST changes."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.matching import Interval, Schedule, is_open, next_open, validate_schedule

UTC = dt.timezone.utc
NY = "America/New_York"
WEEKDAYS_9_TO_5 = Schedule(
    timezone=NY,
    days={day: (Interval(540, 1020),) for day in ("mon", "tue", "wed", "thu", "fri")},
)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2026, 11, 23, 13, 59), False),  # Mon 08:59 EST
        (utc(2026, 11, 23, 14, 0), True),  # Mon 09:00 EST
        (utc(2026, 11, 23, 21, 59), True),  # Mon 16:59 EST
        (utc(2026, 11, 23, 22, 0), False),  # Mon 17:00 EST: end is exclusive
        (utc(2026, 7, 6, 12, 59), False),  # Mon 08:59 EDT
        (utc(2026, 7, 6, 13, 0), True),  # Mon 09:00 EDT: the same wall clock, an hour earlier in UTC
        (utc(2026, 11, 28, 15, 0), False),  # Saturday
        (utc(2026, 11, 24, 2, 0), False),  # Mon 21:00 EST, though Tuesday in UTC
    ],
)
def test_weekday_hours_in_new_york(now: dt.datetime, expected: bool) -> None:
    assert is_open(WEEKDAYS_9_TO_5, now) is expected


NIGHT_SHIFT = Schedule(timezone=NY, days={"fri": (Interval(1320, 120),)})  # Fri 22:00 - Sat 02:00


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2026, 11, 28, 2, 59), False),  # Fri 21:59 EST
        (utc(2026, 11, 28, 3, 0), True),  # Fri 22:00 EST
        (utc(2026, 11, 28, 6, 59), True),  # Sat 01:59 EST
        (utc(2026, 11, 28, 7, 0), False),  # Sat 02:00 EST
        (utc(2026, 11, 29, 6, 0), False),  # Sun 01:00 EST: only Friday's interval crosses
    ],
)
def test_interval_crossing_midnight(now: dt.datetime, expected: bool) -> None:
    assert is_open(NIGHT_SHIFT, now) is expected


def test_no_schedule_or_no_intervals_is_always_open() -> None:
    for schedule in (None, Schedule(timezone=NY), Schedule(timezone=NY, days={"mon": ()})):
        assert is_open(schedule, utc(2026, 11, 28, 3, 0)) is True
        assert next_open(schedule, utc(2026, 11, 28, 3, 0)) == utc(2026, 11, 28, 3, 0)


def test_whole_day_until_1440() -> None:
    schedule = Schedule(timezone=NY, days={"mon": (Interval(0, 1440),)})
    assert is_open(schedule, utc(2026, 11, 24, 4, 59)) is True  # Mon 23:59 EST
    assert is_open(schedule, utc(2026, 11, 24, 5, 0)) is False  # Tue 00:00 EST
    assert is_open(schedule, utc(2026, 11, 23, 5, 0)) is True  # Mon 00:00 EST


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2026, 11, 23, 12, 0), utc(2026, 11, 23, 14, 0)),  # Mon 07:00 -> 09:00 today
        (utc(2026, 11, 23, 15, 0), utc(2026, 11, 23, 15, 0)),  # open now: now
        (utc(2026, 11, 27, 23, 0), utc(2026, 11, 30, 14, 0)),  # Fri 18:00 -> Mon 09:00
        (utc(2026, 3, 6, 23, 0), utc(2026, 3, 9, 13, 0)),  # Fri EST -> Mon 09:00 EDT
        (utc(2026, 10, 30, 22, 0), utc(2026, 11, 2, 14, 0)),  # Fri EDT -> Mon 09:00 EST
    ],
)
def test_next_open(now: dt.datetime, expected: dt.datetime) -> None:
    assert next_open(WEEKDAYS_9_TO_5, now) == expected


def test_spring_forward_opens_when_the_clock_jumps_into_the_interval() -> None:
    # Sunday 02:30-04:00; on 2026-03-08 the clock goes 01:59:59 EST -> 03:00:00 EDT (07:00 UTC).
    schedule = Schedule(timezone=NY, days={"sun": (Interval(150, 240),)})
    assert is_open(schedule, utc(2026, 3, 8, 6, 59)) is False
    assert is_open(schedule, utc(2026, 3, 8, 7, 0)) is True
    assert next_open(schedule, utc(2026, 3, 7, 23, 0)) == utc(2026, 3, 8, 7, 0)


def test_an_interval_inside_the_skipped_hour_waits_a_week() -> None:
    schedule = Schedule(timezone=NY, days={"sun": (Interval(150, 170),)})  # 02:30-02:50
    assert next_open(schedule, utc(2026, 3, 7, 23, 0)) == utc(2026, 3, 15, 6, 30)  # 02:30 EDT


def test_fall_back_repeated_hour_is_open_both_times() -> None:
    # Sunday 01:00-01:30; on 2026-11-01 01:00-01:59 happens in EDT (05:xx UTC), then EST (06:xx UTC).
    schedule = Schedule(timezone=NY, days={"sun": (Interval(60, 90),)})
    assert is_open(schedule, utc(2026, 11, 1, 5, 10)) is True
    assert is_open(schedule, utc(2026, 11, 1, 5, 40)) is False
    assert is_open(schedule, utc(2026, 11, 1, 6, 10)) is True
    assert next_open(schedule, utc(2026, 11, 1, 4, 0)) == utc(2026, 11, 1, 5, 0)
    assert next_open(schedule, utc(2026, 11, 1, 5, 40)) == utc(2026, 11, 1, 6, 0)


def test_schedule_json_shape() -> None:
    raw = b'{"timezone": "America/New_York", "days": {"mon": [{"start": 540, "end": 1020}]}}'
    schedule = msgspec.json.decode(raw, type=Schedule)
    assert schedule == Schedule(timezone=NY, days={"mon": (Interval(540, 1020),)})
    for bad in (
        b'{"timezone": "UTC", "days": {"monday": []}}',
        b'{"timezone": "UTC", "days": {"mon": [{"start": 1440, "end": 1440}]}}',
        b'{"timezone": "UTC", "days": {"mon": [{"start": 0, "end": 1441}]}}',
        b'{"timezone": "UTC", "days": {"mon": [{"start": 0, "end": 60, "x": 1}]}}',
    ):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(bad, type=Schedule)


def test_validation() -> None:
    schedule = Schedule(
        timezone="America/Nowhere",
        days={
            "mon": (Interval(540, 720), Interval(600, 900), Interval(900, 960)),  # last one touches: fine
            "tue": (Interval(600, 600), Interval(60, 0)),
            "fri": (Interval(1320, 120),),
            "sat": (Interval(60, 180),),  # overlaps Friday's after-midnight part
            "sun": (Interval(0, 600), Interval(100, 200), Interval(300, 400)),
        },
    )
    assert validate_schedule(schedule) == [
        ("schedule.timezone", "not an IANA time zone: 'America/Nowhere'"),
        ("schedule.days.tue[0]", "start equals end; use 0 to 1440 for a whole day"),
        ("schedule.days.tue[1].end", "use 1440 for midnight"),
        ("schedule.days.mon[1]", "overlaps schedule.days.mon[0]"),
        ("schedule.days.sat[0]", "overlaps schedule.days.fri[0]"),
        ("schedule.days.sun[1]", "overlaps schedule.days.sun[0]"),
        ("schedule.days.sun[2]", "overlaps schedule.days.sun[0]"),
    ]
    assert validate_schedule(WEEKDAYS_9_TO_5) == []
    assert validate_schedule(NIGHT_SHIFT) == []


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        is_open(WEEKDAYS_9_TO_5, dt.datetime(2026, 11, 23, 12, 0))


intervals = st.builds(Interval, st.integers(0, 1439), st.integers(1, 1440)).filter(lambda i: i.start != i.end)
schedules = st.builds(
    Schedule,
    timezone=st.sampled_from([NY, "America/Chicago", "Europe/London", "Asia/Kolkata"]),
    days=st.dictionaries(
        st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
        st.lists(intervals, max_size=2).map(tuple),
        max_size=3,
    ),
)
instants = st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@settings(max_examples=200, deadline=None)
@given(schedule=schedules, now=instants)
def test_next_open_is_the_first_open_instant(schedule: Schedule, now: dt.datetime) -> None:
    found = next_open(schedule, now)
    assert found is not None  # intervals recur weekly; no zone skips the same hour twice running
    assert found >= now
    assert is_open(schedule, found)
    assert (found == now) == is_open(schedule, now)
    # Closed just before it, and at a minute-spaced sample of the wait (up to a day of it).
    if found > now:
        assert not is_open(schedule, found - dt.timedelta(seconds=1))
        step = max((found - now) / 50, dt.timedelta(minutes=1))
        probe = now
        while probe < found and probe < now + dt.timedelta(days=1):
            assert not is_open(schedule, probe)
            probe += step
