"""First-contact SLA: deadlines in working minutes across DST changes, and reassignment."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.matching import Interval, Schedule, is_open
from exchange.teams import (
    Fallback,
    FallbackKind,
    FallbackPolicy,
    Reassign,
    breached,
    deadline,
    next_owner,
)

UTC = dt.UTC
NY = "America/New_York"
MIN = dt.timedelta(minutes=1)
WEEKDAYS_9_TO_5 = Schedule(
    timezone=NY, days={d: (Interval(540, 1020),) for d in ("mon", "tue", "wed", "thu", "fri")}
)
SUNDAY_NIGHT = Schedule(timezone=NY, days={"sun": (Interval(0, 360),)})  # 00:00-06:00
OVERFLOW = FallbackPolicy(kind=FallbackKind.TEAM, target="overflow")


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_clock_minutes_without_working_hours():
    assert deadline(utc(2026, 3, 8, 6, 30), 60) == utc(2026, 3, 8, 7, 30)


@pytest.mark.parametrize(
    ("owned", "minutes", "hours", "due"),
    [
        # Friday 16:30 EST + 60 working minutes: 30 on Friday, 30 on Monday from 09:00, which
        # is EDT after the weekend's spring-forward: 13:30 UTC, not 14:30.
        (utc(2026, 3, 6, 21, 30), 60, WEEKDAYS_9_TO_5, utc(2026, 3, 9, 13, 30)),
        # Owned on Saturday: the clock starts Monday 09:00 EDT.
        (utc(2026, 3, 7, 15, 0), 1, WEEKDAYS_9_TO_5, utc(2026, 3, 9, 13, 1)),
        # The same across fall-back: Monday 09:00 EST is 14:00 UTC.
        (utc(2026, 10, 30, 20, 30), 60, WEEKDAYS_9_TO_5, utc(2026, 11, 2, 14, 30)),
        # Inside one day.
        (utc(2026, 11, 23, 15, 0), 90, WEEKDAYS_9_TO_5, utc(2026, 11, 23, 16, 30)),
        # 00:00-06:00 on the spring-forward Sunday lasts 5 real hours (05:00-10:00 UTC) ...
        (utc(2026, 3, 8, 5, 0), 300, SUNDAY_NIGHT, utc(2026, 3, 8, 10, 0)),
        # ... so minute 301 falls on the next Sunday, 00:00 EDT = 04:00 UTC.
        (utc(2026, 3, 8, 5, 0), 301, SUNDAY_NIGHT, utc(2026, 3, 15, 4, 1)),
        # Across the jump: 01:59 EST is followed by 03:00 EDT.
        (utc(2026, 3, 8, 6, 30), 60, SUNDAY_NIGHT, utc(2026, 3, 8, 7, 30)),
        # On the fall-back Sunday it lasts 7 real hours (04:00-11:00 UTC).
        (utc(2026, 11, 1, 4, 0), 420, SUNDAY_NIGHT, utc(2026, 11, 1, 11, 0)),
        (utc(2026, 11, 1, 4, 0), 360, SUNDAY_NIGHT, utc(2026, 11, 1, 10, 0)),
        # 00:00-01:30 on the fall-back Sunday is open twice between 01:00 and 01:30: 90 minutes
        # EDT (04:00-05:30 UTC), closed until the clock falls back, then 01:00-01:30 EST again.
        (utc(2026, 11, 1, 4, 0), 100, Schedule(timezone=NY, days={"sun": (Interval(0, 90),)}),
         utc(2026, 11, 1, 6, 10)),
        # Crossing midnight into the spring-forward Sunday: Saturday 22:00 EST (03:00 UTC) to
        # Sunday 02:00, which never comes, so the interval ends at the jump (07:00 UTC).
        (utc(2026, 3, 8, 3, 0), 240, Schedule(timezone=NY, days={"sat": (Interval(1320, 120),)}),
         utc(2026, 3, 8, 7, 0)),
    ],
)  # fmt: skip
def test_deadline_counts_working_minutes_across_dst(owned, minutes, hours, due):
    assert deadline(owned, minutes, hours) == due


def test_breach_boundaries():
    owned = utc(2026, 3, 6, 21, 30)
    due = utc(2026, 3, 9, 13, 30)
    tick = dt.timedelta(microseconds=1)
    assert not breached(owned, None, due - tick, 60, WEEKDAYS_9_TO_5)
    assert breached(owned, None, due, 60, WEEKDAYS_9_TO_5)
    assert not breached(owned, due - tick, due + MIN, 60, WEEKDAYS_9_TO_5)  # contacted in time
    assert breached(owned, due, due + MIN, 60, WEEKDAYS_9_TO_5)  # contacted too late
    assert breached(owned, due + 2 * MIN, due + MIN, 60, WEEKDAYS_9_TO_5)  # not yet contacted
    # Counted on the clock, the same lead was breached an hour after it was owned.
    assert breached(owned, None, owned + 60 * MIN, 60)


@freeze_time("2026-03-09T13:29:59Z")
def test_breach_with_a_frozen_clock():
    now = dt.datetime.now(UTC)
    assert not breached(utc(2026, 3, 6, 21, 30), None, now, 60, WEEKDAYS_9_TO_5)
    # Wrong by an hour, counting the DST jump: would already be breached on the UTC clock.
    assert breached(utc(2026, 3, 9, 12, 29), None, now, 60)


def test_bad_minutes():
    with pytest.raises(ValueError, match="minutes"):
        deadline(utc(2026, 3, 8), 0)
    with pytest.raises(ValueError, match="minutes"):
        deadline(utc(2026, 3, 8), 7 * 24 * 60 + 1)


# Each zone with the (UTC) mornings before its 2026 DST changes. Lord Howe moves by 30 minutes;
# Santiago changes at local midnight, so a whole local day starts at 01:00.
DST_EVES = [
    ("America/New_York", utc(2026, 3, 7)), ("America/New_York", utc(2026, 10, 31)),
    ("Europe/London", utc(2026, 3, 28)), ("Europe/London", utc(2026, 10, 24)),
    ("Australia/Lord_Howe", utc(2026, 4, 4)), ("Australia/Lord_Howe", utc(2026, 10, 3)),
    ("America/Santiago", utc(2026, 4, 4)), ("America/Santiago", utc(2026, 9, 5)),
]  # fmt: skip
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
interval_strategy = st.builds(
    Interval, start=st.integers(0, 1439).map(lambda m: m - m % 30),
    end=st.integers(1, 1440).map(lambda m: m - m % 30 or 30),
).filter(lambda i: i.start != i.end)  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(
    eve=st.sampled_from(DST_EVES),
    days=st.dictionaries(st.sampled_from(DAYS), st.lists(interval_strategy, min_size=1, max_size=2).map(tuple), min_size=3),
    offset=st.integers(0, 48 * 60),
    minutes=st.integers(1, 240),
)  # fmt: skip
def test_deadline_agrees_with_is_open_minute_by_minute(eve, days, offset, minutes):
    """Counting the minutes in which ``is_open`` is true lands on the same instant."""
    tz, start = eve
    hours = Schedule(timezone=tz, days=days)
    owned = start + offset * MIN
    t, counted = owned, 0
    while counted < minutes:
        if is_open(hours, t):
            counted += 1
        t += MIN
    assert deadline(owned, minutes, hours) == t


def test_next_owner_skips_earlier_owners_and_stops_at_the_limit():
    assert next_owner(["a", "b", "c"], {"a"}, 0, 2, OVERFLOW) == Reassign(
        agent_id="b", candidates=("b", "c"), reassign_count=1
    )
    assert next_owner(["a", "b", "c"], {"a", "b"}, 1, 2, OVERFLOW) == Reassign(
        agent_id="c", candidates=("c",), reassign_count=2
    )
    assert next_owner(["a", "b", "c"], {"a", "b", "c"}, 2, 2, OVERFLOW) == Fallback(
        kind=FallbackKind.TEAM, target="overflow", reason="max_reassigns_reached"
    )
    assert next_owner(["a", "b"], {"a", "b"}, 1, 3, OVERFLOW) == Fallback(
        kind=FallbackKind.TEAM, target="overflow", reason="nobody_eligible"
    )
    assert next_owner(["a"], set(), 0, 0, OVERFLOW).reason == "max_reassigns_reached"
    with pytest.raises(ValueError, match="max_reassigns"):
        next_owner(["a"], set(), 0, 11, OVERFLOW)
