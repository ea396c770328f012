"""Supplier ping rate limiting: at most ``rate_per_s`` requests a second, bursts up to ``burst``.

Separate from campaign caps: this protects the exchange from a supplier's request volume, caps
protect a buyer's budget. The algorithm is GCRA (the "virtual scheduling" form of a token
bucket): one number per key, the theoretical arrival time (TAT) of the next request, so a check
is one read and at most one write. ``gcra`` is the pure rule; both backends mirror it exactly.

- ``MemoryRateLimiter``: one process (the embedded default), ``time.monotonic``.
- ``RedisRateLimiter``: many API processes; one Lua script does the read-decide-write
  atomically, with Redis's own ``TIME`` so API hosts with skewed clocks still agree, and each
  key expires (PX) the moment it is back to a full burst, so idle suppliers cost nothing.
  Needs Redis >= 5 (scripts that call TIME and then write are replicated by effect).

Semantics shared by both:

- ``rate_per_s`` of ``0`` or ``None`` means unlimited: always allowed, nothing stored.
- Time is counted in whole microseconds (Redis ``TIME``'s resolution) and the rate becomes a
  whole-microsecond spacing between requests, rounded UP so the configured rate is never
  exceeded. Rates that divide a million (1, 2, 5, 10, 1000 ...) are exact; others are enforced
  less than one microsecond per request slower (3/s becomes 2.999994/s).
- ``retry_after_s`` is the exact time until one request would be allowed;
  ``retry_after_header`` rounds it UP to whole seconds for the HTTP ``Retry-After`` header.
- Fail OPEN: if Redis is unreachable, slow or erroring, the request is allowed and a warning is
  logged at most once per ``log_every_s``. A limiter outage must never stop lead intake; the
  worst case is that suppliers go unthrottled until Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

import msgspec
import redis.asyncio
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

US_PER_S = 1_000_000
# Relative nudge before rounding the spacing up, so a rate written as 1e6/k (which float
# division can land a hair past k) still gets exactly k microseconds.
INTERVAL_ROUNDING_SLACK = 1e-9
DEFAULT_PREFIX = "exchange:ratelimit"
# A hung Redis would otherwise stall every intake request (and redis-py's default retries back
# off for seconds); past this the check fails open.
DEFAULT_TIMEOUT_S = 0.25
DEFAULT_LOG_EVERY_S = 60.0
# The memory backend drops keys that are back to a full burst this often, so it stays bounded.
MEMORY_SWEEP_EVERY_S = 60.0


class Decision(msgspec.Struct, frozen=True):
    allowed: bool
    # Seconds until one request would be allowed; 0.0 when allowed.
    retry_after_s: float
    # Further requests that would be allowed right now, after this one.
    remaining: int


class RateLimiter(Protocol):
    async def check(self, key: str, rate_per_s: float | None, burst: int) -> Decision: ...


def retry_after_header(decision: Decision) -> str:
    """``Retry-After`` value: whole seconds, rounded up so a client that obeys it succeeds."""
    return str(math.ceil(decision.retry_after_s))


def emission_interval_us(rate_per_s: float) -> int:
    """Whole microseconds between requests at ``rate_per_s``, rounded up (never faster)."""
    if not (rate_per_s > 0 and math.isfinite(rate_per_s)):
        raise ValueError(f"rate_per_s must be a positive number, got {rate_per_s!r}")
    return max(1, math.ceil(US_PER_S / rate_per_s * (1 - INTERVAL_ROUNDING_SLACK)))


def gcra(tat_us: int | None, now_us: int, interval_us: int, burst: int) -> tuple[Decision, int]:
    """One GCRA step: the stored TAT (None if none) in; the decision and the TAT to store out.

    A request is allowed if, after it, the TAT is at most ``burst`` intervals ahead of now. On a
    refusal the returned TAT is the one passed in: refused requests don't consume budget.
    """
    tat = now_us if tat_us is None else max(tat_us, now_us)
    new_tat = tat + interval_us
    allow_at = new_tat - burst * interval_us
    if now_us < allow_at:
        return Decision(False, (allow_at - now_us) / US_PER_S, 0), tat
    return Decision(True, 0.0, (now_us - allow_at) // interval_us), new_tat


def _validated(rate_per_s: float | None, burst: int) -> int | None:
    """The emission interval, or None for unlimited."""
    if burst < 1:
        raise ValueError(f"burst must be at least 1, got {burst!r}")
    if not rate_per_s:
        return None
    return emission_interval_us(rate_per_s)


def _free(burst: int) -> Decision:
    # Unlimited or failed open: reported as a fresh bucket.
    return Decision(True, 0.0, max(burst - 1, 0))


class MemoryRateLimiter:
    """In-process limiter. Not shared between processes; a restart forgets every key."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, int] = {}
        self._swept_at_us: int | None = None

    async def check(self, key: str, rate_per_s: float | None, burst: int) -> Decision:
        # No await between read and write, so this is atomic on the event loop.
        interval_us = _validated(rate_per_s, burst)
        if interval_us is None:
            return _free(burst)
        now_us = round(self._clock() * US_PER_S)
        self._sweep(now_us)
        decision, self._tats[key] = gcra(self._tats.get(key), now_us, interval_us, burst)
        return decision

    def _sweep(self, now_us: int) -> None:
        # A TAT at or before now is the same as no entry: drop it (the Redis PX expiry's twin).
        due_us = MEMORY_SWEEP_EVERY_S * US_PER_S
        if self._swept_at_us is None or now_us - self._swept_at_us >= due_us:
            self._tats = {k: tat for k, tat in self._tats.items() if tat > now_us}
            self._swept_at_us = now_us


# The GCRA body, kept apart from where ``now`` comes from so tests can drive it with set times.
# Every number is an integer microsecond count, exact in Lua's doubles until the year 2255.
GCRA_LUA_BODY = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then
  return {0, allow_at - now, 0}
end
-- Expire exactly when the key is back to a full burst, i.e. when it equals no key at all.
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, 0, math.floor((now - allow_at) / interval)}
"""
# Redis's clock, not the caller's: API hosts with skewed clocks share one timeline.
GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
""" + GCRA_LUA_BODY


class _OutageLog:
    """Warns about a failing Redis at most once per ``every_s``, counting what it held back."""

    def __init__(self, every_s: float, clock: Callable[[], float]) -> None:
        self._every_s = every_s
        self._clock = clock
        self._last_at: float | None = None
        self._suppressed = 0

    def failed(self, exc: BaseException) -> None:
        now = self._clock()
        if self._last_at is not None and now - self._last_at < self._every_s:
            self._suppressed += 1
            return
        log.warning(
            "rate limiter unavailable, allowing requests (fail open): %s: %s",
            type(exc).__name__,
            exc,
            extra={"suppressed": self._suppressed},
        )
        self._last_at, self._suppressed = now, 0


class RedisRateLimiter:
    """Limiter shared by every process using the same Redis and prefix. Fails open."""

    def __init__(
        self,
        redis_client: redis.asyncio.Redis,
        prefix: str = DEFAULT_PREFIX,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        log_every_s: float = DEFAULT_LOG_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._prefix = prefix
        self._timeout_s = timeout_s
        # EVALSHA under the hood, reloading the script if Redis has lost it (restart, FLUSH).
        self._script = redis_client.register_script(GCRA_LUA)
        self._outage = _OutageLog(log_every_s, clock)

    async def check(self, key: str, rate_per_s: float | None, burst: int) -> Decision:
        interval_us = _validated(rate_per_s, burst)
        if interval_us is None:
            return _free(burst)
        try:
            async with asyncio.timeout(self._timeout_s):
                allowed, wait_us, remaining = await self._script(
                    keys=[f"{self._prefix}:{key}"], args=[interval_us, burst]
                )
        except (RedisError, OSError) as exc:  # OSError includes TimeoutError
            self._outage.failed(exc)
            return _free(burst)
        return Decision(bool(allowed), int(wait_us) / US_PER_S, int(remaining))
