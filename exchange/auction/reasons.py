"""The reason codes the auction assigns (a subset of the one list in
``exchange.reasons``).

One code per campaign per lead. The strings are a public contract: traces, the API and the CLI
show them, so never rename a value; add a new member instead.
"""

from __future__ import annotations

import enum

from exchange import reasons as codes


class AuctionReason(str, enum.Enum):
    # The bid is under the campaign's floor, or what it pays the supplier after margin is under
    # the supplier's minimum (or is nothing at all). Both are "this price is too low", so they
    # share the one code DESIGN.md has for it; the trace carries the numbers that tell them apart.
    BELOW_FLOOR = codes.BELOW_FLOOR
    # A bid for exclusive leads only, in an auction for a shared lead.
    EXCLUSIVITY_CONFLICT = codes.EXCLUSIVITY_CONFLICT
    # Ranked, but never posted to: a better bid sold, the buyer already bought this lead through
    # another campaign, its payout could not cover what the supplier was promised, or the walk
    # ran out of time before reaching it.
    NOT_BETTER_THAN_WINNER = codes.NOT_BETTER_THAN_WINNER
    POST_REJECTED = codes.POST_REJECTED
    POST_ERROR = codes.POST_ERROR
    SOLD = codes.SOLD
