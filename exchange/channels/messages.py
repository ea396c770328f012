"""Wire messages of intake sources and batches."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Annotated, Any

import msgspec

from exchange.channels.mapping import Mapping
from exchange.errors import FieldProblem

SECRET_MIN_CHARS = 8
SECRET_MAX_CHARS = 256
URL_MAX_CHARS = 2000

Url = Annotated[str, msgspec.Meta(max_length=URL_MAX_CHARS, pattern=r"^https?://\S+$")]
Secret = Annotated[str, msgspec.Meta(min_length=SECRET_MIN_CHARS, max_length=SECRET_MAX_CHARS)]


class Channel(str, enum.Enum):
    FORM = "form"
    GOOGLE_ADS = "google_ads"
    META = "meta"
    CSV = "csv"
    EMAIL = "email"


# Channels whose sender proves itself with a shared key (Google Ads' google_key, Meta's verify
# token); the others are identified by the source's URL token (form, email) or an API key (csv).
KEYED_CHANNELS = frozenset({Channel.GOOGLE_ADS, Channel.META})


class SourceSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Per channel settings. Secrets here (Meta's app secret, page token) are never shown back."""

    success_url: Url | None = None  # form: 303 here (with ?lead_id=) on success
    error_url: Url | None = None  # form: 303 here (with ?error=&fields=) on failure
    honeypot_field: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    app_secret: Secret | None = None  # meta: signs X-Hub-Signature-256
    page_access_token: Annotated[str, msgspec.Meta(max_length=1000)] | None = (
        None  # meta: Graph API
    )
    graph_api_version: Annotated[str, msgspec.Meta(pattern=r"^v\d+\.\d+$")] = "v19.0"


SECRET_SETTINGS = ("app_secret", "page_access_token")


class SourceIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    vertical: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    channel: Channel
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    mapping: Mapping
    source: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    supplier_id: uuid.UUID | None = None  # operators name the supplier; a supplier is itself
    # Google Ads' google_key or Meta's verify token; made up (and shown once) when not given
    secret: Secret | None = None
    settings: SourceSettings = msgspec.field(default_factory=SourceSettings)


class SourcePatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    source: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    mapping: Mapping | None = None
    settings: SourceSettings | None = None
    secret: Secret | None = None
    active: bool | None = None


class SourceView(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: uuid.UUID
    supplier_id: uuid.UUID
    vertical: str
    channel: Channel
    name: str
    source: str | None
    mapping: Mapping
    token: str
    path: str  # where the source posts (relative to the API's base URL)
    settings: dict[str, Any]
    active: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    secret: str | None = None  # only in the answer that made it up


class RowReport(msgspec.Struct, kw_only=True, omit_defaults=True):
    row: int  # the line of the file (the header is line 1); 1 for an email
    status: str  # accepted, rejected, duplicate
    lead_id: uuid.UUID | None = None
    lead_status: str | None = None  # sold, unsold
    code: str | None = None
    message: str | None = None
    fields: list[FieldProblem] | None = None


class BatchView(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    source_id: uuid.UUID
    supplier_id: uuid.UUID
    kind: str
    name: str | None
    path: str  # where to read it again (GET)
    status: str  # done; processing: a large CSV a worker is still taking in
    rows: int
    processed: int  # rows taken in so far (rows, once done)
    accepted: int
    rejected: int
    duplicates: int
    report: list[RowReport]  # by line; a page of it (report_next_after: the next page)
    received_at: dt.datetime
    report_next_after: int | None = None  # pass as ?after= for the report's next page
