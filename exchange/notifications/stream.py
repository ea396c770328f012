"""The agents' live stream: ``offered``, ``assigned`` and ``rescinded`` events pushed to the
agent's own Server-Sent Events connection (``GET /v1/agents/me/stream``) at once, and replayed
after a reconnect (``Last-Event-ID``).

Events are published after the transaction that made them commits (``outbox``). Every event has
an id, ``<milliseconds>-<sequence>``, increasing per agent; each agent's recent events are kept
(at most ``RETAIN_EVENTS_MAX``, for at most ``RETAIN_S``) so a client that reconnects with the
last id it saw gets what it missed, then the live ones, without a gap or a duplicate at the seam.

- With Redis (``EXCHANGE_REDIS_URL``) an agent's events are a capped Redis Stream (one XADD per
  event, trimmed in the same script); its entry ids are the SSE ids. A connection, in any API
  process, reads that stream with a blocking XREAD from the last id it delivered: replay and
  live are one read, so the seam cannot lose or double an event. Keys expire ``RETAIN_S`` after
  the agent's last event.
- Embedded, one in-process broadcaster does the same: a bounded log per agent and a queue per
  connection (subscribers may live on another event loop than the publisher: hand-over is
  thread-safe); a connection subscribes and copies the log under one lock.

The highest id trimmed away is remembered (the "floor"): a Last-Event-ID at or above it, and
not older than ``RETAIN_S``, is resumed exactly; any other (unknown, from before a restart, too
old, or too far behind) replays what is kept after a ``replay_incomplete`` event, and the client
reloads its offer list (the truth).

Everything is bounded: events kept per agent, their age, a subscriber's queue (the oldest event
is dropped when a slow client falls behind), a heartbeat comment every ``HEARTBEAT_S`` (proxies
keep the connection, clients see it alive) and a maximum connection time after which the client
reconnects (``retry``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import threading
import time
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import msgspec

log = logging.getLogger(__name__)

QUEUE_MAX = 100  # events waiting per subscriber
HEARTBEAT_S = 15.0
CONNECTION_MAX_S = 3_600.0  # then the client reconnects
RETRY_MS = 3_000  # how soon an EventSource reconnects
SUBSCRIBERS_MAX = 10_000  # per process
# Replay: each agent's latest events are kept this many, for this long, for a reconnect.
RETAIN_EVENTS_MAX = 100
RETAIN_S = 600
LOGS_MAX = SUBSCRIBERS_MAX  # in-process: agents whose recent events are kept
REPLAY_INCOMPLETE = "replay_incomplete"
KEY_PREFIX = "exchange:agent-stream:"
# With Redis, open connections register their agent here (a sorted set scored by expiry) and
# publishers read it at most once a second: routing a lead to an agent nobody is watching (nor
# watched in the last RETAIN_S, so nobody can resume) costs no Redis call. An agent that
# connected for the first time less than LIVE_REFRESH_S ago may miss an event.
LIVE_KEY = "exchange:agent-stream:live"
LIVE_REFRESH_S = 1.0
LIVE_TTL_S = 2 * HEARTBEAT_S + 5  # a connection re-registers at every heartbeat
ID_PATTERN = re.compile(r"^(\d{1,15})-(\d{1,19})$")

EventId = tuple[int, int]  # (milliseconds, sequence), as Redis Stream ids


def parse_id(text: str | None) -> EventId | None:
    match = ID_PATTERN.match(text or "")
    return (int(match[1]), int(match[2])) if match else None


def format_id(ident: EventId) -> str:
    return f"{ident[0]}-{ident[1]}"


def _now_ms() -> int:
    return int(time.time() * 1000)


class Resume(NamedTuple):
    start: EventId  # deliver the events after this id
    missed: str | None  # why events may be missing ("unknown", "too_old"); None: nothing is


def resume_from(last_event_id: str | None, tail: EventId, floor: EventId, now_ms: int) -> Resume:
    """Where a connection starts. ``tail``: an id no later event can be at or below (the last
    one published, or the clock); ``floor``: the highest id no longer kept. No Last-Event-ID:
    the tail (live only). An id still covered is resumed exactly; any other replays what is
    kept and says so."""
    if last_event_id is None:
        return Resume(tail, None)
    oldest = max(floor, (now_ms - RETAIN_S * 1000, 0))
    ident = parse_id(last_event_id)
    if ident is None or ident > tail:
        return Resume(oldest, "unknown")
    if ident < oldest:
        return Resume(oldest, "too_old")
    return Resume(ident, None)


# -- in process -----------------------------------------------------------------------------------

Entry = tuple[EventId, bytes]


class _Subscriber:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Entry] = asyncio.Queue(QUEUE_MAX)

    def offer(self, entry: Entry) -> None:  # on the subscriber's loop
        if self.queue.full():
            self.queue.get_nowait()  # drop the oldest: a live view, not a log
        self.queue.put_nowait(entry)


class _Log:
    """One agent's kept events, oldest first, and its connections in this process."""

    __slots__ = ("entries", "floor", "subs", "touched_ms")

    def __init__(self, floor: EventId, now_ms: int) -> None:
        self.entries: collections.deque[Entry] = collections.deque()
        self.floor = floor
        self.subs: set[_Subscriber] = set()
        self.touched_ms = now_ms  # when a connection last came or went

    def stale(self, now_ms: int) -> bool:
        return not self.subs and self.touched_ms < now_ms - RETAIN_S * 1000


class Broadcaster:
    """In-process fan-out by agent id, with each agent's recent events kept for a reconnect
    (only for agents connected in the last ``RETAIN_S``: nobody else can resume)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[str, _Log] = {}
        self._count = 0
        self._last: EventId = (_now_ms(), 0)
        # Ids below this are not resumable: this process did not keep them (before it started,
        # or in a log dropped to make room).
        self._floor: EventId = (self._last[0] - 1, 0)

    def subscribers(self, agent_id: str) -> int:
        with self._lock:
            found = self._logs.get(agent_id)
            return len(found.subs) if found else 0

    def subscribe(
        self, agent_id: str, last_event_id: str | None = None
    ) -> tuple[_Subscriber, Resume, list[Entry]] | None:
        """A new connection's queue, where it resumes and the kept events it missed: taken
        under the lock publishers hold, so every event is in exactly one of the two."""
        now_ms = _now_ms()
        with self._lock:
            if self._count >= SUBSCRIBERS_MAX:
                return None
            found = self._logs.get(agent_id)
            if found is None:
                self._make_room(now_ms)
                found = self._logs[agent_id] = _Log(self._floor, now_ms)
            sub = _Subscriber(asyncio.get_running_loop())
            found.subs.add(sub)
            found.touched_ms = now_ms
            self._count += 1
            # Any later event's id is above both the last one and the clock now.
            tail = max(self._last, (now_ms - 1, 0))
            resume = resume_from(last_event_id, tail, found.floor, now_ms)
            return sub, resume, [e for e in found.entries if e[0] > resume.start]

    def _make_room(self, now_ms: int) -> None:
        if len(self._logs) < LOGS_MAX:
            return
        for agent_id in [a for a, kept in self._logs.items() if kept.stale(now_ms)]:
            del self._logs[agent_id]
        idle = [(kept.touched_ms, a) for a, kept in self._logs.items() if not kept.subs]
        if len(self._logs) >= LOGS_MAX and idle:
            del self._logs[min(idle)[1]]
            self._floor = self._last  # its events are gone: no older id resumes exactly

    def unsubscribe(self, agent_id: str, sub: _Subscriber) -> None:
        with self._lock:
            found = self._logs.get(agent_id)
            if found and sub in found.subs:
                found.subs.discard(sub)
                found.touched_ms = _now_ms()
                self._count -= 1

    def publish(self, agent_id: str, message: bytes) -> EventId | None:
        """Keep and fan out; the event's id (None: nobody connected lately, nothing kept)."""
        now_ms = _now_ms()
        with self._lock:
            found = self._logs.get(agent_id)
            if found is None:
                return None
            if found.stale(now_ms):
                del self._logs[agent_id]
                return None
            ms, seq = self._last
            ident = self._last = (now_ms, 0) if now_ms > ms else (ms, seq + 1)
            found.entries.append((ident, message))
            cutoff = (now_ms - RETAIN_S * 1000, 0)
            while found.entries and (
                len(found.entries) > RETAIN_EVENTS_MAX or found.entries[0][0] < cutoff
            ):
                found.floor = found.entries.popleft()[0]
            subs = list(found.subs)
        for sub in subs:
            with contextlib.suppress(RuntimeError):  # its loop closed: it is going away
                sub.loop.call_soon_threadsafe(sub.offer, (ident, message))
        return ident


BROADCASTER = Broadcaster()


# -- Redis ----------------------------------------------------------------------------------------


def keys_of(agent_id: str) -> list[str]:
    """The agent's stream and its floor (one hash slot: a cluster runs the script too)."""
    return [f"{KEY_PREFIX}{{{agent_id}}}:log", f"{KEY_PREFIX}{{{agent_id}}}:floor"]


# Append, trim to RETAIN_EVENTS_MAX (remembering the last id trimmed away: the floor) and push
# both keys' expiry to RETAIN_S from now, atomically. KEYS: log, floor. ARGV: message, max, ttl.
PUBLISH_SCRIPT = """
local id = redis.call('XADD', KEYS[1], '*', 'm', ARGV[1])
local over = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[2])
if over > 0 then
  local gone = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', over)
  redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[2])
  redis.call('SET', KEYS[2], gone[#gone][1])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return id
"""


def encode(event: str, data: dict[str, Any]) -> bytes:
    return msgspec.json.encode({"event": event, "data": data})


def publish(redis_url: str | None, agent_id: str, event: str, data: dict[str, Any]) -> None:
    """Tell the agent's connections (in any process, with Redis) and keep the event for a
    reconnect. Never raises and never waits: on an event loop the Redis call runs as a task
    (routing does not wait for it; a loop's tasks run one after another, so the order holds);
    the stream is a convenience on top of the offer list and the other channels."""
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
        args = [message, RETAIN_EVENTS_MAX, RETAIN_S]
        if loop is None:
            _sync_client(redis_url).eval(PUBLISH_SCRIPT, 2, *keys_of(agent_id), *args)
            return
        before = _latest.get(id(loop))
        task = loop.create_task(_publish(loop, redis_url, keys_of(agent_id), args, before))
        if len(_latest) >= ASYNC_CLIENTS_MAX:
            _latest.clear()
        _latest[id(loop)] = task
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
    except Exception:
        log.warning("could not publish a stream event", exc_info=True)


_tasks: set[asyncio.Task[None]] = set()  # asyncio keeps only weak references to tasks
_latest: dict[int, asyncio.Task[None]] = {}  # per loop: the publish the next one waits for
_async_clients: dict[tuple[int, str], Any] = {}
_redis_clients: dict[str, Any] = {}
ASYNC_CLIENTS_MAX = 16  # event loops x Redis URLs (a process has one or two loops)


def _sync_client(redis_url: str) -> Any:
    client = _redis_clients.get(redis_url)
    if client is None:
        import redis

        client = _redis_clients[redis_url] = redis.Redis.from_url(redis_url, socket_timeout=1.0)
    return client


_live: dict[str, tuple[float, frozenset[str]]] = {}


def _is_live(redis_url: str, agent_id: str) -> bool:
    """Whether any process has (or lately had) a connection of this agent (read at most every
    LIVE_REFRESH_S)."""
    now = time.monotonic()
    hit = _live.get(redis_url)
    if hit is None or hit[0] <= now:
        members = _sync_client(redis_url).zrangebyscore(LIVE_KEY, time.time(), "+inf")
        hit = _live[redis_url] = (now + LIVE_REFRESH_S, frozenset(m.decode() for m in members))
    return agent_id in hit[1]


async def _publish(
    loop: asyncio.AbstractEventLoop,
    redis_url: str,
    keys: list[str],
    args: list[Any],
    before: asyncio.Task[None] | None,
) -> None:
    if before is not None and not before.done():
        await asyncio.wait([before])  # the previous event first: ids follow publish order
    key = (id(loop), redis_url)
    client = _async_clients.get(key)
    if client is None:
        import redis.asyncio as aioredis

        if len(_async_clients) >= ASYNC_CLIENTS_MAX:
            _async_clients.clear()  # loops of the past (tests, a restarted worker)
        client = _async_clients[key] = aioredis.Redis.from_url(redis_url, socket_timeout=1.0)
    try:
        await client.eval(PUBLISH_SCRIPT, len(keys), *keys, *args)
    except Exception:
        log.warning("could not publish a stream event", exc_info=True)


# -- one connection -------------------------------------------------------------------------------


class _Source:
    """Where one connection's events come from: the local broadcaster or the agent's Redis
    Stream; ``position`` is the id of the last event delivered (or where it resumed)."""

    def __init__(self, redis_url: str | None, agent_id: str) -> None:
        self.redis_url, self.agent_id = redis_url, agent_id
        self.sub: _Subscriber | None = None
        self.client: Any = None
        self.registered = 0.0
        self.pending: collections.deque[Entry] = collections.deque()
        self.position: EventId = (0, 0)

    async def _register(self) -> None:
        # Kept past the connection's end for RETAIN_S: publishers keep its events for a resume.
        await self.client.zadd(LIVE_KEY, {self.agent_id: time.time() + LIVE_TTL_S + RETAIN_S})
        self.registered = time.monotonic()

    async def open(self, last_event_id: str | None) -> Resume | None:
        if self.redis_url:
            import redis.asyncio as aioredis

            self.client = aioredis.Redis.from_url(self.redis_url)
            await self.client.zremrangebyscore(LIVE_KEY, 0, time.time())  # expired ones
            await self._register()
            stream_key, floor_key = keys_of(self.agent_id)
            async with self.client.pipeline(transaction=True) as pipe:  # one instant's view
                pipe.time().xrevrange(stream_key, count=1).get(floor_key)
                (seconds, micros), last, floor = await pipe.execute()
            now_ms = seconds * 1000 + micros // 1000
            # Any later entry's id is above both the last one and the server's clock now.
            newest = parse_id(last[0][0].decode()) if last else None
            tail = max(newest or (0, 0), (now_ms - 1, 0))
            floor_id = parse_id(floor.decode()) if floor else None
            resume = resume_from(last_event_id, tail, floor_id or (0, 0), now_ms)
        else:
            got = BROADCASTER.subscribe(self.agent_id, last_event_id)
            if got is None:
                return None
            self.sub, resume, replay = got
            self.pending.extend(replay)
        self.position = resume.start
        return resume

    async def next(self, timeout_s: float) -> Entry | None:
        """The next event after ``position``, or None when ``timeout_s`` passed without one."""
        while True:
            while self.pending:
                entry = self.pending.popleft()
                if entry[0] > self.position:  # not one the replay already gave
                    self.position = entry[0]
                    return entry
            if self.client is not None:
                if time.monotonic() - self.registered >= HEARTBEAT_S:
                    await self._register()
                stream_key = keys_of(self.agent_id)[0]
                got = await self.client.xread(
                    {stream_key: format_id(self.position)}, count=RETAIN_EVENTS_MAX,
                    block=max(1, int(timeout_s * 1000)),
                )  # fmt: skip
                if not got:
                    return None
                for _key, entries in got:
                    for entry_id, fields in entries:
                        ident = parse_id(entry_id.decode())
                        if ident is not None:
                            self.pending.append((ident, fields[b"m"]))
                continue
            assert self.sub is not None
            try:
                self.pending.append(await asyncio.wait_for(self.sub.queue.get(), timeout_s))
            except TimeoutError:
                return None

    async def close(self) -> None:
        if self.sub is not None:
            BROADCASTER.unsubscribe(self.agent_id, self.sub)
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()


async def events(
    redis_url: str | None,
    agent_id: str,
    *,
    last_event_id: str | None = None,
    max_s: float = CONNECTION_MAX_S,
    heartbeat_s: float = HEARTBEAT_S,
) -> AsyncIterator[Any]:
    """The SSE messages of one connection: a ``ready`` event once subscribed (its id: where the
    connection starts, so a client that saw no event can still resume), ``replay_incomplete``
    when ``last_event_id`` could not be resumed exactly, then the agent's events (replayed,
    then live, each with its id), heartbeat comments between them, until ``max_s`` has passed."""
    from litestar.response import ServerSentEventMessage

    ends = time.monotonic() + max_s
    source = _Source(redis_url, agent_id)
    try:
        resume = await source.open(last_event_id)
        if resume is None:
            return  # too many subscribers in this process: the client retries later
        yield ServerSentEventMessage(
            event="ready", data="{}", retry=RETRY_MS, id=format_id(resume.start)
        )
        if resume.missed is not None:
            data = {"reason": resume.missed, "reload": "/v1/agents/me/offers"}
            yield ServerSentEventMessage(
                event=REPLAY_INCOMPLETE, data=msgspec.json.encode(data).decode()
            )
        while (left := ends - time.monotonic()) > 0:
            item = await source.next(min(heartbeat_s, left))
            if item is None:
                yield ServerSentEventMessage(comment="heartbeat", data=None)
                continue
            ident, raw = item
            decoded = msgspec.json.decode(raw)
            yield ServerSentEventMessage(
                id=format_id(ident), event=decoded["event"],
                data=msgspec.json.encode(decoded["data"]).decode(),
            )  # fmt: skip
    finally:
        await source.close()
