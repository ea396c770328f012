"""The team queue: leads nobody could take wait here and are drained later.

Order: higher ``priority`` first, then the oldest lead (``created_at``), then the lead id, so the
order never depends on how the DB returned the rows. A lead is too old from
``created_at + max_age`` on (exactly at that instant included): it leaves the queue as
``queue_max_age`` and goes to the team's fallback instead of to an agent.

``drain`` runs when a trigger fires (an agent comes online, frees capacity, starts working
hours, or the periodic sweep). It walks the queue in order and gives each lead to the best agent
that has its skills and free capacity, by round-robin standing (``round_robin.choose``), bumping
the standing and using up capacity as it goes. A lead no ready agent can take stays queued
without blocking the leads behind it (a Spanish lead does not hold up English ones). The DB
layer then commits each assignment with its owner compare-and-set and the agents' standings
with theirs (``expected`` = what was read).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence

import msgspec

from exchange.matching.localtime import require_aware
from exchange.teams.agents import (
    Agent,
    AgentLoad,
    LeadRequirements,
    Skills,
    missing_skill,
    served_today,
)
from exchange.teams.round_robin import Standing, bump, choose

QUEUE_MAX_AGE_MAX = dt.timedelta(days=30)


class DrainTrigger(str, enum.Enum):
    AGENT_ONLINE = "agent_online"
    CAPACITY_FREED = "capacity_freed"
    HOURS_STARTED = "hours_started"
    SWEEP = "sweep"


class WaitingLead(msgspec.Struct, frozen=True, kw_only=True):
    lead_id: str
    created_at: dt.datetime
    priority: int = 0  # higher is drained first
    requirements: LeadRequirements = LeadRequirements()


class ReadyAgent(msgspec.Struct, frozen=True, kw_only=True):
    """An agent eligible now (apart from skills and capacity, which drain checks per lead)."""

    agent_id: str
    capacity: int | None  # leads it can still take now; None: no cap
    skills: Skills = Skills()
    weight: int = 1
    standing: Standing | None = None  # None: never assigned in the window


class QueueAssignment(msgspec.Struct, frozen=True, kw_only=True):
    lead_id: str
    agent_id: str


class DrainResult(msgspec.Struct, frozen=True, kw_only=True):
    assignments: tuple[QueueAssignment, ...]  # in queue order
    expired: tuple[WaitingLead, ...]  # too old: to the fallback
    waiting: tuple[WaitingLead, ...]  # still queued, in queue order
    standings: tuple[Standing, ...]  # new standings of the agents that got leads, by agent id


def ordered(waiting: Iterable[WaitingLead]) -> tuple[WaitingLead, ...]:
    return tuple(
        sorted(waiting, key=lambda w: (-w.priority, require_aware(w.created_at), w.lead_id))
    )


def too_old(lead: WaitingLead, now: dt.datetime, max_age: dt.timedelta) -> bool:
    return require_aware(now) >= require_aware(lead.created_at) + max_age


def capacity(agent: Agent, load: AgentLoad, now: dt.datetime) -> int | None:
    """How many more leads the agent can take now under its daily and concurrent caps."""
    room: list[int] = []
    if agent.daily_cap is not None:
        room.append(agent.daily_cap - served_today(agent, load, now))
    if agent.concurrent_cap is not None:
        room.append(agent.concurrent_cap - load.open_leads)
    return max(0, min(room)) if room else None


def _has_room(left: int | None) -> bool:
    return left is None or left > 0


def drain(
    waiting: Iterable[WaitingLead],
    agents_now_eligible: Sequence[ReadyAgent],
    now: dt.datetime,
    max_age: dt.timedelta,
) -> DrainResult:
    now = require_aware(now)
    if not dt.timedelta(0) < max_age <= QUEUE_MAX_AGE_MAX:
        raise ValueError(f"max_age must be positive and at most {QUEUE_MAX_AGE_MAX}")
    ids = [a.agent_id for a in agents_now_eligible]
    if len(set(ids)) != len(ids):
        raise ValueError("an agent appears twice")
    agents = {a.agent_id: a for a in agents_now_eligible}
    room = {a.agent_id: a.capacity for a in agents_now_eligible}
    standing = {
        a.agent_id: a.standing or Standing(agent_id=a.agent_id) for a in agents_now_eligible
    }
    weights = {a.agent_id: a.weight for a in agents_now_eligible}
    assignments: list[QueueAssignment] = []
    expired: list[WaitingLead] = []
    still: list[WaitingLead] = []
    bumped: set[str] = set()
    for lead in ordered(waiting):
        if too_old(lead, now, max_age):
            expired.append(lead)
            continue
        able = [
            standing[a]
            for a, agent in agents.items()
            if _has_room(room[a]) and missing_skill(agent.skills, lead.requirements) is None
        ]
        if not able:
            still.append(lead)
            continue
        best = choose(able, weights)[0]
        assignments.append(QueueAssignment(lead_id=lead.lead_id, agent_id=best))
        standing[best] = bump(standing[best], now)
        left = room[best]
        room[best] = None if left is None else left - 1
        bumped.add(best)
    return DrainResult(
        assignments=tuple(assignments),
        expired=tuple(expired),
        waiting=tuple(still),
        standings=tuple(standing[a] for a in sorted(bumped)),
    )
