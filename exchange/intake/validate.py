"""Validate a lead against its vertical: every failing field, with its path and reason.

Pure: takes the vertical's fields and the decoded request, returns the normalised lead or the
full list of problems. Nothing here stores anything, so a rejected lead leaves no trace.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
from typing import Any
from urllib.parse import urlsplit

import msgspec

from exchange.intake import normalize
from exchange.intake.fields import FieldFormat, FieldSpec
from exchange.intake.messages import Consent, LeadIn


class Stage(str, enum.Enum):
    PING = "ping"
    POST = "post"


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    text_max_chars: int = 1_000
    consent_text_max_chars: int = 10_000
    url_max_chars: int = 2_048
    max_fields_per_lead: int = 100


class FieldError(msgspec.Struct, frozen=True):
    path: str
    reason: str


class ValidLead(msgspec.Struct, frozen=True, kw_only=True):
    """A lead that passed validation, split by where each value may go."""

    fields: dict[str, Any]  # non-PII: may be shown to bidders on a ping
    pii: dict[str, Any]  # PII: only to the buyer that bought the lead
    phone: str | None  # first phone-format field, for duplicate checks
    email: str | None  # first email-format field, for duplicate checks
    consent: Consent | None


def validate_lead(
    fields_spec: list[FieldSpec], lead: LeadIn, stage: Stage, limits: Limits
) -> ValidLead | list[FieldError]:
    errors: list[FieldError] = []
    by_name = {spec.name: spec for spec in fields_spec}
    given = lead.fields
    if len(given) > limits.max_fields_per_lead:
        errors.append(
            FieldError("fields", f"at most {limits.max_fields_per_lead} fields per lead")
        )
        return errors

    for name in given:
        if name not in by_name:
            errors.append(FieldError(f"fields.{_safe(name)}", "unknown field for this vertical"))

    clean: dict[str, Any] = {}
    pii: dict[str, Any] = {}
    for spec in fields_spec:
        path = f"fields.{spec.name}"
        raw = given.get(spec.name)
        required = spec.required_on_post if stage is Stage.POST else spec.required_on_ping
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if required:
                errors.append(FieldError(path, f"required on {stage.value}"))
            continue
        if stage is Stage.PING and spec.pii:
            errors.append(FieldError(path, "PII is not accepted on a ping; send it on the post"))
            continue
        try:
            value = normalize.normalize(spec, raw, text_max_chars=limits.text_max_chars)
        except normalize.Invalid as exc:
            errors.append(FieldError(path, exc.reason))
            continue
        (pii if spec.pii else clean)[spec.name] = value

    errors.extend(_check_consent(lead.consent, limits))
    errors.extend(_check_envelope(lead, limits))
    if errors:
        return errors

    def first(fmt: FieldFormat) -> str | None:
        for spec in fields_spec:
            if spec.format is fmt:
                value = pii.get(spec.name, clean.get(spec.name))
                if value is not None:
                    return value
        return None

    return ValidLead(
        fields=clean,
        pii=pii,
        phone=first(FieldFormat.PHONE),
        email=first(FieldFormat.EMAIL),
        consent=lead.consent,
    )


def _check_consent(consent: Consent | None, limits: Limits) -> list[FieldError]:
    """Consent travels untouched: checked for shape, never rewritten."""
    if consent is None:
        return []
    errors: list[FieldError] = []
    if consent.tcpa_text is not None and len(consent.tcpa_text) > limits.consent_text_max_chars:
        errors.append(
            FieldError("consent.tcpa_text", f"longer than {limits.consent_text_max_chars} characters")
        )
    for name in ("trustedform_cert_url", "landing_page_url"):
        url = getattr(consent, name)
        if url is not None:
            reason = _url_problem(url, limits.url_max_chars)
            if reason:
                errors.append(FieldError(f"consent.{name}", reason))
    if consent.ip_address is not None:
        try:
            ipaddress.ip_address(consent.ip_address)
        except ValueError:
            errors.append(FieldError("consent.ip_address", "not an IPv4 or IPv6 address"))
    if consent.consented_at is not None:
        try:
            dt.datetime.fromisoformat(consent.consented_at.replace("Z", "+00:00"))
        except ValueError:
            errors.append(FieldError("consent.consented_at", "expected an ISO 8601 timestamp"))
    for name in ("jornaya_leadid", "user_agent"):
        value = getattr(consent, name)
        if value is not None and len(value) > limits.text_max_chars:
            errors.append(
                FieldError(f"consent.{name}", f"longer than {limits.text_max_chars} characters")
            )
    return errors


def _check_envelope(lead: LeadIn, limits: Limits) -> list[FieldError]:
    errors: list[FieldError] = []
    if lead.source is not None and len(lead.source) > limits.text_max_chars:
        errors.append(FieldError("source", f"longer than {limits.text_max_chars} characters"))
    if lead.sub_ids is not None:
        for name in lead.sub_ids.__struct_fields__:
            value = getattr(lead.sub_ids, name)
            if value is not None and len(value) > limits.text_max_chars:
                errors.append(
                    FieldError(f"sub_ids.{name}", f"longer than {limits.text_max_chars} characters")
                )
    return errors


def _url_problem(url: str, max_chars: int) -> str | None:
    if len(url) > max_chars:
        return f"longer than {max_chars} characters"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "expected an http(s) URL"
    return None


def _safe(name: str) -> str:
    """A field name echoed back in an error, cut short so an error cannot be made huge."""
    return name if len(name) <= 64 else name[:61] + "..."
