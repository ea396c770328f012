"""Per-format normalisers of lead intake: canonical values, exact reasons, and properties."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.intake import normalize as n
from exchange.intake.fields import FieldFormat, FieldSpec

FAST = settings(max_examples=60, deadline=None)

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def reason(fn, *args, **kwargs) -> str:
    with pytest.raises(n.Invalid) as info:
        fn(*args, **kwargs)
    assert str(info.value) == info.value.reason
    return info.value.reason


# --------------------------------------------------------------------------------------- phone


@pytest.mark.parametrize(
    "raw",
    [
        "+15125550142",
        "+1 512 555 0142",
        "+1 (512) 555-0142",
        "(512) 555-0142",
        "512-555-0142",
        "512.555.0142",
        "5125550142",
        "1-512-555-0142",
        "15125550142",
        "  +1.512.555.0142  ",
        5125550142,
    ],
)
def test_phone_us_forms_become_e164(raw):
    assert n.phone(raw) == "+15125550142"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("+44 20 7946 0958", "+442079460958"),
        ("+442079460958", "+442079460958"),
        ("011 44 20 7946 0958", "+442079460958"),  # US international dialling prefix
        ("+1 212 555 0100", "+12125550100"),
    ],
)
def test_phone_international_kept_in_e164(raw, expected):
    assert n.phone(raw) == expected


@pytest.mark.parametrize(
    "raw, why",
    [
        ("555-0142", "not a valid phone number"),  # 7 digits: no area code
        ("123", "not a valid phone number"),
        ("+1 (555) 555-5555", "not a valid phone number"),  # 555 is no area code
        ("abc", "not a phone number"),
        ("", "not a phone number"),
        ("+", "not a phone number"),
        ("x" * 41, "longer than 40 characters"),
        (True, "expected a phone number as a string"),
        (None, "expected a phone number as a string"),
        (5125550142.0, "expected a phone number as a string"),
        (["5125550142"], "expected a phone number as a string"),
    ],
)
def test_phone_rejects(raw, why):
    assert reason(n.phone, raw) == why


# --------------------------------------------------------------------------------------- email


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Jane.Doe@Example.COM", "jane.doe@example.com"),
        ("  a@b.co  ", "a@b.co"),
        ("first+tag@sub.domain.org", "first+tag@sub.domain.org"),
        ("o'neil@x-y.io", "o'neil@x-y.io"),
    ],
)
def test_email_lower_cased(raw, expected):
    assert n.email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["plainaddress", "a@b", "a@localhost", "a..b@x.com", "a@-x.com", "a b@x.com", "@x.com",
     "a@x.c", "a@x.com.", "jané@x.com", "a@x_y.com"],
)
def test_email_rejects_malformed(raw):
    assert reason(n.email, raw) == "not an email address"


def test_email_length_limit():
    domain = ".".join(["b" * 61] * 3) + ".com"
    ok = f"{'a' * 64}@{domain}"
    assert len(ok) == 254
    assert n.email(ok) == ok
    too_long = f"{'a' * 65}@{domain}"
    assert len(too_long) == 255
    assert reason(n.email, too_long) == "longer than 254 characters"


@pytest.mark.parametrize("raw", [None, True, 1.5, {"a": 1}])
def test_email_rejects_non_text(raw):
    assert reason(n.email, raw) == "expected an email address as a string"


# ----------------------------------------------------------------------------------------- zip


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("02134", "02134"),
        ("02134-1234", "02134"),
        ("021341234", "02134"),
        (" 10001 ", "10001"),
        ("90210", "90210"),
        ("00601", "00601"),  # Puerto Rico
    ],
)
def test_zip_canonical(raw, expected):
    assert n.zip_code(raw) == expected


@pytest.mark.parametrize("raw", [2134, 10001, 0])
def test_zip_as_json_number_rejected(raw):
    assert reason(n.zip_code, raw) == "expected a zip code as a string (leading zeros matter)"


@pytest.mark.parametrize(
    "raw", ["2134", "021345", "02134-123", "02134 1234", "0213A", "ABCDE", "", "02134-12345"]
)
def test_zip_bad_shape(raw):
    assert reason(n.zip_code, raw) == "expected 5 digits or ZIP+4"


@pytest.mark.parametrize("raw", ["00000", "99999", "00000-1234"])
def test_zip_must_exist(raw):
    assert reason(n.zip_code, raw) == "unknown zip code"


@pytest.mark.parametrize("raw", [None, True, 2134.0, ["02134"]])
def test_zip_rejects_non_text(raw):
    assert reason(n.zip_code, raw) == "expected a zip code as a string"


# --------------------------------------------------------------------------------------- state


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("TX", "TX"),
        ("tx", "TX"),
        (" ca ", "CA"),
        ("Texas", "TX"),
        ("  new   YORK ", "NY"),
        ("district of columbia", "DC"),
        ("Puerto Rico", "PR"),
        ("U.S. Virgin Islands", "VI"),
    ],
)
def test_state_code_or_name(raw, expected):
    assert n.state(raw) == expected


@pytest.mark.parametrize("raw", ["XX", "Texass", "T", "", "New-York", "12"])
def test_state_rejects_unknown(raw):
    assert reason(n.state, raw) == "not a US state code or name"


@pytest.mark.parametrize("raw", [None, False, ["TX"]])
def test_state_rejects_non_text(raw):
    assert reason(n.state, raw) == "expected a state as a string"


# ---------------------------------------------------------------------------------------- date


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2024-03-05", "2024-03-05"),
        ("03/05/2024", "2024-03-05"),
        ("3/5/2024", "2024-03-05"),
        ("12/31/1999", "1999-12-31"),
        ("2024-02-29", "2024-02-29"),  # leap year
        ("02/29/2024", "2024-02-29"),
        ("2000-02-29", "2000-02-29"),  # divisible by 400: leap
        ("1900-01-01", "1900-01-01"),
        ("2199-12-31", "2199-12-31"),
        (" 2024-03-05 ", "2024-03-05"),
    ],
)
def test_date_canonical_iso(raw, expected):
    assert n.date(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["2023-02-29", "02/29/2023", "1900-02-29", "2024-13-01", "13/01/2024", "2024-04-31",
     "00/10/2024", "2024-00-10", "0000-01-01"],
)
def test_date_not_on_calendar(raw):
    assert reason(n.date, raw) == "not a calendar date"


@pytest.mark.parametrize(
    "raw",
    ["2024-3-5", "2024/03/05", "05-03-2024", "2024-03-05T00:00:00", "20240305", "March 5, 2024",
     "3/5/24", "", "yesterday"],
)
def test_date_bad_shape(raw):
    assert reason(n.date, raw) == "expected YYYY-MM-DD or MM/DD/YYYY"


@pytest.mark.parametrize("raw", ["1899-12-31", "2200-01-01", "01/01/0001"])
def test_date_out_of_range(raw):
    assert reason(n.date, raw) == "outside 1900-01-01..2199-12-31"


@pytest.mark.parametrize("raw", [None, True, 20240305.0, ["2024-03-05"]])
def test_date_rejects_non_text(raw):
    assert reason(n.date, raw) == "expected a date as a string"


# ---------------------------------------------------------------------------------------- enum

CREDIT = ["Excellent", "Good", "Fair", "Poor"]


@pytest.mark.parametrize(
    "raw, expected",
    [("good", "Good"), ("GOOD", "Good"), ("  Fair ", "Fair"), ("Excellent", "Excellent")],
)
def test_enum_case_folded_to_declared(raw, expected):
    assert n.enum_choice(raw, CREDIT) == expected


def test_enum_casefold_not_just_lower():
    assert n.enum_choice("STRASSE", ["Straße"]) == "Straße"


def test_enum_number_matches_string_choice():
    assert n.enum_choice(2, ["1", "2"]) == "2"


def test_enum_rejects_with_choices_listed():
    assert reason(n.enum_choice, "great", CREDIT) == "must be one of: Excellent, Good, Fair, Poor"


def test_enum_long_choice_list_is_cut():
    choices = [f"c{i}" for i in range(12)]
    assert reason(n.enum_choice, "x", choices) == (
        "must be one of: c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, ..."
    )


def test_enum_no_partial_match():
    assert reason(n.enum_choice, "Goo", CREDIT).startswith("must be one of: ")


@pytest.mark.parametrize("raw", [None, True, 1.0, ["Good"]])
def test_enum_rejects_non_text(raw):
    assert reason(n.enum_choice, raw, CREDIT) == "expected one of the choices as a string"


# ------------------------------------------------------------------------------------- integer


@pytest.mark.parametrize(
    "raw, expected",
    [
        (42, 42),
        (-7, -7),
        (0, 0),
        ("42", 42),
        (" 42 ", 42),
        ("+5", 5),
        ("-5", -5),
        ("007", 7),
        (5.0, 5),
        (Decimal("5"), 5),
        (Decimal("5.00"), 5),
        (2**53, 2**53),
        (-(2**53), -(2**53)),
        (str(2**53), 2**53),
    ],
)
def test_integer_accepts(raw, expected):
    value = n.integer(raw)
    assert value == expected
    assert type(value) is int


@pytest.mark.parametrize(
    "raw",
    [True, False, 2.5, "2.5", "1e3", "", " ", "abc", "1 000", "1,000", "--1", "9" * 20, None,
     [1], {"a": 1}, float("nan"), float("inf"), float("-inf"), Decimal("NaN"), Decimal("sNaN"),
     Decimal("Infinity"), Decimal("2.5")],
)
def test_integer_rejects(raw):
    assert reason(n.integer, raw) == "expected an integer"


@pytest.mark.parametrize("raw", [2**53 + 1, -(2**53) - 1, str(2**53 + 1), 1e300, 10**30])
def test_integer_out_of_range(raw):
    assert reason(n.integer, raw) == "out of range"


@FAST
@given(st.integers(min_value=-(2**53), max_value=2**53))
def test_integer_from_its_decimal_text(i):
    assert n.integer(str(i)) == i
    assert n.integer(i) == i


# --------------------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1234.5", 123450),
        ("1234.50", 123450),
        ("$1,234.50", 123450),
        ("$ 1,234.50", 123450),
        ("1,234", 123400),
        ("1,234,567.89", 123456789),
        ("$5", 500),
        ("0.07", 7),
        ("0", 0),
        ("-5.25", -525),
        ("+5", 500),
        (" 19.99 ", 1999),
        (".50", 50),
        ("12.340", 1234),  # numerically two decimals
        (1234, 123400),
        (0, 0),
        (12.34, 1234),  # a JSON float: exact, never 1233
        (19.99, 1999),
        (0.1, 10),
        (0.29, 29),  # 0.29 * 100 == 28.999999999999996 in binary floating point
        (1.15, 115),
        (1234.5, 123450),
        (4.35, 435),
        (1e10, 10**12),
        (Decimal("1.50"), 150),
        (Decimal("1E+2"), 10000),
        ("1e3", 100000),
    ],
)
def test_money_minor_units(raw, expected):
    value = n.money(raw)
    assert value == expected
    assert type(value) is int


@pytest.mark.parametrize(
    "raw",
    ["12.345", "1,234.567", "0.001", 12.345, 0.1 + 0.2, 1e-05, Decimal("0.001"), "1E-9999"],
)
def test_money_more_than_two_decimals(raw):
    assert reason(n.money, raw) == "at most 2 decimal places"


@pytest.mark.parametrize(
    "raw", ["abc", "", "$", "12.3.4", "5$", "1 000", "NaN", "Infinity", "-Infinity",
            float("nan"), float("inf"), Decimal("NaN"), Decimal("sNaN")]
)
def test_money_not_an_amount(raw):
    assert reason(n.money, raw) == "expected an amount like 1234.56"


@pytest.mark.parametrize("raw", ["12,34", "1,2345", "1,23,456", ",123", "1,234,56", "12,34.50"])
def test_money_commas_only_group_thousands(raw):
    # "12,34" is a decimal comma in much of the world; reading it as 1234 would be off by 100x.
    assert reason(n.money, raw) == "commas only between thousands, like 1,234.56"


@pytest.mark.parametrize("raw", [True, False, None, [12], {"amount": 1}])
def test_money_rejects_non_amounts(raw):
    assert reason(n.money, raw) == "expected an amount"


@pytest.mark.parametrize(
    "raw",
    ["10000000000.01", 10**10 + 1, "1" * 30, 10**30, 1e16, 1e30, Decimal("1E+30"),
     Decimal("9E+999999999"), "-10000000000.01"],
)
def test_money_out_of_range(raw):
    assert reason(n.money, raw) == "out of range"


def test_money_range_is_inclusive():
    assert n.money("10000000000.00") == n.MONEY_MAX_MINOR
    assert n.money("-10000000000") == -n.MONEY_MAX_MINOR


CENTS = st.integers(min_value=0, max_value=n.MONEY_MAX_MINOR)


@FAST
@given(CENTS)
def test_money_round_trips_cents(c):
    assert n.money(f"{c // 100}.{c % 100:02d}") == c
    assert n.money(f"-{c // 100}.{c % 100:02d}") == -c
    assert n.money(f"${c // 100:,}.{c % 100:02d}") == c


@FAST
@given(CENTS)
def test_money_from_json_float_is_exact(c):
    as_float = float(f"{c // 100}.{c % 100:02d}")  # what a JSON decoder hands over
    assert n.money(as_float) == c


@FAST
@given(st.integers(min_value=0, max_value=n.MONEY_MAX_MINOR // 100))
def test_money_whole_number_is_major_units(d):
    assert n.money(d) == d * 100
    assert n.money(str(d)) == d * 100


# ------------------------------------------------------------------------------------- boolean


@pytest.mark.parametrize(
    "raw, expected",
    [
        (True, True), (False, False), (1, True), (0, False),
        ("true", True), ("TRUE", True), (" yes ", True), ("Y", True), ("1", True),
        ("false", False), ("No", False), ("n", False), ("0", False), (" False ", False),
    ],
)
def test_boolean_accepts(raw, expected):
    assert n.boolean(raw) is expected


@pytest.mark.parametrize(
    "raw", [2, -1, 1.0, 0.0, "maybe", "t", "f", "", "on", "off", None, [True], {}]
)
def test_boolean_rejects(raw):
    assert reason(n.boolean, raw) == "expected true or false"


# ---------------------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  Jane  ", "Jane"),
        ("line one\nline two", "line one\nline two"),
        ("a\tb\r\nc", "a\tb\r\nc"),
        ("Zoë 👋", "Zoë 👋"),
        (42, "42"),
        (1.5, "1.5"),
        (Decimal("2.50"), "2.50"),
    ],
)
def test_text_accepts(raw, expected):
    assert n.text(raw, 100) == expected


@pytest.mark.parametrize("ch", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9f"])
def test_text_rejects_control_characters(ch):
    assert reason(n.text, f"a{ch}b", 100) == "contains control characters"


@pytest.mark.parametrize("raw", ["", "   ", "\n\t "])
def test_text_rejects_blank(raw):
    assert reason(n.text, raw, 100) == "must not be blank"


def test_text_length_is_counted_after_stripping():
    assert n.text("  " + "x" * 10 + "  ", 10) == "x" * 10
    assert reason(n.text, "x" * 11, 10) == "longer than 10 characters"


@pytest.mark.parametrize("raw", [None, True, False, ["a"], {"a": "b"}])
def test_text_rejects_non_text(raw):
    assert reason(n.text, raw, 100) == "expected text"


# ------------------------------------------------------------------------- normalize (dispatch)


def spec(fmt: FieldFormat, **kw) -> FieldSpec:
    return FieldSpec(name="f", format=fmt, **kw)


@pytest.mark.parametrize(
    "field, raw, expected",
    [
        (spec(FieldFormat.TEXT), " hi ", "hi"),
        (spec(FieldFormat.PHONE), "(512) 555-0142", "+15125550142"),
        (spec(FieldFormat.EMAIL), "A@B.CO", "a@b.co"),
        (spec(FieldFormat.ZIP), "02134-0001", "02134"),
        (spec(FieldFormat.STATE), "texas", "TX"),
        (spec(FieldFormat.DATE), "02/29/2024", "2024-02-29"),
        (spec(FieldFormat.ENUM, choices=["Own", "Rent"]), "rent", "Rent"),
        (spec(FieldFormat.INTEGER), "12", 12),
        (spec(FieldFormat.MONEY), "$1,234.50", 123450),
        (spec(FieldFormat.BOOLEAN), "yes", True),
    ],
)
def test_normalize_dispatches_on_format(field, raw, expected):
    assert n.normalize(field, raw, text_max_chars=100) == expected


def test_normalize_every_format_is_handled():
    handled = {
        FieldFormat.TEXT, FieldFormat.PHONE, FieldFormat.EMAIL, FieldFormat.ZIP,
        FieldFormat.STATE, FieldFormat.DATE, FieldFormat.ENUM, FieldFormat.INTEGER,
        FieldFormat.MONEY, FieldFormat.BOOLEAN,
    }
    assert set(FieldFormat) == handled


def test_normalize_enum_without_choices_rejects():
    why = reason(n.normalize, spec(FieldFormat.ENUM), "x", text_max_chars=100)
    assert why == "must be one of: "


def test_normalize_text_limit_is_the_smaller_of_field_and_global():
    short = spec(FieldFormat.TEXT, max_length=5)
    assert n.normalize(short, "abcde", text_max_chars=100) == "abcde"
    assert reason(n.normalize, short, "abcdef", text_max_chars=100) == "longer than 5 characters"
    long = spec(FieldFormat.TEXT, max_length=500)
    assert reason(n.normalize, long, "x" * 11, text_max_chars=10) == "longer than 10 characters"
    assert n.normalize(spec(FieldFormat.TEXT), "x" * 10, text_max_chars=10) == "x" * 10


def test_normalize_integer_bounds_inclusive():
    age = spec(FieldFormat.INTEGER, minimum=18, maximum=99)
    assert n.normalize(age, "18", text_max_chars=10) == 18
    assert n.normalize(age, 99, text_max_chars=10) == 99
    assert reason(n.normalize, age, 17, text_max_chars=10) == "below the minimum 18"
    assert reason(n.normalize, age, "100", text_max_chars=10) == "above the maximum 99"


def test_normalize_money_bounds_are_minor_units():
    amount = spec(FieldFormat.MONEY, minimum=50_000, maximum=10_000_000)  # $500 .. $100,000
    assert n.normalize(amount, "500", text_max_chars=10) == 50_000
    assert n.normalize(amount, "$100,000.00", text_max_chars=10) == 10_000_000
    assert reason(n.normalize, amount, "499.99", text_max_chars=10) == "below the minimum 50000"
    assert reason(n.normalize, amount, 100000.01, text_max_chars=10) == "above the maximum 10000000"


def test_normalize_bounds_apply_only_to_numbers():
    # Bounds on other formats are refused by check_spec; normalize ignores them anyway.
    assert n.normalize(spec(FieldFormat.TEXT, minimum=5), "abc", text_max_chars=10) == "abc"


# ------------------------------------------------------------------------------- properties

ALL_SPECS = {
    FieldFormat.TEXT: spec(FieldFormat.TEXT, max_length=40),
    FieldFormat.PHONE: spec(FieldFormat.PHONE),
    FieldFormat.EMAIL: spec(FieldFormat.EMAIL),
    FieldFormat.ZIP: spec(FieldFormat.ZIP),
    FieldFormat.STATE: spec(FieldFormat.STATE),
    FieldFormat.DATE: spec(FieldFormat.DATE),
    FieldFormat.ENUM: spec(FieldFormat.ENUM, choices=["Own", "Rent", "Straße", "1"]),
    FieldFormat.INTEGER: spec(FieldFormat.INTEGER, minimum=-1000, maximum=10**9),
    FieldFormat.MONEY: spec(FieldFormat.MONEY, minimum=0),
    FieldFormat.BOOLEAN: spec(FieldFormat.BOOLEAN),
}

KNOWN_ZIPS = ["02134", "10001", "90210", "00601", "60601", "73301", "99501"]

PLAUSIBLE = {
    FieldFormat.TEXT: st.text(max_size=50) | st.integers() | st.floats(allow_nan=False),
    FieldFormat.PHONE: st.sampled_from(
        ["+1 (512) 555-0142", "512.555.0142", "+44 20 7946 0958", "212 555 0100",
         "+33 1 42 68 53 00",
         "+61 2 9374 4000", "+1 800 FLOWERS", "12", "+999"]
    ) | st.from_regex(r"\A\+?1?[ (]?[2-9]\d{2}[) .-]?\d{3}[ .-]?\d{4}\Z"),
    FieldFormat.EMAIL: st.emails().map(lambda e: e.upper()) | st.emails() | st.text(max_size=20),
    FieldFormat.ZIP: st.builds(
        lambda z, plus: z + plus, st.sampled_from(KNOWN_ZIPS),
        st.sampled_from(["", "-1234", "0001", "-"]),
    ),
    FieldFormat.STATE: st.sampled_from(["tx", "TX", " Texas ", "new  york", "dc", "XX"])
    | st.text(max_size=3),
    FieldFormat.DATE: st.dates().map(lambda d: d.strftime("%m/%d/%Y"))
    | st.dates().map(lambda d: d.isoformat()),
    FieldFormat.ENUM: st.sampled_from(["own", "RENT", "STRASSE", "1", 1, "x"]),
    FieldFormat.INTEGER: st.integers() | st.integers().map(str) | st.floats(allow_nan=False),
    FieldFormat.MONEY: CENTS.map(lambda c: f"${c // 100:,}.{c % 100:02d}"),
    FieldFormat.BOOLEAN: st.sampled_from([True, False, 0, 1, "yes", "N", "true", "2"]),
}


@pytest.mark.parametrize("fmt", [f for f in FieldFormat if f is not FieldFormat.MONEY])
def test_normalize_is_idempotent(fmt):
    field = ALL_SPECS[fmt]

    @settings(max_examples=40, deadline=None)
    @given(PLAUSIBLE[fmt])
    def check(raw):
        try:
            once = n.normalize(field, raw, text_max_chars=100)
        except n.Invalid:
            return
        assert n.normalize(field, once, text_max_chars=100) == once

    check()


@FAST
@given(PLAUSIBLE[FieldFormat.MONEY])
def test_money_canonical_value_round_trips_through_its_text(raw):
    # Money is the one format whose output unit (minor) differs from its input unit (major),
    # so the idempotence law is stated through the canonical text of the amount.
    cents = n.money(raw)
    assert n.money(f"{cents // 100}.{cents % 100:02d}") == cents


@pytest.mark.parametrize("fmt", list(FieldFormat))
def test_normalize_raises_only_invalid_on_any_json_value(fmt):
    field = ALL_SPECS[fmt]

    @settings(max_examples=50, deadline=None)
    @given(JSON_VALUES | st.integers(min_value=10**15) | st.floats())
    def check(raw):
        try:
            n.normalize(field, raw, text_max_chars=100)
        except n.Invalid as exc:
            assert exc.reason

    check()


@pytest.mark.parametrize("raw", [float("nan"), float("inf"), float("-inf"), 10**400, -(10**400)])
@pytest.mark.parametrize("fmt", list(FieldFormat))
def test_normalize_extreme_numbers_never_crash(fmt, raw):
    try:
        n.normalize(ALL_SPECS[fmt], raw, text_max_chars=100)
    except n.Invalid:
        pass


def test_money_never_returns_float():
    for raw in ("1", 1, 1.5, "1.5", Decimal("1.5")):
        assert not isinstance(n.money(raw), float)
    assert math.isfinite(n.money(9999999999.99))
