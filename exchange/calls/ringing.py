"""Where a call rings, and in what order: pure decisions over plain values.

A buyer's call rings its campaign's one destination. A team's call rings its agents' own
destinations the way the team routes leads (``exchange.teams``): the strategies that assign
(round-robin, performance, predictive) ring the one agent they choose; ``sequential`` rings
the agents in its order, each for ``ring_timeout_s``, until one answers; ``parallel`` rings
its first ``k`` agents at once and the first to answer takes the call. The exchange decides
the plan; the telephony carries it out and reports who answered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import msgspec

SINGLE = "single"
SEQUENTIAL = "sequential"
SIMULTANEOUS = "simultaneous"
DESTINATIONS_MAX = 10  # a ring plan names at most this many destinations
RING_TIMEOUT_MIN_S = 5
RING_TIMEOUT_MAX_S = 60  # however long a team's lead offers last, a phone rings at most this
ASSIGNING = frozenset({"round_robin", "performance", "predictive"})


class CallDestination(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    address: str  # E.164 number or SIP URI
    agent_id: str | None = None  # a team's agent; None: a buyer's (or a team's own) line


class RingPlan(msgspec.Struct, frozen=True, kw_only=True):
    ring: str  # single, sequential or simultaneous
    destinations: tuple[CallDestination, ...]
    ring_timeout_s: int | None = None  # sequential: how long each destination rings


def to_address(address: str) -> RingPlan:
    return RingPlan(ring=SINGLE, destinations=(CallDestination(address=address),))


def to_agents(
    strategy: str,
    agents: Sequence[tuple[str, str]],
    *,
    parallel_k: int | None,
    offer_timeout_s: int,
) -> RingPlan | None:
    """The plan for ``agents`` (agent id, address), best first by the team's ``strategy``;
    None when nobody can take the call. ``parallel_k`` None: every agent (up to the limit)."""
    if not agents:
        return None
    ring = [CallDestination(address=address, agent_id=agent) for agent, address in agents]
    if strategy in ASSIGNING:
        return RingPlan(ring=SINGLE, destinations=(ring[0],))
    if strategy == "parallel":
        k = DESTINATIONS_MAX if parallel_k is None else min(parallel_k, DESTINATIONS_MAX)
        return RingPlan(ring=SIMULTANEOUS, destinations=tuple(ring[:k]))
    timeout = max(RING_TIMEOUT_MIN_S, min(offer_timeout_s, RING_TIMEOUT_MAX_S))
    return RingPlan(ring=SEQUENTIAL, destinations=tuple(ring[:DESTINATIONS_MAX]), ring_timeout_s=timeout)


def connect_window(plan: RingPlan | None, ttl: dt.timedelta) -> dt.timedelta:
    """How long after the bid the caller may connect: the TTL, plus the time sequential
    ringing may take before the last destination (the telephony connects once, then rings)."""
    if plan is None or plan.ring != SEQUENTIAL or plan.ring_timeout_s is None:
        return ttl
    return ttl + dt.timedelta(seconds=plan.ring_timeout_s * (len(plan.destinations) - 1))


def answered(plan: RingPlan, address: str | None) -> CallDestination | None:
    """The destination that answered; ``address`` may be left out when only one could."""
    if address is None:
        return plan.destinations[0] if len(plan.destinations) == 1 else None
    return next((d for d in plan.destinations if d.address == address), None)
