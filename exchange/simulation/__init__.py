"""The market simulator (``exchange simulate``): a synthetic day of suppliers, advertisers and
an internal team, run through the exchange's own auction and routing decisions, once per
strategy on the same leads, so the strategies can be compared side by side.

    report = simulate(default_scenario(seed=3), ("round_robin", "predictive"))
    report.result("predictive").conversions

``model`` is the scenario (what is simulated, with its hidden truth), ``engine`` the
discrete-event loop, ``report`` the metrics and the table. docs/simulation.md says what is
modelled and what is not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from exchange.simulation.engine import generate_leads, run_strategy
from exchange.simulation.model import (
    DEFAULT_STRATEGIES,
    SIM_STRATEGIES,
    AgentSpec,
    Scenario,
    SimStrategy,
    default_scenario,
)
from exchange.simulation.report import Report, StrategyReport, render

__all__ = [
    "DEFAULT_STRATEGIES", "SIM_STRATEGIES", "AgentSpec", "Report", "Scenario", "SimStrategy",
    "StrategyReport", "default_scenario", "render", "simulate",
]  # fmt: skip


def simulate(
    scenario: Scenario,
    strategies: Sequence[SimStrategy] = DEFAULT_STRATEGIES,
    progress: Callable[[str, float], None] | None = None,
) -> Report:
    """Run every strategy on the same lead stream; ``progress(strategy, fraction)`` now and
    then."""
    for strategy in strategies:
        if strategy not in SIM_STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}: one of {', '.join(SIM_STRATEGIES)}")
    leads = generate_leads(scenario)
    results = []
    for strategy in strategies:
        tick = None if progress is None else (lambda f, s=strategy: progress(s, f))
        results.append(run_strategy(scenario, strategy, leads, tick))
    return Report(
        seed=scenario.seed, hours=scenario.hours, leads_per_day=scenario.leads_per_day,
        agents=len(scenario.agents), floor_pct=scenario.floor_pct, currency=scenario.currency,
        results=tuple(results),
    )  # fmt: skip
