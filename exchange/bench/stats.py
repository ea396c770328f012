"""Percentiles and the result of one load run, shared by the load generator and the runner."""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), nearest rank on the sorted values; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class Latency(msgspec.Struct, kw_only=True):
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    count: int = 0

    @classmethod
    def of(cls, values: Sequence[float]) -> Latency:
        return cls(
            p50_ms=percentile(values, 50), p90_ms=percentile(values, 90), p99_ms=percentile(values, 99),
            max_ms=max(values) if values else None, count=len(values),
        )  # fmt: skip


class LoadResult(msgspec.Struct, kw_only=True):
    """What the load generator measured: completed requests over the measured window."""

    requests: int = 0
    elapsed_s: float = 0.0
    throughput_rps: float = 0.0
    latency: Latency = msgspec.field(default_factory=Latency)
    statuses: dict[str, int] = {}  # HTTP status (or "error:<kind>") -> count
    outcomes: dict[str, int] = {}  # the answer's "status" field (sold, unsold, accepted...) -> count
    posts: int = 0  # ping mode: posts sent after an accepted ping
    post_latency: Latency = msgspec.field(default_factory=Latency)
    ping_latencies: dict[str, float] = {}  # ping mode: ping_id -> latency in ms

    @property
    def errors(self) -> int:
        # "201", "post:201", "error:timeout", "post:error:timeout": the last part says
        return sum(n for status, n in self.statuses.items() if not status.rpartition(":")[2].startswith("2"))
