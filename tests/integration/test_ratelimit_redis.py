"""The Redis rate limiter against a real Redis: atomicity, sharing, expiry and failing open."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.intake.ratelimit import (
    GCRA_LUA_BODY,
    US_PER_S,
    Decision,
    RedisRateLimiter,
    gcra,
    retry_after_header,
)

pytestmark = pytest.mark.redis

# Slow enough that nothing refills while a test runs.
TRICKLE_PER_S = 0.01
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"


@pytest.fixture
def prefix() -> str:
    return f"test:ratelimit:{uuid.uuid4().hex}"


@pytest.fixture
async def client(redis_url: str, prefix: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    keys = [k async for k in client.scan_iter(f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_burst_then_refusal_with_a_sane_retry_after(client, prefix):
    limiter = RedisRateLimiter(client, prefix)
    results = [await limiter.check("supplier", 2, 3) for _ in range(4)]
    assert [(d.allowed, d.remaining) for d in results] == [
        (True, 2), (True, 1), (True, 0), (False, 0)
    ]  # fmt: skip
    # One request frees up every 0.5 s; only microseconds have passed since the burst.
    assert 0.4 < results[-1].retry_after_s <= 0.5
    assert retry_after_header(results[-1]) == "1"


async def test_waiting_retry_after_is_enough(client, prefix):
    limiter = RedisRateLimiter(client, prefix)
    assert (await limiter.check("supplier", 20, 1)).allowed
    refused = await limiter.check("supplier", 20, 1)
    assert not refused.allowed
    await asyncio.sleep(refused.retry_after_s)
    assert (await limiter.check("supplier", 20, 1)).allowed


async def test_concurrent_checks_never_exceed_the_burst(client, prefix):
    limiter = RedisRateLimiter(client, prefix, timeout_s=5)
    results = await asyncio.gather(*(limiter.check("s", TRICKLE_PER_S, 10) for _ in range(50)))
    assert sum(d.allowed for d in results) == 10


async def test_two_processes_share_one_budget(redis_url, client, prefix):
    other = redis.asyncio.Redis.from_url(redis_url)  # its own connection pool, like another host
    try:
        a, b = RedisRateLimiter(client, prefix), RedisRateLimiter(other, prefix)
        results = [await limiter.check("s", TRICKLE_PER_S, 5) for limiter in (a, b) * 4]
    finally:
        await other.aclose()
    assert [d.allowed for d in results] == [True] * 5 + [False] * 3


async def test_keys_expire_once_back_to_a_full_burst(client, prefix):
    limiter = RedisRateLimiter(client, prefix)
    await limiter.check("s", 10, 4)
    # One request's worth (100 ms) must drain before the key is a full burst again.
    assert 0 < await client.pttl(f"{prefix}:s") <= 100
    await limiter.check("s", 10, 4)
    assert 100 < await client.pttl(f"{prefix}:s") <= 200


async def test_unlimited_touches_nothing(client, prefix):
    limiter = RedisRateLimiter(client, prefix)
    assert all([(await limiter.check("s", None, 1)).allowed for _ in range(20)])
    assert await client.exists(f"{prefix}:s") == 0


async def test_dead_redis_fails_open_and_warns_once_per_period(caplog):
    now = [0.0]
    dead = redis.asyncio.Redis.from_url(DEAD_REDIS_URL)
    limiter = RedisRateLimiter(dead, log_every_s=60, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="exchange.intake.ratelimit")
    try:
        results = [await limiter.check("s", 1, 1) for _ in range(3)]
        now[0] = 61.0
        results.append(await limiter.check("s", 1, 1))
    finally:
        await dead.aclose()
    assert results == [Decision(True, 0.0, 0)] * 4
    warnings = [r for r in caplog.records if "fail open" in r.getMessage()]
    assert [r.suppressed for r in warnings] == [0, 2]


async def test_hung_redis_fails_open_after_the_timeout():
    writers = []

    async def accept_and_say_nothing(reader, writer):
        writers.append(writer)

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hung = redis.asyncio.Redis.from_url(f"redis://127.0.0.1:{port}/0")
    limiter = RedisRateLimiter(hung, timeout_s=0.05)
    try:
        async with asyncio.timeout(2):
            assert await limiter.check("s", 1, 1) == Decision(True, 0.0, 0)
    finally:
        await hung.aclose()
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


@given(
    times=st.lists(st.integers(min_value=0, max_value=2 * US_PER_S), max_size=15).map(sorted),
    # At least 50 ms: the key's real PX expiry must outlast the test's real elapsed time.
    interval=st.integers(min_value=50_000, max_value=US_PER_S),
    burst=st.integers(min_value=1, max_value=5),
)
@settings(max_examples=40, deadline=None)
def test_lua_mirrors_the_pure_rule(redis_url, times, interval, burst):
    """The script's GCRA arithmetic, fed set times instead of Redis TIME, equals ``gcra``."""
    base = 1_800_000_000 * US_PER_S  # a 2027 timestamp: the magnitudes Redis TIME gives
    source = "local now = tonumber(ARGV[3])\n" + GCRA_LUA_BODY
    key = f"test:ratelimit:{uuid.uuid4().hex}"

    async def run() -> list[Decision]:
        client = redis.asyncio.Redis.from_url(redis_url)
        script = client.register_script(source)
        out = []
        try:
            for now in times:
                allowed, wait_us, remaining = await script(
                    keys=[key], args=[interval, burst, base + now]
                )
                out.append(Decision(bool(allowed), wait_us / US_PER_S, remaining))
        finally:
            await client.delete(key)
            await client.aclose()
        return out

    expected, tat = [], None
    for now in times:
        decision, tat = gcra(tat, base + now, interval, burst)
        expected.append(decision)
    assert asyncio.run(run()) == expected
