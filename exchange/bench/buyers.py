"""The benchmark's buyer servers: one aiohttp process answering pings and posts for many buyers.

Run as ``python -m exchange.bench.buyers --port P --config JSON``. Each buyer (a path prefix,
``/<name>/ping`` and ``/<name>/post``) has a latency range, a timeout rate (the answer never
comes before any deadline), a ping error rate, a no-bid rate, a post error rate (HTTP 500: the
exchange's workers retry the delivery) and a post reject rate. Every answer carries the latency
it was told to wait in ``X-Bench-Latency-Ms``, and the server keeps, per ``ping_id``, the
slowest injected latency among the buyers that answered: ``GET /stats`` returns them, so the
benchmark can compute the exchange's own overhead (ping latency minus the slowest buyer's).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys

import msgspec
from aiohttp import web

LATENCY_HEADER = "X-Bench-Latency-Ms"
HANG_S = 60.0  # a "timeout" answer waits this long: past any auction deadline
LISTEN_BACKLOG = 4096
# Distinct buyers are distinct hosts: each live buyer (and the silent one) answers on its own
# loopback address, so an HTTP client's per-host connection limit sees them apart, as it would
# in production (a silent buyer holding its connections must not queue the others' pings).
LOOPBACK = "127.0.0.1"
LIVE_HOST_FIRST = 10  # live0 -> 127.0.0.10, live1 -> 127.0.0.11, ...
LIVE_HOSTS_MAX = 20
HANG_HOST = "127.0.0.30"


def host_of(name: str) -> str:
    if name == "hang":
        return HANG_HOST
    if name.startswith("live") and name[4:].isdigit() and int(name[4:]) < LIVE_HOSTS_MAX:
        return f"127.0.0.{LIVE_HOST_FIRST + int(name[4:])}"
    return LOOPBACK


def url_for(buyers_url: str, name: str) -> str:
    """The buyer server's URL as buyer ``name`` is reached (its own host, same port)."""
    return buyers_url.replace(f"//{LOOPBACK}:", f"//{host_of(name)}:", 1)


def hosts() -> list[str]:
    return [LOOPBACK, *(f"127.0.0.{LIVE_HOST_FIRST + b}" for b in range(LIVE_HOSTS_MAX)), HANG_HOST]


class BuyerBehaviour(msgspec.Struct, kw_only=True):
    latency_min_ms: float = 10.0
    latency_max_ms: float = 30.0
    timeout_rate: float = 0.0  # pings that never answer in time
    ping_error_rate: float = 0.0  # pings answered HTTP 500
    no_bid_rate: float = 0.0  # pings answered "no bid"
    post_error_rate: float = 0.0  # posts answered HTTP 500 (the delivery is retried)
    post_reject_rate: float = 0.0  # posts answered "rejected"
    post_latency_ms: float = 5.0
    bid_minor: int = 2_000  # bids are this, plus up to 10% at random


class _State:
    def __init__(self) -> None:
        self.slowest_ms: dict[str, float] = {}  # ping_id -> slowest injected latency answered
        self.requests = 0


def buyer_app(behaviours: dict[str, BuyerBehaviour], seed: int = 7) -> web.Application:
    rng = random.Random(seed)
    state = _State()
    ok_headers = {"Content-Type": "application/json"}

    async def handle(request: web.Request) -> web.Response:
        name, kind = request.match_info["name"], request.match_info["kind"]
        behaviour = behaviours.get(name)
        if behaviour is None:
            return web.json_response({"status": "error", "reason": "unknown buyer"}, status=404)
        body = await request.read()
        state.requests += 1
        roll = rng.random()
        if kind == "post":
            latency = behaviour.post_latency_ms
            await asyncio.sleep(latency / 1000)
            headers = {**ok_headers, LATENCY_HEADER: f"{latency:.3f}"}
            if roll < behaviour.post_error_rate:
                return web.Response(body=b'{"status": "error"}', status=500, headers=headers)
            if roll < behaviour.post_error_rate + behaviour.post_reject_rate:
                return web.Response(body=b'{"status": "rejected", "reason": "bench"}', headers=headers)
            return web.Response(body=b'{"status": "accepted", "id": "bench"}', headers=headers)
        latency = rng.uniform(behaviour.latency_min_ms, behaviour.latency_max_ms)
        if roll < behaviour.timeout_rate:
            await asyncio.sleep(HANG_S)
            return web.Response(body=b'{"status": "no_bid"}', headers=ok_headers)
        await asyncio.sleep(latency / 1000)
        headers = {**ok_headers, LATENCY_HEADER: f"{latency:.3f}"}
        ping_id = _ping_id(body)
        if ping_id is not None:
            state.slowest_ms[ping_id] = max(state.slowest_ms.get(ping_id, 0.0), latency)
        roll -= behaviour.timeout_rate
        if roll < behaviour.ping_error_rate:
            return web.Response(body=b'{"status": "error"}', status=500, headers=headers)
        if roll < behaviour.ping_error_rate + behaviour.no_bid_rate:
            return web.Response(body=b'{"status": "no_bid", "reason": "bench"}', headers=headers)
        bid = behaviour.bid_minor + rng.randint(0, behaviour.bid_minor // 10)
        return web.Response(body=b'{"status": "bid", "bid": "%d.%02d"}' % (bid // 100, bid % 100), headers=headers)

    async def stats(request: web.Request) -> web.Response:
        return web.Response(
            body=msgspec.json.encode({"requests": state.requests, "slowest_ms": state.slowest_ms}),
            headers=ok_headers,
        )

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/{name}/{kind:ping|post}", handle)
    app.router.add_get("/stats", stats)
    app.router.add_get("/health", health)
    return app


_id_decoder = msgspec.json.Decoder(dict)


def _ping_id(body: bytes) -> str | None:
    try:
        value = _id_decoder.decode(body).get("ping_id")
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, str) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="benchmark buyer servers")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", required=True, help="JSON: {buyer name: behaviour}")
    args = parser.parse_args(argv)
    behaviours = msgspec.json.decode(args.config.encode(), type=dict[str, BuyerBehaviour])
    web.run_app(buyer_app(behaviours), host=hosts(), port=args.port, access_log=None,
                print=None, backlog=LISTEN_BACKLOG)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
