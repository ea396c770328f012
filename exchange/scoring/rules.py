"""A vertical's lead score: operator rules plus what the source's history has taught us.

Pure: plain values in, plain values out (no database, no clock). The score of a lead is

    base + the points of every rule it matches + the learned part, clamped to 0..100

and its priority is the first band (highest ``min_score`` first) the score reaches.

The learned part compares the source's conversion rate with the vertical's. With few outcomes a
source's raw rate is noise, so it is shrunk toward the vertical's rate by
``learned_prior_strength`` pseudo-trials (the mean of a Beta posterior whose prior is the
vertical's rate): ``post = (successes + k * base) / (trials + k)``. The difference
``post - base``, scaled by the most it could be (``max(base, 1 - base)``), moves the score by up
to ``learned_weight`` points either way. Exact fractions, rounded half away from zero: the same
counts always give the same score on every machine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Annotated, Any

import msgspec

from exchange import geo
from exchange.intake.fields import FieldFormat, FieldName, FieldSpec

SCORE_MIN = 0
SCORE_MAX = 100
RULES_MAX = 100
BANDS_MAX = 10
IN_VALUES_MAX = 500
LABEL_MAX_CHARS = 100
PRIOR_STRENGTH_MAX = 100_000
PRIORITY_PATTERN = r"^[a-z][a-z0-9_-]{0,15}$"  # fits leads.priority (16 characters)

Points = Annotated[int, msgspec.Meta(ge=-100, le=100)]
ScoreValue = Annotated[int, msgspec.Meta(ge=SCORE_MIN, le=SCORE_MAX)]
PriorityName = Annotated[str, msgspec.Meta(pattern=PRIORITY_PATTERN)]

OPS = ("eq", "ne", "in", "not_in", "gte", "lte", "between", "present", "absent")
_ORDERED_FORMATS = frozenset({FieldFormat.INTEGER, FieldFormat.MONEY, FieldFormat.DATE})


class Rule(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """``points`` when the lead's ``field`` satisfies ``op`` with ``value``.

    Values are in the stored (normalised) form: money in minor units, states upper-case, dates
    ``YYYY-MM-DD``, enum values as the vertical declares them. ``in``/``not_in`` take a list,
    ``between`` a ``[low, high]`` pair (inclusive), ``present``/``absent`` no value. A lead
    without the field matches only ``absent`` (as campaign filters, "not" rules do not match a
    lead that does not say)."""

    field: FieldName
    op: str
    value: Any = None
    points: Points
    label: Annotated[str, msgspec.Meta(max_length=LABEL_MAX_CHARS)] = ""


class Band(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    min_score: ScoreValue
    priority: PriorityName


def _default_bands() -> list[Band]:
    return [
        Band(min_score=80, priority="high"),
        Band(min_score=50, priority="normal"),
        Band(min_score=0, priority="low"),
    ]


class ScoringConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How a vertical scores its leads (stored in ``verticals.scoring``)."""

    base: ScoreValue = 50
    rules: Annotated[list[Rule], msgspec.Meta(max_length=RULES_MAX)] = []
    bands: Annotated[list[Band], msgspec.Meta(min_length=1, max_length=BANDS_MAX)] = msgspec.field(
        default_factory=_default_bands
    )
    # Points the source's history can move the score, either way; 0 turns learning off.
    learned_weight: Annotated[int, msgspec.Meta(ge=0, le=100)] = 20
    # Pseudo-trials at the vertical's rate that a source's own outcomes must outweigh.
    learned_prior_strength: Annotated[int, msgspec.Meta(ge=1, le=PRIOR_STRENGTH_MAX)] = 20


class Counts(msgspec.Struct, frozen=True):
    """Leads that reached a final outcome (trials; a bad lead is one) and how many were won."""

    trials: int = 0
    successes: int = 0


NO_COUNTS = Counts()


class ScorePart(msgspec.Struct, frozen=True):
    label: str
    points: int


class LeadScore(msgspec.Struct, frozen=True, kw_only=True):
    score: int
    priority: str
    parts: list[ScorePart]


# -- scoring ----------------------------------------------------------------------------------


def score(
    config: ScoringConfig,
    fields: Mapping[str, Any],
    source_counts: Counts = NO_COUNTS,
    vertical_counts: Counts = NO_COUNTS,
) -> LeadScore:
    """The lead's score, priority and the parts that made it (see the module docstring)."""
    parts = [ScorePart("base", config.base)]
    for rule in config.rules:
        if matches(rule, fields):
            parts.append(ScorePart(rule.label or describe(rule), rule.points))
    if config.learned_weight > 0:
        parts.append(learned_part(config, source_counts, vertical_counts))
    total = sum(p.points for p in parts)
    clamped = min(SCORE_MAX, max(SCORE_MIN, total))
    if clamped != total:
        parts.append(ScorePart(f"clamped to {SCORE_MIN}..{SCORE_MAX}", clamped - total))
    return LeadScore(score=clamped, priority=priority_of(config.bands, clamped), parts=parts)


def priority_of(bands: Sequence[Band], value: int) -> str:
    """The band of the highest ``min_score`` the value reaches (the lowest band otherwise)."""
    ordered = sorted(bands, key=lambda b: b.min_score, reverse=True)
    for band in ordered:
        if value >= band.min_score:
            return band.priority
    return ordered[-1].priority


def _rates(config: ScoringConfig, source: Counts, vertical: Counts) -> tuple[Fraction, Fraction]:
    """(the source's smoothed rate, the vertical's rate); the vertical has outcomes."""
    base = Fraction(_bounded(vertical.successes, vertical.trials), vertical.trials)
    k = config.learned_prior_strength
    post = (_bounded(source.successes, source.trials) + k * base) / (max(source.trials, 0) + k)
    return post, base


def learned_points(config: ScoringConfig, source: Counts, vertical: Counts) -> int:
    """``-learned_weight..learned_weight``; 0 while the vertical has no outcomes."""
    if vertical.trials <= 0 or config.learned_weight == 0:
        return 0
    post, base = _rates(config, source, vertical)
    scaled = (post - base) / max(base, 1 - base)
    return _round(config.learned_weight * min(Fraction(1), max(Fraction(-1), scaled)))


def learned_part(config: ScoringConfig, source: Counts, vertical: Counts) -> ScorePart:
    if vertical.trials <= 0:
        return ScorePart("source history: no outcomes in this vertical yet", 0)
    points = learned_points(config, source, vertical)
    post, base = _rates(config, source, vertical)
    label = (
        f"source history: {_percent(post)} ({max(source.trials, 0)} outcomes) "
        f"vs vertical {_percent(base)}: {points:+d}"
    )
    return ScorePart(label, points)


def _bounded(successes: int, trials: int) -> int:
    return min(max(successes, 0), max(trials, 0))


def _round(value: Fraction) -> int:
    """Half away from zero, so +x and -x round alike."""
    whole = int((abs(value) * 2 + 1) // 2)
    return whole if value >= 0 else -whole


def _percent(rate: Fraction) -> str:
    return f"{_round(rate * 100)}%"


def matches(rule: Rule, fields: Mapping[str, Any]) -> bool:
    value = fields.get(rule.field)
    if rule.op == "present":
        return value is not None
    if rule.op == "absent":
        return value is None
    if value is None:
        return False
    try:
        if rule.op == "eq":
            return _same(value, rule.value)
        if rule.op == "ne":
            return not _same(value, rule.value)
        if rule.op == "in":
            return any(_same(value, v) for v in rule.value)
        if rule.op == "not_in":
            return not any(_same(value, v) for v in rule.value)
        if _is_bool(value):
            return False
        if rule.op == "gte":
            return value >= rule.value
        if rule.op == "lte":
            return value <= rule.value
        if rule.op == "between":
            low, high = rule.value
            return low <= value <= high
    except TypeError:  # a stored value of another type than the rule's: no match, never a crash
        return False
    return False


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    return _is_bool(a) == _is_bool(b) and a == b  # True is not 1


def describe(rule: Rule) -> str:
    if rule.op in ("present", "absent"):
        return f"{rule.field} {rule.op}"
    return f"{rule.field} {rule.op} {msgspec.json.encode(rule.value).decode()}"


# -- validation against a vertical ------------------------------------------------------------


def validate_config(
    config: ScoringConfig, vertical_fields: Sequence[FieldSpec], *, path: str = ""
) -> list[tuple[str, str]]:
    """Every problem as (path, reason). Rules may only read non-PII fields: a ping carries no
    PII, and campaigns filter on the score at the ping."""
    at = f"{path}." if path else ""
    problems: list[tuple[str, str]] = []
    specs = {spec.name: spec for spec in vertical_fields}
    for i, rule in enumerate(config.rules):
        problems += [(f"{at}rules[{i}].{sub}", why) for sub, why in _rule_problems(rule, specs)]
    mins = [b.min_score for b in config.bands]
    names = [b.priority for b in config.bands]
    if len(set(mins)) != len(mins):
        problems.append((f"{at}bands", "each band needs its own min_score"))
    if len(set(names)) != len(names):
        problems.append((f"{at}bands", "each band needs its own priority"))
    if SCORE_MIN not in mins:
        problems.append(
            (f"{at}bands", f"one band must start at {SCORE_MIN}, so every score has one")
        )
    return problems


def _rule_problems(rule: Rule, specs: Mapping[str, FieldSpec]) -> list[tuple[str, str]]:
    spec = specs.get(rule.field)
    if spec is None:
        return [("field", f"unknown field {rule.field!r}")]
    if spec.pii:
        return [("field", f"{rule.field!r} is PII; scores are worked out from non-PII fields")]
    if rule.op not in OPS:
        return [("op", f"one of {', '.join(OPS)}")]
    if rule.op in ("present", "absent"):
        return [] if rule.value is None else [("value", f"{rule.op} takes no value")]
    if rule.op in ("gte", "lte", "between") and spec.format not in _ORDERED_FORMATS:
        return [
            (
                "op",
                f"{rule.op} needs an integer, money or date field; "
                f"{rule.field!r} is {spec.format.value}",
            )
        ]
    if rule.op in ("in", "not_in"):
        if not isinstance(rule.value, list) or not 1 <= len(rule.value) <= IN_VALUES_MAX:
            return [("value", f"a list of 1 to {IN_VALUES_MAX} values")]
        return [
            (f"value[{j}]", why)
            for j, v in enumerate(rule.value)
            if (why := _value_problem(spec, v))
        ]
    if rule.op == "between":
        if not isinstance(rule.value, list) or len(rule.value) != 2:
            return [("value", "a [low, high] pair")]
        out = [
            (f"value[{j}]", why)
            for j, v in enumerate(rule.value)
            if (why := _value_problem(spec, v))
        ]
        if not out and rule.value[0] > rule.value[1]:
            out.append(("value", "low is above high"))
        return out
    why = _value_problem(spec, rule.value)
    return [("value", why)] if why else []


def _value_problem(spec: FieldSpec, value: Any) -> str | None:
    """Why ``value`` could never equal a stored value of this field (None: it could)."""
    fmt = spec.format
    if fmt in (FieldFormat.INTEGER, FieldFormat.MONEY):
        if not isinstance(value, int) or _is_bool(value):
            unit = " (minor units)" if fmt is FieldFormat.MONEY else ""
            return f"an integer{unit}, as {spec.name!r} is {fmt.value}"
        return None
    if fmt is FieldFormat.BOOLEAN:
        return None if _is_bool(value) else f"true or false, as {spec.name!r} is boolean"
    if not isinstance(value, str):
        return f"a string, as {spec.name!r} is {fmt.value}"
    if fmt is FieldFormat.ENUM and value not in (spec.choices or ()):
        return f"not a choice of {spec.name!r}: {value!r}"
    if fmt is FieldFormat.STATE and value not in geo.STATES:
        return f"unknown state code {value!r}"
    if fmt is FieldFormat.ZIP and not (len(value) == 5 and value.isdigit()):
        return "a 5-digit zip code"
    if fmt is FieldFormat.DATE:
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return "a date as YYYY-MM-DD"
        if len(value) != 10:
            return "a date as YYYY-MM-DD"
    return None
