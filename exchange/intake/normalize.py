"""Normalisers, one per field format.

Each takes the raw JSON value and returns the canonical value or raises ``Invalid`` with a
reason a supplier can act on. They are pure: no I/O, no clock (dates are checked against the
calendar, never against "today", so a lead's validity does not change while it is in flight).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers

from exchange import geo
from exchange.intake.fields import FieldFormat, FieldSpec

PHONE_DEFAULT_REGION = "US"
EMAIL_MAX_CHARS = 254
PHONE_MAX_CHARS = 40
MONEY_MAX_MINOR = 10**12  # ten billion in major units: far beyond any lead's field
INTEGER_MAX_ABS = 2**53  # what a JSON consumer in any language reads back exactly
DATE_MIN = dt.date(1900, 1, 1)
DATE_MAX = dt.date(2199, 12, 31)

_EMAIL = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
_ZIP = re.compile(r"^(\d{5})(?:-?\d{4})?$", re.ASCII)
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$", re.ASCII)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
_INTEGER = re.compile(r"^[+-]?\d{1,19}$", re.ASCII)
_MONEY = re.compile(r"^\$?\s*([+-]?)(\d{1,15})(?:\.(\d{1,2}))?$", re.ASCII)
# Commas are only ever thousands separators: "1,234.50" but never "12,34" (a decimal comma
# read as a separator would multiply the amount by 100).
_GROUPED = re.compile(r"^\$?\s*[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?$", re.ASCII)
# An amount whose leading digit is beyond this power of ten is out of range whatever follows;
# checking it first keeps Decimal arithmetic within its default 28-digit precision.
_MONEY_MAX_ADJUSTED = len(str(MONEY_MAX_MINOR)) - 3
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})


class Invalid(ValueError):
    """The value cannot be accepted; ``reason`` says why in words a supplier can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _text_of(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Invalid(f"expected {what} as a string")
    return str(value).strip()


def phone(value: Any) -> str:
    """E.164, e.g. ``+15125550142``. National numbers are read as US numbers."""
    text = _text_of(value, "a phone number")
    if len(text) > PHONE_MAX_CHARS:
        raise Invalid(f"longer than {PHONE_MAX_CHARS} characters")
    try:
        parsed = phonenumbers.parse(text, PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise Invalid("not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise Invalid("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def email(value: Any) -> str:
    text = _text_of(value, "an email address").lower()
    if len(text) > EMAIL_MAX_CHARS:
        raise Invalid(f"longer than {EMAIL_MAX_CHARS} characters")
    if not _EMAIL.match(text):
        raise Invalid("not an email address")
    return text


def zip_code(value: Any) -> str:
    """Five digits; ZIP+4 is cut to its first five. The zip must exist."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise Invalid("expected a zip code as a string (leading zeros matter)")
    text = _text_of(value, "a zip code")
    match = _ZIP.match(text)
    if not match:
        raise Invalid("expected 5 digits or ZIP+4")
    zip5 = match.group(1)
    if geo.zip_info(zip5) is None:
        raise Invalid("unknown zip code")
    return zip5


def state(value: Any) -> str:
    text = _text_of(value, "a state")
    code = geo.state_code(text)
    if code is None:
        raise Invalid("not a US state code or name")
    return code


def date(value: Any) -> str:
    """ISO ``YYYY-MM-DD``; ``MM/DD/YYYY`` is accepted and rewritten."""
    text = _text_of(value, "a date")
    try:
        if _ISO_DATE.match(text):
            parsed = dt.date.fromisoformat(text)
        elif m := _US_DATE.match(text):
            parsed = dt.date(int(m.group(3)), int(m.group(1)), int(m.group(2)))
        else:
            raise Invalid("expected YYYY-MM-DD or MM/DD/YYYY")
    except ValueError as exc:
        if isinstance(exc, Invalid):
            raise
        raise Invalid("not a calendar date") from None
    if not DATE_MIN <= parsed <= DATE_MAX:
        raise Invalid(f"outside {DATE_MIN.isoformat()}..{DATE_MAX.isoformat()}")
    return parsed.isoformat()


def enum_choice(value: Any, choices: list[str]) -> str:
    text = _text_of(value, "one of the choices")
    folded = text.casefold()
    for choice in choices:
        if choice.casefold() == folded:
            return choice
    shown = ", ".join(choices[:10]) + (", ..." if len(choices) > 10 else "")
    raise Invalid(f"must be one of: {shown}")


def integer(value: Any) -> int:
    if isinstance(value, bool):
        raise Invalid("expected an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INTEGER.match(value.strip()):
        number = int(value.strip())
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        number = int(value)
    else:
        raise Invalid("expected an integer")
    if abs(number) > INTEGER_MAX_ABS:
        raise Invalid("out of range")
    return number


def money(value: Any) -> int:
    """Minor units (cents). Accepts ``"1234.5"``, ``"$1,234.50"``, ``1234`` or ``1234.5``.

    A JSON number arrives as a float; its shortest repr is the decimal the sender wrote (for
    up to 15 significant digits), so no binary rounding reaches the amount.
    """
    if isinstance(value, bool):
        raise Invalid("expected an amount")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, Decimal):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
        if "," in text:
            if not _GROUPED.match(text):
                raise Invalid("commas only between thousands, like 1,234.56")
            text = text.replace(",", "")
    else:
        raise Invalid("expected an amount")
    match = _MONEY.match(text)
    if not match:
        if not text.isascii():  # Decimal() would read other scripts' digits
            raise Invalid("expected an amount like 1234.56")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise Invalid("expected an amount like 1234.56") from None
        if not amount.is_finite():
            raise Invalid("expected an amount like 1234.56")
        if amount and amount.adjusted() > _MONEY_MAX_ADJUSTED:
            raise Invalid("out of range")
        if amount != amount.quantize(Decimal("0.01")):
            raise Invalid("at most 2 decimal places")
        minor = int(amount * 100)
    else:
        sign, whole, cents = match.groups()
        minor = int(whole) * 100 + int((cents or "0").ljust(2, "0"))
        if sign == "-":
            minor = -minor
    if abs(minor) > MONEY_MAX_MINOR:
        raise Invalid("out of range")
    return minor


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise Invalid("expected true or false")


def text(value: Any, max_chars: int) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise Invalid("expected text")
    result = " ".join(str(value).split()) if not isinstance(value, str) else value.strip()
    if not result:
        raise Invalid("must not be blank")
    if len(result) > max_chars:
        raise Invalid(f"longer than {max_chars} characters")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for ch in result):
        raise Invalid("contains control characters")
    return result


def normalize(spec: FieldSpec, value: Any, *, text_max_chars: int) -> Any:
    """The canonical value of one field, or ``Invalid``."""
    fmt = spec.format
    if fmt is FieldFormat.TEXT:
        limit = min(spec.max_length or text_max_chars, text_max_chars)
        return text(value, limit)
    if fmt is FieldFormat.PHONE:
        return phone(value)
    if fmt is FieldFormat.EMAIL:
        return email(value)
    if fmt is FieldFormat.ZIP:
        return zip_code(value)
    if fmt is FieldFormat.STATE:
        return state(value)
    if fmt is FieldFormat.DATE:
        return date(value)
    if fmt is FieldFormat.ENUM:
        return enum_choice(value, spec.choices or [])
    if fmt is FieldFormat.BOOLEAN:
        return boolean(value)
    number = integer(value) if fmt is FieldFormat.INTEGER else money(value)
    if spec.minimum is not None and number < spec.minimum:
        raise Invalid(f"below the minimum {spec.minimum}")
    if spec.maximum is not None and number > spec.maximum:
        raise Invalid(f"above the maximum {spec.maximum}")
    return number
