"""The campaigns of each vertical, indexed, cached per process.

Evaluating a lead must not read every campaign from the database: the index, the rules and the
buyer terms of a vertical are loaded once and kept as a snapshot. Only the first lead of a
vertical (a cold cache) waits for a load. From then on a background task per vertical checks
every half ``campaign_cache_ttl_ms`` whether anything the snapshot was built from changed -- one
cheap query comparing a fingerprint of the vertical, its campaigns' (id, version, active,
updated_at) and its buyers' terms -- and builds a new snapshot off the request path only when it
did. Leads are served the current snapshot meanwhile, so other processes' writes are seen within
the TTL without a lead ever waiting for a reload. A write through this process's API drops its
snapshot at once (the next lead loads it again). With a TTL of 0 every lead loads afresh.
A vertical nobody asked for during ``IDLE_S`` is dropped, which bounds the memory held.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.calls.terms import CallTerms
from exchange.matching import CampaignIndex, CampaignRules, PriceMode
from exchange.matching.caps import Cap
from exchange.matching.filters import Filter
from exchange.matching.schedule import Schedule
from exchange.scoring.history import HISTORY_TTL_S, CampaignHistory, SourceHistory
from exchange.scoring.rules import ScoringConfig
from exchange.store.db import Database
from exchange.store.tables import buyer_accounts, campaigns, parties, supplier_terms, verticals

log = logging.getLogger(__name__)

IDLE_S = 120.0  # drop a vertical's snapshot (and stop refreshing it) after this long unused
STALE_MAX_TTLS = 20  # a snapshot this many TTLs old (refreshes failing) is not served any more


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
    # How the vertical scores its leads (exchange.scoring); None: its leads are not scored.
    scoring: ScoringConfig | None = None
    # Teams' campaigns ranked by their measured conversion (exchange.auction.conversion);
    # empty (the usual case): the auction does no conversion work at all.
    by_conversion: frozenset[str] = frozenset()
    conversion_floors: dict[str, int] = {}  # campaign id -> its floor, for by_conversion
    # Campaigns that buy calls (exchange.calls), apart: ``index`` holds only the others, so a
    # lead never meets a call campaign nor pays for skipping one. None: no call campaigns.
    call_index: CampaignIndex | None = None
    calls: dict[str, CallTerms] = {}  # campaign id -> its call terms


# (what, slug) -> (the snapshot it was worked out from, the value): see ``derived``.
T = TypeVar("T")
_DERIVED: dict[tuple[str, str], tuple[VerticalMarket, Any]] = {}


def derived(market: VerticalMarket, what: str, build: Callable[[VerticalMarket], T]) -> T:
    """A value worked out from a market snapshot once, and again only for a newer snapshot of
    that vertical (the latest per vertical is kept: older snapshots are not held alive)."""
    cached = _DERIVED.get((what, market.slug))
    if cached is None or cached[0] is not market:
        cached = _DERIVED[(what, market.slug)] = (market, build(market))
    return cached[1]


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
        calls=row.call is not None,
    )


# What a snapshot is built from, in one row: the vertical's own columns, then a digest of its
# campaigns and one of their buyers' terms. A campaign write bumps its version (a new
# definition) or its updated_at (pause/resume), so any committed change alters the digest,
# whatever order concurrent writers commit in.
_PG_FINGERPRINT = sa.text(
    """
    SELECT v.id, v.version, v.active, v.updated_at, v.margin::text, v.auction_mode, v.currency,
      (SELECT md5(string_agg(c.id::text || ':' || c.version || ':' || c.active::text || ':'
                             || c.updated_at::text, ',' ORDER BY c.id))
         FROM campaigns c WHERE c.vertical_id = v.id),
      (SELECT md5(string_agg(p.id::text || ':' || p.kind || ':' || coalesce(b.penalty_bps, -1)
                             || ':' || coalesce(b.margin::text, ''), ',' ORDER BY p.id))
         FROM parties p LEFT JOIN buyer_accounts b ON b.buyer_id = p.id
        WHERE p.id IN (SELECT c.buyer_id FROM campaigns c WHERE c.vertical_id = v.id))
    FROM verticals v WHERE v.slug = :slug
    """
)


async def _fingerprint(conn: AsyncConnection, slug: str) -> tuple[Any, ...] | None:
    if conn.dialect.name == "postgresql":
        row = (await conn.execute(_PG_FINGERPRINT, {"slug": slug})).first()
        return None if row is None else tuple(row)
    # Elsewhere (SQLite: one process, small markets) the same facts, digested here.
    vertical = (
        await conn.execute(
            sa.select(
                verticals.c.id, verticals.c.version, verticals.c.active, verticals.c.updated_at,
                verticals.c.margin, verticals.c.auction_mode, verticals.c.currency,
            ).where(verticals.c.slug == slug)
        )
    ).first()  # fmt: skip
    if vertical is None:
        return None
    rows = await conn.execute(
        sa.select(campaigns.c.id, campaigns.c.version, campaigns.c.active, campaigns.c.updated_at)
        .where(campaigns.c.vertical_id == vertical.id)
        .order_by(campaigns.c.id)
    )
    digest = hashlib.md5(repr([tuple(r) for r in rows]).encode()).hexdigest()
    buyer_ids = sa.select(campaigns.c.buyer_id).where(campaigns.c.vertical_id == vertical.id)
    buyers = await conn.execute(
        sa.select(parties.c.id, parties.c.kind, buyer_accounts.c.penalty_bps, buyer_accounts.c.margin)
        .select_from(parties.outerjoin(buyer_accounts, buyer_accounts.c.buyer_id == parties.c.id))
        .where(parties.c.id.in_(buyer_ids))
        .order_by(parties.c.id)
    )
    buyers_digest = hashlib.md5(repr([tuple(r) for r in buyers]).encode()).hexdigest()
    return (*tuple(vertical), digest, buyers_digest)


class _Entry:
    __slots__ = ("market", "fingerprint", "checked_at", "used_at")

    def __init__(self, market: VerticalMarket, fingerprint: Any, checked_at: float) -> None:
        self.market = market
        self.fingerprint = fingerprint
        self.checked_at = checked_at  # when the database last matched the snapshot (monotonic)
        self.used_at = checked_at


class Market:
    def __init__(self, db: Database, ttl_ms: int) -> None:
        self.db = db
        self.ttl_s = ttl_ms / 1000
        self._cache: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._refreshers: dict[str, asyncio.Task[None]] = {}
        self._epoch = 0  # bumped by every invalidation: a load that began before it is not kept
        self._terms: dict[uuid.UUID, tuple[float, Any]] = {}
        self.loads = 0  # full loads (cold or changed), for tests and profiles
        # Source conversion counts for scoring: like campaigns, fresh per lead with a TTL of 0.
        self.history = SourceHistory(db, HISTORY_TTL_S if self.ttl_s > 0 else 0)
        # Campaign conversion counts for the auction's conversion weights, cached alike.
        self.campaign_history = CampaignHistory(db, HISTORY_TTL_S if self.ttl_s > 0 else 0)

    def invalidate(self, slug: str | None = None) -> None:
        self._epoch += 1
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
        if self.ttl_s <= 0:  # no cache: every lead sees the database as it is
            loaded = await self._load(slug)
            return None if loaded is None else loaded[0]
        entry = self._cache.get(slug)
        now = time.monotonic()
        if entry is not None and now - entry.checked_at < self.ttl_s * STALE_MAX_TTLS:
            entry.used_at = now
            self._ensure_refresher(slug)
            return entry.market
        lock = self._locks.setdefault(slug, asyncio.Lock())
        async with lock:  # one cold load per vertical at a time, however many leads are waiting
            entry = self._cache.get(slug)
            if entry is not None and time.monotonic() - entry.checked_at < self.ttl_s * STALE_MAX_TTLS:
                return entry.market
            epoch, started = self._epoch, time.monotonic()
            loaded = await self._load(slug)
            if loaded is None:
                return None
            if epoch == self._epoch:
                self._cache[slug] = _Entry(loaded[0], loaded[1], started)
                self._ensure_refresher(slug)
            return loaded[0]

    async def close(self) -> None:
        """Stop the background refreshes (before the database is disposed of)."""
        tasks = list(self._refreshers.values())
        self._refreshers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.history.close()
        await self.campaign_history.close()

    def _ensure_refresher(self, slug: str) -> None:
        task = self._refreshers.get(slug)
        if task is None or task.done():
            self._refreshers[slug] = asyncio.get_running_loop().create_task(
                self._refresh_loop(slug), name=f"market-refresh:{slug}"
            )

    async def _refresh_loop(self, slug: str) -> None:
        """Keep ``slug``'s snapshot within half a TTL of the database while leads use it."""
        period = self.ttl_s / 2
        try:
            while True:
                entry = self._cache.get(slug)
                if entry is None:
                    return  # dropped (a local write): the next lead loads it and starts anew
                await asyncio.sleep(max(0.0, entry.checked_at + period - time.monotonic()))
                entry = self._cache.get(slug)
                if entry is None:
                    return
                if time.monotonic() - entry.used_at > IDLE_S:
                    del self._cache[slug]  # nobody asked for a while: free it
                    return
                try:
                    await self._refresh(slug, entry)
                except asyncio.CancelledError:
                    raise
                except Exception:  # keep serving the snapshot; try again next period
                    log.exception("refreshing the campaigns of %s failed", slug)
                    await asyncio.sleep(period)
        finally:
            if self._refreshers.get(slug) is asyncio.current_task():
                del self._refreshers[slug]

    async def _refresh(self, slug: str, entry: _Entry) -> None:
        epoch, started = self._epoch, time.monotonic()
        async with self.db.read() as conn:
            fingerprint = await _fingerprint(conn, slug)
        if fingerprint is not None and fingerprint == entry.fingerprint:
            if epoch == self._epoch and self._cache.get(slug) is entry:
                entry.checked_at = started
            return
        loaded = await self._load(slug, off_loop=True)
        if epoch != self._epoch or self._cache.get(slug) is not entry:
            return  # invalidated meanwhile: what we read may predate the write
        if loaded is None:
            del self._cache[slug]
            return
        fresh = _Entry(loaded[0], loaded[1], started)
        fresh.used_at = entry.used_at
        self._cache[slug] = fresh

    async def _load(self, slug: str, *, off_loop: bool = False) -> tuple[VerticalMarket, Any] | None:
        self.loads += 1
        async with self.db.read() as conn:
            # First: a change committed after it makes the next check load again.
            fingerprint = await _fingerprint(conn, slug) if self.ttl_s > 0 else None
            vertical = (
                await conn.execute(
                    sa.select(
                        verticals.c.id, verticals.c.margin, verticals.c.auction_mode, verticals.c.currency,
                        verticals.c.scoring,
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

        def build() -> VerticalMarket:
            rules = {str(row.id): campaign_rules(row, slug) for row in rows}
            call_rules = [r for r in rules.values() if r.calls]
            return VerticalMarket(
                vertical_id=vertical_id,
                slug=slug,
                index=CampaignIndex(r for r in rules.values() if not r.calls),
                rules=rules,
                endpoints={str(row.id): row.endpoints for row in rows},
                buyers=terms,
                teams=teams,
                margin=vertical.margin,
                auction_mode=vertical.auction_mode,
                currency=vertical.currency,
                loaded_at=time.monotonic(),
                scoring=msgspec.convert(vertical.scoring, ScoringConfig) if vertical.scoring else None,
                by_conversion=frozenset(
                    str(row.id) for row in rows if row.rank_by_conversion and str(row.buyer_id) in teams
                ),
                conversion_floors={
                    str(row.id): row.conversion_floor_pct
                    for row in rows
                    if row.rank_by_conversion and str(row.buyer_id) in teams
                },
                call_index=CampaignIndex(call_rules) if call_rules else None,
                calls={
                    str(row.id): msgspec.convert(row.call, CallTerms)
                    for row in rows
                    if row.call is not None
                },
            )

        # A refresh builds the index in a thread, so leads in flight are not held up behind it.
        market = await asyncio.to_thread(build) if off_loop else build()
        return market, fingerprint
