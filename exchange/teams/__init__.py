"""Internal sales teams: agents, availability, round-robin, sequential and parallel offers, the
team queue, the first-contact SLA, the offer lifecycle and its audit lines.

Pure decisions over plain values: no database, no HTTP, no clock (``now`` is always passed in,
an aware datetime). The DB layer wraps them: it reads agents, loads and standings, calls these,
and commits the answers with compare-and-set writes (see ``round_robin`` and ``parallel``).
The two offer strategies share verb names, so they are used through their modules:
``sequential.start / on_decline / on_expire / accept`` and ``parallel.offers / claim / decline /
on_expire``.
"""

from exchange.teams import parallel, reasons, sequential
from exchange.teams.agents import (
    DEFAULT_HEARTBEAT_TTL,
    Agent,
    AgentDecision,
    AgentLoad,
    Eligibility,
    LeadRequirements,
    ManualStatus,
    Skills,
    eligibility,
    eligible_ids,
    evaluate_team,
    in_working_hours,
    is_online,
    local_day,
    served_today,
    validate_agent,
)
from exchange.teams.offers import (
    AuditEvent,
    AuditLine,
    Fallback,
    FallbackKind,
    FallbackPolicy,
    IllegalTransition,
    Offer,
    OfferEvent,
    OfferMode,
    OfferStatus,
    audit,
    audit_fallback,
    make_offer,
    transition,
)
from exchange.teams.queue import (
    DrainResult,
    DrainTrigger,
    QueueAssignment,
    ReadyAgent,
    WaitingLead,
    capacity,
    drain,
    ordered,
    too_old,
)
from exchange.teams.round_robin import (
    Assignment,
    Standing,
    bump,
    calibrate,
    choose,
    credit_back,
    level,
    plan,
    roll,
    standing_of,
)
from exchange.teams.sla import Reassign, breached, deadline, next_owner

__all__ = [
    "DEFAULT_HEARTBEAT_TTL",
    "Agent", "AgentDecision", "AgentLoad", "Assignment", "AuditEvent", "AuditLine", "DrainResult",
    "DrainTrigger", "Eligibility", "Fallback", "FallbackKind", "FallbackPolicy",
    "IllegalTransition", "LeadRequirements", "ManualStatus", "Offer", "OfferEvent", "OfferMode",
    "OfferStatus", "QueueAssignment", "ReadyAgent", "Reassign", "Skills", "Standing",
    "WaitingLead", "audit", "audit_fallback", "breached", "bump", "calibrate", "capacity",
    "choose", "credit_back", "deadline", "drain", "eligibility", "eligible_ids", "evaluate_team",
    "in_working_hours", "is_online", "level", "local_day", "make_offer", "next_owner", "ordered",
    "parallel", "plan", "reasons", "roll", "sequential", "served_today", "standing_of", "too_old", "transition",
    "validate_agent",
]  # fmt: skip
