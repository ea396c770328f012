"""Weighted round-robin from per-agent standing, never a shared index.

Each agent of a team has a ``Standing``: how many leads it was assigned in the current fairness
window and when it was last assigned. The next agent is the one with the lowest *level*
``(served + 1) / weight``, then the least recently assigned (never assigned first), then the
lowest id, so the choice depends only on the standings and never on input order.

Why it is fair: the chosen agent always has the lowest level, so after any number of picks no
agent's ``served / weight`` is above another's ``(served + 1) / weight``. Over ``n`` picks with
total weight ``W`` among ``k`` agents, agent ``i`` has served between ``n*w_i/W - 1`` and
``n*w_i/W + (k - 1)`` leads; with equal weights the counts never differ by more than one.

Joining and returning (``calibrate``): a new agent's ``served`` is raised to the team's current
minimum level, and a returning one's is raised to it if it fell behind. Its level is then at
most one of its own leads above the team's minimum, so it is next (at most) once and is never
flooded with the leads it "missed"; the fairness bound above still holds.

Concurrency: ``plan`` returns the preference order with, for each agent, the standing it was
computed from (``expected``) and the one to write (``new``). The DB layer writes ``new`` with a
compare-and-set on ``expected`` (``UPDATE ... WHERE agent_id = :a AND served = :s AND
last_assigned_at IS NOT DISTINCT FROM :t``) in the transaction that sets the lead's owner; a
worker whose CAS fails re-reads the standings and plans again, so two workers never both act on
the same standing.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction

import msgspec

from exchange.matching.localtime import UTC, require_aware
from exchange.teams.agents import WEIGHT_MAX, WEIGHT_MIN, AgentLoad

Weights = Mapping[str, int]  # agent id -> weight (1..100)
_NEVER = dt.datetime.min.replace(tzinfo=UTC)


class Standing(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: str
    served: int = 0  # leads assigned in the window
    last_assigned_at: dt.datetime | None = None
    window: str = ""  # the fairness window ``served`` counts in (e.g. ``day:2026-11-23``)


class Assignment(msgspec.Struct, frozen=True, kw_only=True):
    """Assign to ``agent_id``: compare-and-set its standing from ``expected`` to ``new``."""

    agent_id: str
    expected: Standing
    new: Standing


def standing_of(agent_id: str, load: AgentLoad, window: str = "") -> Standing:
    return Standing(
        agent_id=agent_id,
        served=load.served_in_window,
        last_assigned_at=load.last_assigned_at,
        window=window,
    )


def _weight(weights: Weights, agent_id: str) -> int:
    try:
        weight = weights[agent_id]
    except KeyError:
        raise KeyError(f"no weight for agent {agent_id!r}") from None
    if not WEIGHT_MIN <= weight <= WEIGHT_MAX:
        raise ValueError(f"weight of {agent_id!r} must be {WEIGHT_MIN} to {WEIGHT_MAX}: {weight}")
    return weight


def level(standing: Standing, weight: int) -> Fraction:
    """``(served + 1) / weight``, exact: where the agent stands after one more lead."""
    return Fraction(standing.served + 1, weight)


# ``level`` scaled by a multiple of every weight: an exact integer, so ordering a team by it
# compares ints, not Fractions (several times faster, the same order).
_LEVEL_SCALE = math.lcm(*range(WEIGHT_MIN, WEIGHT_MAX + 1))


def _key(standing: Standing, weights: Weights) -> tuple[int, dt.datetime, str]:
    last = standing.last_assigned_at
    when = _NEVER if last is None else require_aware(last)  # never assigned sorts first
    scaled = (standing.served + 1) * (_LEVEL_SCALE // _weight(weights, standing.agent_id))
    return (scaled, when, standing.agent_id)


def _check_unique(standings: Iterable[Standing]) -> None:
    seen: set[str] = set()
    for standing in standings:
        if standing.agent_id in seen:
            raise ValueError(f"agent {standing.agent_id!r} appears twice")
        seen.add(standing.agent_id)


def choose(standings: Iterable[Standing], weights: Weights) -> tuple[str, ...]:
    """Agent ids, best first: lowest level, then least recently assigned, then id. Pass the
    standings of the eligible agents only."""
    standings = tuple(standings)
    _check_unique(standings)
    return tuple(s.agent_id for s in sorted(standings, key=lambda s: _key(s, weights)))


def bump(standing: Standing, now: dt.datetime) -> Standing:
    """The standing after one more assignment at ``now``."""
    return msgspec.structs.replace(
        standing, served=standing.served + 1, last_assigned_at=require_aware(now)
    )


def plan(
    standings: Iterable[Standing], weights: Weights, now: dt.datetime
) -> tuple[Assignment, ...]:
    """``choose`` with the compare-and-set for each choice: try them in order."""
    by_id = {s.agent_id: s for s in standings}
    order = choose(by_id.values(), weights)
    return tuple(Assignment(agent_id=a, expected=by_id[a], new=bump(by_id[a], now)) for a in order)


def calibrate(standing: Standing, team_standings: Iterable[Standing], weights: Weights) -> Standing:
    """The standing of an agent who joins or returns: ``served`` raised (never lowered) to the
    least count whose level reaches the team's current minimum level, i.e.
    ``ceil(min_level * weight) - 1``; with equal weights, the team's least ``served``.

    ``team_standings`` are the other members present now (the agent itself is ignored), in the
    same window as ``standing`` (see ``roll``). ``last_assigned_at`` is kept: a new agent (never
    assigned) wins the tie at the minimum, so it is next once.
    """
    others = [s for s in team_standings if s.agent_id != standing.agent_id]
    if not others:
        return standing
    minimum = min(level(s, _weight(weights, s.agent_id)) for s in others)
    target = max(0, math.ceil(minimum * _weight(weights, standing.agent_id)) - 1)
    if target <= standing.served:
        return standing
    return msgspec.structs.replace(standing, served=target)


def credit_back(standing: Standing) -> Standing:
    """Undo one assignment's count (the lead was taken back by decline handling or SLA)."""
    return msgspec.structs.replace(standing, served=max(0, standing.served - 1))


def roll(standing: Standing, window: str) -> Standing:
    """The standing in ``window``: a count from another window starts again at 0 (the last
    assigned time is kept, so ties still go to whoever waited longest)."""
    if standing.window == window:
        return standing
    return msgspec.structs.replace(standing, served=0, window=window)


def roll_all(standings: Sequence[Standing], window: str) -> tuple[Standing, ...]:
    return tuple(roll(s, window) for s in standings)
