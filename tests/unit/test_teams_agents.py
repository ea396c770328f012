"""Agent eligibility: every reason, the fixed order, heartbeats, local hours and days."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest
from freezegun import freeze_time

from exchange.matching import Interval, Schedule
from exchange.teams import (
    Agent,
    AgentLoad,
    LeadRequirements,
    ManualStatus,
    Skills,
    eligibility,
    eligible_ids,
    evaluate_team,
    is_online,
    local_day,
    reasons,
    served_today,
    validate_agent,
)

UTC = dt.UTC
NY = "America/New_York"
LA = "America/Los_Angeles"
MONDAY_10AM_NY = dt.datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 07:00 in Los Angeles
WEEKDAYS_9_TO_5 = {d: (Interval(540, 1020),) for d in ("mon", "tue", "wed", "thu", "fri")}
SKILLS = Skills(
    languages=frozenset({"en", "es"}),
    states=frozenset({"TX", "CA"}),
    lead_types=frozenset({"solar"}),
)
AGENT = Agent(
    id="a1",
    team_id="t1",
    timezone=NY,
    last_heartbeat_at=MONDAY_10AM_NY - dt.timedelta(seconds=30),
    heartbeat_ttl=dt.timedelta(seconds=90),
    working_hours=Schedule(timezone=NY, days=WEEKDAYS_9_TO_5),
    skills=SKILLS,
    weight=3,
    daily_cap=10,
    concurrent_cap=2,
)
LOAD = AgentLoad(served_today=9, open_leads=1)
LEAD = LeadRequirements(language="es", state="TX", lead_type="solar")


def replace(agent: Agent = AGENT, **changes: object) -> Agent:
    return msgspec.structs.replace(agent, **changes)


def test_the_baseline_agent_is_eligible():
    assert eligibility(AGENT, LOAD, LEAD, MONDAY_10AM_NY) == (True, None)
    eligible, reason = eligibility(AGENT, LOAD, LEAD, MONDAY_10AM_NY, already_offered={"a2"})
    assert (eligible, reason) == (True, None)


@pytest.mark.parametrize(
    ("agent", "load", "lead", "offered", "reason"),
    [
        (replace(active=False), LOAD, LEAD, set(), "agent_inactive"),
        (replace(manual_status=ManualStatus.AWAY), LOAD, LEAD, set(), "agent_away"),
        (replace(last_heartbeat_at=None), LOAD, LEAD, set(), "agent_offline"),
        (
            replace(last_heartbeat_at=MONDAY_10AM_NY - dt.timedelta(seconds=91)),
            LOAD, LEAD, set(), "agent_offline",
        ),
        (replace(timezone=LA, working_hours=Schedule(timezone=LA, days=WEEKDAYS_9_TO_5)),
         LOAD, LEAD, set(), "outside_working_hours"),
        (AGENT, AgentLoad(served_today=10, open_leads=0), LEAD, set(), "daily_cap_reached"),
        (AGENT, AgentLoad(served_today=0, open_leads=2), LEAD, set(), "concurrent_cap_reached"),
        (replace(daily_cap=0), AgentLoad(), LEAD, set(), "daily_cap_reached"),
        (AGENT, LOAD, LeadRequirements(language="fr"), set(), "missing_skill:language"),
        (AGENT, LOAD, LeadRequirements(state="NY"), set(), "missing_skill:state"),
        (AGENT, LOAD, LeadRequirements(lead_type="auto"), set(), "missing_skill:lead_type"),
        (AGENT, LOAD, LEAD, {"a1"}, "already_offered"),
    ],
)  # fmt: skip
def test_each_reason(agent, load, lead, offered, reason):
    assert eligibility(agent, load, lead, MONDAY_10AM_NY, offered) == (False, reason)
    assert reasons.is_known(reason)


def test_one_reason_in_the_documented_order():
    """An agent failing every check is excluded for the first; peeling checks off one by one
    yields the reasons in ELIGIBILITY_ORDER."""
    failing = [
        {"active": False},
        {"manual_status": ManualStatus.AWAY},
        {"last_heartbeat_at": MONDAY_10AM_NY - dt.timedelta(hours=1)},
        {"working_hours": Schedule(timezone=NY, days={"sat": (Interval(0, 1440),)})},
        {"daily_cap": 0},
        {"concurrent_cap": 0},
        {"skills": Skills()},  # no language ...
    ]
    lead = LEAD
    seen = []
    for i in range(len(failing)):
        agent = AGENT
        for changes in failing[i:]:
            agent = replace(agent, **changes)
        seen.append(eligibility(agent, AgentLoad(open_leads=1), lead, MONDAY_10AM_NY, {"a1"})[1])
    # ... then with the languages back, states; with states back, lead types; then offers.
    for skills in (
        Skills(languages=SKILLS.languages),
        Skills(languages=SKILLS.languages, states=SKILLS.states),
        SKILLS,
    ):
        agent = replace(skills=skills)
        seen.append(eligibility(agent, AgentLoad(), lead, MONDAY_10AM_NY, {"a1"})[1])
    assert tuple(seen) == reasons.ELIGIBILITY_ORDER
    assert seen == [
        "agent_inactive", "agent_away", "agent_offline", "outside_working_hours",
        "daily_cap_reached", "concurrent_cap_reached", "missing_skill:language",
        "missing_skill:state", "missing_skill:lead_type", "already_offered",
    ]  # fmt: skip


def test_heartbeat_expires_exactly_at_the_ttl():
    seen = AGENT.last_heartbeat_at
    assert is_online(AGENT, seen + dt.timedelta(seconds=89, microseconds=999_999))
    assert not is_online(AGENT, seen + dt.timedelta(seconds=90))


def test_away_beats_a_fresh_heartbeat_and_no_ttl_means_manual_available_is_enough():
    away = replace(manual_status=ManualStatus.AWAY, last_heartbeat_at=MONDAY_10AM_NY)
    assert eligibility(away, LOAD, LEAD, MONDAY_10AM_NY) == (False, "agent_away")
    desk = replace(heartbeat_ttl=None, last_heartbeat_at=None)
    assert eligibility(desk, LOAD, LEAD, MONDAY_10AM_NY) == (True, None)


def test_working_hours_are_read_on_the_agents_wall_clock():
    # Same hours, read in Los Angeles: 07:00 there is closed, 09:00 (17:00 UTC) is open.
    hours_in_ny = replace(timezone=LA)  # the schedule says NY; the agent's zone wins
    assert eligibility(hours_in_ny, LOAD, LEAD, MONDAY_10AM_NY)[1] == "outside_working_hours"
    nine_la = dt.datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
    fresh = replace(hours_in_ny, last_heartbeat_at=nine_la)
    assert eligibility(fresh, LOAD, LEAD, nine_la) == (True, None)
    assert eligibility(fresh, LOAD, LEAD, nine_la - dt.timedelta(minutes=1))[1] == (
        "outside_working_hours"
    )


def test_no_working_hours_means_any_time():
    night = dt.datetime(2026, 11, 29, 7, 0, tzinfo=UTC)  # Sunday 02:00 in New York
    agent = replace(working_hours=None, heartbeat_ttl=None)
    assert eligibility(agent, LOAD, LEAD, night) == (True, None)


def test_daily_cap_counts_the_agents_local_day():
    full = AgentLoad(served_today=10, served_on=dt.date(2026, 11, 23))
    agent = replace(working_hours=None, heartbeat_ttl=None)
    # 04:59 UTC on the 24th is still the 23rd in New York: capped.
    before = dt.datetime(2026, 11, 24, 4, 59, tzinfo=UTC)
    assert local_day(agent, before) == dt.date(2026, 11, 23)
    assert served_today(agent, full, before) == 10
    assert eligibility(agent, full, LEAD, before)[1] == "daily_cap_reached"
    # 05:00 UTC is local midnight: the count belongs to yesterday and reads 0.
    after = dt.datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
    assert served_today(agent, full, after) == 0
    assert eligibility(agent, full, LEAD, after) == (True, None)


def test_no_requirement_of_a_kind_needs_no_skill():
    bare = replace(skills=Skills())
    assert eligibility(bare, LOAD, LeadRequirements(), MONDAY_10AM_NY) == (True, None)


@freeze_time("2026-11-23T15:00:00Z")
def test_evaluate_team_explains_every_agent_sorted_by_id():
    now = dt.datetime.now(UTC)
    team = [
        replace(id="c", concurrent_cap=1),
        replace(id="a"),
        replace(id="b", active=False),
    ]
    loads = {"a": LOAD, "c": LOAD}  # "b" has no load row: an empty load
    decisions = evaluate_team(team, loads, LEAD, now)
    assert [(d.agent_id, d.eligible, d.reason) for d in decisions] == [
        ("a", True, None),
        ("b", False, "agent_inactive"),
        ("c", False, "concurrent_cap_reached"),
    ]
    assert decisions[2].details == {"used": 1, "limit": 1}
    assert eligible_ids(decisions) == frozenset({"a"})


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="aware"):
        eligibility(AGENT, LOAD, LEAD, dt.datetime(2026, 11, 23, 15, 0))


def test_validate_agent():
    assert validate_agent(AGENT) == []
    bad = replace(
        timezone="Mars/Olympus",
        weight=0,
        daily_cap=-1,
        heartbeat_ttl=dt.timedelta(0),
    )
    assert [p for p, _ in validate_agent(bad)] == [
        "agent.timezone",
        "agent.weight",
        "agent.daily_cap",
        "agent.heartbeat_ttl",
        "agent.working_hours.timezone",
    ]


def test_decoding_enforces_bounds():
    raw = msgspec.json.encode(msgspec.to_builtins(AGENT) | {"weight": 101})
    with pytest.raises(msgspec.ValidationError, match="weight"):
        msgspec.json.decode(raw, type=Agent)
    back = msgspec.json.decode(msgspec.json.encode(AGENT), type=Agent)
    assert back == AGENT


def test_every_reason_has_a_meaning_and_the_order_lists_known_codes():
    assert all(reasons.is_known(code) for code in reasons.ELIGIBILITY_ORDER)
    assert all(text and "\n" not in text for text in reasons.REASONS.values())
    assert not reasons.is_known("missing_skill:")
    assert not reasons.is_known("missing_skill:<kind>")
    assert not reasons.is_known("missing_skill:zodiac")
