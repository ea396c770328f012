"""The campaigns of each vertical, indexed, cached per process.

Evaluating a lead must not read every campaign from the database: the index, the rules and the
buyer terms of a vertical are loaded once and reused for ``campaign_cache_ttl_ms``. A write
through this process's API drops its cache at once; other processes see it within the TTL.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import msgspec
import sqlalchemy as sa

from exchange.matching import CampaignIndex, CampaignRules, PriceMode
from exchange.matching.caps import Cap
from exchange.matching.filters import Filter
from exchange.matching.schedule import Schedule
from exchange.store.db import Database
from exchange.store.tables import buyer_accounts, campaigns, parties, supplier_terms, verticals


class BuyerTerms(msgspec.Struct, frozen=True):
    margin: Any | None  # MarginRule as stored (JSON); converted by the caller
    penalty_bps: int


class VerticalMarket(msgspec.Struct, frozen=True):
    vertical_id: uuid.UUID
    slug: str
    index: CampaignIndex
    rules: dict[str, CampaignRules]
    endpoints: dict[str, Any]  # campaign id -> BuyerEndpoints JSON (or None)
    buyers: dict[str, BuyerTerms]
    teams: frozenset[str]  # buyers that are internal teams: a lead they buy goes to their agents
    margin: Any | None  # the vertical's MarginRule as stored
    auction_mode: str
    currency: str
    loaded_at: float


_filters = msgspec.json.Decoder(tuple[Filter, ...])


def campaign_rules(row: sa.Row, slug: str) -> CampaignRules:
    return CampaignRules(
        campaign_id=str(row.id),
        buyer_id=str(row.buyer_id),
        vertical=slug,
        timezone=row.timezone,
        active=row.active,
        filters=msgspec.convert(row.filters or [], tuple[Filter, ...]),
        schedule=msgspec.convert(row.schedule, Schedule) if row.schedule else None,
        caps=msgspec.convert(row.caps or [], tuple[Cap, ...]),
        price_mode=PriceMode(row.price_mode),
        fixed_price_minor=row.fixed_price_minor,
        floor_minor=row.floor_minor,
        max_sells=row.max_sells,
        tier=row.tier,
    )


class Market:
    def __init__(self, db: Database, ttl_ms: int) -> None:
        self.db = db
        self.ttl_s = ttl_ms / 1000
        self._cache: dict[str, VerticalMarket] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._terms: dict[uuid.UUID, tuple[float, Any]] = {}

    def invalidate(self, slug: str | None = None) -> None:
        if slug is None:
            self._cache.clear()
            self._terms.clear()
        else:
            self._cache.pop(slug, None)

    def invalidate_terms(self, supplier_id: uuid.UUID) -> None:
        self._terms.pop(supplier_id, None)

    async def supplier_terms(self, supplier_id: uuid.UUID) -> Any:
        """The supplier's terms row (or None), cached like campaigns."""
        cached = self._terms.get(supplier_id)
        if cached is not None and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(supplier_terms).where(supplier_terms.c.supplier_id == supplier_id)
                )
            ).first()
        self._terms[supplier_id] = (time.monotonic(), row)
        return row

    async def get(self, slug: str) -> VerticalMarket | None:
        cached = self._cache.get(slug)
        if cached is not None and time.monotonic() - cached.loaded_at < self.ttl_s:
            return cached
        lock = self._locks.setdefault(slug, asyncio.Lock())
        async with lock:  # one load per vertical at a time, however many leads are waiting
            cached = self._cache.get(slug)
            if cached is not None and time.monotonic() - cached.loaded_at < self.ttl_s:
                return cached
            market = await self._load(slug)
            if market is not None:
                self._cache[slug] = market
            return market

    async def _load(self, slug: str) -> VerticalMarket | None:
        async with self.db.read() as conn:
            vertical = (
                await conn.execute(
                    sa.select(
                        verticals.c.id, verticals.c.margin, verticals.c.auction_mode, verticals.c.currency
                    ).where(verticals.c.slug == slug)
                )
            ).first()
            if vertical is None:
                return None
            vertical_id = vertical.id
            rows = (
                await conn.execute(
                    sa.select(campaigns).where(campaigns.c.vertical_id == vertical_id).order_by(campaigns.c.id)
                )
            ).all()
            buyer_ids = sorted({row.buyer_id for row in rows})
            terms = {}
            if buyer_ids:
                for b in await conn.execute(
                    sa.select(buyer_accounts).where(buyer_accounts.c.buyer_id.in_(buyer_ids))
                ):
                    terms[str(b.buyer_id)] = BuyerTerms(b.margin, b.penalty_bps)
            teams = frozenset(
                str(p)
                for p in (
                    await conn.execute(
                        sa.select(parties.c.id).where(
                            parties.c.id.in_(buyer_ids), parties.c.kind == "team"
                        )
                    )
                ).scalars()
            ) if buyer_ids else frozenset()  # fmt: skip
        rules = {str(row.id): campaign_rules(row, slug) for row in rows}
        return VerticalMarket(
            vertical_id=vertical_id,
            slug=slug,
            index=CampaignIndex(rules.values()),
            rules=rules,
            endpoints={str(row.id): row.endpoints for row in rows},
            buyers=terms,
            teams=teams,
            margin=vertical.margin,
            auction_mode=vertical.auction_mode,
            currency=vertical.currency,
            loaded_at=time.monotonic(),
        )
