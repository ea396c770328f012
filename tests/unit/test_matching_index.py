"""The campaign index: it never drops an eligible campaign, and it explains the ones it skips."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.matching import (
    AgeRange,
    BooleanIs,
    CampaignIndex,
    CampaignRules,
    Cap,
    CapWindow,
    Decision,
    EnumIn,
    EnumNotIn,
    Expression,
    Interval,
    NumberRange,
    PriceMode,
    Schedule,
    StatesIn,
    StatesNotIn,
    ZipIn,
    ZipPrefix,
    ZipRadius,
    evaluate,
    reasons,
    window_key,
)

UTC = dt.timezone.utc
NY = "America/New_York"
NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
LEAD = {"state": "TX", "zip": "75001", "credit_score": 700}


def campaign(campaign_id: str, *filters: object, vertical: str = "solar", **kw: object) -> CampaignRules:
    return CampaignRules(
        campaign_id=campaign_id, buyer_id="b", vertical=vertical, timezone=NY,
        filters=tuple(filters), fixed_price_minor=100, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


TX = campaign("tx", StatesIn(field="state", states=frozenset({"TX", "OK"})))
CA = campaign("ca", StatesIn(field="state", states=frozenset({"CA"})))
ZIPS = campaign("zips", ZipIn(field="zip", zips=frozenset({"75001", "75002"})))
OTHER_ZIPS = campaign("other-zips", ZipIn(field="zip", zips=frozenset({"10001"})))
PREFIX = campaign("prefix", ZipPrefix(field="zip", prefixes=("75", "750", "9")))
WHOLE_ZIP_PREFIX = campaign("whole-zip-prefix", ZipPrefix(field="zip", prefixes=("75001",)))
ANYWHERE = campaign("anywhere")
NOT_NY = campaign("not-ny", StatesNotIn(field="state", states=frozenset({"NY"})))
RICH_TX = campaign("rich-tx", NumberRange(field="credit_score", minimum=800), StatesIn(field="state", states=frozenset({"TX"})))
PAUSED_TX = campaign("paused-tx", StatesIn(field="state", states=frozenset({"TX"})), active=False)
CLOSED_CA = campaign(
    "closed-ca", StatesIn(field="state", states=frozenset({"CA"})), schedule=Schedule(timezone=NY, days={"sun": (Interval(0, 60),)})
)
AUTO = campaign("auto", vertical="auto")
ALL = [TX, CA, ZIPS, OTHER_ZIPS, PREFIX, WHOLE_ZIP_PREFIX, ANYWHERE, NOT_NY, RICH_TX, PAUSED_TX, CLOSED_CA, AUTO]


def ids(campaigns: list[CampaignRules]) -> list[str]:
    return [c.campaign_id for c in campaigns]


def test_candidates_by_state_zip_and_prefix_in_the_order_given() -> None:
    index = CampaignIndex(ALL)
    assert ids(index.candidates("solar", LEAD)) == [
        "tx", "zips", "prefix", "whole-zip-prefix", "anywhere", "not-ny", "rich-tx"
    ]  # fmt: skip
    assert ids(index.candidates("solar", {"state": "CA", "zip": "94103"})) == ["ca", "prefix", "anywhere", "not-ny", "closed-ca"]
    assert ids(index.candidates("solar", {})) == ["anywhere", "not-ny"]  # wildcards only
    assert ids(index.candidates("auto", LEAD)) == ["auto"]
    assert index.candidates("boats", LEAD) == []
    assert len(index) == len(ALL)


def test_skipped_campaigns_get_the_reason_evaluate_would_give() -> None:
    index = CampaignIndex(ALL)
    skipped = list(index.excluded("solar", LEAD, NOW))
    assert [(d.campaign_id, d.reason) for d in skipped] == [
        ("ca", "filtered:state"),
        ("other-zips", "filtered:zip"),
        ("paused-tx", "campaign_paused"),
        ("closed-ca", "schedule_closed"),
    ]
    by_id = {c.campaign_id: c for c in ALL}
    for decision in skipped:
        assert decision == evaluate(by_id[decision.campaign_id], LEAD, NOW, {}, True, False)
    assert skipped[0].details == {"filter": "states_in", "value": "TX"}


def test_duplicate_campaign_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="'tx' appears twice"):
        CampaignIndex([TX, TX])


def test_work_grows_with_the_matching_set() -> None:
    # 20,000 campaigns in other states: a Wyoming lead gets back only Wyoming's and the wildcard.
    states = ["TX", "CA", "NY", "FL", "IL", "PA", "OH", "GA"]
    many = [campaign(f"c{i}", StatesIn(field="state", states=frozenset({states[i % 8]}))) for i in range(20_000)]
    many += [campaign("wy", StatesIn(field="state", states=frozenset({"WY"}))), ANYWHERE]
    index = CampaignIndex(many)
    assert ids(index.candidates("solar", {"state": "WY"})) == ["wy", "anywhere"]
    assert len(index.candidates("solar", {"state": "TX"})) == 2_501


# -- properties over random campaigns and leads ---------------------------------------------

STATES = ["TX", "CA", "NY", "WY"]
ZIPS_POOL = ["75001", "75002", "10001", "94103", "82001", "00000"]
state_sets = st.frozensets(st.sampled_from(STATES), min_size=1, max_size=3)
filters = st.one_of(
    st.builds(StatesIn, field=st.just("state"), states=state_sets),
    st.builds(StatesNotIn, field=st.just("state"), states=state_sets),
    st.builds(ZipIn, field=st.just("zip"), zips=st.frozensets(st.sampled_from(ZIPS_POOL), min_size=1, max_size=3)),
    st.builds(ZipPrefix, field=st.just("zip"), prefixes=st.lists(st.sampled_from(["7", "75", "750", "1", "10001", "9"]), min_size=1, max_size=3).map(tuple)),
    st.builds(ZipRadius, field=st.just("zip"), center=st.sampled_from(ZIPS_POOL[:5]), miles=st.sampled_from([5.0, 20.0, 500.0])),
    st.builds(NumberRange, field=st.just("credit_score"), minimum=st.none() | st.integers(500, 800), maximum=st.none() | st.integers(500, 800)),
    st.builds(EnumIn, field=st.just("product"), values=st.frozensets(st.sampled_from(["Solar", "Roofing"]), min_size=1)),
    st.builds(EnumNotIn, field=st.just("product"), values=st.frozensets(st.sampled_from(["Solar", "Roofing"]), min_size=1)),
    st.builds(BooleanIs, field=st.just("home_owner"), value=st.booleans()),
    st.builds(AgeRange, field=st.just("birth_date"), min_years=st.none() | st.integers(18, 40), max_years=st.none() | st.integers(30, 70)),
    st.builds(Expression, expression=st.sampled_from(["credit_score > 650", "state == 'TX' or home_owner", "zip in ['75001', '10001']"])),
    st.builds(StatesIn, field=st.just("other_state"), states=state_sets),  # a second state field
)  # fmt: skip
schedules = st.sampled_from(
    [
        None,
        Schedule(timezone=NY),
        Schedule(timezone=NY, days={d: (Interval(540, 1020),) for d in ("mon", "tue", "wed", "thu", "fri")}),
        Schedule(timezone="America/Chicago", days={"sat": (Interval(1320, 120),), "sun": (Interval(600, 700),)}),
    ]
)
caps = st.lists(
    st.builds(Cap, window=st.sampled_from(list(CapWindow)), max_count=st.none() | st.integers(0, 3),
              max_spend_minor=st.none() | st.integers(0, 500)),
    max_size=2,
)  # fmt: skip


@st.composite
def campaign_lists(draw: st.DrawFn) -> list[CampaignRules]:
    count = draw(st.integers(0, 12))
    out = []
    for i in range(count):
        live = draw(st.booleans())
        out.append(
            CampaignRules(
                campaign_id=f"c{i}",
                buyer_id=f"b{draw(st.integers(0, 3))}",
                vertical=draw(st.sampled_from(["solar", "solar", "auto"])),
                timezone=draw(st.sampled_from([NY, "America/Los_Angeles", "UTC"])),
                active=draw(st.booleans() | st.just(True)),
                filters=tuple(draw(st.lists(filters, max_size=3))),
                schedule=draw(schedules),
                caps=tuple(draw(caps)),
                price_mode=PriceMode.LIVE if live else PriceMode.FIXED,
                fixed_price_minor=None if live else draw(st.integers(0, 300)),
                floor_minor=draw(st.integers(0, 300)) if live else 0,
            )
        )
    return out


def optional(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


leads = st.fixed_dictionaries(
    {},
    optional={
        "state": st.sampled_from(STATES),
        "other_state": st.sampled_from(STATES),
        "zip": st.sampled_from(ZIPS_POOL),
        "credit_score": st.integers(450, 850),
        "product": st.sampled_from(["Solar", "Roofing"]),
        "home_owner": st.booleans(),
        "birth_date": st.dates(dt.date(1950, 1, 1), dt.date(2012, 12, 31)).map(dt.date.isoformat),
    },
)
instants = st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@settings(max_examples=250, deadline=None)
@given(
    campaigns=campaign_lists(),
    lead=leads,
    now=instants,
    used=st.tuples(st.integers(0, 4), st.integers(0, 600)),
    can_pay=st.booleans(),
    bought=st.booleans(),
)
def test_index_never_drops_an_eligible_campaign_and_explains_the_rest(
    campaigns: list[CampaignRules],
    lead: dict,
    now: dt.datetime,
    used: tuple[int, int],
    can_pay: bool,
    bought: bool,
) -> None:
    index = CampaignIndex(campaigns)
    for vertical in ("solar", "auto"):
        mine = [c for c in campaigns if c.vertical == vertical]
        candidates = index.candidates(vertical, lead)
        skipped = list(index.excluded(vertical, lead, now))
        # A partition of the vertical's campaigns: each listed exactly once.
        assert sorted(ids(candidates) + [d.campaign_id for d in skipped]) == sorted(ids(mine))

        decisions: dict[str, Decision] = {}
        for c in mine:
            usage = {window_key(w, c.timezone, now): used for w in CapWindow}
            decisions[c.campaign_id] = evaluate(c, lead, now, usage, can_pay, bought)
        eligible = {cid for cid, d in decisions.items() if d.eligible}
        assert eligible <= set(ids(candidates))
        # The index's lazy reason is exactly what evaluate says.
        for decision in skipped:
            assert decision == decisions[decision.campaign_id]
            assert not decision.eligible
        # Exactly one known reason for every excluded campaign, none for eligible ones.
        for decision in decisions.values():
            assert decision.eligible is (decision.reason is None)
            if decision.reason is not None:
                assert reasons.is_known(decision.reason)


def test_decisions_encode_as_json() -> None:
    decision = next(iter(CampaignIndex([CA]).excluded("solar", LEAD, NOW)))
    assert msgspec.json.decode(msgspec.json.encode(decision)) == {
        "campaign_id": "ca", "eligible": False, "reason": "filtered:state",
        "details": {"filter": "states_in", "value": "TX"},
    }  # fmt: skip
