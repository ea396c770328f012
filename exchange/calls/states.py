"""A call's states and how it ends: pure decisions over plain values.

    rejected                       no campaign bid and no team took it
    offered    -> connected        the caller arrived before ``expires_at``
    offered    -> expired          it did not (the sweep, or a late connect)
    offered    -> missed           the telephony reported its end before anyone answered
    connected  -> completed        answered and it lasted the minimum: billed when priced
    connected  -> short | missed   it did not last the minimum, or nobody answered: not billed
    connected  -> unreported       its end never came within ``call_max_s``: not billed

A call takes one line of its campaign's concurrent cap while offered or connected; it gives the
line back as it ends, and the rest of what it held (its campaign's cap windows) too unless it
was billed, like a lead's sale keeps its place in the windows and a refused post does not.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from exchange.caps import Hold
from exchange.matching.caps import CONCURRENT_KEY

REJECTED = "rejected"
OFFERED = "offered"
CONNECTED = "connected"
COMPLETED = "completed"
SHORT = "short"
MISSED = "missed"
EXPIRED = "expired"
UNREPORTED = "unreported"
ENDED = frozenset({COMPLETED, SHORT, MISSED, EXPIRED, UNREPORTED})

LEAD_CALLING = "calling"  # a call lead between its connect and its end

# Why a call was not billed (reason codes, as in exchange.reasons).
TOO_SHORT = "call_too_short"
NOT_ANSWERED = "call_not_answered"
NOT_CONNECTED = "call_not_connected"
UNREPORTED_REASON = "call_unreported"
TEST_CALL = "test_call"


class Ending(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    reason: str | None  # None exactly when billed or completed by a team
    bill: bool  # charge the buyer (and pay the supplier) now


def ending(
    *, connected: bool, answered: bool, duration_s: int, min_duration_s: int, priced: bool,
    test: bool,
) -> Ending:
    """How a call ends, from what the telephony reported."""
    if not connected:
        return Ending(status=MISSED, reason=NOT_CONNECTED, bill=False)
    if not answered or duration_s <= 0:
        return Ending(status=MISSED, reason=NOT_ANSWERED, bill=False)
    if duration_s < min_duration_s:
        return Ending(status=SHORT, reason=TOO_SHORT, bill=False)
    if test:
        return Ending(status=COMPLETED, reason=TEST_CALL, bill=False)
    return Ending(status=COMPLETED, reason=None, bill=priced)


def to_release(holds: Iterable[Hold], *, billed: bool) -> list[Hold]:
    """What a call gives back as it ends: its line always, its windows unless it was billed."""
    return [h for h in holds if not billed or h.window_key == CONCURRENT_KEY]
