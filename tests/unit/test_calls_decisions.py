"""The pure decisions of call leads: addresses, ring plans, how a call ends and what it gives
back, and the lines a call campaign has at a given time."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.calls import ringing, states
from exchange.calls.terms import CallTerms, address_problem, terms_problems
from exchange.caps import Hold
from exchange.matching import CampaignRules
from exchange.matching.caps import Cap, CapWindow, cap_breach, window_key
from exchange.matching.eligibility import caps_now, validate_campaign
from exchange.matching.schedule import Interval, Schedule, open_interval

UTC = dt.timezone.utc
LA = "America/Los_Angeles"


@pytest.mark.parametrize("address", ["+14155550100", "+442071838750", "sip:queue@pbx.example.com",
                                     "sips:agent.7@10.0.0.5:5061;transport=tls"])  # fmt: skip
def test_numbers_and_sip_uris_ring(address):
    assert address_problem(address) is None


@pytest.mark.parametrize("address", ["4155550100", "+0155550100", "+1 415 555 0100", "tel:+14155550100",
                                     "sip:@pbx.example.com", "http://pbx.example.com", ""])  # fmt: skip
def test_anything_else_does_not(address):
    assert address_problem(address) is not None


def test_a_buyers_call_campaign_names_its_line_a_teams_may_leave_it_to_its_agents():
    assert terms_problems(CallTerms(), for_team=False) == [
        ("call.destination", "a buyer's call campaign names where its calls ring")
    ]
    assert terms_problems(CallTerms(), for_team=True) == []


AGENTS = [("a1", "sip:a1@pbx"), ("a2", "sip:a2@pbx"), ("a3", "sip:a3@pbx")]


@pytest.mark.parametrize("strategy", ["round_robin", "performance", "predictive"])
def test_assigning_strategies_ring_the_one_agent_they_chose(strategy):
    plan = ringing.to_agents(strategy, AGENTS, parallel_k=None, offer_timeout_s=120)
    assert plan == ringing.RingPlan(ring="single", destinations=(ringing.CallDestination(address="sip:a1@pbx", agent_id="a1"),))


def test_sequential_rings_in_order_each_for_a_bounded_time_and_widens_the_connect_window():
    plan = ringing.to_agents("sequential", AGENTS, parallel_k=None, offer_timeout_s=120)
    assert plan is not None and plan.ring == "sequential"
    assert [d.agent_id for d in plan.destinations] == ["a1", "a2", "a3"]
    assert plan.ring_timeout_s == ringing.RING_TIMEOUT_MAX_S  # a phone rings a minute at most
    ttl = dt.timedelta(seconds=60)
    assert ringing.connect_window(plan, ttl) == ttl + dt.timedelta(seconds=2 * 60)
    short = ringing.to_agents("sequential", AGENTS, parallel_k=None, offer_timeout_s=1)
    assert short is not None and short.ring_timeout_s == ringing.RING_TIMEOUT_MIN_S


def test_parallel_rings_its_first_k_at_once_and_never_more_than_the_limit():
    plan = ringing.to_agents("parallel", AGENTS, parallel_k=2, offer_timeout_s=30)
    assert plan is not None and plan.ring == "simultaneous"
    assert [d.agent_id for d in plan.destinations] == ["a1", "a2"]
    many = [(f"a{i}", f"sip:a{i}@pbx") for i in range(40)]
    every = ringing.to_agents("parallel", many, parallel_k=None, offer_timeout_s=30)
    assert every is not None and len(every.destinations) == ringing.DESTINATIONS_MAX
    assert ringing.connect_window(every, dt.timedelta(seconds=60)) == dt.timedelta(seconds=60)


def test_nobody_to_ring_is_no_plan_and_an_answer_must_name_a_destination_that_rang():
    assert ringing.to_agents("round_robin", [], parallel_k=None, offer_timeout_s=30) is None
    plan = ringing.to_agents("parallel", AGENTS, parallel_k=None, offer_timeout_s=30)
    assert plan is not None
    assert ringing.answered(plan, None) is None  # several rang: say which
    assert ringing.answered(plan, "sip:a2@pbx") == plan.destinations[1]
    assert ringing.answered(plan, "sip:stranger@pbx") is None
    single = ringing.to_address("+14155550100")
    assert ringing.answered(single, None) == single.destinations[0]


@given(
    connected=st.booleans(), answered=st.booleans(), duration=st.integers(0, 10_000),
    minimum=st.integers(0, 3_600), priced=st.booleans(), test=st.booleans(),
)  # fmt: skip
def test_a_call_is_billed_exactly_when_answered_priced_real_and_long_enough(
    connected, answered, duration, minimum, priced, test
):
    end = states.ending(connected=connected, answered=answered, duration_s=duration,
                        min_duration_s=minimum, priced=priced, test=test)  # fmt: skip
    long_enough = connected and answered and duration > 0 and duration >= minimum
    assert end.bill == (long_enough and priced and not test)
    assert (end.status == states.COMPLETED) == long_enough
    if not long_enough:
        assert end.reason in (states.NOT_CONNECTED, states.NOT_ANSWERED, states.TOO_SHORT)


def test_the_minimum_itself_is_billed_one_second_less_is_not():
    common = dict(connected=True, answered=True, min_duration_s=90, priced=True, test=False)
    assert states.ending(duration_s=90, **common).bill
    assert states.ending(duration_s=89, **common) == states.Ending(status="short", reason="call_too_short", bill=False)


def test_an_ending_call_gives_back_its_line_always_and_its_windows_unless_billed():
    line = Hold("c", "concurrent", 4000)
    day = Hold("c", "day:2026-11-24", 4000)
    assert states.to_release([line, day], billed=True) == [line]
    assert states.to_release([line, day], billed=False) == [line, day]


def _calls_campaign(**overrides) -> CampaignRules:
    values = dict(campaign_id="c", buyer_id="b", vertical="solar", timezone=LA, calls=True, fixed_price_minor=4000,
                  caps=(Cap(window=CapWindow.CONCURRENT, max_count=3), Cap(window=CapWindow.DAY, max_count=50)))  # fmt: skip
    values.update(overrides)
    return CampaignRules(**values)


MONDAY_MORNING = dt.datetime(2026, 11, 23, 17, 30, tzinfo=UTC)  # 09:30 in Los Angeles
MONDAY_AFTERNOON = dt.datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # 14:30


def test_the_interval_open_now_says_how_many_calls_at_once():
    schedule = Schedule(timezone=LA, days={"mon": (Interval(540, 720, max_concurrent=5), Interval(720, 1020))})
    campaign = _calls_campaign(schedule=schedule)
    assert open_interval(schedule, MONDAY_MORNING) == Interval(540, 720, max_concurrent=5)
    morning = caps_now(campaign, MONDAY_MORNING)
    assert Cap(window=CapWindow.CONCURRENT, max_count=5) in morning and len(morning) == 2
    assert caps_now(campaign, MONDAY_AFTERNOON) == campaign.caps  # no lines said: the cap's 3
    lead_campaign = _calls_campaign(calls=False, schedule=schedule, caps=())
    assert caps_now(lead_campaign, MONDAY_MORNING) == ()  # lead campaigns: never


def test_a_concurrent_cap_is_one_window_that_never_rolls_over():
    line = Cap(window=CapWindow.CONCURRENT, max_count=2)
    assert window_key(CapWindow.CONCURRENT, LA, MONDAY_MORNING) == "concurrent"
    assert window_key(CapWindow.CONCURRENT, "Asia/Tokyo", MONDAY_AFTERNOON) == "concurrent"
    assert cap_breach([line], {"concurrent": (1, 0)}, 4000, LA, MONDAY_MORNING) is None
    breach = cap_breach([line], {"concurrent": (2, 0)}, 4000, LA, MONDAY_MORNING)
    assert breach is not None and breach.reason == "cap_reached:concurrent"


def test_only_call_campaigns_count_calls_at_once_and_they_buy_exclusively():
    line = Cap(window=CapWindow.CONCURRENT, max_count=2)
    lead = CampaignRules(campaign_id="c", buyer_id="b", vertical="solar", timezone=LA, caps=(line,), fixed_price_minor=1)
    assert ("caps[0].window", "calls at once: for call campaigns only") in validate_campaign(lead, [])
    schedule = Schedule(timezone=LA, days={"mon": (Interval(540, 720, max_concurrent=5),)})
    lead = CampaignRules(campaign_id="c", buyer_id="b", vertical="solar", timezone=LA, schedule=schedule, fixed_price_minor=1)
    assert [p for p, _ in validate_campaign(lead, [])] == ["schedule.days.mon[0].max_concurrent"]
    shared = _calls_campaign(max_sells=2)
    assert [p for p, _ in validate_campaign(shared, [])] == ["max_sells"]
    money = _calls_campaign(caps=(Cap(window=CapWindow.CONCURRENT, max_spend_minor=10),))
    assert {p for p, _ in validate_campaign(money, [])} == {"caps[0].max_spend_minor", "caps[0].max_count"}
