"""The pure rules of a return: its window, the monthly rate cap, and whether the supplier gives
its payout back. Plain values in, plain values out; the service reads and writes the database."""

from __future__ import annotations

import datetime as dt

from exchange.campaigns.terms import ReturnPayout

BPS_PER_WHOLE = 10_000  # basis points in 100 %
DAY = dt.timedelta(days=1)


def window_closes_at(delivered_at: dt.datetime, window_days: int) -> dt.datetime | None:
    """The last instant a lead delivered at ``delivered_at`` may be returned; None: never."""
    if window_days <= 0:
        return None
    return delivered_at + window_days * DAY


def within_window(delivered_at: dt.datetime, window_days: int, now: dt.datetime) -> bool:
    closes_at = window_closes_at(delivered_at, window_days)
    return closes_at is not None and now <= closes_at


def rate_allows(open_returns: int, purchases: int, max_rate_bps: int) -> bool:
    """Whether one more return keeps a month's returns (``open_returns``: requested or
    approved, before this one) at or under ``max_rate_bps`` of its ``purchases``. Integer
    arithmetic: 20 % of 5 purchases allows exactly 1 return, never 1.0000001."""
    if max_rate_bps == 0:
        return True
    return (open_returns + 1) * BPS_PER_WHOLE <= max_rate_bps * purchases


def claws_back(
    policy: ReturnPayout, hold_days: int, sold_at: dt.datetime, approved_at: dt.datetime
) -> bool:
    """Whether an approved return takes the payout back from the supplier (otherwise the
    exchange absorbs it). With a hold period, only a return approved within ``hold_days`` of
    the sale claws back: after that the supplier's payout is its own."""
    if policy is ReturnPayout.ABSORB:
        return False
    return hold_days == 0 or approved_at <= sold_at + hold_days * DAY
