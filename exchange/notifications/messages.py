"""What the notification API reads and writes (msgspec Structs; bounds checked on decode)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec

from exchange.notifications.templates import BODY_MAX_CHARS, SUBJECT_MAX_CHARS

AgentEvent = Literal["offered", "assigned", "reassigned"]
# ``unowned``: managers only, a lead still without an owner ``unowned_minutes`` after routing.
Event = Literal["offered", "assigned", "reassigned", "unowned"]
Channel = Literal["email", "webhook"]
Status = Literal["pending", "sent", "failed"]
EVENTS: tuple[str, ...] = ("offered", "assigned", "reassigned")  # what an agent hears of
UNOWNED = "unowned"
MANAGER_EVENTS: tuple[str, ...] = (*EVENTS, UNOWNED)
UNOWNED_MINUTES_MAX = 24 * 60
MANAGERS_MAX = 20
EMAIL_MAX_CHARS = 320
URL_MAX_CHARS = 1_000
SECRET_MIN_CHARS = 16
SECRET_MAX_CHARS = 200
SCORE_MAX = 100

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=EMAIL_MAX_CHARS,
                                    pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]  # fmt: skip
AgentEvents = Annotated[list[AgentEvent], msgspec.Meta(max_length=len(EVENTS))]
Events = Annotated[list[Event], msgspec.Meta(max_length=len(MANAGER_EVENTS))]
Channels = Annotated[list[Channel], msgspec.Meta(max_length=2)]


class AgentRule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What the agent an event is about hears, and how (its profile's ``email``)."""

    events: AgentEvents = msgspec.field(default_factory=lambda: list(EVENTS))
    channels: Channels = msgspec.field(default_factory=lambda: ["email"])


class ManagerRule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A manager told of the team's events that match: these events, leads scored at least
    ``min_score`` (None: any lead, scored or not)."""

    email: Email
    events: Events = msgspec.field(default_factory=lambda: ["assigned"])
    min_score: Annotated[int, msgspec.Meta(ge=0, le=SCORE_MAX)] | None = None
    channels: Channels = msgspec.field(default_factory=lambda: ["email"])


class Webhook(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where the webhook channel posts (an SMS or WhatsApp provider's relay), signed with
    ``secret`` as buyer requests are (docs/delivery.md)."""

    url: Annotated[str, msgspec.Meta(max_length=URL_MAX_CHARS, pattern=r"^https?://")]
    secret: Annotated[str, msgspec.Meta(min_length=SECRET_MIN_CHARS, max_length=SECRET_MAX_CHARS)]


class Template(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    subject: Annotated[str, msgspec.Meta(max_length=SUBJECT_MAX_CHARS)] | None = None
    body: Annotated[str, msgspec.Meta(max_length=BODY_MAX_CHARS)] | None = None


class NotificationConfigIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A team's notifications: ``templates[event][channel]`` overrides the default text.
    ``unowned_minutes``: managers whose events include ``unowned`` hear of each lead routed to
    the team that has no owner (queued or only offered) this many minutes later."""

    agent: AgentRule | None = msgspec.field(default_factory=AgentRule)
    managers: Annotated[list[ManagerRule], msgspec.Meta(max_length=MANAGERS_MAX)] = []
    webhook: Webhook | None = None
    templates: dict[Event, dict[Channel, Template]] = {}
    unowned_minutes: Annotated[int, msgspec.Meta(ge=1, le=UNOWNED_MINUTES_MAX)] | None = None


class WebhookOut(msgspec.Struct, kw_only=True):
    url: str  # the secret is never shown back


class NotificationConfig(msgspec.Struct, kw_only=True):
    team_id: uuid.UUID
    agent: AgentRule | None
    managers: list[ManagerRule]
    webhook: WebhookOut | None
    templates: dict[Event, dict[Channel, Template]]
    unowned_minutes: int | None
    updated_at: dt.datetime


class NotificationOut(msgspec.Struct, kw_only=True):
    """One notification of the outbox (the webhook secret and mail text are not shown)."""

    id: uuid.UUID
    lead_id: uuid.UUID | None
    party_id: uuid.UUID | None
    event: str
    channel: str
    address: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: dt.datetime | None
    created_at: dt.datetime
    sent_at: dt.datetime | None

