"""Local wall-clock time in an IANA time zone, without surprises at DST changes.

Schedules and cap windows are defined on the campaign's wall clock, but every instant we store or
compare is UTC. The two helpers here are the only places that cross between them.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

UTC = dt.timezone.utc
TIMEZONE_MAX_CHARS = 64


class BadTimezone(ValueError):
    pass


@functools.lru_cache(maxsize=512)
def zone(key: str) -> zoneinfo.ZoneInfo:
    """The zone for an IANA key, or ``BadTimezone``. ZoneInfo raises several error types
    (ValueError for malformed keys, ZoneInfoNotFoundError for unknown ones); callers get one."""
    if not key or len(key) > TIMEZONE_MAX_CHARS:
        raise BadTimezone(f"not an IANA time zone: {key!r}")
    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise BadTimezone(f"not an IANA time zone: {key!r}") from exc


def timezone_problem(key: str) -> str | None:
    try:
        zone(key)
    except BadTimezone as exc:
        return str(exc)
    return None


def require_aware(now: dt.datetime) -> dt.datetime:
    """``now`` as UTC. A naive datetime is a programming error: it has no single instant."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    return now.astimezone(UTC)


def _wall(instant: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def first_instant_at(wall: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """The first UTC instant at which the local clock reads ``wall`` or later.

    Ambiguous wall times (the repeated fall-back hour) give the earlier instant. Skipped wall
    times (the spring-forward gap) give the transition itself, when the clock jumps past them.
    """
    early = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if _wall(early, tz) == wall:
        return early
    late = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo, hi = min(early, late), max(early, late)
    # Inside the gap the clock reads below ``wall`` until the transition, then above it:
    # bisect on whole seconds (a one-hour gap takes 12 steps).
    lo_s, hi_s = int(lo.timestamp()), int(hi.timestamp())
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _wall(dt.datetime.fromtimestamp(mid, UTC), tz) >= wall:
            hi_s = mid
        else:
            lo_s = mid
    return dt.datetime.fromtimestamp(hi_s, UTC)
