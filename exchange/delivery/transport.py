"""The async core: send adapter-built requests, fan pings out under a deadline, classify answers.

The adapter decides *what* to send and what an answer means; this module owns *when*: every
call has its own timeout, a fan-out has one deadline, and latency is measured here with the
monotonic clock. `send` never raises for anything a buyer or the network can do; it returns an
`Exchange` saying what happened. It never retries either: post retries belong to the delivery
worker (with the same delivery id, so the buyer can de-duplicate).

The caller owns one `aiohttp.ClientSession` (see `new_session`) for many leads, so connections
to busy buyers are reused instead of paying a TCP/TLS handshake inside every ping's timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable, Sequence
from typing import TypeVar

import aiohttp
import msgspec
from yarl import URL

from exchange import reasons
from exchange.auction.fallback import PostOutcome
from exchange.delivery.adapter import BuyerAnswer, HttpRequest, Outcome, parse_response
from exchange.delivery.config import TIMEOUT_MS_MAX, EndpointConfig, Kind

CONNECTOR_LIMIT = 200  # open connections per session: bounds sockets under a ping storm
CONNECTOR_LIMIT_PER_HOST = 50  # one slow buyer cannot take every connection
RESPONSE_MAX_BYTES = 64 * 1024  # a bid answer is small; more is a broken or hostile buyer
READ_CHUNK_BYTES = 8 * 1024
DETAIL_MAX_CHARS = 300
MS_PER_S = 1_000

K = TypeVar("K", bound=Hashable)

# Tasks cut off by a deadline finish their cancellation in the background; holding a reference
# keeps the event loop from garbage-collecting them half-way (asyncio keeps only weak refs).
_cancelled: set[asyncio.Task[object]] = set()


class Exchange(msgspec.Struct, frozen=True, kw_only=True):
    """What happened on the wire for one request."""

    status: int | None  # None: no HTTP answer (timeout, refused, reset...)
    body: bytes = b""
    content_type: str | None = None
    latency_ms: int = 0
    error: str | None = None  # a transport problem, in words; None when an answer came
    timed_out: bool = False


def new_session(
    *, limit: int = CONNECTOR_LIMIT, limit_per_host: int = CONNECTOR_LIMIT_PER_HOST
) -> aiohttp.ClientSession:
    """A session for buyer calls. Call inside the running loop; the caller closes it."""
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit_per_host)
    # No cookie jar: a cookie one buyer sets must never ride along on another lead's request.
    return aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), raise_for_status=False
    )


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * MS_PER_S)


async def _read_bounded(response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
    """The body, at most RESPONSE_MAX_BYTES of it, and whether there was more."""
    if (response.content_length or 0) > RESPONSE_MAX_BYTES:
        return b"", True
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(READ_CHUNK_BYTES):
        chunks.append(chunk)
        size += len(chunk)
        if size > RESPONSE_MAX_BYTES:
            return b"".join(chunks)[:RESPONSE_MAX_BYTES], True
    return b"".join(chunks), False


async def send(
    session: aiohttp.ClientSession, request: HttpRequest, timeout_ms: int | None = None
) -> Exchange:
    """Send one request; wait at most `timeout_ms` (connect, send and read together).

    None waits the request's own timeout (its endpoint's, for its kind).
    """
    if timeout_ms is None:
        timeout_ms = request.timeout_ms
    timeout_ms = max(1, min(timeout_ms, TIMEOUT_MS_MAX))
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_ms / MS_PER_S):
            async with session.request(
                request.method,
                URL(request.url, encoded=True),  # the adapter signed these exact bytes
                headers=request.headers,
                data=request.body or None,
                allow_redirects=False,  # a redirect would re-send (or drop) a signed body
            ) as response:
                body, too_large = await _read_bounded(response)
                content_type = response.headers.get(aiohttp.hdrs.CONTENT_TYPE)
    except TimeoutError:
        return Exchange(
            status=None, latency_ms=_elapsed_ms(started), error="timeout", timed_out=True
        )
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        # Refused, reset, DNS, TLS, malformed answer: all the buyer's side, all "error".
        error = f"{type(exc).__name__}: {exc}"[:DETAIL_MAX_CHARS]
        return Exchange(status=None, latency_ms=_elapsed_ms(started), error=error)
    latency_ms = _elapsed_ms(started)
    error = f"response larger than {RESPONSE_MAX_BYTES} bytes" if too_large else None
    return Exchange(
        status=response.status,
        body=body,
        content_type=content_type,
        latency_ms=latency_ms,
        error=error,
    )


async def ping_all(
    session: aiohttp.ClientSession,
    calls: Sequence[tuple[K, HttpRequest, int | None]],
    deadline_ms: int,
) -> dict[K, Exchange]:
    """Send every call at once; return by `deadline_ms`, whatever the buyers do.

    Each call waits at most its own timeout (None: the request's), cut to the deadline. A call
    still running at the deadline (a hung buyer, a slow cancellation) is cancelled and reported
    as timed out.
    """
    started = time.monotonic()
    tasks: dict[K, asyncio.Task[Exchange]] = {}
    try:
        for key, request, timeout_ms in calls:
            if key in tasks:
                raise ValueError(f"duplicate call key {key!r}")
            budget_ms = min(request.timeout_ms if timeout_ms is None else timeout_ms, deadline_ms)
            tasks[key] = asyncio.create_task(send(session, request, budget_ms))
        if tasks:
            await asyncio.wait(tasks.values(), timeout=deadline_ms / MS_PER_S)
    finally:
        # At the deadline, or if our caller gave up: whatever still runs is cut off, not awaited.
        late = {key for key, task in tasks.items() if not task.done()}
        for key in late:
            tasks[key].cancel()
            _cancelled.add(tasks[key])
            tasks[key].add_done_callback(_cancelled.discard)
    cut_off = Exchange(
        status=None, latency_ms=_elapsed_ms(started), error="deadline", timed_out=True
    )
    # send() never raises for a buyer's doing, so a task that raised is a bug: result() re-raises.
    return {key: cut_off if key in late else task.result() for key, task in tasks.items()}


# --- classification: transport + adapter -> one reason code ----------------------------------


class PingVerdict(msgspec.Struct, frozen=True, kw_only=True):
    reason: str | None  # None: a bid; else PING_TIMEOUT | PING_ERROR | PING_REJECTED
    price_minor: int | None  # the bid; None for no bid, or a ping with no price rule
    latency_ms: int
    detail: str  # for the trace: what the buyer said or what went wrong
    reference: str | None = None


class PostVerdict(msgspec.Struct, frozen=True, kw_only=True):
    outcome: PostOutcome  # feeds auction.fallback.record
    reason: str | None  # None: accepted; else POST_ERROR | POST_REJECTED
    latency_ms: int
    detail: str
    reference: str | None = None

    @property
    def retryable(self) -> bool:
        """A transport-level failure: retry with the same delivery id. A rejection never is."""
        return self.outcome is PostOutcome.ERROR


def _answer(config: EndpointConfig, kind: Kind, exchange: Exchange) -> BuyerAnswer:
    if exchange.status is None or exchange.error is not None:
        return BuyerAnswer(outcome=Outcome.ERROR, error=exchange.error or "no answer")
    return parse_response(config, kind, exchange.status, exchange.body, exchange.content_type)


def _detail(answer: BuyerAnswer) -> str:
    parts = [p for p in (answer.error, answer.reason) if p]
    return " | ".join(parts)[:DETAIL_MAX_CHARS]


def classify_ping(config: EndpointConfig, exchange: Exchange) -> PingVerdict:
    """One ping's result as a reason code (None for a bid) and the numbers behind it."""
    latency = exchange.latency_ms
    if exchange.timed_out:
        return PingVerdict(
            reason=reasons.PING_TIMEOUT,
            price_minor=None,
            latency_ms=latency,
            detail=f"no answer within {latency} ms",
        )
    answer = _answer(config, "ping", exchange)
    reason = {
        Outcome.ACCEPTED: None,
        Outcome.REJECTED: reasons.PING_REJECTED,
        Outcome.ERROR: reasons.PING_ERROR,
    }[answer.outcome]
    return PingVerdict(
        reason=reason,
        price_minor=answer.price_minor if reason is None else None,
        latency_ms=latency,
        detail=_detail(answer),
        reference=answer.reference,
    )


def classify_post(config: EndpointConfig, exchange: Exchange) -> PostVerdict:
    """One post's result. A timeout is POST_ERROR: the buyer may have the lead, so a retry
    (same delivery id) asks again rather than assuming either answer."""
    latency = exchange.latency_ms
    if exchange.timed_out:
        return PostVerdict(
            outcome=PostOutcome.ERROR,
            reason=reasons.POST_ERROR,
            latency_ms=latency,
            detail=f"no answer within {latency} ms: the buyer may have it",
        )
    answer = _answer(config, "post", exchange)
    outcome, reason = {
        Outcome.ACCEPTED: (PostOutcome.ACCEPTED, None),
        Outcome.REJECTED: (PostOutcome.REJECTED, reasons.POST_REJECTED),
        Outcome.ERROR: (PostOutcome.ERROR, reasons.POST_ERROR),
    }[answer.outcome]
    return PostVerdict(
        outcome=outcome,
        reason=reason,
        latency_ms=latency,
        detail=_detail(answer),
        reference=answer.reference,
    )
