"""Reason codes: why a campaign did not get (or did get) a lead.

Every campaign evaluated for a lead ends with exactly one of these stable strings. They are part
of the public API (ping results, traces, CLI), so never rename one; add new ones instead.
``REASONS`` maps each code (templates use ``<...>``) to a one-line meaning; the docs are generated
from it.
"""

from __future__ import annotations

FILTERED_PREFIX = "filtered:"
CAP_REACHED_PREFIX = "cap_reached:"
BUDGET_REACHED_PREFIX = "budget_reached:"

# The field name an expression filter reports: an expression may test several fields, and naming
# one of them would depend on evaluation order, so the whole expression is named instead.
EXPRESSION_FIELD = "expression"
# What score filters report (exchange.scoring): the lead's score and its priority band. Both are
# reserved vertical field names, so these never mean a field.
SCORE_FIELD = "score"
PRIORITY_FIELD = "priority"

CAMPAIGN_PAUSED = "campaign_paused"
SCHEDULE_CLOSED = "schedule_closed"
FILTERED_EXPRESSION = FILTERED_PREFIX + EXPRESSION_FIELD
FILTERED_SCORE = FILTERED_PREFIX + SCORE_FIELD
FILTERED_PRIORITY = FILTERED_PREFIX + PRIORITY_FIELD
DUPLICATE = "duplicate"
INSUFFICIENT_BALANCE = "insufficient_balance"
EXCLUSIVITY_CONFLICT = "exclusivity_conflict"
BELOW_FLOOR = "below_floor"
PING_TIMEOUT = "ping_timeout"
PING_ERROR = "ping_error"
PING_REJECTED = "ping_rejected"
POST_REJECTED = "post_rejected"
POST_ERROR = "post_error"
NOT_BETTER_THAN_WINNER = "not_better_than_winner"
SOLD = "sold"


def filtered(field: str) -> str:
    return FILTERED_PREFIX + field


def cap_reached(window: str) -> str:
    return CAP_REACHED_PREFIX + window


def budget_reached(window: str) -> str:
    return BUDGET_REACHED_PREFIX + window


REASONS: dict[str, str] = {
    CAMPAIGN_PAUSED: "the campaign is paused (not active)",
    SCHEDULE_CLOSED: "the lead arrived outside the campaign's schedule (in its time zone)",
    FILTERED_PREFIX + "<field>": "a campaign filter on <field> failed, or the lead lacks <field>",
    FILTERED_EXPRESSION: "the expression filter was false, or a field it reads is missing",
    FILTERED_SCORE: "the lead's score is outside the campaign's score_range (or it has none)",
    FILTERED_PRIORITY: "the lead's priority is not in the campaign's priority_in (or it has none)",
    DUPLICATE: "this buyer already bought this person (or intake saw the lead before)",
    CAP_REACHED_PREFIX + "<window>": "the lead count cap of the current <window> is used up",
    BUDGET_REACHED_PREFIX + "<window>": "the spend cap of the <window> cannot cover the lead",
    INSUFFICIENT_BALANCE: "the buyer's balance or credit cannot pay for the lead",
    EXCLUSIVITY_CONFLICT: "exclusive and shared sales do not mix for this lead",
    BELOW_FLOOR: "the bid was below the campaign floor or the supplier's minimum",
    PING_TIMEOUT: "the buyer did not answer the ping before its timeout or the auction deadline",
    PING_ERROR: "the ping failed: transport error, 5xx or unreadable answer (never a bid)",
    PING_REJECTED: "the buyer answered the ping with no bid",
    POST_REJECTED: "the buyer refused the posted lead",
    POST_ERROR: "the post failed: transport error, 5xx or unreadable answer",
    NOT_BETTER_THAN_WINNER: "the campaign was eligible but another bid won",
    SOLD: "the lead was sold to this campaign",
}

# The order in which eligibility checks a campaign; the first failing check is its reason.
ELIGIBILITY_ORDER: tuple[str, ...] = (
    CAMPAIGN_PAUSED,
    SCHEDULE_CLOSED,
    FILTERED_PREFIX + "<field>",
    DUPLICATE,
    CAP_REACHED_PREFIX + "<window>",
    BUDGET_REACHED_PREFIX + "<window>",
    INSUFFICIENT_BALANCE,
)


def is_known(code: str) -> bool:
    """True for a code in ``REASONS``, templates filled with a non-empty name."""
    if code in REASONS and "<" not in code:
        return True
    for prefix in (FILTERED_PREFIX, CAP_REACHED_PREFIX, BUDGET_REACHED_PREFIX):
        if code.startswith(prefix) and len(code) > len(prefix):
            return True
    return False
