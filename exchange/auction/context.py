"""What every auction step shares: the request context, the supplier's terms, rate limits,
statuses and small helpers."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import uuid

import aiohttp
import msgspec

from exchange import caps as cap_store
from exchange.auction.margin import MarginRule, PercentMargin
from exchange.auction.market import Market, VerticalMarket
from exchange.auction.messages import (
    TraceEntry,
)
from exchange.auction.ranking import Mode, RankedAuction
from exchange.errors import ApiError, FieldProblem, validation_error
from exchange.intake import service as intake
from exchange.intake import verticals as vertical_store
from exchange.intake.ratelimit import RateLimiter, retry_after_header
from exchange.matching import CampaignRules
from exchange.matching.caps import window_key
from exchange.matching.eligibility import caps_now
from exchange.settings import Settings
from exchange.store.db import Database

log = logging.getLogger(__name__)


PING_OPEN = "open"


PING_POSTING = "posting"


PING_POSTED = "posted"


PING_EXPIRED = "expired"


PING_UNMATCHED = "unmatched"


LEAD_POSTING = "posting"


LEAD_SOLD = "sold"


LEAD_UNSOLD = "unsold"


NO_MARGIN = PercentMargin(bps=0)


POST_IDEMPOTENCY_PREFIX = "post:"


_encode = msgspec.json.Encoder(enc_hook=intake.enc_hook).encode


# Built at import so msgspec resolves these types' annotations now, against the real datetime
# (resolving them lazily under a patched clock, as in tests, would capture the fake class).
_EAGER_TYPES = [msgspec.json.Decoder(t) for t in (RankedAuction, TraceEntry, cap_store.Hold)]


class Context(msgspec.Struct, kw_only=True, frozen=True):
    """What a request needs to run an auction; built once per process by the app."""

    db: Database
    settings: Settings
    market: Market
    http: aiohttp.ClientSession | None  # None: live-bid buyers are not pinged (dry runs)
    limiter: RateLimiter


class SupplierTerms(msgspec.Struct, frozen=True, kw_only=True):
    margin: MarginRule | None = None
    min_payout_minor: int = 0
    auction_mode: Mode | None = None
    pings_per_second: int = 0  # 0: unlimited
    ping_burst: int = 1


def signing_secret(settings: Settings, buyer_id: str) -> str:
    """Each buyer's HMAC key for the requests we send it, derived from the exchange secret."""
    return hmac.new(
        settings.secret_key.encode(), f"buyer-signing:{buyer_id}".encode(), hashlib.sha256
    ).hexdigest()


async def _supplier_terms(ctx: Context, supplier_id: uuid.UUID) -> SupplierTerms:
    row = await ctx.market.supplier_terms(supplier_id)
    if row is None:
        return SupplierTerms()
    return SupplierTerms(
        margin=msgspec.convert(row.margin, MarginRule) if row.margin else None,
        min_payout_minor=row.min_payout_minor,
        auction_mode=Mode(row.auction_mode) if row.auction_mode else None,
        pings_per_second=row.pings_per_second,
        ping_burst=row.ping_burst,
    )


async def _rate_limit(ctx: Context, supplier_id: uuid.UUID) -> None:
    """Pings (and direct posts) per second per supplier: 429 with Retry-After past the rate."""
    terms = await _supplier_terms(ctx, supplier_id)
    if not terms.pings_per_second:
        return
    decision = await ctx.limiter.check(
        f"pings:{supplier_id}", terms.pings_per_second, max(terms.ping_burst, 1)
    )
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limited",
            f"more than {terms.pings_per_second} pings per second (burst {terms.ping_burst})",
            headers={"Retry-After": retry_after_header(decision)},
            details={"retry_after_s": round(decision.retry_after_s, 3)},
        )


def _windows(campaign: CampaignRules, now: dt.datetime) -> list[tuple[str, str]]:
    return [(campaign.campaign_id, window_key(c.window, campaign.timezone, now)) for c in caps_now(campaign, now)]


# slug -> (the market it was read with, the vertical): a vertical is read again whenever its
# market is (the market cache's TTL, or a write through this process's API that drops it).
_VERTICALS: dict[tuple[int, str], tuple[VerticalMarket, vertical_store.Vertical]] = {}


async def _vertical_and_market(ctx: Context, slug: str) -> tuple[vertical_store.Vertical, VerticalMarket]:
    market = await ctx.market.get(slug)
    cached = _VERTICALS.get((id(ctx.market), slug))
    if market is not None and cached is not None and cached[0] is market:
        return cached[1], market
    async with ctx.db.read() as conn:
        vertical = await vertical_store.get(conn, slug)
    if vertical is None or not vertical.active:
        raise validation_error([FieldProblem("vertical", f"no active vertical named {slug!r}")])
    if market is None:  # pragma: no cover - the vertical was created after the market was asked
        market = await ctx.market.get(slug)
    assert market is not None
    _VERTICALS[(id(ctx.market), slug)] = (market, vertical)
    return vertical, market


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _conflict(code: str, message: str) -> ApiError:
    return ApiError(409, code, message)
