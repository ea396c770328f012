"""First-contact SLA: an owned lead with no first contact within N minutes is reassigned.

The deadline is ``owned_since`` plus N minutes, counted either on the clock or, when working
hours are given, only in minutes during which the schedule is open (``schedule.is_open``, on the
schedule's wall clock). Working minutes are real elapsed minutes: an interval 00:00-06:00 lasts
5 hours on a spring-forward night and 7 on a fall-back one, and a deadline that crosses a DST
change lands on the right UTC instant.

The lead is in breach from the deadline on (exactly at it included), unless a first contact was
made before the deadline. A breach reassigns the lead to the next candidate who never owned it,
at most ``max_reassigns`` times; then the team's fallback (``max_reassigns_reached``).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Collection, Iterator, Sequence

import msgspec

from exchange.matching.localtime import UTC, first_instant_at, require_aware, zone
from exchange.matching.schedule import WEEKDAYS, Schedule, always_open, is_open
from exchange.teams import reasons
from exchange.teams.offers import Fallback, FallbackPolicy

SLA_MINUTES_MAX = 7 * 24 * 60  # a week of (working) minutes
MAX_REASSIGNS_MAX = 10
# How far the deadline search looks ahead: two years covers any schedule that opens at all.
DEADLINE_SEARCH_DAYS = 731
ONE_DAY = dt.timedelta(days=1)


def _check_minutes(minutes: int) -> None:
    if not 1 <= minutes <= SLA_MINUTES_MAX:
        raise ValueError(f"SLA minutes must be 1 to {SLA_MINUTES_MAX}")


def _wall(day: dt.date, minute: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(minute // 60, minute % 60))


def _offset_change(lo: dt.datetime, hi: dt.datetime, tz: dt.tzinfo) -> dt.datetime | None:
    """The instant in ``(lo, hi)`` at which ``tz``'s UTC offset changes (at most one a day)."""
    before = lo.astimezone(tz).utcoffset()
    if (hi - dt.timedelta(seconds=1)).astimezone(tz).utcoffset() == before:
        return None
    lo_s, hi_s = int(lo.timestamp()), int(hi.timestamp()) - 1
    while hi_s - lo_s > 1:  # the offset at lo_s is ``before``; at hi_s it is not
        mid = (lo_s + hi_s) // 2
        if dt.datetime.fromtimestamp(mid, UTC).astimezone(tz).utcoffset() == before:
            lo_s = mid
        else:
            hi_s = mid
    return dt.datetime.fromtimestamp(hi_s, UTC)


def _segments(schedule: Schedule, day: dt.date) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """The local ``day`` cut into UTC pieces inside which ``is_open`` cannot change: the cuts are
    every instant the wall clock shows an interval's start or end (both folds), and the DST
    change, if any."""
    tz = zone(schedule.timezone)
    lo = first_instant_at(_wall(day, 0), tz)
    hi = first_instant_at(_wall(day + ONE_DAY, 0), tz)
    walls: list[dt.datetime] = []
    for interval in schedule.days.get(WEEKDAYS[day.weekday()], ()):
        walls.append(_wall(day, interval.start))
        if not interval.crosses_midnight and interval.end < 1440:
            walls.append(_wall(day, interval.end))
    for interval in schedule.days.get(WEEKDAYS[(day.weekday() - 1) % 7], ()):
        if interval.crosses_midnight:
            walls.append(_wall(day, interval.end))
    cuts = {lo, hi}
    for wall in walls:
        cuts.add(first_instant_at(wall, tz))
        for fold in (0, 1):
            cuts.add(wall.replace(tzinfo=tz, fold=fold).astimezone(UTC))
    if (change := _offset_change(lo, hi, tz)) is not None:
        cuts.add(change)
    inside = sorted(c for c in cuts if lo <= c <= hi)
    yield from itertools.pairwise(inside)


def deadline(
    owned_since: dt.datetime, minutes: int, working_hours: Schedule | None = None
) -> dt.datetime | None:
    """The instant ``minutes`` (working) minutes after ``owned_since``; None only if the
    schedule never opens within ``DEADLINE_SEARCH_DAYS``."""
    _check_minutes(minutes)
    start = require_aware(owned_since)
    if working_hours is None or always_open(working_hours):
        return start + dt.timedelta(minutes=minutes)
    remaining = dt.timedelta(minutes=minutes)
    day = start.astimezone(zone(working_hours.timezone)).date()
    for _ in range(DEADLINE_SEARCH_DAYS):
        for lo, hi in _segments(working_hours, day):
            begin = max(lo, start)
            if begin >= hi or not is_open(working_hours, begin):
                continue
            if hi - begin >= remaining:
                return begin + remaining
            remaining -= hi - begin
        day += ONE_DAY
    return None


def breached(
    owned_since: dt.datetime,
    first_contact_at: dt.datetime | None,
    now: dt.datetime,
    minutes: int,
    working_hours: Schedule | None = None,
) -> bool:
    """True when the deadline has come (``now >= deadline``) and no first contact happened
    before it. A contact later than ``now`` is ignored (not yet happened)."""
    now = require_aware(now)
    due = deadline(owned_since, minutes, working_hours)
    if due is None or now < due:
        return False
    if first_contact_at is None:
        return True
    contact = require_aware(first_contact_at)
    return not (contact < due and contact <= now)


class Reassign(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: str  # the new owner
    candidates: tuple[str, ...]  # everyone still possible, best first (agent_id is the first)
    reassign_count: int  # including this one


def next_owner(
    candidates: Sequence[str],
    earlier_owners: Collection[str],
    reassign_count: int,
    max_reassigns: int,
    fallback: FallbackPolicy,
) -> Reassign | Fallback:
    """The next owner after a breach: the first of ``candidates`` (eligible now, in the team
    strategy's order) who never owned the lead. ``reassign_count`` is how many times it was
    already reassigned; at ``max_reassigns`` the lead goes to the fallback instead."""
    if not 0 <= max_reassigns <= MAX_REASSIGNS_MAX:
        raise ValueError(f"max_reassigns must be 0 to {MAX_REASSIGNS_MAX}")
    if reassign_count >= max_reassigns:
        return fallback.fall(reasons.MAX_REASSIGNS_REACHED)
    left = tuple(a for a in candidates if a not in earlier_owners)
    if not left:
        return fallback.fall(reasons.NOBODY_ELIGIBLE)
    return Reassign(agent_id=left[0], candidates=left, reassign_count=reassign_count + 1)
