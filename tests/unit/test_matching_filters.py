"""Campaign filters: every kind passes and fails, the order filters run in, JSON, validation."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from exchange.intake.fields import FieldFormat, FieldSpec
from exchange.matching import (
    AgeRange,
    BooleanIs,
    EnumIn,
    EnumNotIn,
    Expression,
    Filter,
    NumberRange,
    StatesIn,
    StatesNotIn,
    ZipIn,
    ZipPrefix,
    ZipRadius,
    check_filters,
    evaluation_order,
    validate_filters,
)

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday, 10:00 in New York
LEAD = {
    "state": "TX",
    "zip": "75001",
    "credit_score": 700,
    "debt": 1_500_000,  # money, minor units
    "product": "Solar",
    "home_owner": True,
    "birth_date": "1990-06-15",
}
MISSING = object()


def lead(**changes: object) -> dict[str, object]:
    out = dict(LEAD)
    for name, value in changes.items():
        if value is MISSING:
            out.pop(name)
        else:
            out[name] = value
    return out


CASES: list[tuple[str, Filter, dict[str, object], str | None]] = [
    ("states_in pass", StatesIn(field="state", states=frozenset({"TX", "CA"})), {}, None),
    ("states_in fail", StatesIn(field="state", states=frozenset({"CA"})), {}, "filtered:state"),
    ("states_in missing", StatesIn(field="state", states=frozenset({"TX"})), {"state": MISSING}, "filtered:state"),
    ("states_not_in pass", StatesNotIn(field="state", states=frozenset({"NY"})), {}, None),
    ("states_not_in fail", StatesNotIn(field="state", states=frozenset({"TX"})), {}, "filtered:state"),
    ("states_not_in missing", StatesNotIn(field="state", states=frozenset({"NY"})), {"state": MISSING}, "filtered:state"),
    ("zip_in pass", ZipIn(field="zip", zips=frozenset({"75001", "10001"})), {}, None),
    ("zip_in fail", ZipIn(field="zip", zips=frozenset({"75001"})), {"zip": "75002"}, "filtered:zip"),
    ("zip_prefix pass", ZipPrefix(field="zip", prefixes=("10", "750")), {}, None),
    ("zip_prefix fail", ZipPrefix(field="zip", prefixes=("751", "7501")), {}, "filtered:zip"),
    ("zip_prefix whole zip", ZipPrefix(field="zip", prefixes=("75001",)), {}, None),
    ("zip_prefix missing", ZipPrefix(field="zip", prefixes=("7",)), {"zip": MISSING}, "filtered:zip"),
    # 75001 (Addison) to 75201 (Dallas) is 11.88 miles, to 75002 (Allen) 14.49 miles.
    ("radius pass", ZipRadius(field="zip", center="75201", miles=12), {}, None),
    ("radius fail", ZipRadius(field="zip", center="75201", miles=11.8), {}, "filtered:zip"),
    ("radius same zip", ZipRadius(field="zip", center="75001", miles=0.1), {}, None),
    ("radius unknown lead zip", ZipRadius(field="zip", center="75001", miles=500), {"zip": "00000"}, "filtered:zip"),
    ("range pass", NumberRange(field="credit_score", minimum=600, maximum=800), {}, None),
    ("range min inclusive", NumberRange(field="credit_score", minimum=700), {}, None),
    ("range max inclusive", NumberRange(field="credit_score", maximum=700), {}, None),
    ("range below", NumberRange(field="credit_score", minimum=701), {}, "filtered:credit_score"),
    ("range above", NumberRange(field="credit_score", maximum=699), {}, "filtered:credit_score"),
    ("range money", NumberRange(field="debt", minimum=1_000_000, maximum=1_500_000), {}, None),
    ("range money above", NumberRange(field="debt", maximum=1_499_999), {}, "filtered:debt"),
    ("range bool is not a number", NumberRange(field="credit_score", minimum=0), {"credit_score": True}, "filtered:credit_score"),
    ("range missing", NumberRange(field="credit_score", minimum=0), {"credit_score": MISSING}, "filtered:credit_score"),
    ("enum_in pass", EnumIn(field="product", values=frozenset({"Solar", "Roofing"})), {}, None),
    ("enum_in fail", EnumIn(field="product", values=frozenset({"Roofing"})), {}, "filtered:product"),
    ("enum_not_in pass", EnumNotIn(field="product", values=frozenset({"Roofing"})), {}, None),
    ("enum_not_in fail", EnumNotIn(field="product", values=frozenset({"Solar"})), {}, "filtered:product"),
    ("enum_not_in missing", EnumNotIn(field="product", values=frozenset({"Roofing"})), {"product": MISSING}, "filtered:product"),
    ("boolean pass", BooleanIs(field="home_owner", value=True), {}, None),
    ("boolean fail", BooleanIs(field="home_owner", value=False), {}, "filtered:home_owner"),
    ("boolean needs a bool", BooleanIs(field="home_owner", value=True), {"home_owner": 1}, "filtered:home_owner"),
    ("age pass", AgeRange(field="birth_date", min_years=18, max_years=65), {}, None),  # 36
    ("age too young", AgeRange(field="birth_date", min_years=37), {}, "filtered:birth_date"),
    ("age too old", AgeRange(field="birth_date", max_years=35), {}, "filtered:birth_date"),
    ("age bad date", AgeRange(field="birth_date", min_years=18), {"birth_date": "1990-02-30"}, "filtered:birth_date"),
    ("expression pass", Expression(expression="credit_score >= 650 and home_owner"), {}, None),
    ("expression fail", Expression(expression="credit_score >= 750"), {}, "filtered:expression"),
    ("expression missing field", Expression(expression="state == 'TX' or nope == 1"), {}, "filtered:expression"),
    ("expression unsafe never passes", Expression(expression="__import__('os')"), {}, "filtered:expression"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "item", "changes", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_filter_kind(name: str, item: Filter, changes: dict, expected: str | None) -> None:
    assert check_filters([item], lead(**changes), NOW) == expected


def test_no_filters_pass() -> None:
    assert check_filters([], {}, NOW) is None


@pytest.mark.parametrize(
    ("born", "now", "tz", "expected"),
    [
        # 18th birthday: reached on the day, in the zone's calendar.
        ("2008-11-23", NOW, "America/New_York", None),
        ("2008-11-24", NOW, "America/New_York", "filtered:birth_date"),
        # 03:00 UTC on the 24th is still the 23rd (22:00) in New York.
        ("2008-11-24", dt.datetime(2026, 11, 24, 3, 0, tzinfo=UTC), "America/New_York", "filtered:birth_date"),
        ("2008-11-24", dt.datetime(2026, 11, 24, 3, 0, tzinfo=UTC), "UTC", None),
        # Born on 29 February: 18 on 1 March in a non-leap year.
        ("2008-02-29", dt.datetime(2026, 2, 28, 17, 0, tzinfo=UTC), "America/New_York", "filtered:birth_date"),
        ("2008-02-29", dt.datetime(2026, 3, 1, 17, 0, tzinfo=UTC), "America/New_York", None),
    ],
)
def test_age_is_computed_in_the_given_zone(born: str, now: dt.datetime, tz: str, expected: str | None) -> None:
    item = AgeRange(field="birth_date", min_years=18, timezone=tz)
    assert check_filters([item], lead(birth_date=born), now) == expected


def test_age_without_zone_uses_the_callers_zone() -> None:
    item = AgeRange(field="birth_date", min_years=18)
    fields = lead(birth_date="2008-11-24")
    now = dt.datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    assert check_filters([item], fields, now, tz="America/New_York") == "filtered:birth_date"
    assert check_filters([item], fields, now, tz="UTC") is None


def test_geo_filters_run_first_then_in_the_campaigns_order() -> None:
    fails_enum = EnumIn(field="product", values=frozenset({"Roofing"}))
    fails_range = NumberRange(field="credit_score", minimum=800)
    fails_state = StatesIn(field="state", states=frozenset({"CA"}))
    fails_expression = Expression(expression="home_owner == False")
    filters = [fails_expression, fails_enum, fails_range, fails_state]
    assert evaluation_order(filters) == [fails_state, fails_enum, fails_range, fails_expression]
    assert check_filters(filters, LEAD, NOW) == "filtered:state"
    assert check_filters([fails_expression, fails_range, fails_enum], LEAD, NOW) == "filtered:credit_score"


ALL_KINDS_JSON = b"""[
 {"kind": "states_in", "field": "state", "states": ["TX", "CA"]},
 {"kind": "states_not_in", "field": "state", "states": ["NY"]},
 {"kind": "zip_in", "field": "zip", "zips": ["75001"]},
 {"kind": "zip_prefix", "field": "zip", "prefixes": ["750"]},
 {"kind": "zip_radius", "field": "zip", "center": "75201", "miles": 25},
 {"kind": "number_range", "field": "credit_score", "minimum": 600},
 {"kind": "enum_in", "field": "product", "values": ["Solar"]},
 {"kind": "enum_not_in", "field": "product", "values": ["Roofing"]},
 {"kind": "boolean_is", "field": "home_owner", "value": true},
 {"kind": "age", "field": "birth_date", "min_years": 18, "timezone": "America/New_York"},
 {"kind": "expression", "expression": "credit_score > 600"}
]"""


def test_filters_round_trip_as_tagged_json() -> None:
    filters = msgspec.json.decode(ALL_KINDS_JSON, type=list[Filter])
    assert [type(f).__name__ for f in filters] == [
        "StatesIn", "StatesNotIn", "ZipIn", "ZipPrefix", "ZipRadius", "NumberRange",
        "EnumIn", "EnumNotIn", "BooleanIs", "AgeRange", "Expression",
    ]  # fmt: skip
    assert check_filters(filters, LEAD, NOW) is None
    encoded = msgspec.json.encode(filters, order="deterministic")
    assert msgspec.json.decode(encoded, type=list[Filter]) == filters
    assert b'"states":["CA","TX"]' in encoded  # sets encode sorted: stable JSON
    assert b'"maximum"' not in encoded  # defaults are omitted


@pytest.mark.parametrize(
    "raw",
    [
        b'{"kind": "states_in", "field": "state", "states": ["TX"], "extra": 1}',
        b'{"kind": "nope", "field": "state"}',
        b'{"kind": "states_in", "field": "state", "states": ["tx"]}',
        b'{"kind": "states_in", "field": "state", "states": []}',
        b'{"kind": "zip_in", "field": "zip", "zips": ["7500"]}',
        b'{"kind": "zip_radius", "field": "zip", "center": "75001", "miles": 0}',
        b'{"kind": "zip_radius", "field": "zip", "center": "75001", "miles": 501}',
        b'{"kind": "expression", "expression": "' + b"a" * 501 + b'"}',
        b'{"kind": "boolean_is", "field": "Bad-Name", "value": true}',
    ],
)
def test_malformed_filters_are_refused_on_decode(raw: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(raw, type=Filter)


VERTICAL = [
    FieldSpec(name="state", format=FieldFormat.STATE),
    FieldSpec(name="zip", format=FieldFormat.ZIP),
    FieldSpec(name="credit_score", format=FieldFormat.INTEGER),
    FieldSpec(name="debt", format=FieldFormat.MONEY),
    FieldSpec(name="product", format=FieldFormat.ENUM, choices=["Solar", "Roofing"]),
    FieldSpec(name="home_owner", format=FieldFormat.BOOLEAN),
    FieldSpec(name="birth_date", format=FieldFormat.DATE),
    FieldSpec(name="dob", format=FieldFormat.DATE, pii=True),
    FieldSpec(name="phone", format=FieldFormat.PHONE, pii=True),
    FieldSpec(name="notes", format=FieldFormat.TEXT),
]


def test_valid_filters_have_no_problems() -> None:
    filters = msgspec.json.decode(ALL_KINDS_JSON, type=list[Filter])
    assert validate_filters(filters, VERTICAL) == []


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        (StatesIn(field="nope", states=frozenset({"TX"})), ("filters[0].field", "unknown field 'nope'")),
        (
            StatesIn(field="zip", states=frozenset({"TX"})),
            ("filters[0].field", "'zip' has format zip; this filter takes state"),
        ),
        (
            NumberRange(field="product", minimum=1),
            ("filters[0].field", "'product' has format enum; this filter takes integer, money"),
        ),
        (AgeRange(field="dob", min_years=18), ("filters[0].field", "'dob' is PII and is never sent on a ping")),
        (StatesIn(field="state", states=frozenset({"ZZ", "TX"})), ("filters[0].states", "unknown state codes: ZZ")),
        (ZipRadius(field="zip", center="00000", miles=5), ("filters[0].center", "unknown zip code '00000'")),
        (NumberRange(field="debt", minimum=5, maximum=4), ("filters[0].maximum", "maximum is below minimum")),
        (NumberRange(field="debt"), ("filters[0].minimum", "give minimum, maximum or both")),
        (EnumIn(field="product", values=frozenset({"solar"})), ("filters[0].values", "not choices of 'product': solar")),
        (
            AgeRange(field="birth_date", min_years=1, timezone="Mars/Olympus"),
            ("filters[0].timezone", "not an IANA time zone: 'Mars/Olympus'"),
        ),
        (AgeRange(field="birth_date", min_years=30, max_years=20), ("filters[0].max_years", "max_years is below min_years")),
        (Expression(expression="__import__('os')"), ("filters[0].expression", "function calls are not allowed")),
        (Expression(expression="nope == 1"), ("filters[0].expression", "unknown field 'nope'")),
        (Expression(expression="credit_score == '700'"), ("filters[0].expression", "compares an integer with a string")),
        (Expression(expression="home_owner > False"), ("filters[0].expression", "booleans take only == and !=")),
        (Expression(expression="notes"), ("filters[0].expression", "notes is not a boolean field; compare it to a value")),
        (
            Expression(expression="state in [1, 2]"),
            ("filters[0].expression", "compares a string with a list of int values"),
        ),
        (
            Expression(expression="phone == '+15125550142'"),
            ("filters[0].expression", "'phone' is PII and is never sent on a ping"),
        ),
    ],
)
def test_validation_names_the_path_and_reason(item: Filter, problem: tuple[str, str]) -> None:
    assert validate_filters([item], VERTICAL) == [problem]


def test_validation_reports_every_filter_with_its_index() -> None:
    filters = [
        StatesIn(field="state", states=frozenset({"TX"})),
        BooleanIs(field="nope", value=True),
        Expression(expression="a.b"),
    ]
    assert validate_filters(filters, VERTICAL, path="campaign.filters") == [
        ("campaign.filters[1].field", "unknown field 'nope'"),
        ("campaign.filters[2].expression", "attribute access is not allowed"),
    ]
