"""What actors need at run time: settings and a database bound to the worker's event loop.

Dramatiq's AsyncIO middleware runs async actors on its own event loop thread, so the worker
keeps its own connection pool rather than borrowing the API's: pooled connections belong to
the loop that opened them, and a restarted worker gets a new loop, hence a new pool.
"""

from __future__ import annotations

import asyncio

from exchange.settings import Settings
from exchange.store.db import Database

_settings: Settings | None = None
_db: tuple[asyncio.AbstractEventLoop, Database] | None = None


def configure(settings: Settings) -> None:
    global _settings, _db
    _settings = settings
    _db = None


def settings() -> Settings:
    if _settings is None:
        raise RuntimeError("worker runtime not configured: call setup_broker(settings) first")
    return _settings


def db() -> Database:
    """The database for the running loop (call from inside an async actor)."""
    global _db
    loop = asyncio.get_running_loop()
    if _db is None or _db[0] is not loop or _db[1].settings is not settings():
        _db = (loop, Database(settings()))
    return _db[1]


_auction: tuple[asyncio.AbstractEventLoop, object] | None = None


def auction_context():  # type: ignore[no-untyped-def]
    """The auction context for actors: this loop's database, an HTTP session and caches."""
    global _auction
    from exchange.auction.context import Context
    from exchange.auction.market import Market
    from exchange.delivery import new_session
    from exchange.intake.ratelimit import MemoryRateLimiter

    loop = asyncio.get_running_loop()
    database = db()
    if _auction is None or _auction[0] is not loop or _auction[1].db is not database:  # type: ignore[attr-defined]
        ctx = Context(
            db=database,
            settings=settings(),
            market=Market(database, settings().campaign_cache_ttl_ms),
            http=new_session(limit=settings().http_connections_max),
            limiter=MemoryRateLimiter(),
        )
        _auction = (loop, ctx)
    return _auction[1]


async def close() -> None:
    """Close what the actors opened on this loop: the HTTP session to buyers and the database's
    pooled connections. Once the loop is closed neither can be: an aiosqlite connection left
    open keeps its thread, and whenever the garbage collector stops that thread it answers on
    whatever loop the collecting thread had, often closed by then ("Event loop is closed")."""
    global _auction, _db
    try:
        if _auction is not None:
            ctx = _auction[1]
            _auction = None
            await ctx.market.close()  # type: ignore[attr-defined]
            if ctx.http is not None:  # type: ignore[attr-defined]
                await ctx.http.close()  # type: ignore[attr-defined]
    finally:
        if _db is not None and _db[0] is asyncio.get_running_loop():
            database = _db[1]
            _db = None
            await database.dispose()
