"""Scenario 4, in-process: eligibility with reason codes for one lead among many campaigns.

10,000 active campaigns over 5 verticals and 50 states (a states gate, then a boolean and a
number filter, caps, and a weekday schedule for some), and leads from random states. One
measurement is what the auction does for a lead: the index's candidates, then ``evaluate``
(one decision with its reason code) for each. A second also lists the reason of every campaign
the index skipped (what a full trace shows).
"""

from __future__ import annotations

import datetime as dt
import random
import time

import msgspec

from exchange.bench.stats import Latency
from exchange.matching import (
    BooleanIs,
    CampaignIndex,
    CampaignRules,
    Cap,
    CapWindow,
    Interval,
    NumberRange,
    PriceMode,
    Schedule,
    StatesIn,
    evaluate,
)

US_STATES = (
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ "
    "NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY"
).split()
VERTICALS = 5
STATES_PER_CAMPAIGN = 3
SCHEDULED_SHARE = 0.2
TRACE_EVERY = 10  # the full trace is slower: measure it on every 10th lead
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.timezone.utc)  # a Monday, 10:00 in New York


class MatchingResult(msgspec.Struct, kw_only=True):
    campaigns: int
    leads: int
    candidates_mean: float
    eligible_mean: float
    auction: Latency  # candidates + evaluate
    full_trace: Latency  # plus every skipped campaign's reason


def campaigns(count: int, rng: random.Random) -> list[CampaignRules]:
    result = []
    for i in range(count):
        schedule = None
        if rng.random() < SCHEDULED_SHARE:
            schedule = Schedule(timezone="America/New_York", days={d: (Interval(480, 1200),) for d in WEEKDAYS})
        result.append(CampaignRules(
            campaign_id=f"c{i}", buyer_id=f"b{i % 500}", vertical=f"v{i % VERTICALS}",
            timezone="America/New_York",
            filters=(StatesIn(field="state", states=frozenset(rng.sample(US_STATES, STATES_PER_CAMPAIGN))),
                     BooleanIs(field="homeowner", value=True),
                     NumberRange(field="monthly_electric_bill", minimum=rng.randint(0, 20_000))),
            schedule=schedule,
            caps=(Cap(window=CapWindow.DAY, max_count=rng.randint(10, 1000)),),
            price_mode=PriceMode.FIXED, fixed_price_minor=rng.randint(1000, 5000),
        ))  # fmt: skip
    return result


def run(campaign_count: int, leads: int, seed: int = 1) -> MatchingResult:
    rng = random.Random(seed)
    index = CampaignIndex(campaigns(campaign_count, rng))
    auction_ms, trace_ms = [], []
    candidates_total = eligible_total = 0
    for i in range(leads):
        vertical = f"v{i % VERTICALS}"
        fields = {"state": rng.choice(US_STATES), "homeowner": rng.random() < 0.8,
                  "monthly_electric_bill": rng.randint(0, 40_000)}  # fmt: skip
        started = time.perf_counter()
        found = index.candidates(vertical, fields)
        decisions = [evaluate(c, fields, NOW, {}, True, False) for c in found]
        middle = time.perf_counter()
        auction_ms.append((middle - started) * 1000)
        if i % TRACE_EVERY == 0:
            skipped = list(index.excluded(vertical, fields, NOW))
            trace_ms.append((time.perf_counter() - started) * 1000)
            assert len(found) + len(skipped) == len(index.campaigns(vertical))
        candidates_total += len(found)
        eligible_total += sum(d.eligible for d in decisions)
    return MatchingResult(
        campaigns=campaign_count, leads=leads, candidates_mean=candidates_total / max(leads, 1),
        eligible_mean=eligible_total / max(leads, 1), auction=Latency.of(auction_ms),
        full_trace=Latency.of(trace_ms),
    )  # fmt: skip
