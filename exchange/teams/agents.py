"""Agents, their availability and load, and whether one may be offered a lead now.

``eligibility`` runs the checks below in this fixed order and stops at the first that fails, so
an excluded agent always has exactly one reason (codes in ``exchange.teams.reasons``):

1. ``agent_inactive``          the agent is deactivated
2. ``agent_away``              the agent's manual status is ``away``
3. ``agent_offline``           the heartbeat expired (``now - last_heartbeat_at >= heartbeat_ttl``)
                               or never came; skipped when ``heartbeat_ttl`` is None
4. ``outside_working_hours``   ``now`` is outside ``working_hours`` on the agent's wall clock
5. ``daily_cap_reached``       ``served_today >= daily_cap`` for the agent's current local day
6. ``concurrent_cap_reached``  ``open_leads >= concurrent_cap``
7. ``missing_skill:<kind>``    the lead needs a language, then state, then lead type the agent
                               does not have
8. ``already_offered``         the agent already had this lead (declined, expired, owned)

Availability: an agent is available when its manual status is ``available`` and it is online.
Online means a heartbeat younger than ``heartbeat_ttl``; an agent with ``heartbeat_ttl=None``
does not track presence (a desk agent, or a mobile one whose app cannot heartbeat), so its manual
"available" is enough. ``away`` always wins over a fresh heartbeat.

The agent's own state (status, presence, hours, caps) comes before the lead (skills, offers), so
an audit explains an offline or full agent without looking at the lead; the cap checks come after
hours because counters change under load and are re-checked atomically by the DB layer.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Collection, Iterable, Mapping
from typing import Annotated, Any, NamedTuple

import msgspec

from exchange.matching.localtime import require_aware, timezone_problem, zone
from exchange.matching.schedule import Schedule, is_open, validate_schedule
from exchange.teams import reasons

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
WEIGHT_MIN = 1
WEIGHT_MAX = 100
DEFAULT_HEARTBEAT_TTL = dt.timedelta(seconds=90)
HEARTBEAT_TTL_MAX = dt.timedelta(hours=24)
SKILLS_PER_KIND_MAX = 100


class ManualStatus(str, enum.Enum):
    AVAILABLE = "available"
    AWAY = "away"


class Skills(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What an agent can take. Codes are compared exactly: languages as lower-case ISO 639-1
    ("en"), states as upper-case USPS codes ("TX"), lead types as the vertical's names."""

    languages: Annotated[frozenset[str], msgspec.Meta(max_length=SKILLS_PER_KIND_MAX)] = frozenset()
    states: Annotated[frozenset[str], msgspec.Meta(max_length=SKILLS_PER_KIND_MAX)] = frozenset()
    lead_types: Annotated[frozenset[str], msgspec.Meta(max_length=SKILLS_PER_KIND_MAX)] = (
        frozenset()
    )


class LeadRequirements(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a lead needs of its agent; None means no requirement of that kind. The team decides
    which lead fields are requirements (e.g. the state only where agents must be licensed)."""

    language: str | None = None
    state: str | None = None
    lead_type: str | None = None


class Agent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: Id
    team_id: Id
    timezone: str  # IANA; working hours and the daily cap's day are on this wall clock
    active: bool = True
    manual_status: ManualStatus = ManualStatus.AVAILABLE
    last_heartbeat_at: dt.datetime | None = None
    heartbeat_ttl: dt.timedelta | None = DEFAULT_HEARTBEAT_TTL  # None: presence not tracked
    working_hours: Schedule | None = None  # None: any time; read in the agent's time zone
    skills: Skills = Skills()
    weight: Annotated[int, msgspec.Meta(ge=WEIGHT_MIN, le=WEIGHT_MAX)] = 1
    daily_cap: Annotated[int, msgspec.Meta(ge=0)] | None = None  # None: no cap
    concurrent_cap: Annotated[int, msgspec.Meta(ge=0)] | None = None  # None: no cap


class AgentLoad(msgspec.Struct, frozen=True, kw_only=True):
    """What the DB counted for an agent. ``served_today`` belongs to the agent's local date
    ``served_on``; a count from another day is stale and read as 0 (the day rolled over at local
    midnight). ``served_on=None`` means the caller already counted the current local day."""

    served_today: int = 0
    served_on: dt.date | None = None
    open_leads: int = 0
    last_assigned_at: dt.datetime | None = None
    served_in_window: int = 0  # the round-robin window's count (see ``round_robin``)


class Eligibility(NamedTuple):
    eligible: bool
    reason: str | None  # None exactly when eligible


class AgentDecision(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a routing audit: the agent, the answer, and the numbers behind it."""

    agent_id: str
    eligible: bool
    reason: str | None
    details: dict[str, Any] = {}


ELIGIBLE = Eligibility(True, None)


def is_online(agent: Agent, now: dt.datetime) -> bool:
    """A heartbeat younger than the TTL (expired at exactly ``last + ttl``), or no presence."""
    if agent.heartbeat_ttl is None:
        return True
    if agent.last_heartbeat_at is None:
        return False
    return require_aware(now) - require_aware(agent.last_heartbeat_at) < agent.heartbeat_ttl


def working_hours(agent: Agent) -> Schedule | None:
    """The agent's hours on the agent's wall clock (the agent's time zone wins)."""
    hours = agent.working_hours
    if hours is None or hours.timezone == agent.timezone:
        return hours
    return msgspec.structs.replace(hours, timezone=agent.timezone)


def in_working_hours(agent: Agent, now: dt.datetime) -> bool:
    return is_open(working_hours(agent), now)


def local_day(agent: Agent, now: dt.datetime) -> dt.date:
    """The agent's current local date: the daily cap's day (resets at local midnight)."""
    return require_aware(now).astimezone(zone(agent.timezone)).date()


def served_today(agent: Agent, load: AgentLoad, now: dt.datetime) -> int:
    if load.served_on is not None and load.served_on != local_day(agent, now):
        return 0
    return load.served_today


def missing_skill(skills: Skills, requirements: LeadRequirements) -> str | None:
    """The first skill kind (language, state, lead type) the lead needs and the agent lacks."""
    if requirements.language is not None and requirements.language not in skills.languages:
        return reasons.SKILL_LANGUAGE
    if requirements.state is not None and requirements.state not in skills.states:
        return reasons.SKILL_STATE
    if requirements.lead_type is not None and requirements.lead_type not in skills.lead_types:
        return reasons.SKILL_LEAD_TYPE
    return None


def _decide(
    agent: Agent,
    load: AgentLoad,
    requirements: LeadRequirements,
    now: dt.datetime,
    already_offered: Collection[str],
) -> tuple[str | None, dict[str, Any]]:
    if not agent.active:
        return reasons.AGENT_INACTIVE, {}
    if agent.manual_status is ManualStatus.AWAY:
        return reasons.AGENT_AWAY, {}
    if not is_online(agent, now):
        return reasons.AGENT_OFFLINE, {"last_heartbeat_at": agent.last_heartbeat_at}
    if not in_working_hours(agent, now):
        return reasons.OUTSIDE_WORKING_HOURS, {"timezone": agent.timezone}
    if agent.daily_cap is not None:
        used = served_today(agent, load, now)
        if used >= agent.daily_cap:
            return reasons.DAILY_CAP_REACHED, {"used": used, "limit": agent.daily_cap}
    if agent.concurrent_cap is not None and load.open_leads >= agent.concurrent_cap:
        return reasons.CONCURRENT_CAP_REACHED, {
            "used": load.open_leads,
            "limit": agent.concurrent_cap,
        }
    kind = missing_skill(agent.skills, requirements)
    if kind is not None:
        return reasons.missing_skill(kind), {}
    if agent.id in already_offered:
        return reasons.ALREADY_OFFERED, {}
    return None, {}


def eligibility(
    agent: Agent,
    load: AgentLoad,
    lead_requirements: LeadRequirements,
    now: dt.datetime,
    already_offered: Collection[str] = frozenset(),
) -> Eligibility:
    """``(eligible, reason)`` for one agent and one lead; the order is in the module docstring."""
    now = require_aware(now)
    reason, _ = _decide(agent, load, lead_requirements, now, already_offered)
    return ELIGIBLE if reason is None else Eligibility(False, reason)


def evaluate_team(
    agents: Iterable[Agent],
    loads: Mapping[str, AgentLoad],
    lead_requirements: LeadRequirements,
    now: dt.datetime,
    already_offered: Collection[str] = frozenset(),
) -> tuple[AgentDecision, ...]:
    """One decision per agent, sorted by agent id, for the routing audit ("why was I skipped?").
    An agent missing from ``loads`` has an empty load."""
    now = require_aware(now)
    empty = AgentLoad()
    decisions = []
    for agent in sorted(agents, key=lambda a: a.id):
        reason, details = _decide(
            agent, loads.get(agent.id, empty), lead_requirements, now, already_offered
        )
        decisions.append(
            AgentDecision(
                agent_id=agent.id, eligible=reason is None, reason=reason, details=details
            )
        )
    return tuple(decisions)


def eligible_ids(decisions: Iterable[AgentDecision]) -> frozenset[str]:
    return frozenset(d.agent_id for d in decisions if d.eligible)


def validate_agent(agent: Agent, *, path: str = "agent") -> list[tuple[str, str]]:
    """Problems as (path, reason). msgspec checks the bounds when decoding; this also covers
    values built in code and the cross-field rules."""
    problems: list[tuple[str, str]] = []
    if problem := timezone_problem(agent.timezone):
        problems.append((f"{path}.timezone", problem))
    if not WEIGHT_MIN <= agent.weight <= WEIGHT_MAX:
        problems.append((f"{path}.weight", f"must be {WEIGHT_MIN} to {WEIGHT_MAX}"))
    for name in ("daily_cap", "concurrent_cap"):
        value = getattr(agent, name)
        if value is not None and value < 0:
            problems.append((f"{path}.{name}", "must be 0 or more"))
    ttl = agent.heartbeat_ttl
    if ttl is not None and not dt.timedelta(0) < ttl <= HEARTBEAT_TTL_MAX:
        problems.append(
            (f"{path}.heartbeat_ttl", f"must be positive and at most {HEARTBEAT_TTL_MAX}")
        )
    if agent.last_heartbeat_at is not None and agent.last_heartbeat_at.tzinfo is None:
        problems.append((f"{path}.last_heartbeat_at", "must be an aware datetime"))
    if agent.working_hours is not None:
        hours_path = f"{path}.working_hours"
        problems.extend(validate_schedule(agent.working_hours, path=hours_path))
        if agent.working_hours.timezone != agent.timezone:
            problems.append((f"{hours_path}.timezone", "must be the agent's time zone"))
    return problems
