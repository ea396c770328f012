"""evaluate: the fixed order of checks, one reason per excluded campaign, the reason codes."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest
from freezegun import freeze_time

from exchange.intake.fields import FieldFormat, FieldSpec
from exchange.matching import (
    AgeRange,
    CampaignRules,
    Cap,
    CapWindow,
    Decision,
    Interval,
    PriceMode,
    Schedule,
    StatesIn,
    evaluate,
    reasons,
    validate_campaign,
)

UTC = dt.timezone.utc
NY = "America/New_York"
MONDAY_10AM_NY = dt.datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
SATURDAY_NY = dt.datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
LEAD = {"state": "TX", "zip": "75001", "birth_date": "2008-11-24"}
CAMPAIGN = CampaignRules(
    campaign_id="c1",
    buyer_id="b1",
    vertical="solar",
    timezone=NY,
    filters=(StatesIn(field="state", states=frozenset({"TX"})),),
    schedule=Schedule(timezone=NY, days={d: (Interval(540, 1020),) for d in ("mon", "tue", "wed", "thu", "fri")}),
    caps=(Cap(window=CapWindow.DAY, max_count=10),),
    fixed_price_minor=2_500,
)


def test_reason_codes_are_exactly_the_design_strings() -> None:
    # From DESIGN.md, "Reason codes": stable public strings.
    assert {code for name, code in vars(reasons).items() if name.isupper() and isinstance(code, str)} >= {
        "schedule_closed", "insufficient_balance", "duplicate", "exclusivity_conflict", "below_floor",
        "ping_timeout", "ping_error", "ping_rejected", "post_rejected", "post_error",
        "not_better_than_winner", "campaign_paused", "sold",
    }  # fmt: skip
    assert set(reasons.REASONS) == {
        "filtered:<field>", "filtered:expression", "filtered:score", "filtered:priority",
        "schedule_closed", "cap_reached:<window>",
        "budget_reached:<window>", "insufficient_balance", "duplicate", "exclusivity_conflict",
        "below_floor", "ping_timeout", "ping_error", "ping_rejected", "post_rejected", "post_error",
        "not_better_than_winner", "campaign_paused", "sold",
    }  # fmt: skip
    assert reasons.filtered("state") == "filtered:state"
    assert reasons.cap_reached("day") == "cap_reached:day"
    assert reasons.budget_reached("month") == "budget_reached:month"
    assert all(meaning and "\n" not in meaning for meaning in reasons.REASONS.values())


def test_checks_run_in_the_documented_order() -> None:
    """Start with a campaign failing every check, then fix one check at a time."""
    full = {"day:2026-11-23": (10, 0)}
    failing_all = msgspec.structs.replace(CAMPAIGN, active=False)
    steps = [
        (failing_all, SATURDAY_NY, {"state": "NY"}, full, False, True, "campaign_paused"),
        (CAMPAIGN, SATURDAY_NY, {"state": "NY"}, full, False, True, "schedule_closed"),
        (CAMPAIGN, MONDAY_10AM_NY, {"state": "NY"}, full, False, True, "filtered:state"),
        (CAMPAIGN, MONDAY_10AM_NY, LEAD, full, False, True, "duplicate"),
        (CAMPAIGN, MONDAY_10AM_NY, LEAD, full, False, False, "cap_reached:day"),
        (CAMPAIGN, MONDAY_10AM_NY, LEAD, {}, False, False, "insufficient_balance"),
        (CAMPAIGN, MONDAY_10AM_NY, LEAD, {}, True, False, None),
    ]
    for campaign, now, fields, usage, can_pay, bought, expected in steps:
        decision = evaluate(campaign, fields, now, usage, buyer_can_pay=can_pay, already_bought=bought)
        assert decision.reason == expected
        assert decision.eligible is (expected is None)
        assert decision.campaign_id == "c1"


def test_decisions_carry_the_numbers_behind_them() -> None:
    def run(**kw: object) -> Decision:
        args = {"campaign": CAMPAIGN, "lead_fields": LEAD, "now": MONDAY_10AM_NY, "usage": {},
                "buyer_can_pay": True, "already_bought": False} | kw  # fmt: skip
        return evaluate(**args)  # type: ignore[arg-type]

    assert run(now=SATURDAY_NY).details == {"next_open": "2026-11-30T14:00:00+00:00"}
    assert run(lead_fields={"state": "NY"}).details == {"filter": "states_in", "value": "NY"}
    assert run(usage={"day:2026-11-23": (12, 0)}).details == {"window_key": "day:2026-11-23", "used": 12, "limit": 10}
    assert run(buyer_can_pay=False).details == {"price_minor": 2_500}
    assert run() == Decision(
        campaign_id="c1", eligible=True, reason=None, details={"price_mode": "fixed", "price_minor": 2_500, "tier": 1}
    )


def test_live_bid_budget_is_checked_with_the_floor() -> None:
    live = msgspec.structs.replace(
        CAMPAIGN,
        price_mode=PriceMode.LIVE,
        fixed_price_minor=None,
        floor_minor=500,
        caps=(Cap(window=CapWindow.MONTH, max_spend_minor=10_000),),
    )
    near = {"month:2026-11": (40, 9_500)}
    over = {"month:2026-11": (40, 9_501)}
    assert evaluate(live, LEAD, MONDAY_10AM_NY, near, True, False).reason is None
    assert evaluate(live, LEAD, MONDAY_10AM_NY, over, True, False).reason == "budget_reached:month"


def test_age_filters_default_to_the_campaign_zone() -> None:
    # 03:00 UTC on 2026-11-24 is 22:00 on the 23rd in New York: the lead born 2008-11-24 is 17.
    now = dt.datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    adults = msgspec.structs.replace(CAMPAIGN, schedule=None, filters=(AgeRange(field="birth_date", min_years=18),))
    assert evaluate(adults, LEAD, now, {}, True, False).reason == "filtered:birth_date"
    in_utc = msgspec.structs.replace(adults, timezone="UTC")
    assert evaluate(in_utc, LEAD, now, {}, True, False).reason is None


def test_evaluation_uses_now_not_the_clock() -> None:
    with freeze_time("2026-11-23 15:00:00"):  # an open Monday by the system clock...
        decision = evaluate(CAMPAIGN, LEAD, SATURDAY_NY, {}, True, False)
    assert decision.reason == "schedule_closed"  # ...but ``now`` says Saturday


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        evaluate(CAMPAIGN, LEAD, dt.datetime(2026, 11, 23, 15, 0), {}, True, False)


def test_campaign_json_round_trip_and_unknown_fields() -> None:
    encoded = msgspec.json.encode(CAMPAIGN, order="deterministic")
    assert msgspec.json.decode(encoded, type=CampaignRules) == CAMPAIGN
    assert b'"active"' not in encoded  # defaults are omitted
    with pytest.raises(msgspec.ValidationError, match="unknown field `colour`"):
        msgspec.json.decode(encoded[:-1] + b',"colour":"red"}', type=CampaignRules)


VERTICAL = [FieldSpec(name="state", format=FieldFormat.STATE), FieldSpec(name="zip", format=FieldFormat.ZIP)]


def test_validate_campaign() -> None:
    assert validate_campaign(CAMPAIGN, VERTICAL) == []
    broken = msgspec.structs.replace(
        CAMPAIGN,
        timezone="Nowhere/Land",
        fixed_price_minor=None,
        filters=(StatesIn(field="city", states=frozenset({"TX"})),),
        schedule=Schedule(timezone=NY, days={"mon": (Interval(60, 60),)}),
        caps=(Cap(window=CapWindow.DAY),),
    )
    assert validate_campaign(broken, VERTICAL) == [
        ("timezone", "not an IANA time zone: 'Nowhere/Land'"),
        ("fixed_price_minor", "a fixed-price campaign needs fixed_price_minor"),
        ("schedule.days.mon[0]", "start equals end; use 0 to 1440 for a whole day"),
        ("filters[0].field", "unknown field 'city'"),
        ("caps[0]", "give max_count, max_spend_minor or both"),
    ]
    live_with_price = msgspec.structs.replace(CAMPAIGN, price_mode=PriceMode.LIVE)
    assert validate_campaign(live_with_price, VERTICAL) == [
        ("fixed_price_minor", "a live-bid campaign takes no fixed price")
    ]
