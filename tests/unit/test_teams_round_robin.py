"""Round-robin from per-agent standing: exact sequences, weights, calibration, CAS planning."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.teams import AgentLoad, Standing, bump, calibrate, choose, credit_back, level, plan
from exchange.teams.round_robin import roll, standing_of

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
SECOND = dt.timedelta(seconds=1)


def run(standings: dict[str, Standing], weights: dict[str, int], picks: int, start: dt.datetime):
    """Assign ``picks`` leads one second apart; return the picked ids in order."""
    order = []
    for i in range(picks):
        best = choose(standings.values(), weights)[0]
        standings[best] = bump(standings[best], start + i * SECOND)
        order.append(best)
    return order


def fresh(*ids: str) -> dict[str, Standing]:
    return {a: Standing(agent_id=a) for a in ids}


def fair(standings: dict[str, Standing], weights: dict[str, int]) -> bool:
    """Nobody's served/weight is above anybody's (served + 1)/weight."""
    top = max(Fraction(s.served, weights[a]) for a, s in standings.items())
    return top <= min(level(s, weights[a]) for a, s in standings.items())


def test_equal_weights_alternate_strictly():
    assert "".join(run(fresh("a", "b", "c"), {"a": 1, "b": 1, "c": 1}, 9, T0)) == "abcabcabc"


def test_weights_two_one_one():
    standings = fresh("a", "b", "c")
    order = run(standings, {"a": 2, "b": 1, "c": 1}, 40, T0)
    assert "".join(order[:12]) == "abcaabcaabca"
    assert Counter(order) == {"a": 20, "b": 10, "c": 10}


def test_ties_go_to_the_least_recently_assigned_then_the_id():
    standings = [
        Standing(agent_id="a", served=3, last_assigned_at=T0 + 2 * SECOND),
        Standing(agent_id="b", served=3, last_assigned_at=T0),
        Standing(agent_id="c", served=3, last_assigned_at=None),
        Standing(agent_id="d", served=2, last_assigned_at=T0 + 9 * SECOND),
        Standing(agent_id="e", served=3, last_assigned_at=T0),
    ]
    assert choose(standings, dict.fromkeys("abcde", 1)) == ("d", "c", "b", "e", "a")


def test_level_uses_the_weight():
    # a: (4+1)/5 = 1; b: (0+1)/1 = 1; c: (1+1)/3 = 2/3
    standings = [
        Standing(agent_id="a", served=4),
        Standing(agent_id="b"),
        Standing(agent_id="c", served=1),
    ]
    assert choose(standings, {"a": 5, "b": 1, "c": 3}) == ("c", "a", "b")


def test_duplicates_and_missing_or_bad_weights_are_refused():
    with pytest.raises(ValueError, match="twice"):
        choose([Standing(agent_id="a"), Standing(agent_id="a")], {"a": 1})
    with pytest.raises(KeyError, match="'b'"):
        choose([Standing(agent_id="a"), Standing(agent_id="b")], {"a": 1})
    with pytest.raises(ValueError, match="1 to 100"):
        choose([Standing(agent_id="a")], {"a": 0})


weights_strategy = st.lists(st.integers(1, 100), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(weights=weights_strategy, picks=st.integers(0, 300))
def test_served_counts_are_proportional_to_weights(weights, picks):
    ids = [f"agent{i}" for i in range(len(weights))]
    w = dict(zip(ids, weights, strict=True))
    standings = fresh(*ids)
    for i in range(picks):
        best = choose(standings.values(), w)[0]
        standings[best] = bump(standings[best], T0 + i * SECOND)
        assert fair(standings, w)
    total = sum(weights)
    k = len(ids)
    for a in ids:
        quota = Fraction(picks * w[a], total)
        assert quota - 1 <= standings[a].served <= quota + (k - 1)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    served=st.lists(st.integers(0, 50), min_size=1, max_size=6),
    weights=st.lists(st.integers(1, 10), min_size=6, max_size=6),
    seconds=st.lists(st.none() | st.integers(0, 5), min_size=6, max_size=6),
)
def test_choice_never_depends_on_input_order(data, served, weights, seconds):
    standings = [
        Standing(
            agent_id=f"a{i}",
            served=s,
            last_assigned_at=None if seconds[i] is None else T0 + seconds[i] * SECOND,
        )
        for i, s in enumerate(served)
    ]
    w = {f"a{i}": weights[i] for i in range(len(served))}
    shuffled = data.draw(st.permutations(standings))
    assert choose(shuffled, w) == choose(standings, w)
    assert sorted(choose(standings, w)) == sorted(w)


def test_an_uncalibrated_joiner_is_flooded_and_a_calibrated_one_is_next_once():
    team = fresh("a", "b", "c")
    w = {"a": 1, "b": 1, "c": 1, "new": 1}
    run(team, w, 30, T0)  # 10 each
    flooded = dict(team) | {"new": Standing(agent_id="new")}
    assert run(flooded, w, 11, T0 + 100 * SECOND) == ["new"] * 10 + ["a"]
    joined = dict(team) | {"new": calibrate(Standing(agent_id="new"), team.values(), w)}
    assert joined["new"].served == 10
    assert "".join(x[0] for x in run(joined, w, 8, T0 + 100 * SECOND)) == "nabcnabc"


def test_calibration_with_weights_lands_on_the_minimum_level():
    # Levels: a (5+1)/2 = 3, b (3+1)/1 = 4. A weight-3 joiner: ceil(3 * 3) - 1 = 8, level 3.
    team = [
        Standing(agent_id="a", served=5, last_assigned_at=T0),
        Standing(agent_id="b", served=3, last_assigned_at=T0),
    ]
    w = {"a": 2, "b": 1, "new": 3}
    joined = calibrate(Standing(agent_id="new"), team, w)
    assert joined.served == 8
    assert choose([*team, joined], w)[0] == "new"


def test_a_returning_agent_keeps_a_higher_standing_and_is_raised_from_a_lower_one():
    team = [Standing(agent_id="a", served=7), Standing(agent_id="b", served=6)]
    w = {"a": 1, "b": 1, "r": 1}
    ahead = Standing(agent_id="r", served=9, last_assigned_at=T0)
    assert calibrate(ahead, team, w) == ahead
    behind = Standing(agent_id="r", served=1, last_assigned_at=T0)
    back = calibrate(behind, [*team, behind], w)  # its own standing in the team is ignored
    assert (back.served, back.last_assigned_at) == (6, T0)
    assert calibrate(behind, [], w) == behind


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.integers(1, 20), min_size=1, max_size=5),
    joiner_weight=st.integers(1, 20),
    before=st.integers(0, 120),
    after=st.integers(1, 60),
)
def test_a_joiner_never_floods_and_the_team_stays_fair(weights, joiner_weight, before, after):
    ids = [f"a{i}" for i in range(len(weights))]
    w = dict(zip(ids, weights, strict=True)) | {"new": joiner_weight}
    team = fresh(*ids)
    run(team, w, before, T0)
    minimum = min(level(s, w[a]) for a, s in team.items())
    at_minimum = {a for a, s in team.items() if level(s, w[a]) == minimum}
    standings = dict(team) | {"new": calibrate(Standing(agent_id="new"), team.values(), w)}
    assert fair(standings, w)
    got_before_minimum = 0
    for i in range(after):
        best = choose(standings.values(), w)[0]
        standings[best] = bump(standings[best], T0 + (before + 10 + i) * SECOND)
        assert fair(standings, w)
        if best in at_minimum:
            break
        if best == "new":
            got_before_minimum += 1
    assert got_before_minimum <= 1


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 6), before=st.integers(0, 60))
def test_with_equal_weights_a_joiner_is_next_then_waits_its_turn(size, before):
    ids = [f"a{i}" for i in range(size)]
    w = dict.fromkeys([*ids, "new"], 1)
    team = fresh(*ids)
    run(team, w, before, T0)
    standings = dict(team) | {"new": calibrate(Standing(agent_id="new"), team.values(), w)}
    order = run(standings, w, size + 1, T0 + (before + 10) * SECOND)
    if before >= size:  # everyone was assigned once: the never-assigned joiner wins the tie
        assert order[0] == "new"
    assert sorted(order) == sorted(w)  # everyone exactly once in the next round


def test_plan_gives_compare_and_set_pairs_and_two_workers_never_share_a_standing():
    db = {
        "a": Standing(agent_id="a", served=2, last_assigned_at=T0),
        "b": Standing(agent_id="b", served=1, last_assigned_at=T0),
        "c": Standing(agent_id="c", served=1, last_assigned_at=T0 - SECOND),
    }
    w = {"a": 1, "b": 1, "c": 1}

    def compare_and_set(agent_id: str, expected: Standing, new: Standing) -> bool:
        if db[agent_id] != expected:
            return False
        db[agent_id] = new
        return True

    now = T0 + 60 * SECOND
    first = plan(db.values(), w, now)  # worker 1 reads ...
    second = plan(db.values(), w, now)  # ... and worker 2 reads the same standings
    assert [p.agent_id for p in first] == ["c", "b", "a"]
    assert first[0].expected == Standing(agent_id="c", served=1, last_assigned_at=T0 - SECOND)
    assert first[0].new == Standing(agent_id="c", served=2, last_assigned_at=now)
    assert compare_and_set(first[0].agent_id, first[0].expected, first[0].new)
    assert not compare_and_set(second[0].agent_id, second[0].expected, second[0].new)
    retry = plan(db.values(), w, now + SECOND)  # worker 2 re-reads and plans again
    assert retry[0].agent_id == "b"
    assert compare_and_set(retry[0].agent_id, retry[0].expected, retry[0].new)
    assert {a: s.served for a, s in db.items()} == {"a": 2, "b": 2, "c": 2}


def test_windows_credit_back_and_loads():
    s = Standing(agent_id="a", served=4, last_assigned_at=T0, window="day:2026-11-23")
    assert roll(s, "day:2026-11-23") is s
    assert roll(s, "day:2026-11-24") == Standing(
        agent_id="a", served=0, last_assigned_at=T0, window="day:2026-11-24"
    )
    assert credit_back(s).served == 3
    assert credit_back(Standing(agent_id="a")).served == 0
    load = AgentLoad(served_in_window=5, last_assigned_at=T0)
    assert standing_of("a", load, "w") == Standing(
        agent_id="a", served=5, last_assigned_at=T0, window="w"
    )
