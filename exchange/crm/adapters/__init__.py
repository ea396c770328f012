"""Pure translators, one module per CRM kind: ``build`` the request for one event on one lead,
``parse`` the CRM's 2xx answer (and what its refusals mean). No I/O here: the sender owns HTTP,
deadlines and retries, and decides 408/429/5xx (retry) and other 4xx (failed) by status."""

from __future__ import annotations

import datetime as dt
import enum
import re
from typing import Any

import msgspec

from exchange.crm.messages import OUTCOME_PREFIX

ERROR_MAX_CHARS = 500


class LeadView(msgspec.Struct, frozen=True, kw_only=True):
    """What is pushed: the lead as the party that bought or owns it sees it (PII included),
    and the event's details (a sale, an assignment or an outcome)."""

    id: str
    vertical: str
    fields: dict[str, Any]
    pii: dict[str, Any]
    score: int | None
    priority: str | None
    source: str | None
    channel: str | None
    created_at: dt.datetime
    event: str
    details: dict[str, Any]  # the sale, the assignment or the outcome, as JSON values

    @property
    def outcome(self) -> str | None:
        return self.event[len(OUTCOME_PREFIX) :] if self.event.startswith(OUTCOME_PREFIX) else None

    def value(self, field: str) -> Any:
        """A field of the lead, PII first (names, email and phone live there)."""
        return self.pii.get(field, self.fields.get(field))


class Verdict(str, enum.Enum):
    SYNCED = "synced"
    FAILED = "failed"  # final: retrying cannot help
    RETRY = "retry"
    UPDATE = "update"  # the record exists already (``external_id``): update it instead


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    verdict: Verdict
    external_id: str | None = None
    error: str | None = None


_SECRETISH = re.compile(r"(?i)(bearer\s+)\S+")


def error_text(status: int | None, body: bytes | str) -> str:
    """A refusal as kept in ``last_error``: the status and the answer's start, bounded, with
    anything that looks like a bearer token masked."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    text = _SECRETISH.sub(r"\1[redacted]", text)
    prefix = f"HTTP {status}: " if status is not None else ""
    return (prefix + text)[:ERROR_MAX_CHARS]


def mapped(view: LeadView, defaults: dict[str, str], field_map: dict[str, str]) -> dict[str, Any]:
    """CRM property -> value: the adapter's defaults (lead field -> property) overridden and
    extended by the connection's ``field_map``; empty values are left out."""
    mapping = {**defaults, **field_map}
    out: dict[str, Any] = {}
    for field, prop in mapping.items():
        value = view.value(field)
        if value is not None and value != "":
            out[prop] = value if isinstance(value, (str, int, float, bool)) else str(value)
    return out


def json_body(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body) if body else None
    except msgspec.DecodeError:
        return None
