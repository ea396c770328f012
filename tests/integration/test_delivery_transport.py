"""The delivery transport against real local buyer servers (aiohttp on 127.0.0.1, no mocks).

Each buyer endpoint checks the exchange's signature on the bytes it actually received.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from exchange import reasons
from exchange.auction.fallback import PostOutcome
from exchange.delivery import (
    DELIVERY_ID_HEADER,
    RESPONSE_MAX_BYTES,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    EndpointConfig,
    Exchange,
    FieldMap,
    LeadPayload,
    ResponseRules,
    build_request,
    classify_ping,
    classify_post,
    new_session,
    ping_all,
    send,
    verify,
)

SECRET = "buyer-7-secret"
SLACK_MS = 100  # scheduling slack allowed past a deadline
RULES = ResponseRules(
    success_path="status",
    success_values=("success",),
    price_path="bid",
    reference_path="id",
    reason_path="details",
)
LEAD = LeadPayload(
    vertical="auto", ping_id="ping-1", fields={"zip": "90210"}, pii={"phone": "+15555550100"}
)


@dataclass
class Buyer:
    base: str
    seen: list[dict] = field(default_factory=list)

    def config(self, path: str, **kw) -> EndpointConfig:
        return EndpointConfig(url=f"{self.base}{path}", response=kw.pop("response", RULES), **kw)


def _verified(request: web.Request, signed: bytes) -> bool:
    return verify(
        SECRET,
        request.headers.get(TIMESTAMP_HEADER, ""),
        signed,
        request.headers.get(SIGNATURE_HEADER, ""),
        now_s=int(time.time()),
    )


@pytest.fixture
async def buyer() -> AsyncIterator[Buyer]:
    release = asyncio.Event()  # set at teardown so hanging handlers end and the server stops
    state = Buyer(base="")

    async def record(request: web.Request) -> bool:
        body = await request.read()
        signed = body if request.method != "GET" else request.rel_url.raw_query_string.encode()
        ok = _verified(request, signed)
        state.seen.append(
            {"path": request.path, "body": body, "verified": ok,
             "delivery_id": request.headers.get(DELIVERY_ID_HEADER)}
        )  # fmt: skip
        return ok

    async def bid(request: web.Request) -> web.Response:
        if not await record(request):
            return web.json_response({"status": "failure", "details": "bad signature"}, status=401)
        return web.json_response({"status": "success", "bid": "12.50", "id": "ref-1"})

    async def reject(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"status": "failure", "details": "Quota Reached"})

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        delay_s = float(request.query.get("s", "1"))
        try:
            await asyncio.wait_for(release.wait(), timeout=delay_s)
        except TimeoutError:
            pass
        return web.json_response({"status": "success", "bid": "99.00"})

    async def hang(request: web.Request) -> web.Response:
        await record(request)
        await release.wait()  # forever, as far as the test is concerned
        return web.json_response({"status": "success", "bid": "99.00"})

    async def boom(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"status": "success", "bid": "99.00"}, status=500)

    async def huge(request: web.Request) -> web.Response:
        await record(request)
        pad = b"x" * RESPONSE_MAX_BYTES
        return web.Response(body=b'{"status":"success","bid":"1.00","pad":"' + pad + b'"}')

    async def redirect(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPFound("/bid")

    async def accept(request: web.Request) -> web.Response:
        if not await record(request):
            return web.Response(status=401)
        return web.json_response({"status": "success", "id": "sold-1"})

    app = web.Application()
    for path, handler in {"/bid": bid, "/reject": reject, "/slow": slow, "/hang": hang,
                          "/boom": boom, "/huge": huge, "/redirect": redirect,
                          "/accept": accept}.items():  # fmt: skip
        app.router.add_route("*", path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.base = f"http://{host}:{port}"
    yield state
    release.set()
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with new_session() as s:
        yield s


def _refused_url() -> str:
    # A port that was free a moment ago and has nobody listening now.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/bid"


def _request(config: EndpointConfig, kind: str = "ping", secret: str = SECRET, delivery_id="d-1"):
    now_s = int(time.time())
    return build_request(config, kind, LEAD, secret=secret, now_s=now_s, delivery_id=delivery_id)


async def test_a_valid_bid_is_parsed_and_the_buyer_verified_the_signature(buyer, session) -> None:
    config = buyer.config("/bid")
    exchange = await send(session, _request(config), timeout_ms=2_000)
    verdict = classify_ping(config, exchange)
    assert verdict.reason is None and verdict.price_minor == 1250 and verdict.reference == "ref-1"
    assert 0 <= verdict.latency_ms < 2_000
    [seen] = buyer.seen
    assert seen["verified"] and seen["delivery_id"] == "d-1"
    assert b"+15555550100" not in seen["body"]  # the native ping body carries no PII


async def test_a_get_ping_is_signed_over_its_query_string(buyer, session) -> None:
    config = EndpointConfig(
        url=f"{buyer.base}/bid?key=k%20y", method="GET", body="form", response=RULES,
        mapping=(FieldMap(target="zip", source="zip"), FieldMap(target="note", constant="a b&c")),
    )  # fmt: skip
    verdict = classify_ping(config, await send(session, _request(config), timeout_ms=2_000))
    assert verdict.reason is None and verdict.price_minor == 1250
    assert buyer.seen[0]["verified"]


async def test_a_wrong_secret_fails_the_buyers_check(buyer, session) -> None:
    config = buyer.config("/bid")
    verdict = classify_ping(config, await send(session, _request(config, secret="nope"), 2_000))
    assert not buyer.seen[0]["verified"]
    assert verdict.reason == reasons.PING_REJECTED and "bad signature" in verdict.detail


async def test_a_rejection_is_ping_rejected_with_the_buyers_reason(buyer, session) -> None:
    config = buyer.config("/reject")
    verdict = classify_ping(config, await send(session, _request(config), 2_000))
    assert verdict.reason == reasons.PING_REJECTED and verdict.detail == "Quota Reached"
    assert verdict.price_minor is None


async def test_a_slow_buyer_past_its_timeout_is_ping_timeout(buyer, session) -> None:
    config = buyer.config("/slow", timeout_ms=200)
    started = time.monotonic()
    calls = [("slow", _request(config), config.timeout_for("ping"))]
    results = await ping_all(session, calls, 1_000)
    elapsed_ms = (time.monotonic() - started) * 1_000
    verdict = classify_ping(config, results["slow"])
    assert verdict.reason == reasons.PING_TIMEOUT and verdict.price_minor is None
    assert 200 <= elapsed_ms < 200 + SLACK_MS


async def test_a_500_is_ping_error_never_a_bid(buyer, session) -> None:
    config = buyer.config("/boom")
    verdict = classify_ping(config, await send(session, _request(config), 2_000))
    assert verdict.reason == reasons.PING_ERROR and verdict.price_minor is None
    assert "http 500" in verdict.detail


async def test_connection_refused_is_ping_error(session) -> None:
    config = EndpointConfig(url=_refused_url(), response=RULES)
    exchange = await send(session, _request(config), 2_000)
    assert exchange.status is None and exchange.error and not exchange.timed_out
    assert classify_ping(config, exchange).reason == reasons.PING_ERROR


async def test_an_oversized_answer_is_an_error(buyer, session) -> None:
    config = buyer.config("/huge")
    exchange = await send(session, _request(config), 2_000)
    assert exchange.status == 200 and len(exchange.body) <= RESPONSE_MAX_BYTES
    assert classify_ping(config, exchange).reason == reasons.PING_ERROR


async def test_redirects_are_not_followed(buyer, session) -> None:
    config = buyer.config("/redirect")
    verdict = classify_ping(config, await send(session, _request(config), 2_000))
    assert verdict.reason == reasons.PING_ERROR and [s["path"] for s in buyer.seen] == ["/redirect"]


async def test_latency_is_measured(buyer, session) -> None:
    config = buyer.config("/slow?s=0.1")
    exchange = await send(session, _request(config), 2_000)
    assert exchange.status == 200 and 100 <= exchange.latency_ms < 1_000


async def test_a_hanging_buyer_does_not_delay_the_others(buyer, session) -> None:
    deadline_ms = 300
    configs = {
        "good": buyer.config("/bid", timeout_ms=1_000),
        "hang": buyer.config("/hang", timeout_ms=30_000),  # the deadline cuts it, not its timeout
        "slow": buyer.config("/slow", timeout_ms=150),
        "boom": buyer.config("/boom"),
        "reject": buyer.config("/reject"),
        "refused": EndpointConfig(url=_refused_url(), response=RULES),
    }
    calls = [(key, _request(c), None) for key, c in configs.items()]  # None: each its own
    started = time.monotonic()
    results = await ping_all(session, calls, deadline_ms)
    elapsed_ms = (time.monotonic() - started) * 1_000
    assert elapsed_ms < deadline_ms + SLACK_MS
    verdicts = {key: classify_ping(configs[key], ex) for key, ex in results.items()}
    assert {k: v.reason for k, v in verdicts.items()} == {
        "good": None,
        "hang": reasons.PING_TIMEOUT,
        "slow": reasons.PING_TIMEOUT,
        "boom": reasons.PING_ERROR,
        "reject": reasons.PING_REJECTED,
        "refused": reasons.PING_ERROR,
    }
    assert verdicts["good"].price_minor == 1250 and verdicts["good"].latency_ms < deadline_ms
    assert all(s["verified"] for s in buyer.seen)


async def test_ping_all_edge_cases(buyer, session) -> None:
    assert await ping_all(session, [], 100) == {}
    request = _request(buyer.config("/bid"))
    with pytest.raises(ValueError, match="duplicate"):
        await ping_all(session, [("a", request, 500), ("a", request, 500)], 500)


async def test_post_outcomes(buyer, session) -> None:
    accept, reject, boom = buyer.config("/accept"), buyer.config("/reject"), buyer.config("/boom")
    slow = buyer.config("/slow", timeout_ms=100)

    async def post(config: EndpointConfig):
        request = _request(config, "post", delivery_id="sale-1")
        assert request.timeout_ms == config.timeout_for("post")
        return classify_post(config, await send(session, request))  # the request's timeout

    sold = await post(accept)
    assert (sold.outcome, sold.reason, sold.reference) == (PostOutcome.ACCEPTED, None, "sold-1")
    assert b"+15555550100" in buyer.seen[0]["body"] and buyer.seen[0]["verified"]
    refused = await post(reject)
    assert (refused.outcome, refused.reason) == (PostOutcome.REJECTED, reasons.POST_REJECTED)
    assert not refused.retryable
    for failed in (await post(boom), await post(slow)):
        assert (failed.outcome, failed.reason) == (PostOutcome.ERROR, reasons.POST_ERROR)
        assert failed.retryable
    assert {s["delivery_id"] for s in buyer.seen} == {"sale-1"}


def test_classify_without_an_answer() -> None:
    config = EndpointConfig(url="http://127.0.0.1:9/x", response=RULES)
    late = Exchange(status=None, latency_ms=300, error="deadline", timed_out=True)
    assert classify_ping(config, late).reason == reasons.PING_TIMEOUT
    assert classify_post(config, late).reason == reasons.POST_ERROR


async def test_the_deadline_holds_even_if_a_call_overruns_its_timeout(monkeypatch, session) -> None:
    # The deadline is a backstop of its own: a call that somehow outlives its timeout is cut off.
    from exchange.delivery import transport

    async def stuck(session, request, timeout_ms) -> Exchange:
        await asyncio.sleep(10)
        raise AssertionError("not reached")

    monkeypatch.setattr(transport, "send", stuck)
    request = _request(EndpointConfig(url="http://127.0.0.1:9/x"))
    started = time.monotonic()
    results = await ping_all(session, [("stuck", request, 5_000)], 100)
    assert (time.monotonic() - started) * 1_000 < 100 + SLACK_MS
    assert results["stuck"].timed_out and results["stuck"].error == "deadline"
    await asyncio.sleep(0.01)  # the cut-off task finishes cancelling in the background
    assert not transport._cancelled


async def test_a_cancelled_fan_out_leaves_no_request_running(buyer, session) -> None:
    config = buyer.config("/hang", timeout_ms=5_000)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await ping_all(session, [("hang", _request(config), 5_000)], 5_000)
    await asyncio.sleep(0.01)
    assert not [t for t in asyncio.all_tasks() if t.get_coro().__name__ == "send"]
