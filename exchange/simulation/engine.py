"""A discrete-event simulation of one market over simulated time, driving the exchange's own
pure decisions: the auction's ranking and margin, agent eligibility, round-robin standing, and
the performance / predictive / hybrid choice of an agent.

The loop (a heap of events ordered by simulated time, then by insertion):

- a lead *arrives* (a non-homogeneous Poisson stream following the team's daily curve); the
  advertisers whose budget and cap allow it bid (``auction.ranking.rank`` with the scenario's
  margin rule, first price); the best bid wins, pays its bid, the supplier gets the payout and
  the exchange keeps the margin;
- an unsold lead goes to the internal team: ``teams.agents.evaluate_team`` says who is eligible
  now (working hours on the agent's clock, away, daily and concurrent caps), the strategy picks
  one (``performance.order_agents``, as routing does; ``hybrid.strategy_for`` first for a
  hybrid team). Nobody eligible: the lead waits in the queue (oldest first, as the team
  sweeper drains it) until capacity frees or an agent comes back; after
  ``queue_max_age_minutes`` it leaves unassigned;
- the offer strategies run the product's state machines (``teams.sequential``: one agent at a
  time in round-robin order, ``teams.parallel``: every eligible agent at once, first claim
  wins): each offered agent answers after its hidden delay, accepting with its hidden
  ``accept_prob`` (an agent at a cap by then declines); no answer before the team's offer
  timeout expires the offer. The lead is owned at the accept; when the strategy ends without
  an owner it goes back to the queue (its fallback) and is offered again on the next sweep;
- the agent makes first contact after a response delay (longer the more leads it already has
  open), works the lead for a handling time (holding one concurrent slot), and the *outcome* is
  reported later; only then does it reach the agent's and the team's ``Counts`` for the lead's
  segment: the learning loop the strategies read.

Common random numbers: the lead stream (arrival times, supplier, hidden quality, score) and each
lead's behaviour draws (the uniform that decides conversion, the response, handling and outcome
delays, the won value) are generated once per scenario from their own seeded streams and shared
by every strategy; the auction has its own stream, and a predictive choice draws from
``performance.seeded(lead_id)`` as in the product. So two strategies see the same leads, bids
and agents, and a lead converts under agent A exactly when its uniform is below A's rate: the
comparison is paired and its noise small.
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import msgspec

from exchange.auction.margin import MarginPolicy
from exchange.auction.ranking import Bid
from exchange.auction.ranking import rank as rank_bids
from exchange.matching.localtime import zone
from exchange.simulation.model import (
    SEGMENTS,
    Scenario,
    Segment,
    SimStrategy,
    segment_of,
)
from exchange.simulation.report import AdvertiserResult, AgentResult, StrategyReport, summarise
from exchange.teams import parallel, sequential
from exchange.teams import reasons as team_reasons
from exchange.teams.agents import (
    Agent,
    AgentLoad,
    LeadRequirements,
    ManualStatus,
    evaluate_team,
    in_working_hours,
    local_day,
)
from exchange.teams.hybrid import preferred_tiers, strategy_for, tiered
from exchange.teams.offers import FallbackKind, FallbackPolicy, Offer
from exchange.teams.performance import Candidate, Counts, Pool, order_agents
from exchange.teams.round_robin import Standing, bump, calibrate, choose, roll

AT_CAP = frozenset({team_reasons.CONCURRENT_CAP_REACHED, team_reasons.DAILY_CAP_REACHED})

SECONDS_PER_DAY = 86_400
QUALITY_CONCENTRATION = 6.0  # Beta(q*k, (1-q)*k): how tightly leads cluster on the supplier mean
SCORE_NOISE = 8.0  # the score sees quality through this much noise (points, 1 sd)
# A busy agent answers more slowly: the response delay is scaled by 1 + this x open leads.
RESPONSE_LOAD_FACTOR = 0.5
AVAILABILITY_STEP_S = 300  # availability for the fairness share is sampled every 5 minutes
PROGRESS_EVERY = 500  # arrivals between progress callbacks
PACING_SLACK = 0.05  # a paced advertiser may run this share of its day ahead of the traffic
NO_REQUIREMENTS = LeadRequirements()
OFFERING = ("sequential", "parallel")
# Where an offer strategy's lead goes when nobody takes it: the team's own queue.
FALLBACK = FallbackPolicy(kind=FallbackKind.QUEUE, target="sim-team")


class Lead(NamedTuple):
    index: int
    id: str
    at: float  # seconds since the start
    supplier: int
    quality: float  # hidden
    score: int
    segment: Segment
    convert_u: float  # converts under an agent whose probability is above this
    response_e: float  # unit exponential draws, scaled by the agent's means
    handling_e: float
    outcome_e: float
    value_minor: int  # what it is worth when won


def generate_leads(scenario: Scenario) -> list[Lead]:
    """The day's leads: arrivals by thinning a Poisson process at the curve's peak rate."""
    arrivals = random.Random(f"{scenario.seed}:arrivals")
    behaviour = random.Random(f"{scenario.seed}:behaviour")
    curve = scenario.daily_curve
    mean = sum(curve) / len(curve)
    per_s = [scenario.leads_per_day / SECONDS_PER_DAY * c / mean for c in curve]
    peak = max(per_s)
    tz = zone(scenario.timezone)
    shares = [s.share for s in scenario.suppliers]
    suppliers = range(len(scenario.suppliers))
    horizon = scenario.hours * 3600
    leads: list[Lead] = []
    t = 0.0
    while True:
        t += arrivals.expovariate(peak)
        if t >= horizon:
            return leads
        hour = (scenario.start + dt.timedelta(seconds=t)).astimezone(tz).hour
        if arrivals.random() * peak >= per_s[hour]:
            continue
        supplier = arrivals.choices(suppliers, shares)[0]
        q = scenario.suppliers[supplier].quality
        quality = arrivals.betavariate(q * QUALITY_CONCENTRATION, (1 - q) * QUALITY_CONCENTRATION)
        score = min(100, max(0, round(quality * 100 + arrivals.gauss(0, SCORE_NOISE))))
        i = len(leads)
        low, high = scenario.won_value_min_minor, scenario.won_value_max_minor
        leads.append(
            Lead(
                index=i, id=f"sim{scenario.seed}-{i:06d}", at=t, supplier=supplier,
                quality=quality, score=score, segment=segment_of(score),
                convert_u=behaviour.random(), response_e=behaviour.expovariate(1.0),
                handling_e=behaviour.expovariate(1.0), outcome_e=behaviour.expovariate(1.0),
                value_minor=low + int((high - low) * behaviour.random()),
            )
        )  # fmt: skip


class _AgentState:
    __slots__ = (
        "spec", "agent", "standing", "open", "served_today", "served_on", "leads",
        "conversions", "expected", "won_value", "counts", "available_s", "floor_picks",
    )  # fmt: skip

    def __init__(self, spec, agent: Agent) -> None:  # type: ignore[no-untyped-def]
        self.spec = spec
        self.agent = agent
        self.standing = Standing(agent_id=spec.id)
        self.open = 0
        self.served_today = 0
        self.served_on: dt.date | None = None
        self.leads = 0
        self.conversions = 0
        self.expected = 0.0
        self.won_value = 0
        self.counts = {s: [0, 0] for s in SEGMENTS}  # trials, successes
        self.available_s = 0.0
        self.floor_picks = 0

    def rate(self, scenario: Scenario, segment: Segment) -> float:
        """Hidden: the true conversion probability on a lead of this segment."""
        if segment in self.spec.segment_rates:
            return self.spec.segment_rates[segment]
        return min(1.0, self.spec.rate * scenario.segment_multipliers.get(segment, 1.0))


# Event kinds; the heap orders (time, seq) so equal times keep insertion order.
ARRIVE, DONE, OUTCOME, EXPIRE, SWEEP, AWAY, BACK, ANSWER, OFFER_TIMEOUT = range(9)


class _Offering:
    """A lead out on offer: the product's state (sequential or parallel) and when it started."""

    __slots__ = ("strategy", "state", "started", "token")

    def __init__(self, strategy: str, state, started: float) -> None:  # type: ignore[no-untyped-def]
        self.strategy = strategy
        self.state = state
        self.started = started
        # Which timer and answer events are still current: sequential, the pending offer's
        # number; parallel, the last offer's (its timer's). Numbers are unique in the run, so a
        # late event of a lead's earlier offering (it fell back and was offered again) is stale.
        self.token = 0


class _Run:
    def __init__(self, scenario: Scenario, strategy: SimStrategy, leads: Sequence[Lead]) -> None:
        self.s = scenario
        self.strategy = strategy
        self.leads = leads
        self.tz = zone(scenario.timezone)
        self.agents: list[_AgentState] = []
        for spec in scenario.agents:
            agent = Agent(
                id=spec.id, team_id="sim-team", timezone=spec.timezone or scenario.timezone,
                heartbeat_ttl=None, working_hours=spec.hours_schedule(scenario.timezone),
                weight=spec.weight, daily_cap=spec.daily_cap, concurrent_cap=spec.concurrent_cap,
            )  # fmt: skip
            self.agents.append(_AgentState(spec, agent))
        self.by_id = {a.spec.id: a for a in self.agents}
        self.tier_of = {a.spec.id: a.spec.tier for a in self.agents}
        self.team_counts = {s: [0, 0] for s in SEGMENTS}
        self.window = ""
        self.events: list[tuple[float, int, int, int, str, int]] = []
        self.seq = 0
        self.queue: list[tuple[float, int]] = []  # (arrived, lead index): oldest first
        self.waiting: set[int] = set()
        self.sweep_pending = False
        self.now_s = 0.0
        # auction
        self.auction_rng = random.Random(f"{scenario.seed}:auction")
        self.policies = [
            MarginPolicy(default=scenario.margin, supplier=sup.margin) for sup in scenario.suppliers
        ]
        self.budget_day: dt.date | None = None
        self.spent = {a.id: 0 for a in scenario.advertisers}
        self.bought = {a.id: 0 for a in scenario.advertisers}
        self.last_won: dict[str, dt.datetime] = {}
        self.paid = {a.id: 0 for a in scenario.advertisers}  # in this run (spent: in its day)
        self.won = {a.id: 0 for a in scenario.advertisers}
        total = sum(scenario.daily_curve)
        self.curve_share = [c / total for c in scenario.daily_curve]
        self.curve_before = [sum(self.curve_share[:h]) for h in range(24)]
        # tallies
        self.sold = self.revenue = self.payouts = self.margin = 0
        self.to_team = self.expired = 0
        self.frt: list[float] = []
        self.mix: dict[str, int] = {}
        # offers
        self.weights = {a.spec.id: a.spec.weight for a in self.agents}
        self.timeout_s = scenario.offer_timeout_seconds
        self.timeout = dt.timedelta(seconds=self.timeout_s)
        self.offering: dict[int, _Offering] = {}  # lead index -> its offers in flight
        self.answers: dict[tuple[int, str, int], bool] = {}  # (lead, agent, offer no.) -> yes
        self.tries: dict[tuple[int, str], int] = {}  # offers of a lead to an agent so far
        self.owner: dict[int, str] = {}  # lead index -> the agent that owns it
        self.offers = self.declined = self.offers_expired = self.fallbacks = 0
        self.offer_wait: list[float] = []  # seconds from the (last) offering to the owner

    def push(self, at: float, kind: int, index: int = -1, agent: str = "", n: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at, self.seq, kind, index, agent, n))

    def at(self, seconds: float) -> dt.datetime:
        return self.s.start + dt.timedelta(seconds=seconds)

    # -- the auction --------------------------------------------------------------------------

    def auction(self, lead: Lead, now: dt.datetime) -> bool:
        local = now.astimezone(self.tz)
        day = local.date()  # budgets and caps are per team-local day
        if day != self.budget_day:
            # A new day, or the run starting mid-day: what the day's traffic so far would have
            # used up is already spent, so a 09:00 start does not find every budget untouched.
            self.budget_day = day
            begun = self.elapsed(local)
            self.spent = {a.id: int(a.daily_budget_minor * begun) for a in self.s.advertisers}
            self.bought = {a.id: int((a.daily_cap or 0) * begun) for a in self.s.advertisers}
        rng = self.auction_rng
        bids = []
        for adv in self.s.advertisers:
            u_bid, u_value = rng.random(), rng.random()  # drawn always: the stream stays aligned
            if lead.score < adv.min_score or u_bid >= adv.bid_rate:
                continue
            if adv.daily_cap is not None and self.bought[adv.id] >= adv.daily_cap:
                continue
            if adv.pacing and self.ahead_of_pace(adv, local):
                continue
            # Its valuation follows the lead's hidden quality, with its own noise.
            span = adv.bid_max_minor - adv.bid_min_minor
            amount = adv.bid_min_minor + int(span * (0.6 * lead.quality + 0.4 * u_value))
            if self.spent[adv.id] + amount > adv.daily_budget_minor:
                continue
            bids.append(
                Bid(campaign_id=adv.id, buyer_id=adv.id, amount_minor=amount,
                    floor_minor=adv.floor_minor, last_won_at=self.last_won.get(adv.id))
            )  # fmt: skip
        if not bids:
            return False
        supplier = self.s.suppliers[lead.supplier]
        ranked = rank_bids(bids, self.s.auction_mode, supplier.min_payout_minor,
                           self.policies[lead.supplier].rule_for)  # fmt: skip
        if not ranked.groups:
            return False
        win = ranked.groups[0][0]  # first price: it pays its own bid
        price = win.bid.amount_minor
        assert win.payout_minor + win.margin_minor == price
        self.sold += 1
        self.revenue += price
        self.payouts += win.payout_minor
        self.margin += win.margin_minor
        self.spent[win.buyer_id] += price
        self.bought[win.buyer_id] += 1
        self.paid[win.buyer_id] += price
        self.won[win.buyer_id] += 1
        self.last_won[win.campaign_id] = now
        return True

    def elapsed(self, local: dt.datetime) -> float:
        """The share of a day's traffic that arrives before ``local`` (team time)."""
        hour = local.hour
        return self.curve_before[hour] + self.curve_share[hour] * (local.minute / 60)

    def ahead_of_pace(self, adv, local: dt.datetime) -> bool:  # type: ignore[no-untyped-def]
        """Spent (or bought) more of its day than the day's traffic so far, plus some slack."""
        allowed = min(1.0, self.elapsed(local) + PACING_SLACK)
        if self.spent[adv.id] > adv.daily_budget_minor * allowed:
            return True
        return adv.daily_cap is not None and self.bought[adv.id] > adv.daily_cap * allowed

    # -- the team -----------------------------------------------------------------------------

    def roll_window(self, now: dt.datetime) -> None:
        window = f"day:{now.astimezone(self.tz).date().isoformat()}"
        if window != self.window:
            self.window = window
            for a in self.agents:
                a.standing = roll(a.standing, window)

    def decide(self, now: dt.datetime):  # type: ignore[no-untyped-def]
        """Every agent's eligibility now (``evaluate_team``, as routing asks it)."""
        self.roll_window(now)
        loads = {
            a.spec.id: AgentLoad(
                served_today=a.served_today, served_on=a.served_on, open_leads=a.open,
                last_assigned_at=a.standing.last_assigned_at, served_in_window=a.standing.served,
            )
            for a in self.agents
        }  # fmt: skip
        return evaluate_team((a.agent for a in self.agents), loads, NO_REQUIREMENTS, now)

    def eligible_now(self, now: dt.datetime) -> frozenset[str]:
        return frozenset(d.agent_id for d in self.decide(now) if d.eligible)

    def route_one(self, lead: Lead, t: float, now: dt.datetime) -> bool:
        """Route the lead at the head of the queue: assign it or put it out on offer; False
        (it stays queued) when nobody is eligible."""
        decisions = self.decide(now)
        eligible = [self.by_id[d.agent_id] for d in decisions if d.eligible]
        if not eligible:
            return False
        strategy: str = self.strategy
        if strategy == "hybrid":
            strategy = strategy_for(self.s.hybrid_base, self.s.hybrid_rules, self.s.timezone, now,
                                    lead.score).strategy  # fmt: skip
        if strategy in OFFERING:
            return self.offer(lead, strategy, eligible, t, now)
        agent, floor = self.choose_agent(lead, strategy, decisions, eligible)
        self.assign(lead, agent, floor, t, now, strategy)
        return True

    def choose_agent(self, lead: Lead, strategy: str, decisions, eligible):  # type: ignore[no-untyped-def]
        """The agent the strategy picks among the eligible ones, and whether the fairness floor
        picked it."""
        seg = lead.segment
        candidates = [
            Candidate(standing=a.standing, weight=a.spec.weight,
                      counts=Counts(trials=a.counts[seg][0], successes=a.counts[seg][1]))
            for a in eligible
        ]  # fmt: skip
        # The floor's pool, as routing counts it: agents eligible or only at a cap right now.
        present = [self.by_id[d.agent_id] for d in decisions if d.eligible or d.reason in AT_CAP]
        pool = Pool(served=sum(a.standing.served for a in present),
                    weight=sum(a.spec.weight for a in present))  # fmt: skip
        team = Counts(trials=self.team_counts[seg][0], successes=self.team_counts[seg][1])
        # The product's own decision (routing calls the same function); the lead's id seeds the
        # predictive draws, as in the product (ids carry the scenario's seed).
        order, ranking = order_agents(
            strategy, candidates, team, lead_id=lead.id, floor_pct=self.s.floor_pct,
            prior_strength=self.s.prior_strength, pool=pool,
            tiers=preferred_tiers(self.s.score_tiers, lead.score), tier_of=self.tier_of,
        )  # fmt: skip
        floor = ranking is not None and order[0] in ranking.owed
        return self.by_id[order[0]], floor

    def assign(
        self, lead: Lead, agent: _AgentState, floor: bool, t: float, now: dt.datetime, how: str
    ) -> None:
        """``agent`` owns the lead from ``t``; ``how``: the strategy that gave it (a hybrid's
        mix)."""
        if lead.index in self.owner:
            raise AssertionError(f"{lead.id} owned twice")
        self.owner[lead.index] = agent.spec.id
        if self.strategy == "hybrid":
            self.mix[how] = self.mix.get(how, 0) + 1
        agent.standing = bump(agent.standing, now)
        day = local_day(agent.agent, now)
        if agent.served_on != day:
            agent.served_on, agent.served_today = day, 0
        agent.served_today += 1
        busy = agent.open
        agent.open += 1
        agent.leads += 1
        agent.floor_picks += floor
        spec = agent.spec
        contact = t + lead.response_e * spec.response_minutes * 60 * (
            1 + RESPONSE_LOAD_FACTOR * busy
        )
        self.frt.append((contact - lead.at) / 60)
        done = contact + lead.handling_e * spec.handling_minutes * 60
        self.push(done, DONE, lead.index, spec.id)
        self.push(done + lead.outcome_e * self.s.outcome_minutes * 60, OUTCOME, lead.index, spec.id)
        p = agent.rate(self.s, lead.segment)
        agent.expected += p
        if lead.convert_u < p:
            agent.conversions += 1
            agent.won_value += lead.value_minor

    def route(self, lead: Lead, t: float) -> None:
        """A new unsold lead: behind the queue if leads already wait, else straight to an
        agent, else into the queue."""
        self.to_team += 1
        heapq.heappush(self.queue, (lead.at, lead.index))
        self.waiting.add(lead.index)
        self.push(lead.at + self.s.queue_max_age_minutes * 60, EXPIRE, lead.index)
        self.drain(t)

    def drain(self, t: float) -> None:
        now = self.at(t)
        while self.queue:
            index = self.queue[0][1]
            if index not in self.waiting:
                heapq.heappop(self.queue)
                continue
            # No skills in the simulation: nobody eligible for this lead, nobody for any.
            if not self.route_one(self.leads[index], t, now):
                break
            heapq.heappop(self.queue)
            self.waiting.discard(index)
        if self.waiting and not self.sweep_pending:
            self.sweep_pending = True
            self.push(t + self.s.sweep_minutes * 60, SWEEP)

    # -- offers (sequential, parallel) ---------------------------------------------------------

    def offer(
        self, lead: Lead, strategy: str, eligible: list[_AgentState], t: float, now: dt.datetime
    ) -> bool:
        """Put the lead out on offer as routing does (``routing.start``); False when the
        strategy found nobody to offer it to (it stays queued)."""
        tiers = preferred_tiers(self.s.score_tiers, lead.score)
        if strategy == "parallel":
            # Eligible agents in round-robin order; a lead for senior tiers to them alone when
            # any of them is eligible.
            ranked = list(choose((a.standing for a in eligible), self.weights))
            preferred = [a for a in ranked if self.tier_of[a] in tiers] or ranked
            pstep = parallel.offers(lead.id, preferred, now, self.timeout, FALLBACK,
                                    k=self.s.parallel_k)  # fmt: skip
            if not isinstance(pstep.action, tuple):
                return False
            o = self.offering[lead.index] = _Offering(strategy, pstep.state, t)
            for made in pstep.action:
                o.token = self.send(lead, made.agent_id, t)
            self.push(t + self.timeout_s, OFFER_TIMEOUT, lead.index, "", o.token)
            return True
        # Sequential: the whole team in round-robin order, offered to those eligible now.
        order = choose((a.standing for a in self.agents), self.weights)
        candidates = tiered(order, self.tier_of, tiers)
        step = sequential.start(lead.id, candidates, now, self.timeout, self.s.max_rounds,
                                FALLBACK, [a.spec.id for a in eligible])  # fmt: skip
        if not isinstance(step.action, Offer):
            return False
        o = self.offering[lead.index] = _Offering(strategy, step.state, t)
        o.token = self.send(lead, step.action.agent_id, t)
        return True

    def send(self, lead: Lead, agent_id: str, t: float) -> int:
        """One offer to ``agent_id``; its number. The agent's answer, drawn from the lead's and
        agent's own stream (the same in every run), comes after its delay unless that is past
        the timeout; a sequential offer gets its timer (parallel: one for all)."""
        self.offers += 1
        n = self.offers
        key = (lead.index, agent_id)
        tries = self.tries[key] = self.tries.get(key, 0) + 1
        spec = self.by_id[agent_id].spec
        rng = random.Random(f"{self.s.seed}:answer:{lead.id}:{agent_id}:{tries}")
        delay = spec.answer_min_seconds + rng.expovariate(1 / spec.answer_mean_seconds)
        yes = rng.random() < spec.accept_prob
        if delay < self.timeout_s:
            self.answers[(lead.index, agent_id, n)] = yes
            self.push(t + delay, ANSWER, lead.index, agent_id, n)
        if self.offering[lead.index].strategy == "sequential":
            self.push(t + self.timeout_s, OFFER_TIMEOUT, lead.index, agent_id, n)
        return n

    def answer(self, index: int, agent_id: str, n: int, t: float) -> None:
        yes = self.answers.pop((index, agent_id, n))
        o = self.offering.get(index)
        if o is None:  # routing ended (another agent won): the offer was rescinded
            return
        now = self.at(t)
        if yes and agent_id not in self.eligible_now(now):
            yes = False  # at a cap (or gone) by the time it answers: it declines
        if o.strategy == "sequential":
            current = o.state.current
            if current is None or current.agent_id != agent_id or o.token != n:
                return
            if yes:
                taken = sequential.accept(o.state, agent_id, now)
                if isinstance(taken, sequential.Accepted):
                    self.own(index, agent_id, t, now)
                return  # refused (at the deadline): the timer moves on
            self.declined += 1
            self.next_offer(index, o, sequential.on_decline(o.state, agent_id, now,
                                                            self.eligible_now(now)), t)  # fmt: skip
            return
        offer = o.state.offer_for(agent_id)
        if offer is None or not offer.pending:
            return
        if yes:
            # Claims are an instant compare-and-set here: the first accept wins, the rest of
            # the pending offers are rescinded (their answers find the routing ended).
            if isinstance(parallel.claim(o.state, agent_id, now), parallel.Won):
                self.own(index, agent_id, t, now)
            return
        self.declined += 1
        pstep = parallel.decline(o.state, agent_id, now)
        o.state = pstep.state
        if pstep.action is not None:  # all declined: the fallback
            self.fall_back(index, t)

    def offer_timeout(self, index: int, agent_id: str, n: int, t: float) -> None:
        o = self.offering.get(index)
        if o is None or o.token != n:
            return
        if o.strategy == "parallel":
            state = o.state
            self.offers_expired += sum(1 for x in state.offers if x.pending)
            parallel.on_expire(state, state.expires_at)  # nobody claimed: the fallback
            self.fall_back(index, t)
            return
        current = o.state.current
        if current is None or current.agent_id != agent_id or o.token != n:
            return  # answered already
        self.offers_expired += 1
        now = current.expires_at
        self.next_offer(index, o, sequential.on_expire(o.state, agent_id, now,
                                                       self.eligible_now(now)), t)  # fmt: skip

    def next_offer(self, index: int, o: _Offering, step: sequential.Step, t: float) -> None:
        o.state = step.state
        if isinstance(step.action, Offer):
            o.token = self.send(self.leads[index], step.action.agent_id, t)
        else:
            self.fall_back(index, t)

    def own(self, index: int, agent_id: str, t: float, now: dt.datetime) -> None:
        o = self.offering.pop(index)
        self.offer_wait.append(t - o.started)
        self.assign(self.leads[index], self.by_id[agent_id], False, t, now, o.strategy)

    def fall_back(self, index: int, t: float) -> None:
        """Nobody took it: back to the queue (the team's fallback), offered again on the next
        sweep, or unassigned if it is already past the queue's max age."""
        del self.offering[index]
        self.fallbacks += 1
        lead = self.leads[index]
        if t - lead.at >= self.s.queue_max_age_minutes * 60:
            self.expired += 1
            return
        heapq.heappush(self.queue, (lead.at, index))
        self.waiting.add(index)
        if not self.sweep_pending:
            self.sweep_pending = True
            self.push(t + self.s.sweep_minutes * 60, SWEEP)

    def set_status(self, agent_id: str, status: ManualStatus, t: float) -> None:
        a = self.by_id[agent_id]
        a.agent = msgspec.structs.replace(a.agent, manual_status=status)
        if status is ManualStatus.AVAILABLE:
            # As the team service does when an agent comes back: it starts at the team's
            # current minimum standing (next once, never flooded with the leads it missed).
            self.roll_window(self.at(t))
            present = [
                o for o in self.agents
                if o is not a and o.agent.manual_status is ManualStatus.AVAILABLE
            ]  # fmt: skip
            weights = {o.spec.id: o.spec.weight for o in (*present, a)}
            a.standing = calibrate(a.standing, [o.standing for o in present], weights)

    # -- the loop -----------------------------------------------------------------------------

    def run(self, progress: Callable[[float], None] | None) -> None:
        horizon = self.s.hours * 3600
        for lead in self.leads:
            self.push(lead.at, ARRIVE, lead.index)
        for a in self.agents:
            for start, end in a.spec.away:
                self.push(start * 3600, AWAY, -1, a.spec.id)
                self.push(end * 3600, BACK, -1, a.spec.id)
        arrived = 0
        while self.events:
            t, _, kind, index, agent_id, n = heapq.heappop(self.events)
            self.now_s = t
            if kind == ARRIVE:
                lead = self.leads[index]
                if not self.auction(lead, self.at(t)):
                    self.route(lead, t)
                arrived += 1
                if progress is not None and arrived % PROGRESS_EVERY == 0:
                    progress(min(1.0, t / horizon))
            elif kind == DONE:
                self.by_id[agent_id].open -= 1
                if self.waiting:
                    self.drain(t)
            elif kind == OUTCOME:
                lead = self.leads[index]
                agent = self.by_id[agent_id]
                won = lead.convert_u < agent.rate(self.s, lead.segment)
                for counts in (agent.counts[lead.segment], self.team_counts[lead.segment]):
                    counts[0] += 1
                    counts[1] += won
            elif kind == EXPIRE:
                if index in self.waiting:
                    self.waiting.discard(index)
                    self.expired += 1
            elif kind == SWEEP:
                self.sweep_pending = False
                if self.waiting:
                    self.drain(t)
            elif kind == ANSWER:
                self.answer(index, agent_id, n, t)
            elif kind == OFFER_TIMEOUT:
                self.offer_timeout(index, agent_id, n, t)
            elif kind == AWAY:
                self.set_status(agent_id, ManualStatus.AWAY, t)
            elif kind == BACK:
                self.set_status(agent_id, ManualStatus.AVAILABLE, t)
                if self.waiting:
                    self.drain(t)
        self.measure_availability(horizon)

    def measure_availability(self, horizon: float) -> None:
        """Seconds each agent could take leads during the run (hours and away, not load): the
        weight of its equal share in the fairness figures."""
        steps = max(1, int(horizon // AVAILABILITY_STEP_S))
        step = horizon / steps
        for a in self.agents:
            base = msgspec.structs.replace(a.agent, manual_status=ManualStatus.AVAILABLE)
            for i in range(steps):
                mid = (i + 0.5) * step
                if any(start * 3600 <= mid < end * 3600 for start, end in a.spec.away):
                    continue
                if in_working_hours(base, self.at(mid)):
                    a.available_s += step


def run_strategy(
    scenario: Scenario,
    strategy: SimStrategy,
    leads: Sequence[Lead] | None = None,
    progress: Callable[[float], None] | None = None,
) -> StrategyReport:
    """Simulate ``scenario`` with the team routing by ``strategy``; pass the ``leads`` of
    ``generate_leads(scenario)`` to share them between runs."""
    started = time.perf_counter()
    leads = generate_leads(scenario) if leads is None else leads
    run = _Run(scenario, strategy, leads)
    run.run(progress)
    agents = tuple(
        AgentResult(
            id=a.spec.id, hidden_rate=a.spec.rate, weight=a.spec.weight,
            available_hours=round(a.available_s / 3600, 2), leads=a.leads,
            conversions=a.conversions, expected_conversions=round(a.expected, 2),
            won_value_minor=a.won_value, floor_picks=a.floor_picks,
        )
        for a in run.agents
    )  # fmt: skip
    return summarise(
        strategy=strategy, scenario=scenario, leads=len(leads), sold=run.sold,
        revenue_minor=run.revenue, payouts_minor=run.payouts, margin_minor=run.margin,
        to_team=run.to_team, expired=run.expired, frt_minutes=run.frt, agents=agents,
        hybrid_mix=run.mix, seconds=time.perf_counter() - started, offers=run.offers,
        offers_declined=run.declined, offers_expired=run.offers_expired,
        offer_fallbacks=run.fallbacks, offer_wait_seconds=run.offer_wait,
        advertisers=tuple(
            AdvertiserResult(id=a.id, won=run.won[a.id], spent_minor=run.paid[a.id],
                             daily_budget_minor=a.daily_budget_minor, daily_cap=a.daily_cap)
            for a in scenario.advertisers
        ),
    )  # fmt: skip
