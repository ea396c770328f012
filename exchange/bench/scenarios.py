"""The HTTP scenarios: each drives load from the load generator process and returns its rows.

``Stage`` is what they share: the API URLs, the supplier's key, the buyer servers, the options
and where helper processes log.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa

from exchange.bench import leads, procs
from exchange.bench.loadgen import KIND_DIRECT_POST, KIND_PING, KIND_RAW, LoadSpec
from exchange.bench.results import Row
from exchange.bench.seed import DEADLINE_VERTICAL, PING_VERTICAL, POST_VERTICAL
from exchange.bench.stats import Latency, LoadResult
from exchange.settings import Settings

DRAIN_TIMEOUT_S = 120.0  # after the load: until every delivery is settled
DRAIN_POLL_S = 0.2
PING_POST_FRACTION = 0.1  # scenario 2 posts this share of the accepted pings
DEADLINE_RATE_PER_S = 200.0
HALF = 0.5


class Stage(msgspec.Struct, kw_only=True):
    urls: list[str]
    supplier_key: str
    buyers_url: str
    settings: Settings  # the exchange's database, to wait for deliveries
    log_dir: Path
    duration_s: float
    warmup_s: float
    concurrency: int
    say: Callable[[str], None]

    def spec(self, kind: str, seq_block: int, **kw: Any) -> LoadSpec:
        kw.setdefault("urls", self.urls)
        kw.setdefault("headers", {"Authorization": f"Bearer {self.supplier_key}"})
        kw.setdefault("concurrency", self.concurrency)
        return LoadSpec(kind=kind, duration_s=self.duration_s, warmup_s=self.warmup_s,
                        seq_start=seq_block * leads.SEQ_BLOCK, tag=f"s{seq_block}", **kw)  # fmt: skip

    def load(self, spec: LoadSpec) -> LoadResult:
        return procs.run_load(spec, self.log_dir)


async def _unsettled(settings: Settings) -> int:
    from exchange.store.db import Database
    from exchange.store.tables import deliveries, sales
    from exchange.store.tables import leads as leads_table

    db = Database(settings)
    try:
        async with db.read() as conn:
            delivering = (await conn.execute(
                sa.select(sa.func.count()).select_from(sales).where(sales.c.status == "delivering"))).scalar_one()
            pending = (await conn.execute(
                sa.select(sa.func.count()).select_from(deliveries).where(deliveries.c.status == "pending"))).scalar_one()
            posting = (await conn.execute(
                sa.select(sa.func.count()).select_from(leads_table).where(leads_table.c.status == "posting"))).scalar_one()
    finally:
        await db.dispose()  # fmt: skip
    return int(delivering) + int(pending) + int(posting)


def drain(stage: Stage) -> float:
    """Seconds until every sale is settled (delivered or refused) and no lead is mid-post."""
    started = time.perf_counter()
    while time.perf_counter() - started < DRAIN_TIMEOUT_S:
        if asyncio.run(_unsettled(stage.settings)) == 0:
            return time.perf_counter() - started
        time.sleep(DRAIN_POLL_S)
    return float("nan")


def post(stage: Stage, label: str, seq_block: int, scenario: str = "post") -> Row:
    """Scenario 1: closed-loop direct posts to fixed-price campaigns, then the deliveries."""
    stage.say(f"{label}: direct posts, {stage.concurrency} connections, {stage.duration_s:g} s")
    load = stage.load(stage.spec(KIND_DIRECT_POST, seq_block, vertical=POST_VERTICAL))
    stage.say(f"{label}: waiting for the deliveries to settle")
    drain_s = drain(stage)
    # End to end: the measured leads over the load's time plus the wait for their deliveries.
    e2e = None if math.isnan(drain_s) else load.requests / (load.elapsed_s + drain_s)
    sold = load.outcomes.get("sold", 0)
    settled = "deliveries NOT settled" if e2e is None else f"deliveries settled {drain_s:.1f} s after the load"
    return Row.of_load(scenario, label, load, unit="leads/s",
                       notes=f"sold {sold}/{load.requests}; {settled}; end to end {e2e or 0:,.0f} leads/s",
                       extra={"drain_s": drain_s, "end_to_end_rps": e2e, "outcomes": load.outcomes})  # fmt: skip


def _overhead(load: LoadResult, slowest: dict[str, float]) -> Latency:
    values = [latency - slowest[pid] for pid, latency in load.ping_latencies.items() if pid in slowest]
    return Latency.of(values)


def ping(stage: Stage) -> list[Row]:
    """Scenario 2: pings answered by ten live buyers, at max rate and at half of it."""
    rows = []
    stage.say(f"ping: max rate, {stage.concurrency} connections")
    spec = stage.spec(KIND_PING, 2, vertical=PING_VERTICAL, shape=leads.AUTO_LIKE, post_fraction=PING_POST_FRACTION)
    full = stage.load(spec)
    rate = max(full.throughput_rps * HALF, 1.0)
    stage.say(f"ping: open loop at half that rate, {rate:.0f}/s")
    half_spec = stage.spec(KIND_PING, 3, vertical=PING_VERTICAL, shape=leads.AUTO_LIKE,
                           post_fraction=PING_POST_FRACTION, rate_per_s=rate, concurrency=stage.concurrency * 4)  # fmt: skip
    half = stage.load(half_spec)
    slowest = procs.get_json(stage.buyers_url + "/stats")["slowest_ms"]  # type: ignore[index]
    for label, load in (("ping, max rate", full), (f"ping, half rate ({rate:.0f}/s)", half)):
        overhead = _overhead(load, slowest)
        rows.append(Row.of_load("ping", label, load, unit="pings/s",
                                notes=f"overhead p50/p99 {_ms(overhead.p50_ms)}/{_ms(overhead.p99_ms)}; "
                                      f"{load.posts} posts p50 {_ms(load.post_latency.p50_ms)}",
                                extra={"overhead": msgspec.to_builtins(overhead), "posts": load.posts,
                                       "post_latency": msgspec.to_builtins(load.post_latency),
                                       "outcomes": load.outcomes, "rate_per_s": rate if load is half else None}))  # fmt: skip
    return rows


def deadline(stage: Stage, deadline_ms: int) -> Row:
    """Scenario 3: one buyer never answers; pings at 200/s must still answer by the deadline."""
    stage.say(f"deadline: {DEADLINE_RATE_PER_S:.0f} pings/s, one buyer silent, deadline {deadline_ms} ms")
    in_flight = int(DEADLINE_RATE_PER_S * (deadline_ms / 1000 + 1)) + stage.concurrency
    spec = stage.spec(KIND_PING, 4, vertical=DEADLINE_VERTICAL, shape=leads.AUTO_LIKE,
                      rate_per_s=DEADLINE_RATE_PER_S, concurrency=in_flight)  # fmt: skip
    load = stage.load(spec)
    return Row.of_load("deadline", f"deadline, {DEADLINE_RATE_PER_S:.0f} pings/s", load, unit="pings/s",
                       notes=f"p99 {_ms(load.latency.p99_ms)} vs deadline {deadline_ms} ms",
                       extra={"deadline_ms": deadline_ms, "outcomes": load.outcomes})  # fmt: skip


def baseline_insert(stage: Stage, urls: list[str]) -> Row:
    stage.say("baseline: bare Litestar + msgspec + one psycopg INSERT")
    load = stage.load(stage.spec(KIND_RAW, 5, urls=urls, path="/lead", headers={}))
    return Row.of_load("baseline", "baseline: one INSERT (psycopg pool)", load)


def baseline_fanout(stage: Stage, urls: list[str]) -> Row:
    stage.say("baseline: bare 10-way aiohttp fan-out to the buyer servers")
    load = stage.load(stage.spec(KIND_RAW, 6, urls=urls, path="/ping", headers={}, shape=leads.AUTO_LIKE))
    return Row.of_load("baseline", "baseline: 10-way fan-out (aiohttp)", load)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"
