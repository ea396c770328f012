"""Supplier rate limiting: the pure GCRA rule, its properties, and the in-memory backend."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.intake.ratelimit import (
    US_PER_S,
    Decision,
    MemoryRateLimiter,
    emission_interval_us,
    gcra,
    retry_after_header,
)

# Allowed-count bound slack: the configured rate is a float, and rounding the spacing up after
# the 1e-9 relative nudge can only undercut 1e6/rate by that much.
FLOAT_SLACK = 1e-6

bursts = st.integers(min_value=1, max_value=20)
rates = st.floats(min_value=0.5, max_value=500.0)
# Whole microsecond spacings: the rates a microsecond clock can hit exactly.
intervals = st.integers(min_value=1_000, max_value=2 * US_PER_S)
request_times = st.lists(st.integers(min_value=0, max_value=3 * US_PER_S), max_size=80).map(sorted)


def replay(times: list[int], interval_us: int, burst: int, tat: int | None = None):
    decisions = []
    for now in times:
        decision, tat = gcra(tat, now, interval_us, burst)
        decisions.append(decision)
    return decisions, tat


class FakeClock:
    def __init__(self, now_s: float = 1_000.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


# --- the pure rule ---------------------------------------------------------------------------


def test_fresh_key_gets_the_whole_burst_then_waits_one_interval():
    decisions, _ = replay([0] * 4, interval_us=100_000, burst=3)
    assert decisions == [
        Decision(True, 0.0, 2),
        Decision(True, 0.0, 1),
        Decision(True, 0.0, 0),
        Decision(False, 0.1, 0),
    ]


def test_a_refusal_does_not_spend_budget():
    _, tat = replay([0, 0], interval_us=100_000, burst=1)
    decision, after = gcra(tat, 50_000, 100_000, 1)
    assert (decision.allowed, decision.retry_after_s, after) == (False, 0.05, tat)


@pytest.mark.parametrize(
    ("rate", "interval"),
    [(1, 1_000_000), (10, 100_000), (1000, 1_000), (0.5, 2_000_000), (1e6 / 3, 3),
     (3, 333_334), (2e6, 1)],
)  # fmt: skip
def test_spacing_is_whole_microseconds_rounded_up(rate, interval):
    assert emission_interval_us(rate) == interval


@pytest.mark.parametrize("rate", [-1, float("nan"), float("inf")])
def test_nonsense_rates_are_rejected(rate):
    with pytest.raises(ValueError):
        emission_interval_us(rate)


@pytest.mark.parametrize(
    ("retry_after_s", "header"), [(0.0, "0"), (0.000001, "1"), (1.0, "1"), (1.000001, "2")]
)
def test_retry_after_header_rounds_up(retry_after_s, header):
    assert retry_after_header(Decision(retry_after_s == 0, retry_after_s, 0)) == header


@given(request_times, rates, bursts)
def test_no_window_admits_more_than_burst_plus_rate_times_length(times, rate, burst):
    decisions, _ = replay(times, emission_interval_us(rate), burst)
    allowed = [t for t, d in zip(times, decisions, strict=True) if d.allowed]
    # The tightest windows start and end on allowed requests.
    for i, start in enumerate(allowed):
        for j in range(i, len(allowed)):
            length_s = (allowed[j] - start) / US_PER_S
            assert j - i + 1 <= burst + rate * length_s + FLOAT_SLACK


@given(intervals, bursts, st.integers(min_value=0, max_value=10**15))
def test_a_client_at_exactly_the_rate_is_always_allowed(interval, burst, start):
    assert emission_interval_us(US_PER_S / interval) == interval
    decisions, _ = replay([start + k * interval for k in range(100)], interval, burst)
    assert all(d.allowed for d in decisions)


@given(request_times, intervals, bursts)
def test_after_idling_a_full_burst_is_allowed(times, interval, burst):
    _, tat = replay(times, interval, burst)
    idle_until = (times[-1] if times else 0) + burst * interval
    decisions, _ = replay([idle_until] * (burst + 1), interval, burst, tat)
    assert [d.allowed for d in decisions] == [True] * burst + [False]


@given(request_times, intervals, bursts)
def test_remaining_and_retry_after_are_exact(times, interval, burst):
    tat = None
    for now in times:
        decision, tat = gcra(tat, now, interval, burst)
        if decision.allowed:
            # Exactly `remaining` more fit at this instant.
            more, _ = replay([now] * (decision.remaining + 1), interval, burst, tat)
            assert [d.allowed for d in more] == [True] * decision.remaining + [False]
        else:
            # Not a microsecond before retry_after, and right at it.
            wait_us = round(decision.retry_after_s * US_PER_S)
            assert wait_us > 0
            assert not gcra(tat, now + wait_us - 1, interval, burst)[0].allowed
            assert gcra(tat, now + wait_us, interval, burst)[0].allowed


# --- the memory backend ----------------------------------------------------------------------


async def test_memory_burst_refusal_and_recovery():
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    results = [await limiter.check("s1", 2, 3) for _ in range(4)]
    assert [d.allowed for d in results] == [True, True, True, False]
    assert results[-1].retry_after_s == 0.5
    assert retry_after_header(results[-1]) == "1"
    assert (await limiter.check("s2", 2, 3)).allowed, "keys are independent"
    clock.now_s += 0.499_999
    assert not (await limiter.check("s1", 2, 3)).allowed
    clock.now_s += 0.000_001
    assert (await limiter.check("s1", 2, 3)).allowed


@pytest.mark.parametrize("rate", [0, 0.0, None])
async def test_memory_zero_or_none_rate_is_unlimited(rate):
    limiter = MemoryRateLimiter(clock=FakeClock())
    assert all([(await limiter.check("s", rate, 1)).allowed for _ in range(1_000)])


async def test_memory_rejects_a_burst_below_one():
    with pytest.raises(ValueError):
        await MemoryRateLimiter(clock=FakeClock()).check("s", 1, 0)


async def test_memory_forgets_keys_that_are_back_to_a_full_burst():
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    for n in range(100):
        await limiter.check(f"s{n}", 10, 5)
    clock.now_s += 3_600
    await limiter.check("fresh", 10, 5)
    assert list(limiter._tats) == ["fresh"]


@given(request_times, intervals, bursts)
def test_memory_backend_mirrors_the_pure_rule(times, interval, burst):
    clock = FakeClock(0.0)
    limiter = MemoryRateLimiter(clock=clock)

    async def run() -> list[Decision]:
        out = []
        for now in times:
            clock.now_s = now / US_PER_S
            out.append(await limiter.check("s", US_PER_S / interval, burst))
        return out

    assert asyncio.run(run()) == replay(times, interval, burst)[0]
