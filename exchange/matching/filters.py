"""Campaign filters: what a lead must look like for a campaign to want it.

Filters are data (msgspec Structs in a tagged union on ``kind``), stored as JSON and sent over the
API as-is. Each one names the lead field it tests, so a failing filter yields the reason
``filtered:<field>``; an expression filter yields ``filtered:expression`` (see ``reasons``).

Rules shared by every kind:
- a missing lead field fails the filter (also for the "not in" kinds: a campaign that excludes
  some states has not said it takes leads whose state is unknown);
- a value of the wrong type fails the filter rather than raising;
- filters run in a fixed order (``evaluation_order``): the kinds the index can look up first,
  then cheap checks, then geo distance, age and expressions. The first failing one is the reason,
  which is also what lets the index name the reason for a campaign it never evaluates.

Two kinds test the lead's score rather than a field (``score_range``, ``priority_in``): the
auction hands them the score under the reserved keys ``SCORE_KEY`` and ``PRIORITY_KEY`` of the
fields it matches with (``with_score``), names no vertical field can take; they report
``filtered:score`` and ``filtered:priority``. A lead of a vertical that scores nothing has no
score and fails them.

Set-valued fields are frozensets so membership costs O(1) per lead; encode with
``msgspec.json.encode(..., order="deterministic")`` for a stable JSON order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Union

import msgspec

from exchange import geo, reasons
from exchange.intake.fields import CHOICE_MAX_CHARS, CHOICES_MAX, FieldFormat, FieldName, FieldSpec
from exchange.matching import expression
from exchange.matching.localtime import BadTimezone, require_aware, timezone_problem, zone

STATES_MAX = 64  # more than every code in geo.STATES
ZIPS_MAX = 50_000  # more than every US zip code
ZIP_PREFIXES_MAX = 1_000
RADIUS_MILES_MAX = 500.0
AGE_YEARS_MAX = 150
FILTERS_MAX = 50  # per campaign
EXPRESSION_MAX_CHARS = expression.EXPRESSION_MAX_CHARS
DEFAULT_TIMEZONE = "UTC"  # for ages when neither the filter nor the caller names a zone

StateCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
Zip5 = Annotated[str, msgspec.Meta(pattern=r"^\d{5}$")]
ZipPrefixText = Annotated[str, msgspec.Meta(pattern=r"^\d{1,5}$")]
Choice = Annotated[str, msgspec.Meta(min_length=1, max_length=CHOICE_MAX_CHARS)]
Years = Annotated[int, msgspec.Meta(ge=0, le=AGE_YEARS_MAX)]
Fields = Mapping[str, Any]
PRIORITIES_MAX = 10  # as many as a scoring config has bands

# Where the matching fields carry the lead's score: not a field name a vertical can declare.
SCORE_KEY = "_score"
PRIORITY_KEY = "_priority"


def with_score(fields: Fields, score: int | None, priority: str | None) -> Fields:
    """The fields campaigns match against: the lead's, plus its score when it has one."""
    if score is None:
        return fields
    return {**fields, SCORE_KEY: score, PRIORITY_KEY: priority}


class _Filter(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    tag_field="kind",
):
    pass


class StatesIn(_Filter, tag="states_in"):
    field: FieldName
    states: Annotated[frozenset[StateCode], msgspec.Meta(min_length=1, max_length=STATES_MAX)]


class StatesNotIn(_Filter, tag="states_not_in"):
    field: FieldName
    states: Annotated[frozenset[StateCode], msgspec.Meta(min_length=1, max_length=STATES_MAX)]


class ZipIn(_Filter, tag="zip_in"):
    field: FieldName
    zips: Annotated[frozenset[Zip5], msgspec.Meta(min_length=1, max_length=ZIPS_MAX)]


class ZipPrefix(_Filter, tag="zip_prefix"):
    """The lead's zip starts with any of the prefixes (1 to 5 digits)."""

    field: FieldName
    # A tuple, not a set: str.startswith takes a tuple and tests all prefixes in C.
    prefixes: Annotated[
        tuple[ZipPrefixText, ...], msgspec.Meta(min_length=1, max_length=ZIP_PREFIXES_MAX)
    ]


class ZipRadius(_Filter, tag="zip_radius"):
    """The lead's zip lies within ``miles`` (inclusive) of ``center``, centroid to centroid."""

    field: FieldName
    center: Zip5
    miles: Annotated[float, msgspec.Meta(gt=0, le=RADIUS_MILES_MAX)]


class NumberRange(_Filter, tag="number_range"):
    """An integer or money (minor units) field within [minimum, maximum]; either may be open."""

    field: FieldName
    minimum: int | None = None
    maximum: int | None = None


class EnumIn(_Filter, tag="enum_in"):
    field: FieldName
    values: Annotated[frozenset[Choice], msgspec.Meta(min_length=1, max_length=CHOICES_MAX)]


class EnumNotIn(_Filter, tag="enum_not_in"):
    field: FieldName
    values: Annotated[frozenset[Choice], msgspec.Meta(min_length=1, max_length=CHOICES_MAX)]


class BooleanIs(_Filter, tag="boolean_is"):
    field: FieldName
    value: bool


class AgeRange(_Filter, tag="age"):
    """Whole years since a date field, on ``now``'s date in ``timezone``; bounds inclusive.

    ``timezone`` None means the campaign's zone. Someone born on 29 February turns a year older
    on 1 March in non-leap years.
    """

    field: FieldName
    min_years: Years | None = None
    max_years: Years | None = None
    timezone: str | None = None


class ScoreRange(_Filter, tag="score_range"):
    """The lead's score (0-100) within [minimum, maximum]; either may be open."""

    minimum: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None
    maximum: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None

    @property
    def field(self) -> str:  # the key the score travels under (see ``with_score``)
        return SCORE_KEY


class PriorityIn(_Filter, tag="priority_in"):
    """The lead's priority band is one of ``values``."""

    values: Annotated[
        frozenset[Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_-]{0,15}$")]],
        msgspec.Meta(min_length=1, max_length=PRIORITIES_MAX),
    ]

    @property
    def field(self) -> str:
        return PRIORITY_KEY


class Expression(_Filter, tag="expression"):
    """A custom condition in the small language of ``exchange.matching.expression``."""

    expression: Annotated[str, msgspec.Meta(min_length=1, max_length=EXPRESSION_MAX_CHARS)]


Filter = Union[
    StatesIn, StatesNotIn, ZipIn, ZipPrefix, ZipRadius, NumberRange,
    EnumIn, EnumNotIn, BooleanIs, AgeRange, Expression, ScoreRange, PriorityIn,
]  # fmt: skip

# The kinds the index can look up by the lead's value; they run first (see module docstring).
INDEXABLE_KINDS: tuple[type, ...] = (StatesIn, ZipIn, ZipPrefix)
_RANK: dict[type, int] = {
    StatesIn: 0, ZipIn: 0, ZipPrefix: 0,
    StatesNotIn: 1, EnumIn: 1, EnumNotIn: 1, BooleanIs: 1, NumberRange: 1,
    ScoreRange: 1, PriorityIn: 1,
    ZipRadius: 2, AgeRange: 2,
    Expression: 3,
}  # fmt: skip

# Which vertical field formats each kind may test.
ACCEPTED_FORMATS: dict[type, frozenset[FieldFormat]] = {
    StatesIn: frozenset({FieldFormat.STATE}),
    StatesNotIn: frozenset({FieldFormat.STATE}),
    ZipIn: frozenset({FieldFormat.ZIP}),
    ZipPrefix: frozenset({FieldFormat.ZIP}),
    ZipRadius: frozenset({FieldFormat.ZIP}),
    NumberRange: frozenset({FieldFormat.INTEGER, FieldFormat.MONEY}),
    EnumIn: frozenset({FieldFormat.ENUM}),
    EnumNotIn: frozenset({FieldFormat.ENUM}),
    BooleanIs: frozenset({FieldFormat.BOOLEAN}),
    AgeRange: frozenset({FieldFormat.DATE}),
}
_VALUE_KIND: dict[FieldFormat, expression.Kind] = {
    FieldFormat.INTEGER: "int",
    FieldFormat.MONEY: "int",
    FieldFormat.BOOLEAN: "bool",
}  # every other format holds a string


def filter_field(item: Filter) -> str:
    """The field a filter reports in ``filtered:<field>``."""
    if isinstance(item, Expression):
        return reasons.EXPRESSION_FIELD
    if isinstance(item, ScoreRange):
        return reasons.SCORE_FIELD
    if isinstance(item, PriorityIn):
        return reasons.PRIORITY_FIELD
    return item.field


def evaluation_order(filters: Sequence[Filter]) -> Sequence[Filter]:
    """Filters in the order they run: by kind rank, then as the campaign lists them. Worked
    out once per campaign's filters (a market snapshot keeps the same tuple for every lead)."""
    key = id(filters)
    cached = _ORDERED.get(key)
    if cached is not None and cached[0] is filters:
        return cached[1]
    ordered = sorted(filters, key=lambda item: _RANK[type(item)])
    if isinstance(filters, tuple):  # immutable: safe to remember (a list could change under us)
        if len(_ORDERED) >= _ORDERED_MAX:
            _ORDERED.clear()
        _ORDERED[key] = (filters, ordered)
    return ordered


# id(filters) -> (filters, their evaluation order); the tuple is kept so its id stays its own.
_ORDERED: dict[int, tuple[Sequence[Filter], list[Filter]]] = {}
_ORDERED_MAX = 20_000  # about two snapshots of 10,000 campaigns; then it starts again


def first_failing(
    filters: Sequence[Filter], fields: Fields, now: dt.datetime, *, tz: str = DEFAULT_TIMEZONE
) -> Filter | None:
    """The first filter (in evaluation order) the lead fails, or None."""
    for item in evaluation_order(filters):
        if not _CHECKS[type(item)](item, fields, now, tz):
            return item
    return None


def check_filters(
    filters: Sequence[Filter], fields: Fields, now: dt.datetime, *, tz: str = DEFAULT_TIMEZONE
) -> str | None:
    """None when the lead passes every filter, else ``filtered:<field>``.

    ``tz`` is the zone for age filters that do not name their own (the campaign's zone).
    """
    failed = first_failing(filters, fields, now, tz=tz)
    return None if failed is None else reasons.filtered(filter_field(failed))


# -- one check per kind: (filter, lead fields, now, default tz) -> passes --------------------


def _str(fields: Fields, name: str) -> str | None:
    value = fields.get(name)
    return value if isinstance(value, str) else None


def _int(fields: Fields, name: str) -> int | None:
    value = fields.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _states_in(item: StatesIn, fields: Fields, now: dt.datetime, tz: str) -> bool:
    return _str(fields, item.field) in item.states


def _states_not_in(item: StatesNotIn, fields: Fields, now: dt.datetime, tz: str) -> bool:
    value = _str(fields, item.field)
    return value is not None and value not in item.states


def _zip_in(item: ZipIn, fields: Fields, now: dt.datetime, tz: str) -> bool:
    return _str(fields, item.field) in item.zips


def _zip_prefix(item: ZipPrefix, fields: Fields, now: dt.datetime, tz: str) -> bool:
    value = _str(fields, item.field)
    return value is not None and value.startswith(item.prefixes)


def _zip_radius(item: ZipRadius, fields: Fields, now: dt.datetime, tz: str) -> bool:
    value = _str(fields, item.field)
    here = geo.zip_position(value) if value is not None else None
    center = geo.zip_position(item.center)
    if here is None or center is None:  # unknown zips have no position: cannot be near
        return False
    return geo.distance_between(here, center) <= item.miles


def _number_range(item: NumberRange, fields: Fields, now: dt.datetime, tz: str) -> bool:
    value = _int(fields, item.field)
    if value is None:
        return False
    return (item.minimum is None or value >= item.minimum) and (
        item.maximum is None or value <= item.maximum
    )


def _enum_in(item: EnumIn, fields: Fields, now: dt.datetime, tz: str) -> bool:
    return _str(fields, item.field) in item.values


def _enum_not_in(item: EnumNotIn, fields: Fields, now: dt.datetime, tz: str) -> bool:
    value = _str(fields, item.field)
    return value is not None and value not in item.values


def _boolean_is(item: BooleanIs, fields: Fields, now: dt.datetime, tz: str) -> bool:
    value = fields.get(item.field)
    return isinstance(value, bool) and value == item.value


def age_in_years(born: dt.date, today: dt.date) -> int:
    """Whole years from ``born`` to ``today`` (negative for future dates)."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _age(item: AgeRange, fields: Fields, now: dt.datetime, tz: str) -> bool:
    value = _str(fields, item.field)
    if value is None:
        return False
    try:
        born = dt.date.fromisoformat(value)
        today = require_aware(now).astimezone(zone(item.timezone or tz)).date()
    except (ValueError, BadTimezone):
        return False
    years = age_in_years(born, today)
    return (item.min_years is None or years >= item.min_years) and (
        item.max_years is None or years <= item.max_years
    )


def _score_range(item: ScoreRange, fields: Fields, now: dt.datetime, tz: str) -> bool:
    value = _int(fields, SCORE_KEY)
    if value is None:
        return False
    return (item.minimum is None or value >= item.minimum) and (
        item.maximum is None or value <= item.maximum
    )


def _priority_in(item: PriorityIn, fields: Fields, now: dt.datetime, tz: str) -> bool:
    return _str(fields, PRIORITY_KEY) in item.values


def _expression(item: Expression, fields: Fields, now: dt.datetime, tz: str) -> bool:
    try:
        compiled = expression.compile_expression(item.expression)
    except expression.UnsafeExpression:
        return False  # validation refuses these; a stored bad one must still never pass
    return compiled(fields)


_CHECKS: dict[type, Callable[[Any, Fields, dt.datetime, str], bool]] = {
    StatesIn: _states_in,
    StatesNotIn: _states_not_in,
    ZipIn: _zip_in,
    ZipPrefix: _zip_prefix,
    ZipRadius: _zip_radius,
    NumberRange: _number_range,
    EnumIn: _enum_in,
    EnumNotIn: _enum_not_in,
    BooleanIs: _boolean_is,
    AgeRange: _age,
    Expression: _expression,
    ScoreRange: _score_range,
    PriorityIn: _priority_in,
}


# -- validation against a vertical -----------------------------------------------------------


def validate_filters(
    filters: Sequence[Filter], vertical_fields: Sequence[FieldSpec], *, path: str = "filters"
) -> list[tuple[str, str]]:
    """Every problem as (path, reason): unknown or incompatible fields, bad values, unsafe or
    ill-typed expressions. Filters on PII fields are refused: PII never travels on a ping, so
    such a filter could never pass at eligibility time."""
    problems: list[tuple[str, str]] = []
    if len(filters) > FILTERS_MAX:
        problems.append((path, f"at most {FILTERS_MAX} filters"))
    specs = {spec.name: spec for spec in vertical_fields}
    for i, item in enumerate(filters):
        at = f"{path}[{i}]"
        if isinstance(item, Expression):
            for reason in _expression_problems(item, specs):
                problems.append((f"{at}.expression", reason))
            continue
        if isinstance(item, ScoreRange):
            bounds = _bounds_problems(item.minimum, item.maximum, "minimum", "maximum")
            problems.extend((f"{at}.{sub}", reason) for sub, reason in bounds)
            continue
        if isinstance(item, PriorityIn):
            continue  # the vertical's bands may change; a priority no band has never passes
        spec = specs.get(item.field)
        if spec is None:
            problems.append((f"{at}.field", f"unknown field {item.field!r}"))
            continue
        if spec.format not in ACCEPTED_FORMATS[type(item)]:
            accepted = ", ".join(sorted(f.value for f in ACCEPTED_FORMATS[type(item)]))
            reason = f"{item.field!r} has format {spec.format.value}; this filter takes {accepted}"
            problems.append((f"{at}.field", reason))
            continue
        if spec.pii:
            problems.append((f"{at}.field", f"{item.field!r} is PII and is never sent on a ping"))
        problems.extend((f"{at}.{sub}", reason) for sub, reason in _value_problems(item, spec))
    return problems


def _value_problems(item: Filter, spec: FieldSpec) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(item, (StatesIn, StatesNotIn)):
        unknown = sorted(code for code in item.states if code not in geo.STATES)
        if unknown:
            out.append(("states", f"unknown state codes: {', '.join(unknown)}"))
    elif isinstance(item, ZipRadius):
        if geo.zip_info(item.center) is None:
            out.append(("center", f"unknown zip code {item.center!r}"))
    elif isinstance(item, NumberRange):
        out.extend(_bounds_problems(item.minimum, item.maximum, "minimum", "maximum"))
    elif isinstance(item, (EnumIn, EnumNotIn)):
        # Lead values are normalised to the declared spelling, so filters must use it too.
        unknown = sorted(value for value in item.values if value not in (spec.choices or ()))
        if unknown:
            out.append(("values", f"not choices of {spec.name!r}: {', '.join(unknown)}"))
    elif isinstance(item, AgeRange):
        out.extend(_bounds_problems(item.min_years, item.max_years, "min_years", "max_years"))
        if item.timezone is not None and (problem := timezone_problem(item.timezone)):
            out.append(("timezone", problem))
    return out


def _bounds_problems(
    low: int | None, high: int | None, low_name: str, high_name: str
) -> list[tuple[str, str]]:
    if low is None and high is None:
        return [(low_name, f"give {low_name}, {high_name} or both")]
    if low is not None and high is not None and low > high:
        return [(high_name, f"{high_name} is below {low_name}")]
    return []


def _expression_problems(item: Expression, specs: Mapping[str, FieldSpec]) -> list[str]:
    kinds = {name: _VALUE_KIND.get(spec.format, "str") for name, spec in specs.items()}
    try:
        problems = expression.type_problems(item.expression, kinds)
        names = expression.compile_expression(item.expression).fields
    except expression.UnsafeExpression as exc:
        return [exc.reason]
    problems += [
        f"{name!r} is PII and is never sent on a ping"
        for name in sorted(names)
        if name in specs and specs[name].pii
    ]
    return problems
