"""Reason codes of the internal team strategies: why an agent was not offered a lead, why an
offer or claim was refused, why a lead fell back, left the queue or was reassigned.

The strings are a public contract (audit lines, the agent API, traces), so never rename one; add
new ones instead. ``REASONS`` maps each code (templates use ``<...>``) to a one-line meaning.
``ELIGIBILITY_ORDER`` is the order in which ``agents.eligibility`` checks an agent: the first
failing check is the agent's one reason.
"""

from __future__ import annotations

MISSING_SKILL_PREFIX = "missing_skill:"

# Skill kinds, in the order they are checked (``missing_skill:<kind>``).
SKILL_LANGUAGE = "language"
SKILL_STATE = "state"
SKILL_LEAD_TYPE = "lead_type"
SKILL_KINDS: tuple[str, ...] = (SKILL_LANGUAGE, SKILL_STATE, SKILL_LEAD_TYPE)

# -- eligibility (one per excluded agent) ---------------------------------------------------------
AGENT_INACTIVE = "agent_inactive"
AGENT_AWAY = "agent_away"
AGENT_OFFLINE = "agent_offline"
OUTSIDE_WORKING_HOURS = "outside_working_hours"
DAILY_CAP_REACHED = "daily_cap_reached"
CONCURRENT_CAP_REACHED = "concurrent_cap_reached"
MISSING_SKILL_LANGUAGE = MISSING_SKILL_PREFIX + SKILL_LANGUAGE
MISSING_SKILL_STATE = MISSING_SKILL_PREFIX + SKILL_STATE
MISSING_SKILL_LEAD_TYPE = MISSING_SKILL_PREFIX + SKILL_LEAD_TYPE
ALREADY_OFFERED = "already_offered"

# -- offers and claims (a refused accept, a lost claim: the 409 answer) --------------------------
OFFER_EXPIRED = "offer_expired"
OFFER_NOT_PENDING = "offer_not_pending"
OFFER_NOT_EXPIRED = "offer_not_expired"
NOT_OFFERED = "not_offered"
ALREADY_CLAIMED = "already_claimed"
ROUTING_CLOSED = "routing_closed"

# -- fallbacks (why a lead left a strategy) -------------------------------------------------------
NOBODY_ELIGIBLE = "nobody_eligible"
ROUNDS_EXHAUSTED = "rounds_exhausted"
NO_CLAIM_BEFORE_EXPIRY = "no_claim_before_expiry"
ALL_DECLINED = "all_declined"

# -- queue and SLA --------------------------------------------------------------------------------
QUEUE_MAX_AGE = "queue_max_age"
SLA_BREACHED = "sla_breached"
MAX_REASSIGNS_REACHED = "max_reassigns_reached"


def missing_skill(kind: str) -> str:
    return MISSING_SKILL_PREFIX + kind


REASONS: dict[str, str] = {
    AGENT_INACTIVE: "the agent is deactivated (not a working member of the team)",
    AGENT_AWAY: "the agent set their manual status to away",
    AGENT_OFFLINE: "the agent's last heartbeat is older than its time-to-live (or never came)",
    OUTSIDE_WORKING_HOURS: "now is outside the agent's working hours, in the agent's time zone",
    DAILY_CAP_REACHED: "the agent has served its daily cap of leads today (its local day)",
    CONCURRENT_CAP_REACHED: "the agent already holds its cap of open leads",
    MISSING_SKILL_PREFIX + "<kind>": "the lead needs a <kind> (language, state, lead_type) the "
    "agent lacks",
    ALREADY_OFFERED: "the agent already had an offer for this lead (declined, expired or owned)",
    OFFER_EXPIRED: "the offer's acceptance timeout passed before the answer",
    OFFER_NOT_PENDING: "the offer was already answered, expired or rescinded",
    OFFER_NOT_EXPIRED: "an expiry arrived before the offer's expires_at (a timer fired early)",
    NOT_OFFERED: "the agent has no current offer for this lead",
    ALREADY_CLAIMED: "another agent claimed (owns) the lead first",
    ROUTING_CLOSED: "routing for this lead already ended (owned or fell back)",
    NOBODY_ELIGIBLE: "no agent of the team was eligible, so the lead fell back or was queued",
    ROUNDS_EXHAUSTED: "sequential offers went through max_rounds without an acceptance",
    NO_CLAIM_BEFORE_EXPIRY: "parallel offers expired without a claim",
    ALL_DECLINED: "every parallel offer was declined before expiry",
    QUEUE_MAX_AGE: "the lead waited in the team queue past the maximum lead age",
    SLA_BREACHED: "the owner made no first contact within the SLA minutes",
    MAX_REASSIGNS_REACHED: "the lead was already reassigned the maximum number of times",
}

ELIGIBILITY_ORDER: tuple[str, ...] = (
    AGENT_INACTIVE,
    AGENT_AWAY,
    AGENT_OFFLINE,
    OUTSIDE_WORKING_HOURS,
    DAILY_CAP_REACHED,
    CONCURRENT_CAP_REACHED,
    MISSING_SKILL_LANGUAGE,
    MISSING_SKILL_STATE,
    MISSING_SKILL_LEAD_TYPE,
    ALREADY_OFFERED,
)


def is_known(code: str) -> bool:
    """True for a code in ``REASONS`` or a ``missing_skill:<kind>`` of a known kind."""
    if code in REASONS and "<" not in code:
        return True
    return (
        code.startswith(MISSING_SKILL_PREFIX) and code[len(MISSING_SKILL_PREFIX) :] in SKILL_KINDS
    )
