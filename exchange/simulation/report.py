"""What a simulated day shows, per strategy, and the side-by-side table.

Fairness is measured against each agent's *equal share*: the team's assigned leads split by
available time x weight (an agent who worked 7 of 14 hours is owed half of a full-day agent's
share). ``min_share`` is the lowest agent's leads divided by its equal share (1.0 = exactly
equal; the fairness floor asks for at least ``floor_pct`` / 100); ``fairness_cv`` is the
coefficient of variation of those ratios (0 = perfectly even).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import msgspec

from exchange.simulation.model import Scenario


class AgentResult(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    hidden_rate: float
    weight: int
    available_hours: float
    leads: int
    conversions: int
    expected_conversions: float  # sum of its true probabilities over its leads
    won_value_minor: int
    floor_picks: int  # leads it got because it was below the fairness floor
    share: float = 0.0  # leads / equal share


class AdvertiserResult(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    won: int
    spent_minor: int  # what it paid in this run
    daily_budget_minor: int
    daily_cap: int | None


class StrategyReport(msgspec.Struct, frozen=True, kw_only=True):
    strategy: str
    leads: int
    sold: int  # to advertisers
    sold_rate: float
    revenue_minor: int  # what advertisers paid (first price)
    payouts_minor: int  # what suppliers got
    margin_minor: int  # what the exchange kept: revenue = payouts + margin
    to_team: int  # unsold leads routed to the internal team
    assigned: int
    unassigned: int  # left the queue after its max age
    conversions: int
    conversion_rate: float  # conversions / assigned
    expected_conversions: float  # the same without the coin flips: sum of true probabilities
    won_value_minor: int
    frt_p50_minutes: float  # first response: lead arrival to first contact (queue wait included)
    frt_p90_minutes: float
    leads_per_agent_min: int
    leads_per_agent_max: int
    fairness_cv: float
    min_share: float
    floor_pct: int
    floor_picks: int
    hybrid_mix: dict[str, int]  # hybrid: leads routed by each strategy its rules picked
    seconds: float  # wall-clock time of the run
    agents: tuple[AgentResult, ...]
    advertisers: tuple[AdvertiserResult, ...] = ()
    # Offer strategies (sequential, parallel, or a hybrid rule picking one): offers made, those
    # declined and those that expired unanswered, the times a strategy ended without an owner
    # (the lead went back to the queue), and seconds from the (last) offering to the owner.
    offers: int = 0
    offers_declined: int = 0
    offers_expired: int = 0
    offer_fallbacks: int = 0
    offer_wait_p50_seconds: float = 0.0
    offer_wait_p90_seconds: float = 0.0


class Report(msgspec.Struct, frozen=True, kw_only=True):
    seed: int
    hours: float
    leads_per_day: int
    agents: int
    floor_pct: int
    currency: str
    results: tuple[StrategyReport, ...]

    def result(self, strategy: str) -> StrategyReport:
        return next(r for r in self.results if r.strategy == strategy)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarise(
    *,
    strategy: str,
    scenario: Scenario,
    leads: int,
    sold: int,
    revenue_minor: int,
    payouts_minor: int,
    margin_minor: int,
    to_team: int,
    expired: int,
    frt_minutes: Sequence[float],
    agents: Sequence[AgentResult],
    hybrid_mix: Mapping[str, int],
    seconds: float,
    advertisers: Sequence[AdvertiserResult] = (),
    offers: int = 0,
    offers_declined: int = 0,
    offers_expired: int = 0,
    offer_fallbacks: int = 0,
    offer_wait_seconds: Sequence[float] = (),
) -> StrategyReport:
    if revenue_minor != payouts_minor + margin_minor:
        raise AssertionError("money does not add up: revenue != payouts + margin")
    assigned = sum(a.leads for a in agents)
    present = [a for a in agents if a.available_hours > 0]
    capacity = sum(a.available_hours * a.weight for a in present)
    shared = []
    for a in agents:
        equal = assigned * a.available_hours * a.weight / capacity if capacity else 0.0
        shared.append(msgspec.structs.replace(a, share=round(a.leads / equal, 3) if equal else 0.0))
    ratios = [a.share for a in shared if a.available_hours > 0]
    mean = sum(ratios) / len(ratios) if ratios else 0.0
    sd = math.sqrt(sum((r - mean) ** 2 for r in ratios) / len(ratios)) if ratios else 0.0
    conversions = sum(a.conversions for a in agents)
    counts = [a.leads for a in present] or [0]
    return StrategyReport(
        strategy=strategy, leads=leads, sold=sold,
        sold_rate=round(sold / leads, 4) if leads else 0.0,
        revenue_minor=revenue_minor, payouts_minor=payouts_minor, margin_minor=margin_minor,
        to_team=to_team, assigned=assigned, unassigned=expired, conversions=conversions,
        conversion_rate=round(conversions / assigned, 4) if assigned else 0.0,
        expected_conversions=round(sum(a.expected_conversions for a in agents), 1),
        won_value_minor=sum(a.won_value_minor for a in agents),
        frt_p50_minutes=round(percentile(frt_minutes, 0.5), 1),
        frt_p90_minutes=round(percentile(frt_minutes, 0.9), 1),
        leads_per_agent_min=min(counts), leads_per_agent_max=max(counts),
        fairness_cv=round(sd / mean, 3) if mean else 0.0, min_share=min(ratios, default=0.0),
        floor_pct=scenario.floor_pct, floor_picks=sum(a.floor_picks for a in agents),
        hybrid_mix=dict(sorted(hybrid_mix.items())), seconds=round(seconds, 2),
        agents=tuple(shared), advertisers=tuple(advertisers), offers=offers,
        offers_declined=offers_declined, offers_expired=offers_expired,
        offer_fallbacks=offer_fallbacks,
        offer_wait_p50_seconds=round(percentile(offer_wait_seconds, 0.5), 1),
        offer_wait_p90_seconds=round(percentile(offer_wait_seconds, 0.9), 1),
    )  # fmt: skip


def _money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100:,}.{abs(minor) % 100:02d}"


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


ROWS: tuple[tuple[str, object], ...] = (
    ("leads", lambda r: f"{r.leads:,}"),
    ("sold to advertisers", lambda r: f"{r.sold:,} ({_pct(r.sold_rate)})"),
    ("revenue", lambda r: _money(r.revenue_minor)),
    ("supplier payouts", lambda r: _money(r.payouts_minor)),
    ("margin", lambda r: _money(r.margin_minor)),
    ("to the team", lambda r: f"{r.to_team:,}"),
    ("assigned / unassigned", lambda r: f"{r.assigned:,} / {r.unassigned:,}"),
    ("conversions", lambda r: f"{r.conversions:,}"),
    ("conversion rate", lambda r: _pct(r.conversion_rate)),
    ("expected conversions", lambda r: f"{r.expected_conversions:,.1f}"),
    ("won value", lambda r: _money(r.won_value_minor)),
    (
        "first response p50 / p90",
        lambda r: f"{r.frt_p50_minutes:.1f} / {r.frt_p90_minutes:.1f} min",
    ),
    ("leads per agent min / max", lambda r: f"{r.leads_per_agent_min} / {r.leads_per_agent_max}"),
    ("fairness cv", lambda r: f"{r.fairness_cv:.3f}"),
    ("min share of equal", lambda r: _pct(r.min_share)),
    ("picks by the floor", lambda r: f"{r.floor_picks:,}" if r.strategy != "round_robin" else "-"),
    ("run time", lambda r: f"{r.seconds:.2f} s"),
)
# Shown when some strategy made offers; "-" in the columns that made none.
OFFER_ROWS: tuple[tuple[str, object], ...] = (
    (
        "offers made / declined / expired",
        lambda r: f"{r.offers:,} / {r.offers_declined:,} / {r.offers_expired:,}",
    ),
    ("back to the queue (no taker)", lambda r: f"{r.offer_fallbacks:,}"),
    (
        "offer to owner p50 / p90",
        lambda r: f"{r.offer_wait_p50_seconds:.0f} / {r.offer_wait_p90_seconds:.0f} s",
    ),
)


def comparison_lines(report: Report) -> list[str]:
    """Each strategy against round-robin (when it ran): the paired difference in conversions."""
    base = next((r for r in report.results if r.strategy == "round_robin"), None)
    if base is None:
        return []
    lines = []
    for r in report.results:
        if r is base:
            continue
        diff = r.conversions - base.conversions
        rel = diff / base.conversions if base.conversions else 0.0
        won = r.won_value_minor - base.won_value_minor
        lines.append(
            f"{r.strategy} vs round_robin: {diff:+,} conversions ({rel * 100:+.1f}%), "
            f"expected {r.expected_conversions - base.expected_conversions:+,.1f}, "
            f"won value {'+' if won >= 0 else '-'}{_money(abs(won))}, "
            f"min share {_pct(r.min_share)} vs floor {r.floor_pct}%"
        )
    return lines


def render(report: Report, console) -> None:  # type: ignore[no-untyped-def]
    """The side-by-side table (a rich Console), then the comparison lines."""
    from rich.table import Table

    title = (
        f"{report.hours:g} h, seed {report.seed}, {report.leads_per_day:,} leads/day, "
        f"{report.agents} agents, floor {report.floor_pct}%, {report.currency}"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("")
    for r in report.results:
        table.add_column(r.strategy, justify="right")
    rows = list(ROWS)
    if any(r.offers for r in report.results):
        rows[-1:-1] = OFFER_ROWS  # before the run time
    for label, cell in rows:
        table.add_row(
            label,
            *(
                "-" if (label, cell) in OFFER_ROWS and not r.offers else cell(r)  # type: ignore[operator]
                for r in report.results
            ),
        )
    if any(r.hybrid_mix for r in report.results):
        mix = [", ".join(f"{k} {v}" for k, v in r.hybrid_mix.items()) for r in report.results]
        table.add_row("hybrid mix", *(m or "-" for m in mix))
    console.print(table)
    for line in comparison_lines(report):
        console.print(line)
