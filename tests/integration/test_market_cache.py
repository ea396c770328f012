"""The per-process campaign cache: a cold load blocks, later changes arrive in the background.

Another process's writes are simulated by writing straight to the database. A lead must see them
within the TTL, without any ``get`` ever waiting for a reload once a snapshot exists; when nothing
changed, the check is one query and the snapshot (the very same object) stays.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from exchange.auction.market import Market
from exchange.auth.parties import PartyKind
from exchange.settings import Settings
from exchange.store.db import Database
from exchange.store.tables import campaigns
from tests.conftest import Exchange, run
from tests.market import add_campaign, set_vertical_margin

TTL_MS = 200


def _until(runner: asyncio.Runner, market: Market, done, timeout_s: float = TTL_MS / 1000) -> float:  # type: ignore[no-untyped-def]
    """Let the background refresh run until ``done(snapshot)``; how long it took."""
    started = time.monotonic()

    async def wait() -> None:
        while not done(market._cache["solar"].market):
            if time.monotonic() - started > 5:
                raise AssertionError("the change never reached the cache")
            await asyncio.sleep(0.01)

    runner.run(wait())
    return time.monotonic() - started


def test_changes_arrive_in_the_background_within_the_ttl(exchange: Exchange) -> None:
    settings: Settings = exchange.settings
    exchange.seed_verticals()
    buyer = exchange.new_party(PartyKind.BUYER)
    first = add_campaign(settings, buyer.id)
    with asyncio.Runner() as runner:
        db = Database(settings)
        market = Market(db, TTL_MS)
        try:
            cold = runner.run(market.get("solar"))
            assert cold is not None and set(cold.rules) == {first}
            assert market.loads == 1
            # Nothing changed: after several TTLs the check found the same fingerprint and kept
            # the very same snapshot, and no get waited for anything.
            runner.run(asyncio.sleep(3 * TTL_MS / 1000))
            assert runner.run(market.get("solar")) is cold
            assert market.loads == 1

            second = add_campaign(settings, buyer.id)  # "another process" adds a campaign
            waited = _until(runner, market, lambda m: second in m.rules)
            assert waited < TTL_MS / 1000 + 0.3  # within the TTL (plus this machine's slack)
            assert market.loads == 2
            fresh = runner.run(market.get("solar"))
            assert fresh is not cold and set(fresh.rules) == {first, second}
            assert market.loads == 2  # the get itself loaded nothing

            paused = campaigns.update().where(campaigns.c.id == uuid.UUID(first)).values(active=False)
            run(settings, lambda conn: conn.execute(paused))  # pause/resume keeps the version and the updated_at here
            _until(runner, market, lambda m: not m.rules[first].active)
            set_vertical_margin(settings, "solar", {"kind": "percent", "bps": 1000})
            _until(runner, market, lambda m: m.margin is not None)

            # A write through this process drops the snapshot: the next lead loads at once.
            set_vertical_margin(settings, "solar", None)
            loads = market.loads
            market.invalidate("solar")
            reloaded = runner.run(market.get("solar"))
            assert reloaded is not None and reloaded.margin is None
            assert market.loads > loads
            assert runner.run(market.get("nonexistent")) is None
        finally:
            runner.run(market.close())
            assert not market._refreshers
            runner.run(db.dispose())


def test_ttl_zero_loads_every_time(exchange: Exchange) -> None:
    exchange.seed_verticals()
    buyer = exchange.new_party(PartyKind.BUYER)
    add_campaign(exchange.settings, buyer.id)
    with asyncio.Runner() as runner:
        db = Database(exchange.settings)
        market = Market(db, 0)
        try:
            one = runner.run(market.get("solar"))
            two = runner.run(market.get("solar"))
            assert one is not two and market.loads == 2 and not market._refreshers
        finally:
            runner.run(db.dispose())
