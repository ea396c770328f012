"""What a benchmark run produces: rows of figures, targets met or missed, correctness checks."""

from __future__ import annotations

from typing import Any

import msgspec

from exchange.bench.checks import Check
from exchange.bench.stats import Latency, LoadResult


class Row(msgspec.Struct, kw_only=True):
    """One line of the table: a scenario (or a baseline) and its figures."""

    scenario: str
    label: str
    unit: str = "req/s"
    throughput: float | None = None
    latency: Latency = msgspec.field(default_factory=Latency)
    errors: int = 0
    statuses: dict[str, int] = {}
    notes: str = ""
    extra: dict[str, Any] = {}

    @classmethod
    def of_load(cls, scenario: str, label: str, load: LoadResult, **kw: Any) -> Row:
        if load.requests == 0:
            kw["notes"] = "NO REQUEST COMPLETED in the measured window (overloaded?); " + kw.get("notes", "")
        return cls(scenario=scenario, label=label, throughput=load.throughput_rps, latency=load.latency,
                   errors=load.errors, statuses=load.statuses, **kw)  # fmt: skip


class Target(msgspec.Struct, kw_only=True):
    scenario: str
    what: str
    goal: str
    value: float | None
    shown: str
    met: bool | None  # None: not measured in this run


class Report(msgspec.Struct, kw_only=True):
    date: str
    command: str
    quick: bool
    machine: dict[str, str]
    settings: dict[str, Any]
    scenarios_run: list[str]
    rows: list[Row]
    ratios: dict[str, float]
    targets: list[Target]
    checks: list[Check]
    failures: list[str]  # scenarios that crashed

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks) and not self.failures
