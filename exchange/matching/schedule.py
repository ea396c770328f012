"""When a campaign takes leads: weekly opening hours on its own wall clock.

A schedule is a time zone and, per weekday, intervals of local minutes ``[start, end)``:
``{"start": 540, "end": 1020}`` is 09:00 to 17:00. ``end`` may be 1440 (midnight). An interval
whose ``end`` is below its ``start`` crosses midnight: ``{"start": 1320, "end": 120}`` on "fri"
is Friday 22:00 to Saturday 02:00. A schedule with no intervals at all is always open (no
schedule, no restriction); to stop a campaign, pause it.

Times are wall-clock: on a spring-forward day the skipped hour never happens, and on a fall-back
day the repeated hour is open (or closed) both times.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from exchange.matching.localtime import UTC, first_instant_at, require_aware, timezone_problem, zone

MINUTES_PER_DAY = 1440
MAX_CONCURRENT_CALLS = 100_000
INTERVALS_PER_DAY_MAX = 24
# next_open looks this far ahead: a week plus a day covers every weekday and a crossing interval.
NEXT_OPEN_SEARCH_DAYS = 8

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Interval(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    start: Annotated[int, msgspec.Meta(ge=0, lt=MINUTES_PER_DAY)]
    end: Annotated[int, msgspec.Meta(ge=0, le=MINUTES_PER_DAY)]
    # Call campaigns: the most calls at once during this interval (the lines staffed then);
    # None: the campaign's concurrent cap, if any.
    max_concurrent: Annotated[int, msgspec.Meta(ge=0, le=MAX_CONCURRENT_CALLS)] | None = None

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start


class Schedule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    timezone: str
    days: dict[
        Weekday,
        Annotated[tuple[Interval, ...], msgspec.Meta(max_length=INTERVALS_PER_DAY_MAX)],
    ] = {}


def always_open(schedule: Schedule) -> bool:
    return not any(schedule.days.values())


def _interval_at(schedule: Schedule, local: dt.datetime) -> Interval | None:
    """The interval open at the local wall time ``local``, or None."""
    minute = local.hour * 60 + local.minute
    for interval in schedule.days.get(WEEKDAYS[local.weekday()], ()):
        if interval.crosses_midnight:
            if minute >= interval.start:
                return interval
        elif interval.start <= minute < interval.end:
            return interval
    # The after-midnight part of yesterday's crossing intervals.
    for interval in schedule.days.get(WEEKDAYS[(local.weekday() - 1) % 7], ()):
        if interval.crosses_midnight and minute < interval.end:
            return interval
    return None


def _open_at(schedule: Schedule, local: dt.datetime) -> bool:
    return _interval_at(schedule, local) is not None


def open_interval(schedule: Schedule | None, now: dt.datetime) -> Interval | None:
    """The interval ``now`` falls in (None when closed, or when there is no schedule)."""
    if schedule is None or always_open(schedule):
        return None
    return _interval_at(schedule, require_aware(now).astimezone(zone(schedule.timezone)))


def is_open(schedule: Schedule | None, now: dt.datetime) -> bool:
    if schedule is None or always_open(schedule):
        return True
    return _open_at(schedule, require_aware(now).astimezone(zone(schedule.timezone)))


def next_open(schedule: Schedule | None, now: dt.datetime) -> dt.datetime | None:
    """The first instant at or after ``now`` (UTC) when the schedule is open; None if there is
    none within ``NEXT_OPEN_SEARCH_DAYS`` (only possible when every interval falls in DST gaps).

    Openings happen only at an interval's start, once or twice on a fall-back day, or at a
    spring-forward transition that lands inside an interval, so only those instants are tried.
    """
    now = require_aware(now)
    if is_open(schedule, now):
        return now
    assert schedule is not None  # an absent schedule is always open
    tz = zone(schedule.timezone)
    first_day = now.astimezone(tz).date()
    found: list[dt.datetime] = []
    for offset in range(NEXT_OPEN_SEARCH_DAYS + 1):
        day = first_day + dt.timedelta(days=offset)
        for interval in schedule.days.get(WEEKDAYS[day.weekday()], ()):
            wall = dt.datetime.combine(day, dt.time(interval.start // 60, interval.start % 60))
            for fold in (0, 1):
                candidate = wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)
                if candidate.astimezone(tz).replace(tzinfo=None) != wall:
                    candidate = first_instant_at(wall, tz)  # skipped by a DST gap
                if candidate > now and _open_at(schedule, candidate.astimezone(tz)):
                    found.append(candidate)
        if found:
            return min(found)
    return None


def validate_schedule(schedule: Schedule, *, path: str = "schedule") -> list[tuple[str, str]]:
    """Problems as (path, reason): a bad time zone, empty or overlapping intervals."""
    problems: list[tuple[str, str]] = []
    if problem := timezone_problem(schedule.timezone):
        problems.append((f"{path}.timezone", problem))
    # Per weekday, the minute ranges in use, each with the path of the interval that uses it;
    # a crossing interval lends its after-midnight part to the next day.
    used: dict[int, list[tuple[int, int, str]]] = {day: [] for day in range(7)}
    for name, intervals in schedule.days.items():
        day = WEEKDAYS.index(name)
        for i, interval in enumerate(intervals):
            at = f"{path}.days.{name}[{i}]"
            if interval.end == interval.start:
                problems.append((at, "start equals end; use 0 to 1440 for a whole day"))
            elif interval.end == 0:
                problems.append((f"{at}.end", "use 1440 for midnight"))
            elif interval.crosses_midnight:
                used[day].append((interval.start, MINUTES_PER_DAY, at))
                used[(day + 1) % 7].append((0, interval.end, at))
            else:
                used[day].append((interval.start, interval.end, at))
    for day in range(7):
        reach, reach_at = -1, ""  # the furthest end so far, and whose it is
        for start, end, at in sorted(used[day]):
            if start < reach:
                problems.append((at, f"overlaps {reach_at}"))
            if end > reach:
                reach, reach_at = end, at
    return problems
