"""How a vertical (lead type) declares its fields.

A vertical is data, not code: an operator creates and changes it over the API, and the same
declaration drives validation, normalisation, PII handling and (later) the filters campaigns
may use.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from exchange.auction.margin import MarginRule
from exchange.auction.ranking import Mode

FIELD_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
SLUG_PATTERN = r"^[a-z][a-z0-9_-]{1,62}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
CHOICE_MAX_CHARS = 100
CHOICES_MAX = 500
DEDUPE_WINDOW_DAYS_MAX = 365


class FieldFormat(str, enum.Enum):
    TEXT = "text"
    PHONE = "phone"
    EMAIL = "email"
    ZIP = "zip"
    STATE = "state"
    DATE = "date"
    ENUM = "enum"
    INTEGER = "integer"
    MONEY = "money"
    BOOLEAN = "boolean"


FieldName = Annotated[str, msgspec.Meta(pattern=FIELD_NAME_PATTERN, description="snake_case")]


class FieldSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One field of a vertical."""

    name: FieldName
    format: FieldFormat
    label: Annotated[str, msgspec.Meta(max_length=200)] = ""
    required_on_ping: bool = False
    required_on_post: bool = False
    pii: bool = False
    # enum: the allowed values (compared case-insensitively, stored as declared).
    choices: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=CHOICE_MAX_CHARS)]],
        msgspec.Meta(max_length=CHOICES_MAX),
    ] | None = None
    # integer and money (money in minor units): inclusive bounds.
    minimum: int | None = None
    maximum: int | None = None
    # text: longest accepted value; the global text_max_chars setting caps it.
    max_length: Annotated[int, msgspec.Meta(ge=1)] | None = None
    description: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class VerticalSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A vertical as an operator writes it."""

    slug: Annotated[str, msgspec.Meta(pattern=SLUG_PATTERN)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    fields: Annotated[list[FieldSpec], msgspec.Meta(min_length=1)]
    currency: Annotated[str, msgspec.Meta(pattern=CURRENCY_PATTERN)] = "USD"
    # A lead whose phone or email hash was accepted in this vertical within the window is a
    # duplicate. 0 turns duplicate checks off.
    dedupe_window_days: Annotated[int, msgspec.Meta(ge=0, le=DEDUPE_WINDOW_DAYS_MAX)] = 30
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    # The exchange's share of every sale in this vertical, unless the buyer's account or the
    # supplier's terms override it. None: the exchange keeps nothing.
    margin: MarginRule | None = None
    # free_pick: the highest bid wins across all buyers; tiers: tier 1 first, lower tiers only
    # when no higher one sells. A supplier's terms may override it.
    auction_mode: Mode = Mode.FREE_PICK


class SpecProblem(msgspec.Struct, frozen=True):
    path: str
    reason: str


def check_spec(spec: VerticalSpec, *, fields_max: int) -> list[SpecProblem]:
    """Problems msgspec's types cannot express: cross-field rules of a vertical."""
    problems: list[SpecProblem] = []
    if len(spec.fields) > fields_max:
        problems.append(SpecProblem("fields", f"at most {fields_max} fields"))
    seen: set[str] = set()
    for i, field in enumerate(spec.fields):
        at = f"fields[{i}]"
        if field.name in seen:
            problems.append(SpecProblem(f"{at}.name", f"duplicate field name {field.name!r}"))
        seen.add(field.name)
        if field.name in RESERVED_FIELD_NAMES:
            problems.append(SpecProblem(f"{at}.name", f"{field.name!r} is reserved"))
        if field.format is FieldFormat.ENUM:
            if not field.choices:
                problems.append(SpecProblem(f"{at}.choices", "an enum field needs choices"))
            elif len({c.casefold() for c in field.choices}) != len(field.choices):
                problems.append(SpecProblem(f"{at}.choices", "choices must be unique"))
            elif any(c != c.strip() for c in field.choices):
                # Values are stripped before matching, so such a choice could never be chosen.
                problems.append(
                    SpecProblem(f"{at}.choices", "choices must not start or end with spaces")
                )
        elif field.choices is not None:
            problems.append(SpecProblem(f"{at}.choices", "only enum fields take choices"))
        bounded = field.format in (FieldFormat.INTEGER, FieldFormat.MONEY)
        if not bounded and (field.minimum is not None or field.maximum is not None):
            problems.append(SpecProblem(f"{at}.minimum", "only integer and money fields take bounds"))
        if (
            field.minimum is not None
            and field.maximum is not None
            and field.minimum > field.maximum
        ):
            problems.append(SpecProblem(f"{at}.maximum", "maximum is below minimum"))
        if field.max_length is not None and field.format is not FieldFormat.TEXT:
            problems.append(SpecProblem(f"{at}.max_length", "only text fields take max_length"))
        if field.pii and field.required_on_ping:
            problems.append(
                SpecProblem(f"{at}.required_on_ping", "a PII field is never sent on a ping")
            )
    return problems


# Names the lead envelope already uses; a vertical field by these names would be ambiguous.
RESERVED_FIELD_NAMES = frozenset(
    {
        "id", "lead_id", "ping_id", "vertical", "source", "sub_ids", "consent", "test", "status",
        # campaign filters report an expression filter as `filtered:expression`, and score
        # filters as `filtered:score` / `filtered:priority` (exchange.scoring)
        "expression", "score", "priority",
    }  # fmt: skip
)
