"""Wire messages of CRM sync: connections (their config, never their secret) and sync rows."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Annotated

import msgspec

NAME_MAX_CHARS = 200
URL_MAX_CHARS = 2_000
SECRET_MAX_CHARS = 500  # the column's width
FIELD_MAP_MAX = 100
PROPERTY_MAX_CHARS = 100
EVENTS_MAX = 20
TIMEOUT_MS_MIN = 100
TIMEOUT_MS_MAX = 30_000
TIMEOUT_MS_DEFAULT = 10_000

EVENT_SOLD = "sold"
EVENT_ASSIGNED = "assigned"
OUTCOME_PREFIX = "outcome:"
ALL_OUTCOMES = "outcome:*"
DEFAULT_EVENTS = (EVENT_SOLD, EVENT_ASSIGNED, ALL_OUTCOMES)
OUTCOME_KINDS = ("contacted", "qualified", "appointment", "won", "lost", "bad_lead")
EVENT_NAMES = frozenset(
    (EVENT_SOLD, EVENT_ASSIGNED, ALL_OUTCOMES, *(OUTCOME_PREFIX + k for k in OUTCOME_KINDS))
)

PENDING = "pending"
SYNCED = "synced"
FAILED = "failed"


class CrmKind(str, enum.Enum):
    WEBHOOK = "webhook"  # our JSON, signed like requests to buyers
    HUBSPOT = "hubspot"  # CRM v3 contacts, private app token
    SALESFORCE = "salesforce"  # REST sObject Lead, OAuth access token


Name = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX_CHARS)]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=URL_MAX_CHARS)]
Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=SECRET_MAX_CHARS)]
Property = Annotated[str, msgspec.Meta(min_length=1, max_length=PROPERTY_MAX_CHARS)]
ApiVersion = Annotated[str, msgspec.Meta(pattern=r"^v\d{1,3}\.\d$")]
TimeoutMs = Annotated[int, msgspec.Meta(ge=TIMEOUT_MS_MIN, le=TIMEOUT_MS_MAX)]


class CrmConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Where and what to push. ``url``: the webhook's URL, HubSpot's API base
    (https://api.hubapi.com) or the Salesforce instance URL. ``field_map``: lead field ->
    CRM property, over the adapter's defaults. ``events``: sold, assigned, outcome:* or
    outcome:<kind>."""

    url: Url
    api_version: ApiVersion = "v59.0"  # Salesforce REST API version
    field_map: Annotated[dict[Property, Property], msgspec.Meta(max_length=FIELD_MAP_MAX)] = {}
    events: Annotated[list[str], msgspec.Meta(min_length=1, max_length=EVENTS_MAX)] = msgspec.field(
        default_factory=lambda: list(DEFAULT_EVENTS)
    )
    lead_source: Annotated[str, msgspec.Meta(max_length=PROPERTY_MAX_CHARS)] | None = None
    timeout_ms: TimeoutMs = TIMEOUT_MS_DEFAULT

    def wants(self, event: str) -> bool:
        return wants(self.events, event)


def assigned_event(owner_number: int) -> str:
    """The event of a lead's ``owner_number``-th owner (1: its first): ``assigned``, then
    ``assigned:2``... A lead has one row per (connection, event), so each new owner (an SLA
    reassignment) is its own push; each is sent as ``assigned`` with the owner of the time."""
    return EVENT_ASSIGNED if owner_number <= 1 else f"{EVENT_ASSIGNED}:{owner_number}"


def base_event(event: str) -> str:
    """What an event is to a connection and a CRM: ``assigned:2`` is ``assigned``."""
    return EVENT_ASSIGNED if event.startswith(EVENT_ASSIGNED + ":") else event


def wants(events: list[str] | tuple[str, ...], event: str) -> bool:
    """Whether a connection with these ``events`` takes ``event``."""
    event = base_event(event)
    return event in events or (event.startswith(OUTCOME_PREFIX) and ALL_OUTCOMES in events)


class CrmConnectionIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``party_id``: the team or buyer whose leads are pushed (operators; a team or buyer key
    makes its own). ``secret``: the HubSpot/Salesforce token, or the webhook's signing secret."""

    kind: CrmKind
    name: Name
    config: CrmConfig
    secret: Secret | None = None
    party_id: uuid.UUID | None = None


class CrmConnectionPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name | None = None
    config: CrmConfig | None = None
    secret: Secret | None = None
    active: bool | None = None


class CrmConnection(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    party_id: uuid.UUID
    kind: CrmKind
    name: str
    config: CrmConfig
    has_secret: bool  # the secret itself is never shown back
    active: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class CrmConnections(msgspec.Struct, kw_only=True):
    items: list[CrmConnection]


class CrmSync(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    connection_id: uuid.UUID
    connection_name: str
    kind: CrmKind
    party_id: uuid.UUID
    event: str
    status: str  # pending, synced, failed
    attempts: int
    last_error: str | None
    external_id: str | None  # the CRM's record id
    next_attempt_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class LeadCrmSyncs(msgspec.Struct, kw_only=True):
    lead_id: uuid.UUID
    items: list[CrmSync]
