"""validate_lead: every failing field with its path and reason; the PII/non-PII split."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.intake.fields import FieldFormat, FieldSpec
from exchange.intake.messages import Consent, LeadIn, SubIds
from exchange.intake.validate import FieldError, Limits, Stage, ValidLead, validate_lead

F = FieldFormat
SPEC = [
    FieldSpec(name="zip", format=F.ZIP, required_on_ping=True, required_on_post=True),
    FieldSpec(name="state", format=F.STATE),
    FieldSpec(name="loan_amount", format=F.MONEY, required_on_ping=True, required_on_post=True,
              minimum=100_000, maximum=10_000_000),
    FieldSpec(name="credit", format=F.ENUM, choices=["Excellent", "Good", "Fair", "Poor"]),
    FieldSpec(name="age", format=F.INTEGER, minimum=18, maximum=120),
    FieldSpec(name="owns_home", format=F.BOOLEAN),
    FieldSpec(name="comments", format=F.TEXT, max_length=20),
    FieldSpec(name="first_name", format=F.TEXT, pii=True, required_on_post=True),
    FieldSpec(name="phone", format=F.PHONE, pii=True, required_on_post=True),
    FieldSpec(name="email", format=F.EMAIL, pii=True, required_on_post=True),
    FieldSpec(name="dob", format=F.DATE, pii=True),
]
PII_NAMES = {s.name for s in SPEC if s.pii}
LIMITS = Limits()

PING_FIELDS = {
    "zip": "02134-1234",
    "state": "massachusetts",
    "loan_amount": "$1,500.00",
    "credit": "good",
    "age": "42",
    "owns_home": "yes",
    "comments": "  call after 5  ",
}
PII_FIELDS = {
    "first_name": " Jane ",
    "phone": "(512) 555-0142",
    "email": "Jane@Example.com",
    "dob": "02/29/1980",
}
CLEAN = {
    "zip": "02134",
    "state": "MA",
    "loan_amount": 150_000,
    "credit": "Good",
    "age": 42,
    "owns_home": True,
    "comments": "call after 5",
}
CLEAN_PII = {
    "first_name": "Jane",
    "phone": "+15125550142",
    "email": "jane@example.com",
    "dob": "1980-02-29",
}


def lead(fields: dict[str, Any], **envelope: Any) -> LeadIn:
    """A LeadIn exactly as the API decodes it from JSON."""
    body = {"vertical": "personal-loans", "fields": fields, **envelope}
    return msgspec.json.decode(msgspec.json.encode(body), type=LeadIn)


def errors_of(result: ValidLead | list[FieldError]) -> list[tuple[str, str]]:
    assert isinstance(result, list), result
    return [(e.path, e.reason) for e in result]


# ------------------------------------------------------------------------------ happy paths


def test_valid_ping_is_normalised_and_has_no_pii():
    result = validate_lead(SPEC, lead(PING_FIELDS), Stage.PING, LIMITS)
    assert result == ValidLead(fields=CLEAN, pii={}, phone=None, email=None, consent=None)


def test_valid_post_splits_fields_and_pii():
    result = validate_lead(SPEC, lead({**PING_FIELDS, **PII_FIELDS}), Stage.POST, LIMITS)
    assert isinstance(result, ValidLead)
    assert result.fields == CLEAN
    assert result.pii == CLEAN_PII
    assert result.phone == "+15125550142"
    assert result.email == "jane@example.com"
    assert result.consent is None
    assert not set(result.fields) & set(result.pii)


def test_json_float_amount_is_exact_minor_units():
    result = validate_lead(SPEC, lead({"zip": "02134", "loan_amount": 1234.56}), Stage.PING, LIMITS)
    assert isinstance(result, ValidLead)
    assert result.fields == {"zip": "02134", "loan_amount": 123456}


def test_optional_fields_missing_null_or_blank_are_left_out():
    fields = {"zip": "02134", "loan_amount": "1000", "state": None, "credit": "   ", "comments": ""}
    result = validate_lead(SPEC, lead(fields), Stage.PING, LIMITS)
    assert result == ValidLead(
        fields={"zip": "02134", "loan_amount": 100_000},
        pii={},
        phone=None,
        email=None,
        consent=None,
    )


def test_phone_and_email_come_from_the_first_field_of_their_format():
    spec = [
        FieldSpec(name="home_phone", format=F.PHONE, pii=True),
        FieldSpec(name="cell_phone", format=F.PHONE, pii=True),
        FieldSpec(name="work_email", format=F.EMAIL),  # not PII here: still used for dedupe
        FieldSpec(name="email", format=F.EMAIL, pii=True),
    ]
    fields = {"cell_phone": "212-555-0100", "work_email": "W@X.IO", "email": "e@x.io"}
    result = validate_lead(spec, lead(fields), Stage.POST, LIMITS)
    assert isinstance(result, ValidLead)
    assert result.phone == "+12125550100"
    assert result.email == "w@x.io"
    assert result.fields == {"work_email": "w@x.io"}
    assert result.pii == {"cell_phone": "+12125550100", "email": "e@x.io"}


# ------------------------------------------------------------------------- required & stage


def test_ping_missing_required_fields():
    result = validate_lead(SPEC, lead({"state": "TX"}), Stage.PING, LIMITS)
    assert errors_of(result) == [
        ("fields.zip", "required on ping"),
        ("fields.loan_amount", "required on ping"),
    ]


def test_post_missing_required_fields():
    result = validate_lead(SPEC, lead({"zip": " ", "loan_amount": None}), Stage.POST, LIMITS)
    assert errors_of(result) == [
        ("fields.zip", "required on post"),
        ("fields.loan_amount", "required on post"),
        ("fields.first_name", "required on post"),
        ("fields.phone", "required on post"),
        ("fields.email", "required on post"),
    ]


def test_required_flags_are_per_stage():
    spec = [
        FieldSpec(name="only_ping", format=F.TEXT, required_on_ping=True),
        FieldSpec(name="only_post", format=F.TEXT, required_on_post=True),
    ]
    assert errors_of(validate_lead(spec, lead({}), Stage.PING, LIMITS)) == [
        ("fields.only_ping", "required on ping")
    ]
    assert errors_of(validate_lead(spec, lead({}), Stage.POST, LIMITS)) == [
        ("fields.only_post", "required on post")
    ]


def test_pii_refused_on_ping():
    result = validate_lead(SPEC, lead({**PING_FIELDS, **PII_FIELDS}), Stage.PING, LIMITS)
    why = "PII is not accepted on a ping; send it on the post"
    assert errors_of(result) == [
        ("fields.first_name", why),
        ("fields.phone", why),
        ("fields.email", why),
        ("fields.dob", why),
    ]


def test_pii_refused_on_ping_even_when_invalid_and_blank_pii_ignored():
    fields = {"zip": "02134", "loan_amount": "1000", "phone": "not a phone", "email": "  "}
    assert errors_of(validate_lead(SPEC, lead(fields), Stage.PING, LIMITS)) == [
        ("fields.phone", "PII is not accepted on a ping; send it on the post"),
    ]


# ---------------------------------------------------------------------------- every failure


def test_every_failing_field_is_reported_in_spec_order_after_unknown_fields():
    fields = {
        "zip": 2134,
        "state": "Texass",
        "loan_amount": "12.345",
        "credit": "great",
        "age": "17",
        "owns_home": "maybe",
        "comments": "x" * 21,
        "first_name": "Ja\x00ne",
        "phone": "555-0142",
        "email": "jane@",
        "dob": "02/29/1981",
        "favourite_colour": "blue",
        "ssn": "123-45-6789",
    }
    consent = {"ip_address": "300.1.1.1", "trustedform_cert_url": "ftp://cert"}
    result = validate_lead(
        SPEC, lead(fields, consent=consent, source="s" * 1001), Stage.POST, LIMITS
    )
    assert errors_of(result) == [
        ("fields.favourite_colour", "unknown field for this vertical"),
        ("fields.ssn", "unknown field for this vertical"),
        ("fields.zip", "expected a zip code as a string (leading zeros matter)"),
        ("fields.state", "not a US state code or name"),
        ("fields.loan_amount", "at most 2 decimal places"),
        ("fields.credit", "must be one of: Excellent, Good, Fair, Poor"),
        ("fields.age", "below the minimum 18"),
        ("fields.owns_home", "expected true or false"),
        ("fields.comments", "longer than 20 characters"),
        ("fields.first_name", "contains control characters"),
        ("fields.phone", "not a valid phone number"),
        ("fields.email", "not an email address"),
        ("fields.dob", "not a calendar date"),
        ("consent.trustedform_cert_url", "expected an http(s) URL"),
        ("consent.ip_address", "not an IPv4 or IPv6 address"),
        ("source", "longer than 1000 characters"),
    ]


def test_one_bad_field_rejects_the_whole_lead():
    result = validate_lead(SPEC, lead({**PING_FIELDS, "age": "abc"}), Stage.PING, LIMITS)
    assert errors_of(result) == [("fields.age", "expected an integer")]


def test_bounds_in_minor_units():
    result = validate_lead(
        SPEC, lead({"zip": "02134", "loan_amount": "100,000.01"}), Stage.PING, LIMITS
    )
    assert errors_of(result) == [("fields.loan_amount", "above the maximum 10000000")]


def test_unknown_field_name_is_cut_short_in_the_path():
    name = "x" * 100
    result = validate_lead(SPEC, lead({**PING_FIELDS, name: 1}), Stage.PING, LIMITS)
    assert errors_of(result) == [(f"fields.{'x' * 61}...", "unknown field for this vertical")]
    exact = "y" * 64
    result = validate_lead(SPEC, lead({**PING_FIELDS, exact: 1}), Stage.PING, LIMITS)
    assert errors_of(result) == [(f"fields.{exact}", "unknown field for this vertical")]


def test_too_many_fields_stops_early():
    limits = Limits(max_fields_per_lead=3)
    fields = {"a": 1, "b": 2, "c": 3, "d": 4}
    assert errors_of(validate_lead(SPEC, lead(fields), Stage.PING, limits)) == [
        ("fields", "at most 3 fields per lead")
    ]
    at_limit = {"zip": "02134", "loan_amount": "1000", "state": "TX"}
    assert isinstance(validate_lead(SPEC, lead(at_limit), Stage.PING, limits), ValidLead)


def test_global_text_limit_caps_field_max_length():
    limits = Limits(text_max_chars=10)
    fields = {"zip": "02134", "loan_amount": "1000", "comments": "x" * 11}
    assert errors_of(validate_lead(SPEC, lead(fields), Stage.PING, limits)) == [
        ("fields.comments", "longer than 10 characters")
    ]


# ---------------------------------------------------------------------------------- consent

GOOD_CONSENT = {
    "tcpa_text": "  By clicking Submit I agree…\nto be called.  ",
    "trustedform_cert_url": "https://cert.trustedform.com/0123456789abcdef",
    "jornaya_leadid": "ABCDEF01-2345-6789-ABCD-EF0123456789",
    "ip_address": "2001:db8::1",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
    "landing_page_url": "http://example.com/apply?utm=1",
    "consented_at": "2024-03-05T12:34:56Z",
}


def test_consent_travels_untouched():
    the_lead = lead(PING_FIELDS, consent=GOOD_CONSENT)
    result = validate_lead(SPEC, the_lead, Stage.PING, LIMITS)
    assert isinstance(result, ValidLead)
    assert result.consent is the_lead.consent
    assert result.consent == Consent(
        tcpa_text="  By clicking Submit I agree…\nto be called.  ",
        trustedform_cert_url="https://cert.trustedform.com/0123456789abcdef",
        jornaya_leadid="ABCDEF01-2345-6789-ABCD-EF0123456789",
        ip_address="2001:db8::1",
        user_agent="Mozilla/5.0 (X11; Linux x86_64)",
        landing_page_url="http://example.com/apply?utm=1",
        consented_at="2024-03-05T12:34:56Z",
    )


@pytest.mark.parametrize(
    "stamp",
    ["2024-03-05T12:34:56Z", "2024-03-05T12:34:56+05:30", "2024-03-05 12:34:56", "2024-03-05"],
)
def test_consent_timestamp_accepted(stamp):
    result = validate_lead(
        SPEC, lead(PING_FIELDS, consent={"consented_at": stamp}), Stage.PING, LIMITS
    )
    assert isinstance(result, ValidLead)
    assert result.consent.consented_at == stamp


@pytest.mark.parametrize("stamp", ["yesterday", "", "2024-02-30T00:00:00Z", "03/05/2024 12:00"])
def test_consent_timestamp_rejected(stamp):
    result = validate_lead(
        SPEC, lead(PING_FIELDS, consent={"consented_at": stamp}), Stage.PING, LIMITS
    )
    assert errors_of(result) == [("consent.consented_at", "expected an ISO 8601 timestamp")]


@pytest.mark.parametrize("ip", ["203.0.113.7", "::1", "2001:db8::1", "fe80::1%eth0"])
def test_consent_ip_accepted(ip):
    result = validate_lead(SPEC, lead(PING_FIELDS, consent={"ip_address": ip}), Stage.PING, LIMITS)
    assert isinstance(result, ValidLead)


@pytest.mark.parametrize("ip", ["300.1.1.1", "1.2.3", "1.2.3.4/24", "localhost", "", "::g"])
def test_consent_ip_rejected(ip):
    result = validate_lead(SPEC, lead(PING_FIELDS, consent={"ip_address": ip}), Stage.PING, LIMITS)
    assert errors_of(result) == [("consent.ip_address", "not an IPv4 or IPv6 address")]


@pytest.mark.parametrize(
    "url, why",
    [
        ("ftp://cert.trustedform.com/x", "expected an http(s) URL"),
        ("cert.trustedform.com/x", "expected an http(s) URL"),
        ("https:///x", "expected an http(s) URL"),
        ("javascript:alert(1)", "expected an http(s) URL"),
        ("", "expected an http(s) URL"),
        ("http://[::1", "not a URL"),
        ("https://x.io/" + "a" * 2036, "longer than 2048 characters"),
    ],
)
@pytest.mark.parametrize("name", ["trustedform_cert_url", "landing_page_url"])
def test_consent_urls(name, url, why):
    result = validate_lead(SPEC, lead(PING_FIELDS, consent={name: url}), Stage.PING, LIMITS)
    assert errors_of(result) == [(f"consent.{name}", why)]


def test_consent_url_at_limit_accepted():
    url = "https://x.io/" + "a" * 2035
    assert len(url) == 2048
    result = validate_lead(
        SPEC, lead(PING_FIELDS, consent={"landing_page_url": url}), Stage.PING, LIMITS
    )
    assert isinstance(result, ValidLead)


def test_consent_lengths():
    limits = Limits(text_max_chars=10, consent_text_max_chars=20)
    ok = {"tcpa_text": "t" * 20, "jornaya_leadid": "j" * 10, "user_agent": "u" * 10}
    fields = {"zip": "02134", "loan_amount": "1000"}
    assert isinstance(validate_lead(SPEC, lead(fields, consent=ok), Stage.PING, limits), ValidLead)
    long = {"tcpa_text": "t" * 21, "jornaya_leadid": "j" * 11, "user_agent": "u" * 11}
    assert errors_of(validate_lead(SPEC, lead(fields, consent=long), Stage.PING, limits)) == [
        ("consent.tcpa_text", "longer than 20 characters"),
        ("consent.jornaya_leadid", "longer than 10 characters"),
        ("consent.user_agent", "longer than 10 characters"),
    ]


# --------------------------------------------------------------------------------- envelope


def test_source_and_sub_ids_lengths():
    limits = Limits(text_max_chars=5)
    fields = {"zip": "02134", "loan_amount": "1000"}
    ok = lead(fields, source="abcde", sub_ids={"sub1": "12345", "sub5": "x"})
    assert isinstance(validate_lead(SPEC, ok, Stage.PING, limits), ValidLead)
    bad = lead(fields, source="abcdef", sub_ids={"sub1": "123456", "sub3": "ok", "sub5": "toolong"})
    assert errors_of(validate_lead(SPEC, bad, Stage.PING, limits)) == [
        ("source", "longer than 5 characters"),
        ("sub_ids.sub1", "longer than 5 characters"),
        ("sub_ids.sub5", "longer than 5 characters"),
    ]


def test_sub_ids_paths_cover_every_sub_id():
    limits = Limits(text_max_chars=1)
    sub_ids = {name: "xx" for name in SubIds.__struct_fields__}
    the_lead = lead({"zip": "02134", "loan_amount": "1000"}, sub_ids=sub_ids)
    assert errors_of(validate_lead(SPEC, the_lead, Stage.PING, limits)) == [
        (f"sub_ids.sub{i}", "longer than 1 characters") for i in range(1, 6)
    ]


# ------------------------------------------------------------------------------- properties

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)
EXTREME = (
    st.integers(min_value=10**12, max_value=10**60).flatmap(
        lambda i: st.sampled_from([i, -i, str(i)])
    )
    | st.floats(min_value=1e12, allow_infinity=False)
    | st.decimals(allow_nan=False, allow_infinity=False).map(str)
)
FIELD_VALUE = JSON_VALUES | EXTREME
SPEC_FIELDS = st.fixed_dictionaries({}, optional={s.name: FIELD_VALUE for s in SPEC})
OTHER_FIELDS = st.dictionaries(st.text(max_size=70), JSON_VALUES, max_size=3)
SOMETIMES_LONG = st.none() | st.text(max_size=8) | st.integers(0, 1200).map(lambda k: "a" * k)
URLISH = (
    st.none()
    | st.sampled_from(["https://x.io/a", "ftp://x", "http://[::1", "x"])
    | st.text(max_size=10)
)
CONSENT = st.none() | st.fixed_dictionaries(
    {},
    optional={
        "tcpa_text": SOMETIMES_LONG,
        "trustedform_cert_url": URLISH,
        "landing_page_url": URLISH,
        "jornaya_leadid": SOMETIMES_LONG,
        "user_agent": SOMETIMES_LONG,
        "ip_address": st.none()
        | st.sampled_from(["1.2.3.4", "::1", "999.0.0.1"])
        | st.text(max_size=8),
        "consented_at": st.none()
        | st.datetimes().map(lambda d: d.isoformat())
        | st.text(max_size=12),
    },
)
SUB_IDS = st.none() | st.fixed_dictionaries(
    {}, optional={f"sub{i}": SOMETIMES_LONG for i in range(1, 6)}
)
PATH_PREFIXES = ("fields.", "consent.", "sub_ids.")


@settings(max_examples=150, deadline=None)
@given(
    fields=st.builds(lambda known, other: {**other, **known}, SPEC_FIELDS, OTHER_FIELDS),
    consent=CONSENT,
    sub_ids=SUB_IDS,
    source=SOMETIMES_LONG,
    stage=st.sampled_from(Stage),
)
def test_validate_lead_never_raises(fields, consent, sub_ids, source, stage):
    the_lead = lead(fields, consent=consent, sub_ids=sub_ids, source=source)
    result = validate_lead(SPEC, the_lead, stage, LIMITS)
    if isinstance(result, ValidLead):
        assert set(result.fields) <= {s.name for s in SPEC if not s.pii}
        assert set(result.pii) <= PII_NAMES
        if stage is Stage.PING:
            assert result.pii == {}
        assert result.phone == result.pii.get("phone")
        assert result.email == result.pii.get("email")
        assert all(not isinstance(v, float) for v in result.fields.values())
        assert result.consent == the_lead.consent
    else:
        assert isinstance(result, list) and result
        for error in result:
            assert isinstance(error, FieldError)
            assert error.path.startswith(PATH_PREFIXES) or error.path == "source", error
            assert error.reason
        paths = [e.path for e in result]
        assert len(paths) == len(set(paths)), "one reason per path"


BAD_VALUE = {
    "zip": "00000",
    "state": "Atlantis",
    "loan_amount": "1.234",
    "credit": "meh",
    "age": 1.5,
    "owns_home": "perhaps",
    "comments": "a\x01b",
    "first_name": ["Jane"],
    "phone": "12",
    "email": "no-at-sign",
    "dob": "2023-02-29",
}
GOOD_VALUE = {**PING_FIELDS, **PII_FIELDS}


@settings(max_examples=60, deadline=None)
@given(st.sets(st.sampled_from(sorted(BAD_VALUE))), st.sets(st.sampled_from(sorted(BAD_VALUE))))
def test_exactly_the_bad_fields_are_reported_on_post(bad, absent):
    fields = {name: (BAD_VALUE if name in bad else GOOD_VALUE)[name] for name in BAD_VALUE}
    for name in absent - bad:
        del fields[name]
    result = validate_lead(SPEC, lead(fields), Stage.POST, LIMITS)
    required = {s.name for s in SPEC if s.required_on_post}
    expected = bad | (absent - bad) & required
    if not expected:
        assert isinstance(result, ValidLead)
        assert {**result.fields, **result.pii} == {
            k: v for k, v in {**CLEAN, **CLEAN_PII}.items() if k in fields
        }
    else:
        assert isinstance(result, list)
        assert {e.path for e in result} == {f"fields.{name}" for name in expected}
        assert [e.path for e in result] == [f"fields.{s.name}" for s in SPEC if s.name in expected]


def test_falsy_values_are_values_not_missing():
    spec = [
        FieldSpec(name="flag", format=F.BOOLEAN, required_on_ping=True),
        FieldSpec(name="count", format=F.INTEGER, required_on_ping=True),
        FieldSpec(name="amount", format=F.MONEY, required_on_ping=True),
    ]
    result = validate_lead(spec, lead({"flag": False, "count": 0, "amount": 0}), Stage.PING, LIMITS)
    assert result == ValidLead(
        fields={"flag": False, "count": 0, "amount": 0},
        pii={},
        phone=None,
        email=None,
        consent=None,
    )
