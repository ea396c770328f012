"""Performance-based and predictive choice of an agent, under a fairness floor.

Both rank a team's eligible agents by how well each converts leads of this segment, learned
from reported outcomes (``Counts``: final outcomes and wins per agent and segment):

- **performance**: by the *measured* rate, smoothed toward the team's rate so that an agent
  with 2 wins in 3 leads does not outrank one with 40 in 100 (posterior mean of a Beta prior
  centred on the team's rate with ``prior_strength`` pseudo-leads);
- **predictive**: Thompson sampling from the same Beta posterior: each agent's conversion
  probability is drawn from what the outcomes say it could be, and the highest draw wins. An
  agent with little data has a wide posterior, so it still gets leads until the data shows
  what it is worth; a proven agent wins most leads but not all. Honest with little data: with
  no outcomes at all every agent's draw comes from the same prior, i.e. a fair lottery.

The **fairness floor** keeps rotation in the picture: an agent whose share of the window's
leads is below ``floor_pct`` % of its (weighted) equal share among the agents present (``Pool``:
including those at a cap right now) is *owed*, and owed agents come first (in round-robin
order) whatever the estimates say. With ``floor_pct=50`` no agent falls
below half an equal share for long; with 100 the choice is round-robin; with 0 it is pure
performance.

Pure: counts, standings and a random source in, a ranking and its explanation out. The random
source is seeded by the caller (from the lead id), so a decision can be replayed.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec

from exchange.teams.hybrid import tiered
from exchange.teams.round_robin import Standing, choose

Method = Literal["performance", "predictive"]
FLOOR_PCT_DEFAULT = 50
PRIOR_STRENGTH_DEFAULT = 10  # pseudo-leads of the team's rate behind every agent's estimate
PRIOR_STRENGTH_MAX = 10_000
# With no outcomes in the team either, assume this rate (it only sets the prior's centre: with
# no data every agent has the same prior, so the choice is a fair draw whatever it is).
UNKNOWN_RATE = 0.1


class Counts(msgspec.Struct, frozen=True, kw_only=True):
    trials: int = 0  # leads that reached a final outcome (won, lost, bad lead)
    successes: int = 0  # won

    def __post_init__(self) -> None:
        if self.trials < 0 or not 0 <= self.successes <= self.trials:
            raise ValueError(f"counts must have 0 <= successes <= trials: {self}")


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """An eligible agent: its round-robin standing and weight, and its outcomes so far in the
    lead's segment."""

    standing: Standing
    weight: int = 1
    counts: Counts = Counts()

    @property
    def agent_id(self) -> str:
        return self.standing.agent_id


class Estimate(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: str
    rate: float  # posterior mean: the estimated conversion probability
    draw: float | None  # predictive: the sampled probability it was ranked by
    trials: int
    successes: int


class Ranking(msgspec.Struct, frozen=True, kw_only=True):
    method: Method
    order: tuple[str, ...]  # agent ids, best first: try them in this order
    owed: tuple[str, ...]  # agents below the fairness floor (ranked first)
    team_rate: float
    estimates: tuple[Estimate, ...]  # in ``order``

    def explain(self, chosen: str) -> str:
        """One line for the trace: why ``chosen`` (the agent actually assigned)."""
        if chosen in self.owed:
            return f"fairness floor: {chosen} below its share of leads (round-robin among owed)"
        est = next((e for e in self.estimates if e.agent_id == chosen), None)
        if est is None:
            return f"{self.method}: {chosen}"
        return (
            f"{self.method}: chosen {chosen}: estimated {pct(est.rate)} "
            f"({basis(est.trials, est.successes)}) vs team {pct(self.team_rate)}"
        )


def pct(rate: float) -> str:
    """A rate for a trace line: ``18%``."""
    return f"{rate * 100:.0f}%"


def basis(trials: int, successes: int) -> str:
    """What an estimate rests on, for a trace line: ``9/50 won`` or ``no outcomes yet``."""
    return f"{successes}/{trials} won" if trials else "no outcomes yet"


def team_rate(team: Counts) -> float:
    return team.successes / team.trials if team.trials else UNKNOWN_RATE


def posterior(counts: Counts, prior_rate: float, prior_strength: int) -> tuple[float, float]:
    """Beta(alpha, beta) after ``counts``, from a prior with mean ``prior_rate`` worth
    ``prior_strength`` leads (kept strictly positive so a draw is always defined)."""
    rate = min(max(prior_rate, 1e-3), 1 - 1e-3)
    alpha = prior_strength * rate + counts.successes
    beta = prior_strength * (1 - rate) + (counts.trials - counts.successes)
    return max(alpha, 1e-3), max(beta, 1e-3)


class Pool(msgspec.Struct, frozen=True, kw_only=True):
    """The agents present for the floor's share: every agent that could take leads today, even
    if at a cap right now (``served`` summed over their windows, ``weight`` summed). Without it,
    the candidates alone are the pool, and an agent at its concurrent cap would drop out of the
    total and relax the floor for everyone else."""

    served: int
    weight: int


def owed(candidates: Sequence[Candidate], floor_pct: int, pool: Pool | None = None) -> tuple[str, ...]:
    """Agents whose count would stay below ``floor_pct`` % of their weighted equal share of the
    window's leads after this one. ``standing.served`` is the window's count (same window for
    all: the caller rolls them)."""
    if floor_pct <= 0 or not candidates:
        return ()
    served = sum(c.standing.served for c in candidates)
    weights = sum(c.weight for c in candidates)
    if pool is not None:
        served, weights = max(served, pool.served), max(weights, pool.weight)
    total = served + 1
    # served * 100 * W < floor * total * w, in integers: no rounding at the boundary.
    return tuple(
        c.agent_id
        for c in candidates
        if c.standing.served * 100 * weights < floor_pct * total * c.weight
    )


def rank(
    method: Method,
    candidates: Sequence[Candidate],
    team: Counts,
    *,
    floor_pct: int = FLOOR_PCT_DEFAULT,
    prior_strength: int = PRIOR_STRENGTH_DEFAULT,
    rng: random.Random | None = None,
    pool: Pool | None = None,
) -> Ranking:
    """The eligible ``candidates`` best first: owed agents (round-robin order), then the rest by
    estimate (performance) or by a posterior draw (predictive), ties by round-robin order."""
    if not 0 <= floor_pct <= 100:
        raise ValueError(f"floor_pct must be 0 to 100: {floor_pct}")
    if not 0 <= prior_strength <= PRIOR_STRENGTH_MAX:
        raise ValueError(f"prior_strength must be 0 to {PRIOR_STRENGTH_MAX}: {prior_strength}")
    by_id = {c.agent_id: c for c in candidates}
    if len(by_id) != len(candidates):
        raise ValueError("an agent appears twice among the candidates")
    weights = {c.agent_id: c.weight for c in candidates}
    rr = choose([c.standing for c in candidates], weights)
    rr_pos = {a: i for i, a in enumerate(rr)}
    base = team_rate(team)
    if method == "predictive" and rng is None:
        raise ValueError("predictive ranking needs a random source")
    estimates: dict[str, Estimate] = {}
    for c in candidates:
        alpha, beta = posterior(c.counts, base, prior_strength)
        draw = rng.betavariate(alpha, beta) if method == "predictive" and rng else None
        estimates[c.agent_id] = Estimate(
            agent_id=c.agent_id, rate=alpha / (alpha + beta), draw=draw,
            trials=c.counts.trials, successes=c.counts.successes,
        )  # fmt: skip
    owing = set(owed(candidates, floor_pct, pool))
    first = [a for a in rr if a in owing]

    def score(agent: str) -> tuple[float, int]:
        e = estimates[agent]
        return (-(e.draw if e.draw is not None else e.rate), rr_pos[agent])

    rest = sorted((a for a in rr if a not in owing), key=score)
    order = tuple(first + rest)
    return Ranking(
        method=method, order=order, owed=tuple(first), team_rate=base,
        estimates=tuple(estimates[a] for a in order),
    )  # fmt: skip


def seeded(lead_id: str, salt: str = "") -> random.Random:
    """The random source for one lead's decision: the same lead replays the same draws."""
    return random.Random(f"{lead_id}:{salt}")


def order_agents(
    strategy: str,
    eligible: Sequence[Candidate],
    team: Counts,
    *,
    lead_id: str,
    floor_pct: int = FLOOR_PCT_DEFAULT,
    prior_strength: int = PRIOR_STRENGTH_DEFAULT,
    pool: Pool | None = None,
    tiers: frozenset[int] = frozenset(),
    tier_of: Mapping[str, int] | None = None,
) -> tuple[list[str], Ranking | None]:
    """The order an assigning strategy (round_robin, performance, predictive) tries a lead's
    eligible agents in, score tiers first; and the ranking behind it (None: round-robin). The
    one place routing and the simulator (exchange.simulation) both decide."""
    ranking = None
    if strategy == "round_robin":
        order: Sequence[str] = choose(
            [c.standing for c in eligible], {c.agent_id: c.weight for c in eligible}
        )
    elif strategy in ("performance", "predictive"):
        ranking = rank(
            strategy, eligible, team, floor_pct=floor_pct,  # type: ignore[arg-type]
            prior_strength=prior_strength, pool=pool,
            rng=seeded(lead_id) if strategy == "predictive" else None,
        )  # fmt: skip
        order = ranking.order
    else:
        raise ValueError(f"{strategy!r} does not assign agents (it makes offers)")
    # Score tiers come before the floor: a high-value lead to a senior agent is the operator's
    # explicit wish; the floor then evens out the rest of the day's leads.
    return tiered(order, tier_of or {}, tiers), ranking
