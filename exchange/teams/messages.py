"""What the team and agent API reads and writes (msgspec Structs; bounds checked on decode)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

import msgspec

from exchange.channels.names import LeadChannel
from exchange.matching.schedule import Schedule
from exchange.teams.agents import WEIGHT_MAX, WEIGHT_MIN, ManualStatus, Skills
from exchange.teams.hybrid import (
    RULES_MAX,
    TIER_MAX,
    TIERS_MAX,
    ScoreTier,
    Strategy,
    StrategyRule,
)
from exchange.teams.offers import FallbackPolicy
from exchange.teams.performance import (
    FLOOR_PCT_DEFAULT,
    PRIOR_STRENGTH_DEFAULT,
    PRIOR_STRENGTH_MAX,
)
from exchange.teams.sequential import MAX_ROUNDS_MAX
from exchange.teams.sla import MAX_REASSIGNS_MAX, SLA_MINUTES_MAX

LeadOwnerStatus = Literal["queued", "offered", "owned", "fallback", "closed"]
CloseOutcome = Literal["won", "lost", "bad_lead", "other"]
CLOSE_NOTE_MAX = 2000

HEARTBEAT_TTL_S_MAX = 24 * 3600
ACCOUNT_WINDOW_DAYS_MAX = 3650
OFFER_TIMEOUT_S_MIN = 5  # the pure layer's OFFER_TIMEOUT_MIN
OFFER_TIMEOUT_S_MAX = 24 * 3600
QUEUE_MAX_AGE_S_MAX = 30 * 24 * 3600  # the pure layer's QUEUE_MAX_AGE_MAX
PARALLEL_K_MAX = 500
DEFAULT_OFFER_TIMEOUT_S = 120
DEFAULT_QUEUE_MAX_AGE_S = 24 * 3600
DEFAULT_HEARTBEAT_TTL_S = 90
AgentEmail = Annotated[
    str, msgspec.Meta(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]


class ProfileIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An agent's routing profile, set by an operator. ``working_hours`` are read on the agent's
    wall clock (their ``timezone`` is replaced by the agent's)."""

    timezone: Annotated[str, msgspec.Meta(max_length=64)] = "UTC"
    working_hours: Schedule | None = None
    skills: Skills = Skills()
    weight: Annotated[int, msgspec.Meta(ge=WEIGHT_MIN, le=WEIGHT_MAX)] = 1
    tier: Annotated[int, msgspec.Meta(ge=1, le=TIER_MAX)] = 1  # 1: most senior (score tiers)
    daily_cap: Annotated[int, msgspec.Meta(ge=0)] | None = None
    concurrent_cap: Annotated[int, msgspec.Meta(ge=0)] | None = None
    # None: presence not tracked (manual "available" is enough).
    heartbeat_ttl_s: Annotated[int, msgspec.Meta(ge=1, le=HEARTBEAT_TTL_S_MAX)] | None = (
        DEFAULT_HEARTBEAT_TTL_S
    )
    # Where the agent is told of offers and assignments (docs/notifications.md); None: not by
    # email.
    email: AgentEmail | None = None
    # The E.164 number or SIP address the team's calls ring for this agent (docs/calls.md);
    # None: the agent takes no calls.
    call_destination: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class Profile(msgspec.Struct, kw_only=True):
    agent_id: uuid.UUID
    team_id: uuid.UUID
    timezone: str
    working_hours: Schedule | None
    skills: Skills
    weight: int
    tier: int
    daily_cap: int | None
    concurrent_cap: int | None
    heartbeat_ttl_s: int | None
    manual_status: ManualStatus
    last_heartbeat_at: dt.datetime | None
    online: bool
    served_today: int
    open_leads: int
    served_in_window: int
    last_assigned_at: dt.datetime | None
    email: str | None = None
    call_destination: str | None = None


class StatusIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    status: ManualStatus


class TeamRouting(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Smarter routing for a team (docs/teams.md): hybrid rules that switch the strategy by the
    team's local time and the lead's score, score tiers (high scores to senior agents first),
    the fairness floor and prior of performance-based and predictive routing, what splits a
    conversion segment, and account-based routing (None: off)."""

    timezone: Annotated[str, msgspec.Meta(max_length=64)] = "UTC"  # rules' hours read here
    rules: Annotated[list[StrategyRule], msgspec.Meta(max_length=RULES_MAX)] = []
    score_tiers: Annotated[list[ScoreTier], msgspec.Meta(max_length=TIERS_MAX)] = []
    fairness_floor_pct: Annotated[int, msgspec.Meta(ge=0, le=100)] = FLOOR_PCT_DEFAULT
    prior_strength: Annotated[int, msgspec.Meta(ge=0, le=PRIOR_STRENGTH_MAX)] = (
        PRIOR_STRENGTH_DEFAULT
    )
    # A lead field whose value splits agents' conversion counts beside the lead's priority
    # (e.g. "loan_type": an agent good at refinance may not be at purchase).
    segment_field: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    # A lead whose phone, email or company domain was owned by one of this team's agents within
    # this many days goes to that agent first (if eligible); None: account routing off.
    account_window_days: Annotated[int, msgspec.Meta(ge=1, le=ACCOUNT_WINDOW_DAYS_MAX)] | None = (
        None
    )


class TeamConfigIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    strategy: Strategy = "round_robin"
    offer_timeout_s: Annotated[
        int, msgspec.Meta(ge=OFFER_TIMEOUT_S_MIN, le=OFFER_TIMEOUT_S_MAX)
    ] = DEFAULT_OFFER_TIMEOUT_S
    max_rounds: Annotated[int, msgspec.Meta(ge=1, le=MAX_ROUNDS_MAX)] = 1
    parallel_k: Annotated[int, msgspec.Meta(ge=1, le=PARALLEL_K_MAX)] | None = None
    fallback: FallbackPolicy | None = None  # None: back into this team's queue
    # Which lead field holds each skill requirement, e.g. {"state": "state"}.
    skill_fields: dict[Literal["language", "state", "lead_type"], str] | None = None
    queue_max_age_s: Annotated[int, msgspec.Meta(ge=1, le=QUEUE_MAX_AGE_S_MAX)] = (
        DEFAULT_QUEUE_MAX_AGE_S
    )
    sla_minutes: Annotated[int, msgspec.Meta(ge=1, le=SLA_MINUTES_MAX)] | None = None
    max_reassigns: Annotated[int, msgspec.Meta(ge=0, le=MAX_REASSIGNS_MAX)] = 1
    # Count the SLA's minutes only while the owner's working hours are open (stored inside the
    # ``skill_fields`` JSON column under ``store.SLA_WORKING_HOURS_KEY``: no migration).
    sla_working_hours: bool = False
    routing: TeamRouting | None = None  # None: the plain strategy above, no smarter routing


class TeamConfig(TeamConfigIn, kw_only=True):
    team_id: uuid.UUID
    updated_at: dt.datetime


class RouteIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Send a vertical's unsold leads (from ``source`` only, or any when null; arrived by
    ``channel`` only, or any when null) to a team."""

    vertical: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    team_id: uuid.UUID
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)] | None = None
    channel: LeadChannel | None = None


class Route(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    vertical: str
    source: str | None
    channel: str | None
    team_id: uuid.UUID
    updated_at: dt.datetime


class OfferOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    lead_id: uuid.UUID
    team_id: uuid.UUID
    agent_id: uuid.UUID
    mode: str
    status: str
    round: int
    created_at: dt.datetime
    expires_at: dt.datetime
    decided_at: dt.datetime | None
    fields: dict[str, Any] = {}  # the lead's non-PII fields: enough to decide


class Decision(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Why routing did what it did with a lead (stored with its owner row, shown in audits)."""

    strategy: str  # the strategy used (after hybrid rules)
    rule: int | None = None  # the hybrid rule that chose it; None: the team's base strategy
    segment: str | None = None
    tiers: list[int] = []  # score tiers tried first
    account: str | None = None  # account routing: what matched, and whether the owner took it
    explanation: str | None = None  # performance / predictive: why this agent
    call: str | None = None  # a team's call (exchange.calls): how its agent came to own it


class Ownership(msgspec.Struct, kw_only=True):
    lead_id: uuid.UUID
    team_id: uuid.UUID
    agent_id: uuid.UUID | None
    status: LeadOwnerStatus
    reason: str | None
    owned_since: dt.datetime | None
    first_contact_at: dt.datetime | None
    reassign_count: int
    decision: Decision | None = None


class CloseIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An owner closes a lead: how it ended, and an optional note (logged, not stored)."""

    outcome: CloseOutcome
    note: Annotated[str, msgspec.Meta(max_length=CLOSE_NOTE_MAX)] | None = None


class OfferAudit(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    agent_id: uuid.UUID
    mode: str
    status: str  # pending, accepted, declined, expired, rescinded
    round: int
    created_at: dt.datetime
    expires_at: dt.datetime
    decided_at: dt.datetime | None


class Exclusion(msgspec.Struct, kw_only=True):
    agent_id: uuid.UUID
    reason: str  # a code of exchange.teams.reasons


class RoutingAudit(Ownership, kw_only=True):
    """A routed lead for operators: where it stands, every offer made with its lifecycle, and
    the team's agents not eligible for it *now* with why (computed on read)."""

    offers: list[OfferAudit] = []
    excluded: list[Exclusion] = []


class OwnedLead(msgspec.Struct, kw_only=True):
    lead_id: uuid.UUID
    owned_since: dt.datetime | None
    first_contact_at: dt.datetime | None
    fields: dict[str, Any]
    pii: dict[str, Any]  # only an owner sees it


class SweepResult(msgspec.Struct, kw_only=True):
    expired: int = 0  # leads whose offers ran out and moved on
    drained: int = 0  # queued leads that found an agent (or an offer)
    too_old: int = 0  # queued leads past the team's max age: fell back
    reassigned: int = 0  # owned leads that breached the first-contact SLA
