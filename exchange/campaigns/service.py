"""Campaigns in the database: what advertisers write, what the API shows, what the auction reads.

A campaign is a buy order on one vertical: which leads it wants (``filters``), when
(``schedule``), how many (``caps``), at what price (``price_mode``) and where they go
(``endpoints``). The rules are the shapes of ``exchange.matching``; this module only checks them
against the vertical, stores them, and turns a stored campaign back into ``CampaignRules``.

Endpoint configs hold the buyer's credentials. They are stored as given (requests need them) and
never shown again: every ``Campaign`` this module returns carries the redacted view. A value sent
back exactly as that view showed it (``"[redacted]"``) keeps the stored secret it stands for, so
a read-modify-write of a campaign does not wipe its credentials.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.auth.parties import PartyKind, get_party
from exchange.calls.terms import CallTerms, terms_problems
from exchange.delivery import BuyerEndpoints
from exchange.delivery.config import URL_MASK
from exchange.errors import ApiError, FieldProblem, not_found, validation_error
from exchange.ids import new_id
from exchange.intake import verticals as vertical_store
from exchange.intake.fields import SLUG_PATTERN
from exchange.logs import REDACTED
from exchange.matching import CampaignRules, PriceMode, validate_campaign
from exchange.matching.caps import CAPS_MAX, Cap
from exchange.matching.eligibility import MAX_SELLS_MAX, TIER_MAX
from exchange.matching.filters import FILTERS_MAX, Filter
from exchange.matching.localtime import TIMEZONE_MAX_CHARS
from exchange.matching.schedule import Schedule
from exchange.store.tables import campaigns, verticals

NAME_MAX_CHARS = 200
# The largest amount any money field takes, in minor units: far above any lead price, far below
# the 2**63 a BIGINT holds, so arithmetic on stored amounts can never overflow.
MONEY_MAX_MINOR = 10**15
# A campaign ranked by conversion keeps at least this % of its ranking value (its floor).
CONVERSION_FLOOR_PCT_DEFAULT = 50
BUYER_KINDS = frozenset({PartyKind.BUYER, PartyKind.TEAM})  # teams buy like buyers

Money = Annotated[int, msgspec.Meta(ge=0, le=MONEY_MAX_MINOR)]
Problems = list[tuple[str, str]]

RETURN_WINDOW_DAYS_MAX = 365  # a year: longer than any lead stays worth disputing
RETURN_REASONS_MAX = 20
RETURN_REASON_MAX_CHARS = 64  # the returns table's reason column
BPS_MAX = 10_000  # 100 %
# Machine strings, like reason codes: a buyer's systems file them, finance counts them.
RETURN_REASON_PATTERN = r"^[a-z][a-z0-9_]*$"
ReturnReason = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=RETURN_REASON_MAX_CHARS, pattern=RETURN_REASON_PATTERN,
        description="lower-case letters, digits and _, e.g. wrong_number",
    ),
]  # fmt: skip


class ReturnPolicy(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """When the campaign's buyer may return a lead it bought (see docs/returns.md)."""

    # Days after delivery a lead may still be returned; 0: this campaign takes no returns.
    window_days: Annotated[int, msgspec.Meta(ge=0, le=RETURN_WINDOW_DAYS_MAX)] = 0
    reasons: Annotated[list[ReturnReason], msgspec.Meta(max_length=RETURN_REASONS_MAX)] = []
    # The most of one month's purchases on this campaign that may be returned; 0: no limit.
    max_rate_bps: Annotated[int, msgspec.Meta(ge=0, le=BPS_MAX)] = 0


class CampaignIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A campaign as a buyer writes it (create, and replace as a whole)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX_CHARS)]
    vertical: Annotated[str, msgspec.Meta(pattern=SLUG_PATTERN, description="the vertical's slug")]
    # IANA zone: cap windows reset at its midnight and age filters count in it. None: the
    # buyer party's zone at the time of writing.
    timezone: Annotated[str, msgspec.Meta(max_length=TIMEZONE_MAX_CHARS)] | None = None
    active: bool = True
    filters: Annotated[list[Filter], msgspec.Meta(max_length=FILTERS_MAX)] = []
    schedule: Schedule | None = None  # None: always open
    caps: Annotated[list[Cap], msgspec.Meta(max_length=CAPS_MAX)] = []
    price_mode: PriceMode = PriceMode.FIXED
    fixed_price_minor: Money | None = None  # fixed only: the price of every lead
    floor_minor: Money = 0  # the least the campaign pays; live bids below it are dropped
    max_sells: Annotated[int, msgspec.Meta(ge=1, le=MAX_SELLS_MAX)] = 1  # 1: exclusive only
    tier: Annotated[int, msgspec.Meta(ge=1, le=TIER_MAX)] = 1  # tiers auctions try 1 first
    # exchange.delivery.BuyerEndpoints as JSON. Checked by this module rather than by the
    # decoder, so a bad endpoint is reported together with every other problem.
    endpoints: Annotated[
        dict[str, Any],
        msgspec.Meta(description="{ping?: EndpointConfig, post: EndpointConfig}; see docs"),
    ] | None = None
    returns: ReturnPolicy = msgspec.field(default_factory=ReturnPolicy)  # default: no returns
    # Teams only: rank this campaign's bids by its measured conversion in the lead's segment
    # (exchange.auction.conversion). A buyer's conversions are what it chooses to report, so
    # ranking by them would punish the honest reporters: buyers cannot set it.
    rank_by_conversion: bool = False
    # Its fairness floor: however poorly it converts, its ranking value keeps at least this % of
    # its price (100: conversion can only raise it).
    conversion_floor_pct: Annotated[int, msgspec.Meta(ge=0, le=100)] = CONVERSION_FLOOR_PCT_DEFAULT
    # Set: the campaign buys calls, and only calls (exchange.calls; docs/calls.md): where they
    # ring and how long one must last to be billed. Fixed when the campaign is created.
    call: CallTerms | None = None
    # Operators only: the buyer (or team) the campaign is for. A buyer's own key may omit it.
    buyer_id: uuid.UUID | None = None
    # A replace: the version this change was made from. Given, and the campaign changed since
    # (another editor saved first), the replace is refused with 409 version_conflict and
    # nothing changes; left out, the last write wins. Ignored on create.
    version: Annotated[int, msgspec.Meta(ge=1)] | None = None


class Campaign(msgspec.Struct, kw_only=True):
    """A campaign as the API shows it; ``endpoints`` is always the redacted view."""

    id: uuid.UUID
    buyer_id: uuid.UUID
    vertical: str
    name: str
    timezone: str
    active: bool
    filters: list[Filter]
    schedule: Schedule | None
    caps: list[Cap]
    price_mode: PriceMode
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


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def rules_of(campaign: Campaign) -> CampaignRules:
    """What eligibility and the auction need to know about a campaign."""
    return CampaignRules(
        campaign_id=str(campaign.id),
        buyer_id=str(campaign.buyer_id),
        vertical=campaign.vertical,
        timezone=campaign.timezone,
        active=campaign.active,
        filters=tuple(campaign.filters),
        schedule=campaign.schedule,
        caps=tuple(campaign.caps),
        price_mode=campaign.price_mode,
        fixed_price_minor=campaign.fixed_price_minor,
        floor_minor=campaign.floor_minor,
        max_sells=campaign.max_sells,
        tier=campaign.tier,
        calls=campaign.call is not None,
    )


# --- reading -----------------------------------------------------------------------------------


def _select() -> sa.Select:
    return sa.select(campaigns, verticals.c.slug.label("vertical_slug")).join(
        verticals, verticals.c.id == campaigns.c.vertical_id
    )


def _shown(stored: Any) -> BuyerEndpoints | None:
    return None if stored is None else msgspec.convert(stored, BuyerEndpoints).redacted()


def _campaign(row: sa.Row) -> Campaign:
    return Campaign(
        id=row.id,
        buyer_id=row.buyer_id,
        vertical=row.vertical_slug,
        name=row.name,
        timezone=row.timezone,
        active=row.active,
        filters=msgspec.convert(row.filters, list[Filter]),
        schedule=msgspec.convert(row.schedule, Schedule) if row.schedule is not None else None,
        caps=msgspec.convert(row.caps, list[Cap]),
        price_mode=PriceMode(row.price_mode),
        fixed_price_minor=row.fixed_price_minor,
        floor_minor=row.floor_minor,
        max_sells=row.max_sells,
        tier=row.tier,
        endpoints=_shown(row.endpoints),
        returns=policy_of(row),
        rank_by_conversion=row.rank_by_conversion,
        conversion_floor_pct=row.conversion_floor_pct,
        call=msgspec.convert(row.call, CallTerms) if row.call is not None else None,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def policy_of(row: sa.Row) -> ReturnPolicy:
    """The returns policy stored on a campaigns row."""
    return ReturnPolicy(
        window_days=row.return_window_days,
        reasons=list(row.return_reasons or []),
        max_rate_bps=row.max_return_rate_bps,
    )


async def get(conn: AsyncConnection, campaign_id: uuid.UUID) -> Campaign | None:
    row = (await conn.execute(_select().where(campaigns.c.id == campaign_id))).first()
    return _campaign(row) if row else None


async def list_campaigns(
    conn: AsyncConnection,
    *,
    buyer_id: uuid.UUID | None = None,
    vertical: str | None = None,
    limit: int,
    after: uuid.UUID | None = None,
) -> list[Campaign]:
    """Campaigns in id order, optionally of one buyer and/or one vertical (by slug)."""
    query = _select().order_by(campaigns.c.id).limit(limit)
    if buyer_id is not None:
        query = query.where(campaigns.c.buyer_id == buyer_id)
    if vertical is not None:
        query = query.where(verticals.c.slug == vertical)
    if after is not None:
        query = query.where(campaigns.c.id > after)
    return [_campaign(row) for row in await conn.execute(query)]


# --- checking ------------------------------------------------------------------------------------

# msgspec's messages end with " - at `$.path`"; the path is relative to what was converted.
_MSGSPEC_AT = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


def _convert_endpoints(raw: dict[str, Any]) -> tuple[BuyerEndpoints | None, Problems]:
    try:
        return msgspec.convert(raw, BuyerEndpoints), []
    except msgspec.ValidationError as exc:
        match = _MSGSPEC_AT.match(str(exc))
        assert match is not None  # the pattern matches any text
        return None, [(f"endpoints{match.group('path') or ''}", match.group("reason"))]


def _restore_secrets(sent: Any, shown: Any, stored: Any) -> Any:
    """``sent`` with each value that equals the redacted view at the same place (and that the
    view had masked) replaced by the stored value there."""
    if isinstance(sent, dict) and isinstance(shown, dict) and isinstance(stored, dict):
        return {
            key: _restore_secrets(value, shown.get(key), stored.get(key))
            for key, value in sent.items()
        }
    if isinstance(sent, list) and isinstance(shown, list) and isinstance(stored, list):
        return [
            _restore_secrets(
                value,
                shown[i] if i < len(shown) else None,
                stored[i] if i < len(stored) else None,
            )
            for i, value in enumerate(sent)
        ]
    if isinstance(sent, str) and sent == shown and shown != stored and stored is not None:
        return stored
    return sent


def _masked_url(url: str) -> bool:
    """Whether a URL still carries the mask its redacted view puts in user-info and queries."""
    try:
        parts = urlsplit(url)
        userinfo = (parts.username, parts.password)
    except ValueError:
        return False  # not a URL at all: the endpoint check reports it
    query = [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]
    return URL_MASK in userinfo or URL_MASK in query


def _placeholders(value: Any, path: str) -> Problems:
    """Every place that still holds a redaction placeholder instead of a real secret."""
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _placeholders(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _placeholders(item, f"{path}[{i}]")]
    is_url = path.endswith(".url") and isinstance(value, str)
    if value == REDACTED or (is_url and _masked_url(value)):
        return [(path, "holds the redacted placeholder, not a secret; send the real value")]
    return []


def _as_json(value: Any) -> Any:
    """Plain JSON values (lists, not tuples), so stored and sent shapes compare alike."""
    return msgspec.json.decode(msgspec.json.encode(value))


def _check(data: CampaignIn, timezone: str, fields: Sequence[Any] | None) -> Problems:
    """Every problem with a campaign, as (path, reason). ``fields`` are the vertical's, None
    when the vertical is unknown (then filters are not checked against it)."""
    rules = CampaignRules(
        campaign_id="new",  # ids are not checked; the rules are
        buyer_id="new",
        vertical=data.vertical,
        timezone=timezone,
        filters=tuple(data.filters) if fields is not None else (),
        schedule=data.schedule,
        caps=tuple(data.caps),
        price_mode=data.price_mode,
        fixed_price_minor=data.fixed_price_minor,
        floor_minor=data.floor_minor,
        max_sells=data.max_sells,
        calls=data.call is not None,
    )
    problems = validate_campaign(rules, fields or [])
    fixed = data.price_mode is PriceMode.FIXED
    if fixed and data.fixed_price_minor is not None:
        if data.fixed_price_minor < 1:
            # The auction treats a bid of 0 as no bid: such a campaign could never buy.
            problems.append(("fixed_price_minor", "must be at least 1"))
        elif data.floor_minor > data.fixed_price_minor:
            problems.append(("floor_minor", "above fixed_price_minor: it could never bid"))
    return problems + _check_returns(data.returns)


def _check_returns(policy: ReturnPolicy) -> Problems:
    problems: Problems = []
    if policy.window_days > 0 and not policy.reasons:
        # A buyer files a return with one of these: with none, the window could never be used.
        problems.append(("returns.reasons", "a campaign that takes returns lists their reasons"))
    seen: set[str] = set()
    for i, reason in enumerate(policy.reasons):
        if reason in seen:
            problems.append((f"returns.reasons[{i}]", f"{reason!r} is listed twice"))
        seen.add(reason)
    return problems


def _check_endpoints(
    data: CampaignIn, stored: Any | None
) -> tuple[dict[str, Any] | None, Problems]:
    """The endpoints to store (secrets restored, normalised) and their problems."""
    live = data.price_mode is PriceMode.LIVE
    if data.call is not None and not live and data.endpoints is not None:
        return None, [("endpoints", "a fixed-price call campaign is neither pinged nor posted: its calls ring")]
    if data.endpoints is None:
        if live:
            return None, [("endpoints", "a live-bid campaign needs endpoints with a ping config")]
        return None, []
    sent = _as_json(data.endpoints)
    if stored is not None:
        shown = _as_json(msgspec.convert(stored, BuyerEndpoints).redacted())
        sent = _restore_secrets(sent, shown, _as_json(stored))
    problems = _placeholders(sent, "endpoints")
    endpoints, conversion = _convert_endpoints(sent)
    problems += conversion
    if endpoints is not None:
        if live and endpoints.ping is None:
            problems.append(("endpoints.ping", "a live-bid campaign is pinged: give a ping config"))
        if not live and endpoints.ping is not None:
            problems.append(("endpoints.ping", "a fixed-price campaign is never pinged; remove it"))
    if problems or endpoints is None:
        return None, problems
    return msgspec.to_builtins(endpoints), []


async def _buyer_timezone(
    conn: AsyncConnection, data: CampaignIn, buyer_id: uuid.UUID, problems: Problems
) -> str | None:
    buyer = await get_party(conn, buyer_id)
    if buyer is None or buyer.kind not in BUYER_KINDS:
        problems.append(("buyer_id", "no buyer or team with this id"))
        return None
    if data.rank_by_conversion and buyer.kind is not PartyKind.TEAM:
        reason = "only a team's campaigns are ranked by conversion (a buyer's depend on reporting)"
        problems.append(("rank_by_conversion", reason))
    if data.call is not None:
        problems += terms_problems(data.call, for_team=buyer.kind is PartyKind.TEAM)
    return buyer.timezone


def _columns(data: CampaignIn, timezone: str, endpoints: dict[str, Any] | None) -> dict[str, Any]:
    # Sets become sorted lists, so the stored JSON does not depend on hash order.
    return {
        "name": data.name,
        "active": data.active,
        "timezone": timezone,
        "tier": data.tier,
        "price_mode": data.price_mode.value,
        "fixed_price_minor": data.fixed_price_minor,
        "floor_minor": data.floor_minor,
        "max_sells": data.max_sells,
        "filters": msgspec.to_builtins(data.filters, order="deterministic"),
        "schedule": msgspec.to_builtins(data.schedule) if data.schedule is not None else None,
        "caps": msgspec.to_builtins(data.caps),
        "endpoints": endpoints,
        "return_window_days": data.returns.window_days,
        "return_reasons": list(data.returns.reasons),
        "max_return_rate_bps": data.returns.max_rate_bps,
        "rank_by_conversion": data.rank_by_conversion,
        "conversion_floor_pct": data.conversion_floor_pct,
        "call": msgspec.to_builtins(data.call) if data.call is not None else None,
    }


async def _validated(
    conn: AsyncConnection,
    data: CampaignIn,
    buyer_id: uuid.UUID,
    problems: Problems,
    stored_endpoints: Any | None,
) -> tuple[uuid.UUID, dict[str, Any]]:
    """The vertical's id and the columns to write, or a 422 naming every problem."""
    default_tz = await _buyer_timezone(conn, data, buyer_id, problems)
    vertical = await vertical_store.get(conn, data.vertical)
    if vertical is None:
        problems.append(("vertical", f"no vertical named {data.vertical!r}"))
    timezone = data.timezone or default_tz or "UTC"
    problems += _check(data, timezone, vertical.fields if vertical else None)
    endpoints, endpoint_problems = _check_endpoints(data, stored_endpoints)
    problems += endpoint_problems
    if problems:
        raise validation_error([FieldProblem(path, reason) for path, reason in problems])
    assert vertical is not None
    return vertical.id, _columns(data, timezone, endpoints)


# --- writing -----------------------------------------------------------------------------------


async def create(conn: AsyncConnection, buyer_id: uuid.UUID, data: CampaignIn) -> Campaign:
    """A new campaign of ``buyer_id`` (a buyer or a team), version 1."""
    vertical_id, columns = await _validated(conn, data, buyer_id, [], None)
    campaign_id = new_id()
    now = utcnow()
    await conn.execute(
        campaigns.insert().values(
            id=campaign_id,
            buyer_id=buyer_id,
            vertical_id=vertical_id,
            version=1,
            created_at=now,
            updated_at=now,
            **columns,
        )
    )
    created = await get(conn, campaign_id)
    assert created is not None
    return created


async def replace(conn: AsyncConnection, campaign_id: uuid.UUID, data: CampaignIn) -> Campaign:
    """A new definition of an existing campaign; its version goes up by one. The buyer and the
    vertical stay: cap counters, sales and traces refer to the campaign as it was."""
    row = (
        await conn.execute(
            _select().where(campaigns.c.id == campaign_id).with_for_update(of=campaigns)
        )
    ).first()
    if row is None:
        raise not_found("campaign")
    if data.version is not None and data.version != row.version:
        raise ApiError(
            409, "version_conflict",
            f"the campaign changed since version {data.version}: it is at version {row.version}; "
            "read it again and make the change on that",
            details={"version": row.version},
        )  # fmt: skip
    problems: Problems = []
    if data.buyer_id is not None and data.buyer_id != row.buyer_id:
        problems.append(("buyer_id", "a campaign cannot move to another buyer"))
    if data.vertical != row.vertical_slug:
        reason = f"a campaign's vertical cannot change; it is {row.vertical_slug!r}"
        problems.append(("vertical", reason))
    if (data.call is None) != (row.call is None):
        # Its counters (calls at once, leads per window) mean one thing or the other.
        kind = "calls" if row.call is not None else "leads"
        problems.append(("call", f"a campaign cannot switch between calls and leads; it buys {kind}"))
    _, columns = await _validated(conn, data, row.buyer_id, problems, row.endpoints)
    await conn.execute(
        campaigns.update()
        .where(campaigns.c.id == campaign_id)
        .values(version=campaigns.c.version + 1, updated_at=utcnow(), **columns)
    )
    updated = await get(conn, campaign_id)
    assert updated is not None
    return updated


async def set_active(conn: AsyncConnection, campaign_id: uuid.UUID, active: bool) -> Campaign:
    """Pause or resume. Not a new definition, so the version stays (like a vertical's)."""
    result = await conn.execute(
        campaigns.update()
        .where(campaigns.c.id == campaign_id)
        .values(active=active, updated_at=utcnow())
    )
    if result.rowcount == 0:
        raise not_found("campaign")
    updated = await get(conn, campaign_id)
    assert updated is not None
    return updated
