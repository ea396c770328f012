"""The agents' live stream: ``offered``, ``assigned`` and ``rescinded`` events pushed to the
agent's own Server-Sent Events connection (``GET /v1/agents/me/stream``) at once.

Events are published after the transaction that made them commits (``outbox``). With Redis
(``EXCHANGE_REDIS_URL``) they go through Redis pub/sub, so an agent connected to any API process
hears what any process or worker did; embedded, one in-process broadcaster does the same
(subscribers may live on another event loop than the publisher: hand-over is thread-safe).

Everything is bounded: a subscriber's queue (the oldest event is dropped when a slow client
falls behind; the agent's offer list stays the truth), a heartbeat comment every
``HEARTBEAT_S`` (proxies keep the connection, clients see it alive) and a maximum connection
time after which the client reconnects (``retry``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec

log = logging.getLogger(__name__)

QUEUE_MAX = 100  # events waiting per subscriber
HEARTBEAT_S = 15.0
CONNECTION_MAX_S = 3_600.0  # then the client reconnects
RETRY_MS = 3_000  # how soon an EventSource reconnects
SUBSCRIBERS_MAX = 10_000  # per process
CHANNEL_PREFIX = "exchange:agent-stream:"
# With Redis, open connections register their agent here (a sorted set scored by expiry) and
# publishers read it at most once a second: routing a lead to an agent nobody is watching costs
# no Redis call. An agent that connected less than LIVE_REFRESH_S ago may miss an event.
LIVE_KEY = "exchange:agent-stream:live"
LIVE_REFRESH_S = 1.0
LIVE_TTL_S = 2 * HEARTBEAT_S + 5  # a connection re-registers at every heartbeat


def channel_of(agent_id: str) -> str:
    return f"{CHANNEL_PREFIX}{agent_id}"


class _Subscriber:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_MAX)

    def offer(self, message: bytes) -> None:  # on the subscriber's loop
        if self.queue.full():
            self.queue.get_nowait()  # drop the oldest: a live view, not a log
        self.queue.put_nowait(message)


class Broadcaster:
    """In-process fan-out by agent id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, set[_Subscriber]] = {}
        self._count = 0

    def subscribe(self, agent_id: str) -> _Subscriber | None:
        with self._lock:
            if self._count >= SUBSCRIBERS_MAX:
                return None
            sub = _Subscriber(asyncio.get_running_loop())
            self._subs.setdefault(agent_id, set()).add(sub)
            self._count += 1
            return sub

    def unsubscribe(self, agent_id: str, sub: _Subscriber) -> None:
        with self._lock:
            subs = self._subs.get(agent_id)
            if subs and sub in subs:
                subs.discard(sub)
                self._count -= 1
                if not subs:
                    del self._subs[agent_id]

    def publish(self, agent_id: str, message: bytes) -> None:
        with self._lock:
            subs = list(self._subs.get(agent_id, ()))
        for sub in subs:
            with contextlib.suppress(RuntimeError):  # its loop closed: it is going away
                sub.loop.call_soon_threadsafe(sub.offer, message)


BROADCASTER = Broadcaster()
_redis_clients: dict[str, Any] = {}


def encode(event: str, data: dict[str, Any]) -> bytes:
    return msgspec.json.encode({"event": event, "data": data})


def publish(redis_url: str | None, agent_id: str, event: str, data: dict[str, Any]) -> None:
    """Tell the agent's connections (in any process, with Redis). Never raises and never waits:
    on an event loop the Redis PUBLISH runs as a task (routing does not wait for it); the stream
    is a convenience on top of the offer list and the other channels."""
    message = encode(event, data)
    try:
        if not redis_url:
            BROADCASTER.publish(agent_id, message)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if not _is_live(redis_url, agent_id):
            return
        if loop is None:
            _sync_client(redis_url).publish(channel_of(agent_id), message)
            return
        task = loop.create_task(_publish(loop, redis_url, channel_of(agent_id), message))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
    except Exception:
        log.warning("could not publish a stream event", exc_info=True)


_tasks: set[asyncio.Task[None]] = set()  # asyncio keeps only weak references to tasks
_async_clients: dict[tuple[int, str], Any] = {}
ASYNC_CLIENTS_MAX = 16  # event loops x Redis URLs (a process has one or two loops)


def _sync_client(redis_url: str) -> Any:
    client = _redis_clients.get(redis_url)
    if client is None:
        import redis

        client = _redis_clients[redis_url] = redis.Redis.from_url(redis_url, socket_timeout=1.0)
    return client


_live: dict[str, tuple[float, frozenset[str]]] = {}


def _is_live(redis_url: str, agent_id: str) -> bool:
    """Whether any process has a connection of this agent (read at most every LIVE_REFRESH_S)."""
    now = time.monotonic()
    hit = _live.get(redis_url)
    if hit is None or hit[0] <= now:
        members = _sync_client(redis_url).zrangebyscore(LIVE_KEY, time.time(), "+inf")
        hit = _live[redis_url] = (now + LIVE_REFRESH_S, frozenset(m.decode() for m in members))
    return agent_id in hit[1]


async def _publish(loop: asyncio.AbstractEventLoop, redis_url: str, channel: str, message: bytes) -> None:
    key = (id(loop), redis_url)
    client = _async_clients.get(key)
    if client is None:
        import redis.asyncio as aioredis

        if len(_async_clients) >= ASYNC_CLIENTS_MAX:
            _async_clients.clear()  # loops of the past (tests, a restarted worker)
        client = _async_clients[key] = aioredis.Redis.from_url(redis_url, socket_timeout=1.0)
    try:
        await client.publish(channel, message)
    except Exception:
        log.warning("could not publish a stream event", exc_info=True)


class _Source:
    """Where one connection's events come from: the local broadcaster or Redis pub/sub."""

    def __init__(self, redis_url: str | None, agent_id: str) -> None:
        self.redis_url, self.agent_id = redis_url, agent_id
        self.sub: _Subscriber | None = None
        self.client: Any = None
        self.pubsub: Any = None
        self.registered = 0.0

    async def _register(self) -> None:
        await self.client.zadd(LIVE_KEY, {self.agent_id: time.time() + LIVE_TTL_S})
        self.registered = time.monotonic()

    async def open(self) -> bool:
        if self.redis_url:
            import redis.asyncio as aioredis

            self.client = aioredis.Redis.from_url(self.redis_url)
            self.pubsub = self.client.pubsub()
            await self.pubsub.subscribe(channel_of(self.agent_id))
            await self.client.zremrangebyscore(LIVE_KEY, 0, time.time())  # expired ones
            await self._register()
            return True
        self.sub = BROADCASTER.subscribe(self.agent_id)
        return self.sub is not None

    async def next(self, timeout_s: float) -> bytes | None:
        """The next event, or None when ``timeout_s`` passed without one."""
        if self.pubsub is not None:
            if time.monotonic() - self.registered >= HEARTBEAT_S:
                await self._register()
            got = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout_s)
            return got["data"] if got else None
        assert self.sub is not None
        try:
            return await asyncio.wait_for(self.sub.queue.get(), timeout_s)
        except TimeoutError:
            return None

    async def close(self) -> None:
        if self.sub is not None:
            BROADCASTER.unsubscribe(self.agent_id, self.sub)
        if self.pubsub is not None:
            with contextlib.suppress(Exception):
                await self.pubsub.aclose()
                await self.client.aclose()


async def events(
    redis_url: str | None, agent_id: str, *, max_s: float = CONNECTION_MAX_S,
    heartbeat_s: float = HEARTBEAT_S,
) -> AsyncIterator[Any]:
    """The SSE messages of one connection: a ``ready`` event once subscribed, then the agent's
    events, heartbeat comments between them, until ``max_s`` has passed."""
    from litestar.response import ServerSentEventMessage

    ends = time.monotonic() + max_s
    source = _Source(redis_url, agent_id)
    try:
        if not await source.open():
            return  # too many subscribers in this process: the client retries later
        yield ServerSentEventMessage(event="ready", data="{}", retry=RETRY_MS)
        while (left := ends - time.monotonic()) > 0:
            item = await source.next(min(heartbeat_s, left))
            if item is None:
                yield ServerSentEventMessage(comment="heartbeat", data=None)
                continue
            decoded = msgspec.json.decode(item)
            yield ServerSentEventMessage(
                event=decoded["event"], data=msgspec.json.encode(decoded["data"]).decode()
            )
    finally:
        await source.close()
