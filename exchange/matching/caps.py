"""Cap windows in the campaign's time zone, and the cap check of eligibility.

A window is the local hour, day, week (starting Monday) or month that contains ``now``. Bounds are
UTC instants found from the local wall clock, so a day is 23 or 25 hours long on DST change days
and resets at local midnight. Hour windows are keyed with their UTC offset: the repeated hour on a
fall-back day is two windows (``hour:2026-11-01T01:00-04:00`` then ``...T01:00-05:00``).

This module decides; it does not count. The caller passes the usage it read (or reserved) per
``window_key`` and the caps layer owns atomic reserve / commit / release.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import msgspec

from exchange import reasons
from exchange.matching.localtime import UTC, first_instant_at, require_aware, zone

CAPS_MAX = 16  # per campaign
HOUR = dt.timedelta(hours=1)

Usage = Mapping[str, tuple[int, int]]  # window_key -> (lead count, spend in minor units)


class CapWindow(str, enum.Enum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    # Calls at once (call campaigns only): not a stretch of time but the lines in use. A call
    # takes a line when it is offered and gives it back when it ends (exchange.calls).
    CONCURRENT = "concurrent"


CONCURRENT_KEY = CapWindow.CONCURRENT.value  # its one window: the calls in progress now
# The windows that are stretches of time on the campaign's wall clock.
TIME_WINDOWS = (CapWindow.HOUR, CapWindow.DAY, CapWindow.WEEK, CapWindow.MONTH)


class Cap(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """At most ``max_count`` leads and/or ``max_spend_minor`` spent per window."""

    window: CapWindow
    max_count: Annotated[int, msgspec.Meta(ge=0)] | None = None
    max_spend_minor: Annotated[int, msgspec.Meta(ge=0)] | None = None


def _first_local_day(window: CapWindow, local: dt.datetime) -> dt.date:
    day = local.date()
    if window is CapWindow.WEEK:
        return day - dt.timedelta(days=day.weekday())  # Monday is weekday 0
    if window is CapWindow.MONTH:
        return day.replace(day=1)
    return day


def _next_local_day(window: CapWindow, first: dt.date) -> dt.date:
    if window is CapWindow.WEEK:
        return first + dt.timedelta(days=7)
    if window is CapWindow.MONTH:
        return (first + dt.timedelta(days=31)).replace(day=1)
    return first + dt.timedelta(days=1)


def window_bounds(window: CapWindow, tz: str, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in UTC of the ``window`` that contains ``now``, on ``tz``'s wall clock."""
    if window is CapWindow.CONCURRENT:
        raise ValueError("the concurrent window is the calls in progress, not a stretch of time")
    now = require_aware(now)
    zone_info = zone(tz)
    local = now.astimezone(zone_info)
    if window is CapWindow.HOUR:
        # Step back to the top of the local hour in UTC arithmetic, keeping the current offset:
        # that is what splits the repeated fall-back hour into two windows.
        start = now - dt.timedelta(
            minutes=local.minute, seconds=local.second, microseconds=local.microsecond
        )
        return start, start + HOUR
    first = _first_local_day(window, local)
    midnight = dt.time(0, 0)
    start = first_instant_at(dt.datetime.combine(first, midnight), zone_info)
    end = first_instant_at(dt.datetime.combine(_next_local_day(window, first), midnight), zone_info)
    return start, end


def window_key(window: CapWindow, tz: str, now: dt.datetime) -> str:
    """A stable name for the window containing ``now``: ``hour:2026-11-23T14:00-05:00``,
    ``day:2026-11-23``, ``week:2026-11-23`` (its Monday), ``month:2026-11``.

    Memoised on the exact instant: a lead evaluates every candidate campaign at one ``now``, so
    the time-zone work is done once per (window, time zone) per lead, not once per campaign.
    The memo is keyed by ``now`` in UTC: two wall times of one zone that differ only in ``fold``
    (the repeated fall-back hour) compare and hash equal, two UTC instants never do.
    """
    if window is CapWindow.CONCURRENT:
        return CONCURRENT_KEY
    if now.tzinfo is not UTC:  # the usual ``now`` is already UTC: skip the conversion
        now = require_aware(now)
    return _window_key(window, tz, now)


@functools.lru_cache(maxsize=4096)
def _window_key(window: CapWindow, tz: str, now_utc: dt.datetime) -> str:
    local = now_utc.astimezone(zone(tz))
    if window is CapWindow.HOUR:
        top = local.replace(minute=0, second=0, microsecond=0)
        return f"hour:{top.isoformat(timespec='minutes')}"
    first = _first_local_day(window, local)
    if window is CapWindow.MONTH:
        return f"month:{first:%Y-%m}"
    return f"{window.value}:{first.isoformat()}"


class CapBreach(msgspec.Struct, frozen=True, kw_only=True):
    reason: str  # cap_reached:<window> or budget_reached:<window>
    window_key: str
    used: int  # leads, or minor units spent
    limit: int


def cap_breach(
    caps: Sequence[Cap], usage: Usage, price_minor: int, tz: str, now: dt.datetime
) -> CapBreach | None:
    """The first cap (in the campaign's order; count before spend) one more lead would break.

    A count cap is reached when ``count >= max_count``. A budget is reached when the spend is
    already at the limit or ``spend + price_minor`` would pass it; ``price_minor`` is the least
    the campaign can pay (its fixed price, or its floor for live bids), so the auction checks the
    real bid again when it reserves.
    """
    for cap in caps:
        key = window_key(cap.window, tz, now)
        count, spend = usage.get(key, (0, 0))
        if cap.max_count is not None and count >= cap.max_count:
            reason = reasons.cap_reached(cap.window.value)
            return CapBreach(reason=reason, window_key=key, used=count, limit=cap.max_count)
        limit = cap.max_spend_minor
        if limit is not None and (spend >= limit or spend + price_minor > limit):
            reason = reasons.budget_reached(cap.window.value)
            return CapBreach(reason=reason, window_key=key, used=spend, limit=limit)
    return None


def cap_reason(
    caps: Sequence[Cap], usage: Usage, price_minor: int, tz: str, now: dt.datetime
) -> str | None:
    breach = cap_breach(caps, usage, price_minor, tz, now)
    return None if breach is None else breach.reason


def validate_caps(
    caps: Sequence[Cap], *, path: str = "caps", calls: bool = False
) -> list[tuple[str, str]]:
    """``calls``: the campaign buys calls (only those may cap calls at once)."""
    problems: list[tuple[str, str]] = []
    if len(caps) > CAPS_MAX:
        problems.append((path, f"at most {CAPS_MAX} caps"))
    seen: dict[CapWindow, int] = {}
    for i, cap in enumerate(caps):
        if cap.window is CapWindow.CONCURRENT:
            if not calls:
                problems.append((f"{path}[{i}].window", "calls at once: for call campaigns only"))
            if cap.max_spend_minor is not None:
                problems.append((f"{path}[{i}].max_spend_minor", "a concurrent cap counts calls, not money"))
            if cap.max_count is None:
                problems.append((f"{path}[{i}].max_count", "the most calls at once"))
        elif cap.max_count is None and cap.max_spend_minor is None:
            problems.append((f"{path}[{i}]", "give max_count, max_spend_minor or both"))
        if cap.window in seen:
            problems.append((f"{path}[{i}].window", f"same window as {path}[{seen[cap.window]}]"))
        seen.setdefault(cap.window, i)
    return problems


def breach_details(breach: CapBreach) -> dict[str, Any]:
    return {"window_key": breach.window_key, "used": breach.used, "limit": breach.limit}
