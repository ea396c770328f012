"""Vertical declarations: what msgspec's types refuse, and check_spec's cross-field rules."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from exchange.intake.fields import (
    RESERVED_FIELD_NAMES,
    FieldFormat,
    FieldSpec,
    SpecProblem,
    VerticalSpec,
    check_spec,
)


def decode(body: dict[str, Any]) -> VerticalSpec:
    return msgspec.json.decode(msgspec.json.encode(body), type=VerticalSpec)


def vertical(*fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"slug": "auto-insurance", "name": "Auto insurance", "fields": list(fields), **extra}


ZIP = {"name": "zip", "format": "zip", "required_on_ping": True, "required_on_post": True}
PHONE = {"name": "phone", "format": "phone", "pii": True, "required_on_post": True}


def problems(*fields: dict[str, Any], fields_max: int = 50) -> list[tuple[str, str]]:
    found = check_spec(decode(vertical(*fields)), fields_max=fields_max)
    return [(p.path, p.reason) for p in found]


# ------------------------------------------------------------------------------ decoding


def test_decode_full_vertical_with_defaults():
    spec = decode(
        vertical(
            ZIP,
            PHONE,
            {"name": "credit", "format": "enum", "choices": ["Good", "Bad"], "label": "Credit"},
            {"name": "amount", "format": "money", "minimum": 0, "maximum": 100_000},
            {"name": "notes", "format": "text", "max_length": 500},
        )
    )
    assert spec.slug == "auto-insurance"
    assert spec.currency == "USD"
    assert spec.dedupe_window_days == 30
    assert spec.description == ""
    assert [f.format for f in spec.fields] == [
        FieldFormat.ZIP, FieldFormat.PHONE, FieldFormat.ENUM, FieldFormat.MONEY, FieldFormat.TEXT
    ]
    assert spec.fields[1] == FieldSpec(
        name="phone", format=FieldFormat.PHONE, pii=True, required_on_post=True
    )
    assert spec.fields[2].choices == ["Good", "Bad"]
    assert spec.fields[4].max_length == 500
    assert check_spec(spec, fields_max=50) == []


def test_field_spec_encodes_without_defaults():
    field = FieldSpec(name="zip", format=FieldFormat.ZIP, required_on_ping=True)
    assert msgspec.json.encode(field) == b'{"name":"zip","format":"zip","required_on_ping":true}'


def test_vertical_round_trips_through_json():
    spec = decode(vertical(ZIP, PHONE, dedupe_window_days=0, currency="CAD"))
    assert decode(msgspec.to_builtins(spec)) == spec


@pytest.mark.parametrize(
    "body",
    [
        vertical(ZIP, slug="Auto"),  # upper case
        vertical(ZIP, slug="a"),  # too short
        vertical(ZIP, slug="1auto"),
        vertical(ZIP, slug="auto insurance"),
        vertical(ZIP, name=""),
        vertical(),  # no fields
        vertical(ZIP, currency="usd"),
        vertical(ZIP, currency="USDX"),
        vertical(ZIP, dedupe_window_days=-1),
        vertical(ZIP, dedupe_window_days=366),
        vertical(ZIP, surprise=True),  # unknown key
        vertical({"name": "FirstName", "format": "text"}),
        vertical({"name": "1st", "format": "text"}),
        vertical({"name": "first-name", "format": "text"}),
        vertical({"name": "a" * 64, "format": "text"}),
        vertical({"name": "x", "format": "colour"}),
        vertical({"name": "x", "format": "text", "max_length": 0}),
        vertical({"name": "x", "format": "enum", "choices": [""]}),
        vertical({"name": "x", "format": "enum", "choices": ["c" * 101]}),
        vertical({"name": "x", "format": "enum", "choices": [f"c{i}" for i in range(501)]}),
        vertical({"name": "x", "format": "text", "sensitive": True}),  # unknown field key
        vertical({"name": "x", "format": "integer", "minimum": 1.5}),
        vertical({"name": "x", "format": "text", "pii": "yes"}),
        vertical({"name": "x", "format": "text", "label": "l" * 201}),
    ],
)
def test_decode_rejects(body):
    with pytest.raises(msgspec.ValidationError):
        decode(body)


def test_decode_accepts_limits():
    spec = decode(
        vertical(
            {"name": "a" * 63, "format": "text", "max_length": 1},
            {"name": "e", "format": "enum", "choices": ["c" * 100] + [f"c{i}" for i in range(499)]},
            dedupe_window_days=365,
        )
    )
    assert len(spec.fields[1].choices) == 500
    assert check_spec(spec, fields_max=50) == []


# ----------------------------------------------------------------------------- check_spec


def test_clean_spec_has_no_problems():
    age = {"name": "age", "format": "integer", "minimum": 18, "maximum": 18}
    assert problems(ZIP, PHONE, age) == []


def test_too_many_fields():
    fields = [{"name": f"f{i}", "format": "text"} for i in range(4)]
    assert problems(*fields, fields_max=3) == [("fields", "at most 3 fields")]
    assert problems(*fields, fields_max=4) == []


def test_duplicate_field_names():
    assert problems(ZIP, PHONE, {"name": "zip", "format": "text"}) == [
        ("fields[2].name", "duplicate field name 'zip'")
    ]


@pytest.mark.parametrize("name", sorted(RESERVED_FIELD_NAMES))
def test_reserved_field_names(name):
    assert problems(ZIP, {"name": name, "format": "text"}) == [
        ("fields[1].name", f"{name!r} is reserved")
    ]


def test_reserved_names_are_the_envelope_keys_and_filter_reasons():
    # "expression", "score" and "priority" name filter reasons (filtered:expression, filtered:score,
    # filtered:priority), so no field may take them.
    assert RESERVED_FIELD_NAMES == {
        "id", "lead_id", "ping_id", "vertical", "source", "sub_ids", "consent", "test", "status",
        "expression", "score", "priority",
    }


@pytest.mark.parametrize("choices", [None, []])
def test_enum_needs_choices(choices):
    field = {"name": "credit", "format": "enum"}
    if choices is not None:
        field["choices"] = choices
    assert problems(field) == [("fields[0].choices", "an enum field needs choices")]


@pytest.mark.parametrize("choices", [["Good", "good"], ["a", "b", "a"], ["Straße", "STRASSE"]])
def test_enum_choices_unique_case_insensitively(choices):
    assert problems({"name": "c", "format": "enum", "choices": choices}) == [
        ("fields[0].choices", "choices must be unique")
    ]


@pytest.mark.parametrize("choices", [["Good", " Bad"], ["Good "], [" "], ["a\t"]])
def test_enum_choices_without_surrounding_spaces(choices):
    # Submitted values are stripped before matching: such a choice could never be chosen.
    assert problems({"name": "c", "format": "enum", "choices": choices}) == [
        ("fields[0].choices", "choices must not start or end with spaces")
    ]


def test_enum_choice_with_inner_space_is_fine():
    assert problems({"name": "c", "format": "enum", "choices": ["Very good", "Bad"]}) == []


@pytest.mark.parametrize("fmt", [f.value for f in FieldFormat if f is not FieldFormat.ENUM])
def test_only_enum_takes_choices(fmt):
    assert problems({"name": "x", "format": fmt, "choices": ["a"]}) == [
        ("fields[0].choices", "only enum fields take choices")
    ]


@pytest.mark.parametrize(
    "fmt", [f.value for f in FieldFormat if f not in (FieldFormat.INTEGER, FieldFormat.MONEY)]
)
@pytest.mark.parametrize("bounds", [{"minimum": 1}, {"maximum": 1}, {"minimum": 0, "maximum": 1}])
def test_only_numbers_take_bounds(fmt, bounds):
    field = {"name": "x", "format": fmt, **bounds}
    if fmt == "enum":
        field["choices"] = ["a"]
    assert problems(field) == [("fields[0].minimum", "only integer and money fields take bounds")]


@pytest.mark.parametrize("fmt", ["integer", "money"])
def test_bounds_order(fmt):
    assert problems({"name": "x", "format": fmt, "minimum": 5, "maximum": 4}) == [
        ("fields[0].maximum", "maximum is below minimum")
    ]
    assert problems({"name": "x", "format": fmt, "minimum": -5}) == []
    assert problems({"name": "x", "format": fmt, "maximum": 5}) == []


@pytest.mark.parametrize("fmt", [f.value for f in FieldFormat if f is not FieldFormat.TEXT])
def test_only_text_takes_max_length(fmt):
    field = {"name": "x", "format": fmt, "max_length": 10}
    if fmt == "enum":
        field["choices"] = ["a"]
    assert problems(field) == [("fields[0].max_length", "only text fields take max_length")]


def test_pii_never_required_on_ping():
    assert problems({**PHONE, "required_on_ping": True}) == [
        ("fields[0].required_on_ping", "a PII field is never sent on a ping")
    ]
    assert problems({**PHONE, "required_on_ping": False}) == []


def test_every_problem_is_reported_in_order():
    fields = [
        ZIP,
        {"name": "zip", "format": "text", "choices": ["a"], "minimum": 1},
        {"name": "status", "format": "enum", "choices": ["A", "a"], "max_length": 3},
        {"name": "n", "format": "integer", "minimum": 2, "maximum": 1, "pii": True,
         "required_on_ping": True},
    ]
    assert problems(*fields, fields_max=3) == [
        ("fields", "at most 3 fields"),
        ("fields[1].name", "duplicate field name 'zip'"),
        ("fields[1].choices", "only enum fields take choices"),
        ("fields[1].minimum", "only integer and money fields take bounds"),
        ("fields[2].name", "'status' is reserved"),
        ("fields[2].choices", "choices must be unique"),
        ("fields[2].max_length", "only text fields take max_length"),
        ("fields[3].maximum", "maximum is below minimum"),
        ("fields[3].required_on_ping", "a PII field is never sent on a ping"),
    ]


def test_problems_encode_as_path_and_reason():
    assert msgspec.to_builtins(SpecProblem("fields[0].name", "x")) == {
        "path": "fields[0].name",
        "reason": "x",
    }
