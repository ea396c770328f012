"""The operator-editable mapping from a source's keys to a vertical's fields, and applying it.

A source's payload is first flattened (by its adapter) into ``Item``s: the source's key (a form
field name, a Google Ads ``column_id``, a Meta field name, a CSV header, an email "Key:" line),
its value and the path that names it in the source's own terms (``user_column_data[EMAIL]``).
Keys compare case-insensitively and without surrounding blanks: a CSV header "Phone " is
``phone``. Pure functions over plain values.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from exchange.errors import FieldProblem
from exchange.intake.fields import FieldSpec
from exchange.intake.messages import Consent, SubIds

MAPPING_MAX_ENTRIES = 200
KEY_MAX_CHARS = 256
CONSTANT_MAX_CHARS = 1000

SourceKey = Annotated[str, msgspec.Meta(min_length=1, max_length=KEY_MAX_CHARS)]
FieldName = Annotated[str, msgspec.Meta(min_length=1, max_length=KEY_MAX_CHARS)]
Constant = Annotated[str, msgspec.Meta(max_length=CONSTANT_MAX_CHARS)] | int | bool

CONSENT_NAMES = frozenset(Consent.__struct_fields__)
SUB_ID_NAMES = frozenset(SubIds.__struct_fields__)


class Mapping(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Source key -> vertical field, plus constants and the simple transforms sources need."""

    # source key -> the vertical's field it fills
    fields: Annotated[dict[SourceKey, FieldName], msgspec.Meta(max_length=MAPPING_MAX_ENTRIES)] = {}
    # source key holding a full name -> [first name field, last name field]; "Ana Maria Garcia"
    # is first "Ana Maria", last "Garcia"
    split_name: Annotated[
        dict[SourceKey, Annotated[list[FieldName], msgspec.Meta(min_length=2, max_length=2)]],
        msgspec.Meta(max_length=MAPPING_MAX_ENTRIES),
    ] = {}
    # vertical field -> a value every lead of this source has (unless the payload fills it)
    constants: Annotated[
        dict[FieldName, Constant], msgspec.Meta(max_length=MAPPING_MAX_ENTRIES)
    ] = {}
    # source key -> consent field (tcpa_text, trustedform_cert_url, jornaya_leadid, ...)
    consent: Annotated[dict[SourceKey, FieldName], msgspec.Meta(max_length=len(CONSENT_NAMES))] = {}
    # source key -> sub id (sub1..sub5)
    sub_ids: Annotated[dict[SourceKey, FieldName], msgspec.Meta(max_length=len(SUB_ID_NAMES))] = {}
    # email: the vertical field the sender's address fills when the body does not
    sender_field: FieldName | None = None


class Item(msgspec.Struct, frozen=True):
    key: str
    value: str
    path: str  # the source's own name for it, for errors


class Mapped(msgspec.Struct, kw_only=True):
    fields: dict[str, Any]
    consent: dict[str, str]
    sub_ids: dict[str, str]
    # "fields.phone" -> "user_column_data[PHONE_NUMBER]": how to name a failing field
    paths: dict[str, str]


def norm(key: str) -> str:
    return key.strip().casefold()


def check(mapping: Mapping, specs: list[FieldSpec]) -> list[FieldProblem]:
    """Every target the mapping names must exist: the vertical's fields, consent, sub ids."""
    names = {spec.name for spec in specs}
    problems = []
    for key, target in mapping.fields.items():
        if target not in names:
            problems.append(
                FieldProblem(f"mapping.fields.{key}", f"{target!r} is not a field of the vertical")
            )
    for key, targets in mapping.split_name.items():
        for target in targets:
            if target not in names:
                problems.append(
                    FieldProblem(
                        f"mapping.split_name.{key}", f"{target!r} is not a field of the vertical"
                    )
                )
    for target in mapping.constants:
        if target not in names:
            problems.append(
                FieldProblem(f"mapping.constants.{target}", "not a field of the vertical")
            )
    for key, target in mapping.consent.items():
        if target not in CONSENT_NAMES:
            problems.append(
                FieldProblem(f"mapping.consent.{key}", f"one of {', '.join(sorted(CONSENT_NAMES))}")
            )
    for key, target in mapping.sub_ids.items():
        if target not in SUB_ID_NAMES:
            problems.append(
                FieldProblem(f"mapping.sub_ids.{key}", f"one of {', '.join(sorted(SUB_ID_NAMES))}")
            )
    if mapping.sender_field is not None and mapping.sender_field not in names:
        problems.append(FieldProblem("mapping.sender_field", "not a field of the vertical"))
    seen: dict[str, str] = {}
    for key in [*mapping.fields, *mapping.split_name, *mapping.consent, *mapping.sub_ids]:
        if norm(key) in seen and seen[norm(key)] != key:
            problems.append(
                FieldProblem(f"mapping.{key}", "keys compare case-insensitively: named twice")
            )
        seen[norm(key)] = key
    return problems


def apply(mapping: Mapping, items: list[Item], *, path_of, sender: str | None = None) -> Mapped:
    """The lead's fields, consent and sub ids from a source's items. Unmapped keys are ignored
    (a form's submit button, a CSV's notes column); an empty value counts as absent, so a
    required field still fails, named by the source key it should have come from."""
    seen = {norm(item.key): item for item in items if item.value.strip()}
    fields: dict[str, Any] = {}
    consent: dict[str, str] = {}
    sub_ids: dict[str, str] = {}
    paths: dict[str, str] = {}

    def path(key: str) -> str:
        item = seen.get(norm(key))
        return item.path if item is not None else path_of(key)

    for key, target in mapping.fields.items():
        paths[f"fields.{target}"] = path(key)
        if (item := seen.get(norm(key))) is not None:
            fields[target] = item.value
    for key, (first, last) in mapping.split_name.items():
        paths.setdefault(f"fields.{first}", path(key))
        paths.setdefault(f"fields.{last}", path(key))
        if (item := seen.get(norm(key))) is not None:
            parts = item.value.strip().rsplit(None, 1)
            fields.setdefault(first, parts[0])
            if len(parts) == 2:
                fields.setdefault(last, parts[1])
    for key, target in mapping.consent.items():
        paths[f"consent.{target}"] = path(key)
        if (item := seen.get(norm(key))) is not None:
            consent[target] = item.value
    for key, target in mapping.sub_ids.items():
        paths[f"sub_ids.{target}"] = path(key)
        if (item := seen.get(norm(key))) is not None:
            sub_ids[target] = item.value
    if mapping.sender_field is not None and sender and mapping.sender_field not in fields:
        fields[mapping.sender_field] = sender
        paths.setdefault(f"fields.{mapping.sender_field}", "From")
    for target, value in mapping.constants.items():
        fields.setdefault(target, value)
    return Mapped(fields=fields, consent=consent, sub_ids=sub_ids, paths=paths)


def rename(problems: list[FieldProblem] | None, paths: dict[str, str]) -> list[FieldProblem] | None:
    """Name failing fields by the source's key where the mapping knows it."""
    if problems is None:
        return None
    return [FieldProblem(paths.get(p.path, p.path), p.reason) for p in problems]
