"""The team queue: order, draining to ready agents, and the maximum lead age."""

from __future__ import annotations

import datetime as dt

import pytest

from exchange.teams import (
    Agent,
    AgentLoad,
    LeadRequirements,
    QueueAssignment,
    ReadyAgent,
    Skills,
    Standing,
    WaitingLead,
    capacity,
    drain,
    ordered,
    too_old,
)

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
MIN = dt.timedelta(minutes=1)
MAX_AGE = dt.timedelta(hours=4)
EN = Skills(languages=frozenset({"en"}))
ES = Skills(languages=frozenset({"en", "es"}))


def lead(lead_id: str, minutes_ago: int, priority: int = 0, language: str | None = None):
    return WaitingLead(
        lead_id=lead_id,
        created_at=NOW - minutes_ago * MIN,
        priority=priority,
        requirements=LeadRequirements(language=language),
    )


def test_order_is_priority_then_oldest_then_id():
    waiting = [lead("x", 10), lead("y", 30), lead("hot", 1, priority=5), lead("w", 30)]
    assert [w.lead_id for w in ordered(waiting)] == ["hot", "w", "y", "x"]
    assert ordered(reversed(waiting)) == ordered(waiting)


def test_max_age_boundary_is_exact():
    assert not too_old(lead("a", 239), NOW, MAX_AGE)
    assert too_old(lead("a", 240), NOW, MAX_AGE)


def test_drain_gives_the_oldest_leads_first_by_round_robin_and_capacity():
    waiting = [lead("L3", 5), lead("L1", 50), lead("L2", 20), lead("L4", 1)]
    agents = [
        ReadyAgent(agent_id="a", capacity=1, skills=EN),
        ReadyAgent(
            agent_id="b",
            capacity=None,
            skills=EN,
            standing=Standing(agent_id="b", served=0, last_assigned_at=NOW - 60 * MIN),
        ),
    ]
    result = drain(waiting, agents, NOW, MAX_AGE)
    # a never assigned goes first, then b; a is then full, so b takes the rest.
    assert result.assignments == (
        QueueAssignment(lead_id="L1", agent_id="a"),
        QueueAssignment(lead_id="L2", agent_id="b"),
        QueueAssignment(lead_id="L3", agent_id="b"),
        QueueAssignment(lead_id="L4", agent_id="b"),
    )
    assert result.expired == () and result.waiting == ()
    assert [(s.agent_id, s.served, s.last_assigned_at) for s in result.standings] == [
        ("a", 1, NOW), ("b", 3, NOW),
    ]  # fmt: skip


def test_stale_leads_expire_and_unmatched_ones_wait_without_blocking():
    waiting = [lead("old", 300), lead("es", 60, language="es"), lead("en", 30, language="en")]
    result = drain(waiting, [ReadyAgent(agent_id="a", capacity=5, skills=EN)], NOW, MAX_AGE)
    assert [w.lead_id for w in result.expired] == ["old"]
    assert [w.lead_id for w in result.waiting] == ["es"]
    assert result.assignments == (QueueAssignment(lead_id="en", agent_id="a"),)


def test_skills_pick_the_agent_who_can_take_the_lead():
    waiting = [lead("es1", 60, language="es"), lead("en1", 30, language="en")]
    agents = [
        ReadyAgent(agent_id="en-only", capacity=5, skills=EN),
        ReadyAgent(agent_id="bilingual", capacity=1, skills=ES),
    ]
    result = drain(waiting, agents, NOW, MAX_AGE)
    assert result.assignments == (
        QueueAssignment(lead_id="es1", agent_id="bilingual"),
        QueueAssignment(lead_id="en1", agent_id="en-only"),
    )


def test_no_capacity_means_everything_waits():
    waiting = [lead("L1", 5), lead("L2", 6)]
    result = drain(waiting, [ReadyAgent(agent_id="a", capacity=0)], NOW, MAX_AGE)
    assert result.assignments == () and [w.lead_id for w in result.waiting] == ["L2", "L1"]
    assert drain(waiting, [], NOW, MAX_AGE).waiting == result.waiting


def test_weights_apply_while_draining():
    waiting = [lead(f"L{i}", 100 - i) for i in range(6)]
    agents = [
        ReadyAgent(agent_id="a", capacity=None, weight=2),
        ReadyAgent(agent_id="b", capacity=None, weight=1),
    ]
    result = drain(waiting, agents, NOW, MAX_AGE)
    # a 1/2 < b 1; a 1 = b 1 (b never assigned); a 3/2; a 2 = b 2 at the same instant: by id.
    assert "".join(a.agent_id for a in result.assignments) == "abaaab"
    assert [(s.agent_id, s.served) for s in result.standings] == [("a", 4), ("b", 2)]


def test_capacity_is_the_tighter_cap():
    agent = Agent(id="a", team_id="t", timezone="America/New_York", daily_cap=10, concurrent_cap=3)
    assert capacity(agent, AgentLoad(served_today=8, open_leads=0), NOW) == 2
    assert capacity(agent, AgentLoad(served_today=1, open_leads=2), NOW) == 1
    assert capacity(agent, AgentLoad(served_today=12, open_leads=0), NOW) == 0
    free = Agent(id="b", team_id="t", timezone="America/New_York")
    assert capacity(free, AgentLoad(open_leads=50), NOW) is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_age"):
        drain([], [], NOW, dt.timedelta(0))
    with pytest.raises(ValueError, match="twice"):
        drain([], [ReadyAgent(agent_id="a", capacity=1)] * 2, NOW, MAX_AGE)
