"""Lead scoring: rules, bands, the learned source part, and validation against a vertical."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange import reasons
from exchange.intake.fields import FieldSpec
from exchange.matching import CampaignRules, evaluate
from exchange.matching.filters import (
    Filter,
    check_filters,
    validate_filters,
    with_score,
)
from exchange.scoring import Counts, Rule, ScoringConfig, learned_points, score, validate_config
from exchange.scoring.rules import matches

FIELDS = msgspec.convert(
    [
        {"name": "state", "format": "state"},
        {"name": "zip", "format": "zip"},
        {"name": "homeowner", "format": "boolean"},
        {"name": "credit", "format": "enum", "choices": ["excellent", "good", "poor"]},
        {"name": "bill", "format": "money"},
        {"name": "age", "format": "integer"},
        {"name": "born", "format": "date"},
        {"name": "city", "format": "text"},
        {"name": "phone", "format": "phone", "pii": True},
    ],
    list[FieldSpec],
)
LEAD = {
    "state": "CA",
    "homeowner": True,
    "credit": "excellent",
    "bill": 25_000,
    "age": 40,
    "born": "1985-04-02",
}


def config(**overrides) -> ScoringConfig:
    return msgspec.convert({"learned_weight": 0, **overrides}, ScoringConfig)


def rule(field, op, value=None, points=10, **extra) -> dict:
    out = {"field": field, "op": op, "points": points, **extra}
    if value is not None:
        out["value"] = value
    return out


def test_defaults_and_no_rules():
    cfg = ScoringConfig()
    assert (cfg.base, cfg.learned_weight, cfg.learned_prior_strength) == (50, 20, 20)
    assert [(b.min_score, b.priority) for b in cfg.bands] == [
        (80, "high"),
        (50, "normal"),
        (0, "low"),
    ]
    out = score(cfg, LEAD)
    assert (out.score, out.priority) == (50, "normal")
    assert [(p.label, p.points) for p in out.parts] == [
        ("base", 50), ("source history: no outcomes in this vertical yet", 0)
    ]  # fmt: skip


@pytest.mark.parametrize(
    "item, expected",
    [
        (rule("state", "eq", "CA"), True),
        (rule("state", "ne", "CA"), False),
        (rule("state", "in", ["TX", "CA"]), True),
        (rule("state", "not_in", ["TX", "CA"]), False),
        (rule("bill", "gte", 25_000), True),
        (rule("bill", "lte", 24_999), False),
        (rule("age", "between", [18, 40]), True),
        (rule("born", "gte", "1980-01-01"), True),
        (rule("born", "between", ["1986-01-01", "1990-01-01"]), False),
        (rule("homeowner", "eq", True), True),
        (rule("homeowner", "eq", 1), False),  # True is not 1
        (rule("city", "present"), False),
        (rule("city", "absent"), True),
        (rule("city", "ne", "Austin"), False),  # a lead that does not say does not match "not"
        (rule("city", "not_in", ["Austin"]), False),
        (rule("age", "gte", "40"), False),  # another type never matches, never raises
    ],
)
def test_rule_ops(item, expected):
    assert matches(msgspec.convert(item, Rule), LEAD) is expected


def test_rules_add_up_and_bands_pick_the_priority():
    cfg = config(rules=[
        rule("credit", "eq", "excellent", 20),
        rule("homeowner", "eq", True, 15, label="owns the home"),
        rule("state", "eq", "TX", 40),
    ])  # fmt: skip
    out = score(cfg, LEAD)
    assert (out.score, out.priority) == (85, "high")
    assert [(p.label, p.points) for p in out.parts] == [
        ("base", 50), ('credit eq "excellent"', 20), ("owns the home", 15)
    ]  # fmt: skip
    assert score(cfg, {**LEAD, "credit": "poor", "homeowner": False}).priority == "normal"
    assert score(config(base=10), LEAD).priority == "low"


def test_clamped_with_a_part_that_says_so():
    out = score(config(base=90, rules=[rule("state", "eq", "CA", 100)]), LEAD)
    assert out.score == 100
    assert out.parts[-1].label == "clamped to 0..100" and out.parts[-1].points == -90
    assert sum(p.points for p in out.parts) == 100
    assert score(config(base=5, rules=[rule("state", "eq", "CA", -100)]), LEAD).score == 0


def test_learned_part_worked_example():
    # vertical 10%; source 15/50: posterior (15 + 20*0.1)/(50 + 20) = 24.3%; (0.243-0.1)/0.9 * 20 = 3.17
    cfg = ScoringConfig()
    out = score(cfg, LEAD, Counts(50, 15), Counts(1000, 100))
    assert out.score == 53
    assert out.parts[-1].label == "source history: 24% (50 outcomes) vs vertical 10%: +3"
    assert (
        learned_points(cfg, Counts(0, 0), Counts(1000, 100)) == 0
    )  # a new source: the vertical's rate
    assert learned_points(cfg, Counts(10_000, 0), Counts(1000, 100)) < 0
    assert (
        learned_points(cfg, Counts(10_000, 10_000), Counts(10_000, 100)) == 20
    )  # capped at the weight


def test_learned_part_is_zero_without_vertical_outcomes():
    assert learned_points(ScoringConfig(), Counts(5, 5), Counts(0, 0)) == 0
    assert learned_points(ScoringConfig(learned_weight=0), Counts(50, 40), Counts(100, 10)) == 0


counts = st.integers(min_value=0, max_value=10_000)


@st.composite
def pair(draw):
    trials = draw(counts)
    return Counts(trials, draw(st.integers(min_value=0, max_value=trials)))


points = st.integers(min_value=-100, max_value=100)


@given(
    base=st.integers(min_value=0, max_value=100),
    rule_points=st.lists(points, max_size=8),
    source=pair(),
    vertical=pair(),
    weight=st.integers(min_value=0, max_value=100),
    prior=st.integers(min_value=1, max_value=1000),
)
def test_score_is_always_within_0_and_100(base, rule_points, source, vertical, weight, prior):
    cfg = msgspec.convert(
        {"base": base, "learned_weight": weight, "learned_prior_strength": prior,
         "rules": [rule("state", "eq", "CA", p) for p in rule_points]},
        ScoringConfig,
    )  # fmt: skip
    out = score(cfg, LEAD, source, vertical)
    assert 0 <= out.score <= 100 and isinstance(out.score, int)
    assert sum(p.points for p in out.parts) == out.score
    assert abs(learned_points(cfg, source, vertical)) <= weight
    assert out == score(cfg, LEAD, source, vertical)  # deterministic


@given(base=st.integers(min_value=0, max_value=100), a=points, b=points, others=st.lists(points, max_size=4),
       source=pair(), vertical=pair())  # fmt: skip
def test_score_is_monotone_in_a_matching_rules_points(base, a, b, others, source, vertical):
    low, high = sorted((a, b))

    def with_points(p):
        rules = [
            rule("state", "eq", "CA", p),
            *(rule("credit", "eq", "excellent", o) for o in others),
        ]
        return score(
            msgspec.convert({"base": base, "rules": rules}, ScoringConfig), LEAD, source, vertical
        )

    assert with_points(low).score <= with_points(high).score


@given(vertical=pair(), trials=st.integers(min_value=0, max_value=2_000),
       fraction=st.fractions(min_value=0, max_value=1), more=st.integers(min_value=1, max_value=50))  # fmt: skip
def test_learned_part_shrinks_toward_zero_with_fewer_trials(vertical, trials, fraction, more):
    """The same conversion rate over fewer outcomes moves the score less (never more)."""
    few = Counts(trials, int(trials * fraction))
    many = Counts(trials * more, int(trials * fraction) * more)
    cfg = ScoringConfig()
    assert abs(learned_points(cfg, few, vertical)) <= abs(learned_points(cfg, many, vertical))
    if vertical.trials == 0:
        assert learned_points(cfg, many, vertical) == 0


# -- validation ------------------------------------------------------------------------------


def problems(**overrides) -> list[tuple[str, str]]:
    return validate_config(config(**overrides), FIELDS)


def test_a_good_config_has_no_problems():
    assert problems(rules=[
        rule("state", "in", ["CA", "TX"]), rule("zip", "eq", "94103"), rule("homeowner", "eq", False),
        rule("credit", "not_in", ["poor"]), rule("bill", "between", [10_000, 50_000]),
        rule("age", "lte", 70), rule("born", "gte", "1950-01-01"), rule("city", "present"),
    ]) == []  # fmt: skip


def test_every_problem_with_its_path():
    found = problems(
        rules=[
            rule("nope", "eq", "x"),
            rule("phone", "present"),
            rule("state", "like", "CA"),
            rule("credit", "eq", "Excellent"),
            rule("credit", "gte", "good"),
            rule("bill", "eq", "250.00"),
            rule("age", "between", [70, 18]),
            rule("state", "in", ["CA", "ZZ"]),
            rule("city", "absent", "x"),
            rule("born", "eq", "04/02/1985"),
            rule("homeowner", "eq", "yes"),
            rule("state", "in", []),
        ],
        bands=[{"min_score": 60, "priority": "high"}, {"min_score": 60, "priority": "high"}],
    )
    paths = [p for p, _ in found]
    assert paths == [
        "rules[0].field", "rules[1].field", "rules[2].op", "rules[3].value", "rules[4].op",
        "rules[5].value", "rules[6].value", "rules[7].value[1]", "rules[8].value", "rules[9].value",
        "rules[10].value", "rules[11].value", "bands", "bands", "bands",
    ]  # fmt: skip
    assert "PII" in found[1][1]


def test_decoding_bounds():
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"base": 101}, ScoringConfig)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"rules": [rule("state", "eq", "CA", 101)]}, ScoringConfig)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"rules": [rule("state", "eq", "CA")] * 101}, ScoringConfig)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(
            {"bands": [{"min_score": 0, "priority": "Way Too Long Priority"}]}, ScoringConfig
        )


# -- score filters ---------------------------------------------------------------------------

NOW = dt.datetime(2026, 3, 2, 15, tzinfo=dt.timezone.utc)


def filters(*items) -> tuple[Filter, ...]:
    return msgspec.convert(list(items), tuple[Filter, ...])


def test_score_filters_pass_fail_and_name_their_reason():
    high = with_score(LEAD, 85, "high")
    low = with_score(LEAD, 40, "low")
    at_least_70 = filters({"kind": "score_range", "minimum": 70})
    assert check_filters(at_least_70, high, NOW) is None
    assert check_filters(at_least_70, low, NOW) == reasons.FILTERED_SCORE == "filtered:score"
    assert check_filters(at_least_70, LEAD, NOW) == "filtered:score"  # unscored: no score to pass
    only_high = filters({"kind": "priority_in", "values": ["high"]})
    assert check_filters(only_high, high, NOW) is None
    assert check_filters(only_high, low, NOW) == "filtered:priority"
    campaign = CampaignRules(campaign_id="c", buyer_id="b", vertical="v", timezone="UTC",
                             filters=at_least_70, fixed_price_minor=100)  # fmt: skip
    decision = evaluate(campaign, low, NOW, {}, buyer_can_pay=True, already_bought=False)
    assert (decision.reason, decision.details) == (
        "filtered:score",
        {"filter": "score_range", "value": 40},
    )
    assert evaluate(campaign, high, NOW, {}, buyer_can_pay=True, already_bought=False).eligible


def test_score_filters_validate_and_keep_fields_untouched():
    assert with_score(LEAD, None, None) is LEAD
    assert validate_filters(filters({"kind": "score_range", "minimum": 80, "maximum": 20}), FIELDS) == [
        ("filters[0].maximum", "maximum is below minimum")
    ]  # fmt: skip
    assert validate_filters(filters({"kind": "priority_in", "values": ["high"]}), FIELDS) == []
    with pytest.raises(msgspec.ValidationError):
        filters({"kind": "score_range", "minimum": 101})
