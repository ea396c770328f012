"""Typed mirrors of the exchange API's JSON, as ``msgspec`` Structs.

Responses decode leniently: a field the exchange adds later is ignored, so an older SDK keeps
working. Enumerations (``price_mode``, ``status``...) are plain strings for the same reason.
Money is always an integer in minor units (cents) in fields ending ``_minor``.

``tests/sdk/test_contract.py`` checks these against the exchange's OpenAPI document, so a field
renamed or retyped on one side fails the build rather than a customer's integration.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Generic, TypeVar

import msgspec

T = TypeVar("T")


# --- enumerations ------------------------------------------------------------------------------
# Answers carry them as plain strings (a value added later does not break an older SDK); these
# are the values this SDK knows, checked against the API's by tests/sdk/test_contract.py.

CAP_WINDOWS = ("hour", "day", "week", "month", "concurrent")  # concurrent: call campaigns
PRICE_MODES = ("fixed", "live")
RETURN_STATUSES = ("requested", "approved", "denied")
PII_STATES = ("included", "purged", "withheld")
HTTP_METHODS = ("POST", "PUT", "GET")
BODY_FORMATS = ("json", "form")
FIELD_FORMATS = (
    "text", "phone", "email", "zip", "state", "date", "enum", "integer", "money", "boolean",
)  # fmt: skip
AUCTION_MODES = ("free_pick", "tiers")
PARTY_KINDS = ("operator", "supplier", "buyer", "team", "agent", "finance")
ACCOUNT_KINDS = ("buyer", "supplier", "revenue", "cash")
SIDES = ("debit", "credit")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OUTCOME_KINDS = ("contacted", "qualified", "appointment", "won", "lost", "bad_lead")
OUTCOME_CHANNELS = ("api", "postback")
REPORTER_KINDS = ("agent", "buyer")
CRM_KINDS = ("webhook", "hubspot", "salesforce")
# What a CRM connection may take (``CrmConfig.events``): not an enumeration in the API, since
# ``outcome:<kind>`` follows OUTCOME_KINDS.
CRM_EVENTS = ("sold", "assigned", "outcome:*", *(f"outcome:{k}" for k in OUTCOME_KINDS))
CRM_DEFAULT_EVENTS = ("sold", "assigned", "outcome:*")
CRM_SYNC_STATUSES = ("pending", "synced", "failed")

Scalar = str | int | float | bool


class _Tagged(msgspec.Struct, kw_only=True, omit_defaults=True, tag_field="kind"):
    """A member of a union told apart by its ``kind``."""


# --- filters (docs/campaigns.md): one of these Structs each, told apart by ``kind`` -----------


class StatesIn(_Tagged, tag="states_in"):
    """The lead's ``field`` (a US state code) is one of ``states``."""

    field: str
    states: list[str]


class StatesNotIn(_Tagged, tag="states_not_in"):
    field: str
    states: list[str]


class ZipIn(_Tagged, tag="zip_in"):
    field: str
    zips: list[str]


class ZipPrefix(_Tagged, tag="zip_prefix"):
    """The lead's zip starts with any of ``prefixes`` (1 to 5 digits)."""

    field: str
    prefixes: list[str]


class ZipRadius(_Tagged, tag="zip_radius"):
    """The lead's zip lies within ``miles`` of ``center`` (a 5-digit zip)."""

    field: str
    center: str
    miles: float


class NumberRange(_Tagged, tag="number_range"):
    """An integer or money (minor units) field within [minimum, maximum]; either may be open."""

    field: str
    minimum: int | None = None
    maximum: int | None = None


class EnumIn(_Tagged, tag="enum_in"):
    field: str
    values: list[str]


class EnumNotIn(_Tagged, tag="enum_not_in"):
    field: str
    values: list[str]


class BooleanIs(_Tagged, tag="boolean_is"):
    field: str
    value: bool


class AgeRange(_Tagged, tag="age"):
    """Whole years since a date field; ``timezone`` None: the campaign's zone."""

    field: str
    min_years: int | None = None
    max_years: int | None = None
    timezone: str | None = None


class Expression(_Tagged, tag="expression"):
    """A custom condition, e.g. ``credit_score >= 650 and state != 'NY'``."""

    expression: str


class ScoreRange(_Tagged, tag="score_range"):
    """The lead's score (0-100, from its vertical's scoring) within [minimum, maximum]."""

    minimum: int | None = None
    maximum: int | None = None


class PriorityIn(_Tagged, tag="priority_in"):
    """The lead's priority band (e.g. ``high``) is one of ``values``."""

    values: list[str]


Filter = (
    StatesIn | StatesNotIn | ZipIn | ZipPrefix | ZipRadius | NumberRange | EnumIn | EnumNotIn
    | BooleanIs | AgeRange | Expression | ScoreRange | PriorityIn
)  # fmt: skip


# --- schedule and caps ----------------------------------------------------------------------


class Interval(msgspec.Struct, kw_only=True):
    """Local minutes of a day: ``start`` included, ``end`` excluded (540-1020 is 09:00-17:00)."""

    start: int
    end: int
    max_concurrent: int | None = None  # call campaigns: calls at once while this interval is open


class Schedule(msgspec.Struct, kw_only=True):
    """Weekly opening hours: ``days`` maps ``mon``..``sun`` to intervals."""

    timezone: str
    days: dict[str, list[Interval]] = {}


class Cap(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A lead-count and/or spend limit per ``hour``, ``day``, ``week`` or ``month``."""

    window: str  # CAP_WINDOWS
    max_count: int | None = None
    max_spend_minor: int | None = None


class CallTerms(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A campaign that buys calls: where they ring (E.164 or SIP; a team's agents when None) and
    the least duration a call is billed from (docs/calls.md)."""

    destination: str | None = None
    min_duration_s: int = 90


class ReturnPolicy(msgspec.Struct, kw_only=True):
    """When a lead bought on the campaign may be returned (``window_days`` 0: never)."""

    window_days: int = 0
    reasons: list[str] = []
    max_rate_bps: int = 0


# --- endpoints (delivery config, docs/delivery.md) ------------------------------------------


class NoAuth(_Tagged, tag="none"):
    pass


class BearerAuth(_Tagged, tag="bearer"):
    token: str


class BasicAuth(_Tagged, tag="basic"):
    username: str
    password: str


class HeaderAuth(_Tagged, tag="header"):
    """An API key in a header of your choosing (``X-Api-Key: ...``)."""

    name: str
    value: str


Auth = NoAuth | BearerAuth | BasicAuth | HeaderAuth


class FieldMap(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One key of the body sent to you: from a lead value (``source``) or a ``constant``."""

    target: str
    source: str | None = None
    constant: Scalar | None = None
    value_map: dict[str, Scalar] | None = None
    required: bool = False
    secret: bool = False  # the constant is a credential: masked (``"[redacted]"``) when shown


class ResponseRules(msgspec.Struct, kw_only=True, omit_defaults=True):
    """How the exchange reads your answer; with nothing set any 2xx is a yes."""

    success_path: str | None = None
    success_values: list[Scalar] = []
    success_regex: str | None = None
    price_path: str | None = None
    price_regex: str | None = None
    reference_path: str | None = None
    reason_path: str | None = None


class EndpointConfig(_Tagged, tag="http"):
    """Where and how the exchange sends a ping or post; secrets read ``"[redacted]"`` when
    shown, and sent back unchanged they keep the stored ones."""

    url: str
    method: str = "POST"  # HTTP_METHODS
    body: str = "json"  # BODY_FORMATS; GET sends a form in the query string
    mapping: list[FieldMap] = []  # empty: the exchange's native JSON body
    headers: dict[str, str] = {}
    auth: Auth = msgspec.field(default_factory=NoAuth)
    timeout_ms: int | None = None
    response: ResponseRules = msgspec.field(default_factory=ResponseRules)


class BuyerEndpoints(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A campaign's endpoints; no ``ping``: the campaign bids its fixed price, unasked."""

    post: EndpointConfig
    ping: EndpointConfig | None = None


# --- margins (set by operators; shown on your account and the verticals) --------------------


class _Rule(msgspec.Struct, kw_only=True, omit_defaults=True, tag_field="type"):
    pass


class FixedMargin(_Rule, tag="fixed"):
    amount_minor: int


class PercentMargin(_Rule, tag="percent"):
    bps: int
    min_margin_minor: int = 0


class PriceBand(msgspec.Struct, kw_only=True):
    """Bids up to ``up_to_minor`` (inclusive; None: and above) use ``rule``."""

    up_to_minor: int | None
    rule: FixedMargin | PercentMargin


class BandedMargin(_Rule, tag="bands"):
    bands: list[PriceBand]


class FixedPayout(_Rule, tag="fixed_payout"):
    amount_minor: int


class RevenueShare(_Rule, tag="revenue_share"):
    bps: int


Margin = FixedMargin | PercentMargin | BandedMargin | FixedPayout | RevenueShare


# --- campaigns ------------------------------------------------------------------------------


class CampaignIn(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A campaign as you write it (create, and replace as a whole).

    Fields left at their default are not sent, so the exchange's own defaults apply.
    ``endpoints`` may also be the dict of ``buyers_sdk.receiver.endpoints``.
    """

    name: str
    vertical: str
    timezone: str | None = None
    active: bool = True
    filters: list[Filter] = []
    schedule: Schedule | None = None
    caps: list[Cap] = []
    price_mode: str = "fixed"  # PRICE_MODES
    fixed_price_minor: int | None = None
    floor_minor: int = 0
    max_sells: int = 1
    tier: int = 1
    endpoints: BuyerEndpoints | None = None
    returns: ReturnPolicy | None = None
    rank_by_conversion: bool = False  # teams only: rank bids by measured conversion
    conversion_floor_pct: int = 50  # its ranking value never below this % of its price
    call: CallTerms | None = None  # set: the campaign buys calls, and only calls
    buyer_id: uuid.UUID | None = None  # operators only
    # replace: the version the change was made from; the campaign changed since -> Conflict
    # (version_conflict). ``Campaign.to_input`` fills it in.
    version: int | None = None


class Campaign(msgspec.Struct, kw_only=True):
    """A campaign as the exchange shows it; endpoint secrets read ``"[redacted]"``."""

    id: uuid.UUID
    buyer_id: uuid.UUID
    vertical: str
    name: str
    timezone: str
    active: bool
    filters: list[Filter]
    schedule: Schedule | None
    caps: list[Cap]
    price_mode: str  # PRICE_MODES
    fixed_price_minor: int | None
    floor_minor: int
    max_sells: int
    tier: int
    endpoints: BuyerEndpoints | None
    returns: ReturnPolicy
    rank_by_conversion: bool
    conversion_floor_pct: int
    call: CallTerms | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime

    def to_input(self, **changes: Any) -> CampaignIn:
        """This campaign as a ``CampaignIn`` for ``replace_campaign``, with ``changes`` applied.

        Redacted secrets sent back unchanged keep the stored ones (see docs/campaigns.md).
        """
        values = {f: getattr(self, f) for f in CampaignIn.__struct_fields__ if f != "buyer_id"}
        values.update(changes)
        return CampaignIn(**values)


class BuyerAccount(msgspec.Struct, kw_only=True):
    """Your money and terms (``GET /v1/account``)."""

    buyer_id: uuid.UUID
    balance_minor: int  # prepaid money left; below zero: owed, down to -credit_limit_minor
    credit_limit_minor: int
    spendable_minor: int  # balance + credit - leads sold to you still being delivered
    margin: Margin | None  # the operator's margin override for your sales, if any
    penalty_bps: int
    updated_at: dt.datetime | None


class Purchase(msgspec.Struct, kw_only=True):
    """A lead you bought and were charged for (``GET /v1/purchases``)."""

    sale_id: uuid.UUID
    lead_id: uuid.UUID
    campaign_id: uuid.UUID
    price_minor: int
    currency: str
    delivered_at: dt.datetime
    status: str  # delivered, or returned (refunded)
    returnable_until: dt.datetime | None  # None: the campaign takes no returns
    return_id: uuid.UUID | None
    return_status: str | None  # RETURN_STATUSES


class PurchaseDetail(msgspec.Struct, kw_only=True):
    """One lead you bought, read back with every field (``GET /v1/purchases/{sale_id}``).

    ``fields`` holds the lead as it was posted to you, PII included, while ``pii`` is
    ``included``; once the exchange's retention purge erased the PII, ``pii`` is ``purged``,
    ``pii_purged`` is True and ``fields`` keeps the non-PII fields only.
    """

    sale_id: uuid.UUID
    lead_id: uuid.UUID
    buyer_id: uuid.UUID
    campaign_id: uuid.UUID
    vertical: str
    price_minor: int
    currency: str
    delivered_at: dt.datetime
    status: str  # delivered, or returned (refunded)
    returnable_until: dt.datetime | None  # None: the campaign takes no returns
    return_id: uuid.UUID | None
    return_status: str | None  # RETURN_STATUSES
    reference: str | None  # your own id for the lead, from your answer to the post
    fields: dict[str, Any]
    consent: dict[str, Any] | None
    pii: str  # PII_STATES
    pii_purged: bool


class ReturnIn(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A return you file: name the sale or the lead, and one of the campaign's reasons."""

    reason: str
    sale_id: uuid.UUID | None = None
    lead_id: uuid.UUID | None = None
    note: str | None = None


class Return(msgspec.Struct, kw_only=True):
    """A return: ``requested``, then ``approved`` (refunded) or ``denied`` by finance."""

    id: uuid.UUID
    sale_id: uuid.UUID
    lead_id: uuid.UUID
    buyer_id: uuid.UUID
    supplier_id: uuid.UUID
    campaign_id: uuid.UUID
    price_minor: int
    payout_minor: int
    currency: str
    reason: str
    note: str | None
    status: str  # RETURN_STATUSES
    requested_at: dt.datetime
    decided_at: dt.datetime | None
    decided_by: uuid.UUID | None
    decision_note: str | None
    claw_back: bool | None
    entry_id: uuid.UUID | None


class TraceEntry(msgspec.Struct, kw_only=True):
    """One of your campaigns' part in a lead: its reason code (docs/reason-codes.md)."""

    campaign_id: str
    buyer_id: str
    reason: str | None  # None: eligible and ranked, not yet decided
    bid_minor: int | None = None
    payout_minor: int | None = None
    latency_ms: int | None = None
    details: dict[str, Any] = {}


class ScorePart(msgspec.Struct, kw_only=True):
    label: str  # a scoring rule, the source history, or the clamp to 0-100
    points: int


class LeadScore(msgspec.Struct, kw_only=True):
    """A lead's score (0-100) and priority band with the parts that add up to it (operators)."""

    score: int
    priority: str
    parts: list[ScorePart]


class Trace(msgspec.Struct, kw_only=True):
    subject_id: uuid.UUID
    stage: str  # ping, post, direct...
    created_at: dt.datetime
    entries: list[TraceEntry]
    score: LeadScore | None = None  # operators only




class TraceView(msgspec.Struct, kw_only=True):
    """Why a lead (or ping) did or did not come to your campaigns."""

    subject_id: uuid.UUID
    lead_id: uuid.UUID | None
    ping_id: uuid.UUID | None
    stages: list[Trace]
    reasons: list[str]
    score: int | None = None  # the lead's score and priority band (operators only)
    priority: str | None = None

    def by_campaign(self) -> dict[str, list[TraceEntry]]:
        """Every entry of every stage, grouped by campaign id, in stage order."""
        grouped: dict[str, list[TraceEntry]] = {}
        for stage in self.stages:
            for entry in stage.entries:
                grouped.setdefault(entry.campaign_id, []).append(entry)
        return grouped


class AccountBalance(msgspec.Struct, kw_only=True):
    """A ledger account over a period: opening, debits, credits, closing."""

    account: str
    kind: str  # ACCOUNT_KINDS
    party_id: uuid.UUID | None
    currency: str
    normal_side: str  # SIDES
    opening_minor: int
    debits_minor: int
    credits_minor: int
    closing_minor: int


class Page(msgspec.Struct, Generic[T], kw_only=True):
    """A page of items, oldest first; pass ``next_after`` as ``after`` for the next page."""

    items: list[T]
    next_after: uuid.UUID | None = None


class CallDestination(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Where a call rang: a number or SIP URI, and the team's agent it belongs to, if any."""

    address: str
    agent_id: str | None = None


class CallView(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A call your campaign bought (``GET /v1/calls``); ``status``: offered, connected,
    completed (billed: ``sale_id``), short, missed, expired or unreported (docs/calls.md)."""

    call_id: uuid.UUID
    status: str
    vertical_id: uuid.UUID
    test: bool
    currency: str
    min_duration_s: int
    ring: str
    destinations: list[CallDestination]
    created_at: dt.datetime
    expires_at: dt.datetime
    payout_minor: int | None = None
    price_minor: int | None = None
    campaign_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    ring_timeout_s: int | None = None
    lead_id: uuid.UUID | None = None
    sale_id: uuid.UUID | None = None
    answered_by: str | None = None
    agent_id: uuid.UUID | None = None
    connected_at: dt.datetime | None = None
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    duration_s: int | None = None
    reason: str | None = None


class SigningSecret(msgspec.Struct, kw_only=True):
    """The secret that signs the exchange's requests to your endpoints (``receiver.verify``)."""

    secret: str
    algorithm: str = "HMAC-SHA256"
    signature_header: str = "X-Exchange-Signature"
    timestamp_header: str = "X-Exchange-Timestamp"
    delivery_id_header: str = "X-Exchange-Delivery-Id"
    tolerance_s: int = 300


class Party(msgspec.Struct, kw_only=True):
    """Who a key belongs to (``GET /v1/me``)."""

    id: uuid.UUID
    kind: str  # PARTY_KINDS
    name: str
    timezone: str
    currency: str
    team_id: uuid.UUID | None
    active: bool
    created_at: dt.datetime


class KeyIn(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str = "default"


class KeyInfo(msgspec.Struct, kw_only=True):
    """One of your API keys: its prefix only, never the secret."""

    id: uuid.UUID
    party_id: uuid.UUID
    prefix: str
    name: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None


class NewKey(msgspec.Struct, kw_only=True):
    """A key just issued: ``key`` is the secret, shown this once."""

    id: uuid.UUID
    party_id: uuid.UUID
    prefix: str
    name: str
    created_at: dt.datetime
    key: str


class FieldSpec(msgspec.Struct, kw_only=True):
    """One field of a vertical: what filters and mappings may name."""

    name: str
    format: str  # FIELD_FORMATS
    label: str = ""
    required_on_ping: bool = False
    required_on_post: bool = False
    pii: bool = False  # never on a ping, never filterable
    choices: list[str] | None = None
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    description: str = ""


class Vertical(msgspec.Struct, kw_only=True):
    """A kind of lead (``solar``...) and its fields."""

    id: uuid.UUID
    slug: str
    name: str
    description: str
    currency: str
    dedupe_window_days: int
    fields: list[FieldSpec]
    margin: Margin | None
    auction_mode: str  # AUCTION_MODES
    version: int
    active: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class OutcomeIn(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What happened to a lead you bought: ``kind`` is one of ``OUTCOME_KINDS``; a ``won``
    outcome may carry its ``value_minor`` (in the vertical's currency), ``lost`` and
    ``bad_lead`` a ``reason`` (200 characters at most); ``occurred_at`` defaults to now."""

    kind: str
    value_minor: int | None = None
    currency: str | None = None
    reason: str | None = None
    occurred_at: Annotated[dt.datetime, msgspec.Meta(tz=True)] | None = None  # aware


class Outcome(msgspec.Struct, kw_only=True):
    """A stored report: the first of its kind you sent on the lead (a repeat answers it)."""

    id: uuid.UUID
    lead_id: uuid.UUID
    party_id: uuid.UUID
    kind: str  # OUTCOME_KINDS
    value_minor: int | None
    currency: str | None
    reason: str | None
    channel: str  # OUTCOME_CHANNELS: api or postback
    occurred_at: dt.datetime
    recorded_at: dt.datetime


class FirstResponse(msgspec.Struct, kw_only=True):
    """How long a reporter took to first contact the lead (a buyer: from the sale to its first
    ``contacted`` report); None until it reports one."""

    party_id: uuid.UUID
    reporter: str  # REPORTER_KINDS
    first_response_ms: int | None


class Outcomes(msgspec.Struct, kw_only=True):
    """Your reports on a lead, oldest first, and your first response time."""

    lead_id: uuid.UUID
    items: list[Outcome]
    first_response_ms: int | None
    responses: list[FirstResponse]


class PostbackInfo(msgspec.Struct, kw_only=True):
    """Your postback secret and URL template (``buyers_sdk.postback_url`` signs the URLs)."""

    party_id: uuid.UUID
    secret: str
    url_template: str
    methods: list[str]
    algorithm: str
    tolerance_s: int


# --- CRM sync (docs/crm.md) -------------------------------------------------------------------


class CrmConfig(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Where and what a CRM connection pushes. ``url``: the webhook's URL, HubSpot's API base
    (``https://api.hubapi.com``) or the Salesforce instance URL. ``field_map``: lead field ->
    CRM property, over the adapter's defaults. ``events``: ``CRM_EVENTS``."""

    url: str
    api_version: str = "v59.0"  # Salesforce's REST API version
    field_map: dict[str, str] = {}
    events: list[str] = msgspec.field(default_factory=lambda: list(CRM_DEFAULT_EVENTS))
    lead_source: str | None = None  # Salesforce ``LeadSource`` (None: ``Web``)
    timeout_ms: int = 10_000  # per request, 100 to 30,000


class CrmConnectionIn(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A CRM connection you make: ``kind`` is one of ``CRM_KINDS``; ``secret`` the HubSpot or
    Salesforce access token, or the webhook's signing secret (never shown back)."""

    kind: str
    name: str
    config: CrmConfig
    secret: str | None = None
    party_id: uuid.UUID | None = None  # operators only


class CrmConnectionPatch(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A change to a connection: fields left None stay as they are; a secret is replaced."""

    name: str | None = None
    config: CrmConfig | None = None
    secret: str | None = None
    active: bool | None = None


class CrmConnection(msgspec.Struct, kw_only=True):
    """A CRM connection as the exchange shows it: ``has_secret``, never the secret."""

    id: uuid.UUID
    party_id: uuid.UUID
    kind: str  # CRM_KINDS
    name: str
    config: CrmConfig
    has_secret: bool
    active: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class CrmConnections(msgspec.Struct, kw_only=True):
    items: list[CrmConnection]


class CrmSync(msgspec.Struct, kw_only=True):
    """One push of a lead's event to one connection: ``status`` is one of
    ``CRM_SYNC_STATUSES``; ``external_id`` the CRM's record id once synced."""

    id: uuid.UUID
    connection_id: uuid.UUID
    connection_name: str
    kind: str  # CRM_KINDS
    party_id: uuid.UUID
    event: str  # CRM_EVENTS
    status: str  # CRM_SYNC_STATUSES
    attempts: int
    last_error: str | None  # the CRM's answer, short, tokens masked
    external_id: str | None
    next_attempt_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class LeadCrmSyncs(msgspec.Struct, kw_only=True):
    """A lead's pushes to your CRM connections, oldest first."""

    lead_id: uuid.UUID
    items: list[CrmSync]


class FieldProblem(msgspec.Struct, kw_only=True, frozen=True):
    path: str
    reason: str


class ErrorBody(msgspec.Struct, kw_only=True):
    code: str
    message: str
    fields: list[FieldProblem] | None = None
    details: dict[str, Any] | None = None
    request_id: str | None = None  # the request's id (also the X-Request-Id header): quote it


class ErrorResponse(msgspec.Struct, kw_only=True):
    error: ErrorBody


_FILTERS = (
    StatesIn, StatesNotIn, ZipIn, ZipPrefix, ZipRadius, NumberRange, EnumIn, EnumNotIn,
    BooleanIs, AgeRange, Expression, ScoreRange, PriorityIn,
)  # fmt: skip
_AUTHS = (NoAuth, BearerAuth, BasicAuth, HeaderAuth)
_MARGINS = (FixedMargin, PercentMargin, PriceBand, BandedMargin, FixedPayout, RevenueShare)
# Structs found in both answers and requests (a campaign's parts), checked both ways.
_CAMPAIGN_PARTS = (
    *_FILTERS, *_AUTHS, Interval, Schedule, Cap, ReturnPolicy, FieldMap, ResponseRules,
    EndpointConfig, BuyerEndpoints, CallTerms,
)  # fmt: skip

# Response types and the OpenAPI component each one mirrors (the contract test reads this).
RESPONSE_SCHEMAS: dict[Any, str] = {
    **{struct: struct.__name__ for struct in (*_CAMPAIGN_PARTS, *_MARGINS)},
    Campaign: "Campaign",
    Page[Campaign]: "CampaignPage",
    CallView: "CallView",
    Page[CallView]: "CallPage",
    CallDestination: "CallDestination",
    BuyerAccount: "BuyerAccount",
    SigningSecret: "SigningSecret",
    Party: "Party",
    KeyInfo: "KeyInfo",
    NewKey: "NewKey",
    Purchase: "Purchase",
    Page[Purchase]: "PurchasePage",
    PurchaseDetail: "PurchaseDetail",
    Return: "Return",
    Page[Return]: "ReturnPage",
    TraceView: "TraceView",
    Trace: "Trace",
    TraceEntry: "TraceEntry",
    LeadScore: "LeadScore",
    ScorePart: "ScorePart",
    AccountBalance: "AccountBalance",
    Vertical: "Vertical",
    FieldSpec: "FieldSpec",
    Outcome: "Outcome",
    Outcomes: "Outcomes",
    FirstResponse: "FirstResponse",
    PostbackInfo: "PostbackInfo",
    CrmConfig: "CrmConfig",
    CrmConnection: "CrmConnection",
    CrmConnections: "CrmConnections",
    CrmSync: "CrmSync",
    LeadCrmSyncs: "LeadCrmSyncs",
}
# Request Structs and the OpenAPI component of the body they are sent as.
REQUEST_SCHEMAS: dict[Any, str] = {
    **{struct: struct.__name__ for struct in _CAMPAIGN_PARTS},
    CampaignIn: "CampaignIn",
    ReturnIn: "ReturnIn",
    KeyIn: "KeyIn",
    OutcomeIn: "OutcomeIn",
    CrmConfig: "CrmConfig",
    CrmConnectionIn: "CrmConnectionIn",
    CrmConnectionPatch: "CrmConnectionPatch",
}
# The enumerations the SDK keeps as plain strings: the API's enum component (or
# "Component.field" for one written in place) and the values the SDK knows.
ENUMS: dict[str, tuple[str, ...]] = {
    "CapWindow": CAP_WINDOWS,
    "PriceMode": PRICE_MODES,
    "ReturnStatus": RETURN_STATUSES,
    "PiiState": PII_STATES,
    "EndpointConfig.method": HTTP_METHODS,
    "EndpointConfig.body": BODY_FORMATS,
    "FieldFormat": FIELD_FORMATS,
    "Mode": AUCTION_MODES,
    "PartyKind": PARTY_KINDS,
    "AccountKind": ACCOUNT_KINDS,
    "Side": SIDES,
    "OutcomeKind": OUTCOME_KINDS,
    "OutcomeChannel": OUTCOME_CHANNELS,
    "ReporterKind": REPORTER_KINDS,
    "CrmKind": CRM_KINDS,
}
