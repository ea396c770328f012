"""Conversion history for the hot path: counts from ``conversion_stats``, cached per process.

Intake and the auction never wait on the database for counts per lead. ``SourceHistory`` loads
the counts of every source of a vertical (subject ``source:<vertical id>:<source>``, segment
``*``) and the vertical's total (their sum) for scoring; ``CampaignHistory`` the counts of a
vertical's campaigns ranked by conversion (subject ``campaign:<id>``, every segment) for the
auction's conversion weights. Each is one query per vertical, served for ``HISTORY_TTL_S``. When
it is older, the lead still gets it and one background task reloads it; only the first lead of
a vertical in a process waits for a load. With a TTL of 0 every call reads afresh (tests).
Counts move with outcomes, hours or days after a lead, so half a minute of staleness costs
nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from typing import Generic, TypeVar

import sqlalchemy as sa

from exchange.outcomes.stats import campaign_subject, source_subject
from exchange.scoring.rules import NO_COUNTS, Counts
from exchange.store.db import Database
from exchange.store.tables import conversion_stats

log = logging.getLogger(__name__)

HISTORY_TTL_S = 30.0  # how old a vertical's source counts may be before a background reload
ALL_SEGMENTS = "*"  # the segment that counts every lead of a subject

T = TypeVar("T")


class VerticalHistory:
    __slots__ = ("by_subject", "total", "loaded_at")

    def __init__(self, by_subject: dict[str, Counts], loaded_at: float) -> None:
        self.by_subject = by_subject
        self.total = Counts(
            sum(c.trials for c in by_subject.values()),
            sum(c.successes for c in by_subject.values()),
        )
        self.loaded_at = loaded_at


async def load(db: Database, vertical_id: uuid.UUID) -> dict[str, Counts]:
    prefix = source_subject(vertical_id, "")
    query = sa.select(
        conversion_stats.c.subject, conversion_stats.c.trials, conversion_stats.c.successes
    ).where(
        conversion_stats.c.subject.startswith(prefix, autoescape=True),
        conversion_stats.c.segment == ALL_SEGMENTS,
    )
    async with db.read() as conn:
        return {row.subject: Counts(row.trials, row.successes) for row in await conn.execute(query)}


class _Loaded(Generic[T]):
    __slots__ = ("value", "loaded_at")

    def __init__(self, value: T, loaded_at: float) -> None:
        self.value = value
        self.loaded_at = loaded_at


class _PerVertical(Generic[T]):
    """One value per vertical, loaded by ``fetch``, served for ``ttl_s`` (see the module
    docstring). ``ttl_s`` <= 0: no cache, every call loads."""

    name = "history"

    def __init__(self, db: Database, ttl_s: float = HISTORY_TTL_S) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._cache: dict[uuid.UUID, _Loaded[T]] = {}
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._reloading: dict[uuid.UUID, asyncio.Task[None]] = {}
        self.loads = 0  # for tests

    def invalidate(self, vertical_id: uuid.UUID | None = None) -> None:
        if vertical_id is None:
            self._cache.clear()
        else:
            self._cache.pop(vertical_id, None)

    async def _get(self, vertical_id: uuid.UUID, fetch: Callable[[], Awaitable[T]]) -> T:
        cached = self._cache.get(vertical_id)
        if self.ttl_s > 0 and cached is not None:
            if time.monotonic() - cached.loaded_at >= self.ttl_s:
                self._reload_soon(vertical_id, fetch)
            return cached.value
        if self.ttl_s <= 0:
            return await self._load(vertical_id, fetch)
        lock = self._locks.setdefault(vertical_id, asyncio.Lock())
        async with lock:  # one cold load per vertical, however many leads are waiting
            cached = self._cache.get(vertical_id)
            return cached.value if cached is not None else await self._load(vertical_id, fetch)

    async def _load(self, vertical_id: uuid.UUID, fetch: Callable[[], Awaitable[T]]) -> T:
        self.loads += 1
        started = time.monotonic()
        value = await fetch()
        if self.ttl_s > 0:
            self._cache[vertical_id] = _Loaded(value, started)
        return value

    def _reload_soon(self, vertical_id: uuid.UUID, fetch: Callable[[], Awaitable[T]]) -> None:
        task = self._reloading.get(vertical_id)
        if task is not None and not task.done():
            return

        async def reload() -> None:
            try:
                await self._load(vertical_id, fetch)
            except Exception:  # keep serving the old counts; the next lead tries again
                log.exception("reloading the %s of %s failed", self.name, vertical_id)

        self._reloading[vertical_id] = asyncio.get_running_loop().create_task(
            reload(), name=f"{self.name}:{vertical_id}"
        )

    async def close(self) -> None:
        tasks = [t for t in self._reloading.values() if not t.done()]
        self._reloading.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class SourceHistory(_PerVertical[VerticalHistory]):
    """Per-process cache of each vertical's source counts (see the module docstring)."""

    name = "scoring-history"

    async def counts(self, vertical_id: uuid.UUID, source: str | None) -> tuple[Counts, Counts]:
        """(the source's counts, the vertical's counts)."""
        history = await self._get(vertical_id, lambda: self._fetch(vertical_id))
        return history.by_subject.get(source_subject(vertical_id, source), NO_COUNTS), history.total

    async def _fetch(self, vertical_id: uuid.UUID) -> VerticalHistory:
        started = time.monotonic()
        return VerticalHistory(await load(self.db, vertical_id), started)


# campaign id -> segment -> counts; a campaign or segment missing has no outcomes yet.
CampaignCounts = dict[str, dict[str, Counts]]


class _Campaigns:
    __slots__ = ("ids", "counts")

    def __init__(self, ids: frozenset[str], counts: CampaignCounts) -> None:
        self.ids = ids  # the campaigns loaded: a different set (a campaign changed) reloads
        self.counts = counts


async def load_campaigns(db: Database, campaign_ids: Collection[str]) -> CampaignCounts:
    subjects = {campaign_subject(c): c for c in campaign_ids}
    c = conversion_stats.c
    query = sa.select(c.subject, c.segment, c.trials, c.successes).where(
        c.subject.in_(sorted(subjects))
    )
    found: CampaignCounts = {}
    async with db.read() as conn:
        for row in await conn.execute(query):
            found.setdefault(subjects[row.subject], {})[row.segment] = Counts(
                row.trials, row.successes
            )
    return found


class CampaignHistory(_PerVertical[_Campaigns]):
    """Per-process cache of the counts of each vertical's campaigns ranked by conversion."""

    name = "campaign-history"

    async def counts(self, vertical_id: uuid.UUID, campaign_ids: frozenset[str]) -> CampaignCounts:
        """The counts of ``campaign_ids`` (the vertical's campaigns ranked by conversion, as the
        market snapshot has them) in every segment. None of them: no work, no query."""
        if not campaign_ids:
            return {}
        cached = self._cache.get(vertical_id)
        if cached is not None and cached.value.ids != campaign_ids:
            self._cache.pop(vertical_id, None)  # the market changed: load the new set now

        async def fetch() -> _Campaigns:
            return _Campaigns(campaign_ids, await load_campaigns(self.db, campaign_ids))

        return (await self._get(vertical_id, fetch)).counts
