"""Simulated buyers: a real HTTP server that answers pings and posts like advertisers do.

`make run` serves a few so the demo market has live bidders; tests use it to see the exchange
deal with slow, failing and picky buyers over real sockets; the benchmark will drive it too.
Each buyer has a name (its path prefix) and a behaviour: latency, bid range, and how often it
times out, fails, passes on a ping or rejects a post.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Mapping
from typing import Any

import msgspec
from aiohttp import web

from exchange.delivery import signing

STOP_TIMEOUT_S = 5.0
HANG_S = 30.0  # a "timeout" answer sleeps this long: past any ping deadline


class Behaviour(msgspec.Struct, kw_only=True):
    bid_min_minor: int = 1000
    bid_max_minor: int = 3000
    latency_ms: int = 20
    timeout_rate: float = 0.0  # ping answers never come (before the deadline)
    error_rate: float = 0.0  # ping answers are HTTP 500
    pass_rate: float = 0.0  # ping answers "no bid"
    post_reject_rate: float = 0.0  # post answers "rejected"
    post_fail_first: int = 0  # the first N posts answer HTTP 500 (a buyer having a bad minute)
    post_latency_ms: int | None = None  # None: latency_ms
    secret: str | None = None  # when set, requests with a bad signature get 401


class Received(msgspec.Struct, kw_only=True):
    buyer: str
    kind: str  # ping or post
    body: dict[str, Any]
    signature_ok: bool | None
    delivery_id: str | None = None


def ping_endpoint(base_url: str, name: str, timeout_ms: int = 500) -> dict[str, Any]:
    return {
        "kind": "http",
        "url": f"{base_url}/{name}/ping",
        "timeout_ms": timeout_ms,
        "response": {
            "success_path": "status",
            "success_values": ["bid"],
            "price_path": "bid",
            "reason_path": "reason",
        },
    }


def post_endpoint(base_url: str, name: str, timeout_ms: int = 2000) -> dict[str, Any]:
    return {
        "kind": "http",
        "url": f"{base_url}/{name}/post",
        "timeout_ms": timeout_ms,
        "response": {
            "success_path": "status",
            "success_values": ["accepted"],
            "reference_path": "id",
            "reason_path": "reason",
        },
    }


def endpoints(base_url: str, name: str, *, live: bool = True, ping_timeout_ms: int = 500) -> dict[str, Any]:
    """BuyerEndpoints JSON for a simulated buyer (``live``: it is pinged for a bid)."""
    result: dict[str, Any] = {"post": post_endpoint(base_url, name)}
    if live:
        result["ping"] = ping_endpoint(base_url, name, ping_timeout_ms)
    return result


def buyer_app(
    behaviours: Mapping[str, Behaviour], *, seed: int | None = None, received: list[Received] | None = None
) -> web.Application:
    rng = random.Random(seed)
    posts_seen: dict[str, int] = {}

    async def handle(request: web.Request) -> web.Response:
        name, kind = request.match_info["name"], request.match_info["kind"]
        behaviour = behaviours.get(name)
        if behaviour is None:
            return web.json_response({"status": "error", "reason": "unknown buyer"}, status=404)
        body = await request.read()
        signature_ok = None
        if behaviour.secret is not None:
            signature_ok = signing.verify(
                behaviour.secret,
                request.headers.get(signing.TIMESTAMP_HEADER, ""),
                body,
                request.headers.get(signing.SIGNATURE_HEADER, ""),
                int(time.time()),
            )
        if received is not None:
            try:
                decoded = msgspec.json.decode(body) if body else {}
            except msgspec.DecodeError:
                decoded = {"raw": body.decode(errors="replace")}
            received.append(
                Received(
                    buyer=name, kind=kind, body=decoded, signature_ok=signature_ok,
                    delivery_id=request.headers.get(signing.DELIVERY_ID_HEADER),
                )
            )  # fmt: skip
        if signature_ok is False:
            return web.json_response({"status": "error", "reason": "bad signature"}, status=401)
        latency_ms = behaviour.latency_ms
        if kind == "post" and behaviour.post_latency_ms is not None:
            latency_ms = behaviour.post_latency_ms
        await asyncio.sleep(latency_ms / 1000)
        if kind == "ping":
            roll = rng.random()
            if roll < behaviour.timeout_rate:
                await asyncio.sleep(HANG_S)
            if roll < behaviour.timeout_rate + behaviour.error_rate:
                return web.json_response({"status": "error"}, status=500)
            if roll < behaviour.timeout_rate + behaviour.error_rate + behaviour.pass_rate:
                return web.json_response({"status": "no_bid", "reason": "not interested"})
            bid = rng.randint(behaviour.bid_min_minor, behaviour.bid_max_minor)
            return web.json_response({"status": "bid", "bid": f"{bid // 100}.{bid % 100:02d}"})
        posts_seen[name] = posts_seen.get(name, 0) + 1
        if posts_seen[name] <= behaviour.post_fail_first:
            return web.json_response({"status": "error"}, status=500)
        if rng.random() < behaviour.post_reject_rate:
            return web.json_response({"status": "rejected", "reason": "duplicate in our CRM"})
        return web.json_response({"status": "accepted", "id": f"{name}-{rng.getrandbits(32):08x}"})

    app = web.Application()
    app.router.add_post("/{name}/{kind:ping|post}", handle)
    return app


class BuyerServer:
    """The simulated buyers on 127.0.0.1, in a thread of their own (own event loop)."""

    def __init__(
        self, behaviours: Mapping[str, Behaviour], *, port: int = 0, seed: int | None = None
    ) -> None:
        self.behaviours = dict(behaviours)
        self.received: list[Received] = []
        self._port = port
        self._seed = seed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def start(self) -> str:
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            app = buyer_app(self.behaviours, seed=self._seed, received=self.received)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self._port)
            loop.run_until_complete(site.start())
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.base_url = f"http://127.0.0.1:{port}"
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=main, name="simulated-buyers", daemon=True)
        self._thread.start()
        if not ready.wait(STOP_TIMEOUT_S):
            raise RuntimeError("simulated buyers did not start")
        return self.base_url

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)

    def __enter__(self) -> BuyerServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
