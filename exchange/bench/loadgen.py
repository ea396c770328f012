"""The load generator: a separate process that drives HTTP load with aiohttp.

``python -m exchange.bench.loadgen SPEC.json OUT.json``. The spec (``LoadSpec``) names the API
URLs (requests go round-robin across them), the kind of request, the number of concurrent
connections and either a target rate (open loop: request i is due at ``i / rate`` seconds; its
latency counts from when it was due, so a stalled server cannot hide its queue) or none (closed
loop: every connection sends its next request as soon as the last one answers: the maximum
throughput). Requests answered during the warm-up are not counted.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sys
import time
from typing import Any

import aiohttp
import msgspec

from exchange.bench import leads
from exchange.bench.stats import Latency, LoadResult

CONNECT_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 10.0  # an answer later than this is an error (error:timeout)

KIND_DIRECT_POST = "direct_post"  # POST /v1/leads with a whole lead
KIND_PING = "ping"  # POST /v1/pings, then POST /v1/posts for post_fraction of the accepted
KIND_RAW = "raw"  # POST a lead's JSON to ``path`` (the baselines)


class LoadSpec(msgspec.Struct, kw_only=True):
    urls: list[str]
    kind: str
    duration_s: float
    concurrency: int
    rate_per_s: float = 0.0  # 0: closed loop
    warmup_s: float = 0.0
    headers: dict[str, str] = {}
    path: str = "/"
    vertical: str = "solar"
    shape: str = leads.SOLAR_LIKE
    seq_start: int = 0
    tag: str = "bench"
    post_fraction: float = 0.0
    seed: int = 11


class _Run:
    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.seq = itertools.count(spec.seq_start)
        self.url_cycle = itertools.cycle(spec.urls)
        self.rng = random.Random(spec.seed)
        self.measure_from = 0.0
        self.measure_until = 0.0
        self.latencies: list[float] = []
        self.post_latencies: list[float] = []
        self.statuses: dict[str, int] = {}
        self.outcomes: dict[str, int] = {}
        self.ping_latencies: dict[str, float] = {}
        self.posts = 0
        self.completed = 0

    def counted(self, moment: float) -> bool:
        return self.measure_from <= moment <= self.measure_until

    async def one(self, http: aiohttp.ClientSession, due: float) -> None:
        spec = self.spec
        seq = next(self.seq)
        base = next(self.url_cycle)
        if spec.kind == KIND_PING:
            url, body = base + "/v1/pings", leads.ping(spec.vertical, spec.shape, seq)
        elif spec.kind == KIND_DIRECT_POST:
            url, body = base + "/v1/leads", leads.direct_post(spec.vertical, spec.shape, seq, spec.tag)
        else:
            url, body = base + spec.path, leads.direct_post(spec.vertical, spec.shape, seq, spec.tag)
        status, answer = await self._send(http, url, body)
        finished = time.perf_counter()
        # Open loop: a request counts by when it was due, so the slow tail is never cut off.
        if not self.counted(due if spec.rate_per_s > 0 else finished):
            return
        latency_ms = (finished - due) * 1000
        self.completed += 1
        self.latencies.append(latency_ms)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        outcome = answer.get("status") if isinstance(answer, dict) else None
        if isinstance(outcome, str):
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if spec.kind != KIND_PING or not isinstance(answer, dict):
            return
        ping_id = answer.get("ping_id")
        if isinstance(ping_id, str):
            self.ping_latencies[ping_id] = latency_ms
        if outcome == "accepted" and ping_id and self.rng.random() < spec.post_fraction:
            started = time.perf_counter()
            post_status, _ = await self._send(http, base + "/v1/posts", leads.post(ping_id, seq, spec.tag))
            self.posts += 1
            self.post_latencies.append((time.perf_counter() - started) * 1000)
            key = f"post:{post_status}"
            self.statuses[key] = self.statuses.get(key, 0) + 1

    async def _send(self, http: aiohttp.ClientSession, url: str, body: Any) -> tuple[str, Any]:
        try:
            async with http.post(url, data=msgspec.json.encode(body), headers=self.spec.headers) as resp:
                raw = await resp.read()
                status = str(resp.status)
        except TimeoutError:
            return "error:timeout", None
        except aiohttp.ClientError as exc:
            return f"error:{type(exc).__name__}", None
        try:
            return status, msgspec.json.decode(raw) if raw else None
        except msgspec.DecodeError:
            return status, None


async def run(spec: LoadSpec) -> LoadResult:
    state = _Run(spec)
    connector = aiohttp.TCPConnector(limit=spec.concurrency, limit_per_host=spec.concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as http:
        start = time.perf_counter()
        state.measure_from = start + spec.warmup_s
        state.measure_until = start + spec.warmup_s + spec.duration_s
        if spec.rate_per_s > 0:
            await _open_loop(state, http, start)
        else:
            await _closed_loop(state, http)
    elapsed = spec.duration_s
    return LoadResult(
        requests=state.completed, elapsed_s=elapsed, throughput_rps=state.completed / elapsed,
        latency=Latency.of(state.latencies), statuses=state.statuses, outcomes=state.outcomes,
        posts=state.posts, post_latency=Latency.of(state.post_latencies),
        ping_latencies=state.ping_latencies,
    )  # fmt: skip


async def _closed_loop(state: _Run, http: aiohttp.ClientSession) -> None:
    async def connection() -> None:
        while time.perf_counter() < state.measure_until:
            await state.one(http, time.perf_counter())

    await asyncio.gather(*(connection() for _ in range(state.spec.concurrency)))


async def _open_loop(state: _Run, http: aiohttp.ClientSession, start: float) -> None:
    interval = 1 / state.spec.rate_per_s
    gate = asyncio.Semaphore(state.spec.concurrency * 4)  # bounds memory if the server stalls
    tasks: set[asyncio.Task[None]] = set()

    async def guarded(due: float) -> None:
        async with gate:
            await state.one(http, due)

    i = 0
    while True:
        due = start + i * interval
        if due > state.measure_until:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(guarded(due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
    if tasks:
        await asyncio.gather(*tasks)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m exchange.bench.loadgen SPEC.json OUT.json", file=sys.stderr)
        return 2
    with open(argv[0], "rb") as fh:
        spec = msgspec.json.decode(fh.read(), type=LoadSpec)
    result = asyncio.run(run(spec))
    with open(argv[1], "wb") as fh:
        fh.write(msgspec.json.encode(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
