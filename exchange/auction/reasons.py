"""The reason codes the auction assigns (a subset of DESIGN.md's stable list).

One code per campaign per lead. The strings are a public contract: traces, the API and the CLI
show them, so never rename a value; add a new member instead.
"""

from __future__ import annotations

import enum


class AuctionReason(str, enum.Enum):
    # The bid is under the campaign's floor, or what it pays the supplier after margin is under
    # the supplier's minimum (or is nothing at all). Both are "this price is too low", so they
    # share the one code DESIGN.md has for it; the trace carries the numbers that tell them apart.
    BELOW_FLOOR = "below_floor"
    # A bid for exclusive leads only, in an auction for a shared lead.
    EXCLUSIVITY_CONFLICT = "exclusivity_conflict"
    # Ranked, but never posted to: a better bid sold, the buyer already bought this lead through
    # another campaign, or its payout could not cover what the supplier was promised.
    NOT_BETTER_THAN_WINNER = "not_better_than_winner"
    POST_REJECTED = "post_rejected"
    POST_ERROR = "post_error"
    SOLD = "sold"
