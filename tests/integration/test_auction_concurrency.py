"""Many sellers at once, each thread with its own event loop, pool and caches (as separate API
processes would be), against the real database: caps hold, exclusive leads sell once, shared
leads never twice to one buyer."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import msgspec
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from exchange.auction import service
from exchange.auction.market import Market
from exchange.auction.messages import PingIn, PostIn
from exchange.auth.parties import PartyKind, Principal
from exchange.errors import ApiError
from exchange.intake.messages import LeadIn
from exchange.intake.ratelimit import MemoryRateLimiter
from exchange.store.db import Database
from exchange.store.tables import cap_counters, cap_holds, sales
from tests.conftest import run
from tests.integration.test_auction_api import PERCENT_20, ping_body
from tests.integration.test_intake_api import solar_lead
from tests.market import add_campaign, balance, fund, set_vertical_margin

THREADS = 8


def _in_threads(settings, jobs: list) -> list[Any]:
    """Run each job(ctx) in its own thread and loop, all released at once."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def worker(i: int) -> None:
        async def main() -> Any:
            db = Database(settings)
            ctx = service.Context(db=db, settings=settings, market=Market(db, 0), http=None, limiter=MemoryRateLimiter())
            try:
                await db.ping()
                barrier.wait()
                return await jobs[i](ctx)
            except ApiError as exc:
                return exc
            finally:
                await db.dispose()

        results[i] = asyncio.run(main())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def _principal(party) -> Principal:
    return Principal(party_id=party.id, kind=PartyKind.SUPPLIER, key_id=party.key_id, name="s")


def _setup(exchange):
    exchange.seed_verticals()
    set_vertical_margin(exchange.settings, "solar", PERCENT_20)
    return _principal(exchange.new_party(PartyKind.SUPPLIER))


def _direct(supplier, i: int):
    lead = solar_lead(phone=f"212-555-01{i:02d}", email=f"x{i}@example.com")
    raw = msgspec.json.encode(lead)

    async def job(ctx):
        return await service.direct_post(ctx, supplier, msgspec.json.decode(raw, type=LeadIn), body=raw, idempotency_key=None)

    return job


def test_no_cap_or_budget_is_exceeded_under_concurrency(exchange):
    supplier = _setup(exchange)
    buyer = exchange.new_party(PartyKind.BUYER)
    fund(exchange.settings, buyer.id, 10**9)
    add_campaign(exchange.settings, buyer.id, fixed_price_minor=1000, caps=[{"window": "day", "max_count": 3}])
    rich = exchange.new_party(PartyKind.BUYER)
    fund(exchange.settings, rich.id, 10**9)
    add_campaign(exchange.settings, rich.id, fixed_price_minor=900, caps=[{"window": "hour", "max_spend_minor": 2 * 900}])

    results = _in_threads(exchange.settings, [_direct(supplier, i) for i in range(THREADS)])
    statuses = [msgspec.json.decode(r.body)["status"] for r in results]
    assert statuses.count("sold") == 5, results
    rows = run(exchange.settings, lambda c: c.execute(sa.select(sales.c.buyer_id))).scalars().all()
    assert rows.count(buyer.id) == 3 and rows.count(rich.id) == 2
    counters = run(exchange.settings, lambda c: c.execute(sa.select(cap_counters.c.count))).scalars().all()
    assert sorted(counters) == [2, 3]


def test_a_buyer_is_never_charged_past_its_balance_and_credit(exchange):
    supplier = _setup(exchange)
    buyer = exchange.new_party(PartyKind.BUYER)
    fund(exchange.settings, buyer.id, 2500, credit_minor=500)  # room for exactly 3 at 1000
    add_campaign(exchange.settings, buyer.id, fixed_price_minor=1000)
    results = _in_threads(exchange.settings, [_direct(supplier, i) for i in range(THREADS)])
    assert sum(msgspec.json.decode(r.body)["status"] == "sold" for r in results) == 3
    assert balance(exchange.settings, buyer.id) == -500  # the ledger: 2500 deposited, 3000 charged


def test_one_ping_posted_at_once_by_many_sells_once(exchange):
    supplier = _setup(exchange)
    for _ in range(3):
        buyer = exchange.new_party(PartyKind.BUYER)
        fund(exchange.settings, buyer.id, 10**6)
        add_campaign(exchange.settings, buyer.id, fixed_price_minor=1500)

    async def do_ping(ctx):
        return await service.ping(ctx, supplier, msgspec.convert(ping_body(), PingIn))

    [offer] = _in_threads(exchange.settings, [do_ping])
    raw = msgspec.json.encode({"ping_id": str(offer.ping_id), "fields": solar_lead()["fields"]})

    async def do_post(ctx):
        return await service.post(ctx, supplier, msgspec.json.decode(raw, type=PostIn), body=raw)

    results = _in_threads(exchange.settings, [do_post] * THREADS)
    answers = [r for r in results if not isinstance(r, ApiError)]
    refused = [r for r in results if isinstance(r, ApiError)]
    assert answers, results
    assert {r.body for r in answers} == {answers[0].body}  # every answer is the first answer
    assert {e.body.code for e in refused} <= {"post_in_progress"}
    assert run(exchange.settings, lambda c: c.execute(sa.select(sa.func.count()).select_from(sales))).scalar_one() == 1


def test_a_shared_lead_goes_to_distinct_buyers_at_most_n_times(exchange):
    supplier = _setup(exchange)
    twice = exchange.new_party(PartyKind.BUYER)
    fund(exchange.settings, twice.id, 10**6)
    add_campaign(exchange.settings, twice.id, fixed_price_minor=1500, max_sells=3)
    add_campaign(exchange.settings, twice.id, fixed_price_minor=1400, max_sells=3)
    for price in (1300, 1200, 1100):
        buyer = exchange.new_party(PartyKind.BUYER)
        fund(exchange.settings, buyer.id, 10**6)
        add_campaign(exchange.settings, buyer.id, fixed_price_minor=price, max_sells=3)

    async def do_ping(ctx):
        return await service.ping(ctx, supplier, msgspec.convert(ping_body() | {"max_sells": 3}, PingIn))

    [offer] = _in_threads(exchange.settings, [do_ping])
    assert len(offer.bids) == 3
    raw = msgspec.json.encode({"ping_id": str(offer.ping_id), "fields": solar_lead()["fields"]})

    async def do_post(ctx):
        return await service.post(ctx, supplier, msgspec.json.decode(raw, type=PostIn), body=raw)

    _in_threads(exchange.settings, [do_post] * 4)
    buyers = run(exchange.settings, lambda c: c.execute(sa.select(sales.c.buyer_id))).scalars().all()
    assert len(buyers) == 3 and len(set(buyers)) == 3
    assert buyers.count(twice.id) == 1


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_the_expiry_sweep_never_frees_the_capacity_of_a_ping_posted_meanwhile(exchange):
    # The sweep finds the ping open; before it closes it, a post claims it (it is sold on the
    # capacity the ping holds). The sweep must then leave that capacity alone (Property 3).
    supplier = _setup(exchange)
    buyer = exchange.new_party(PartyKind.BUYER)
    fund(exchange.settings, buyer.id, 10**6)
    add_campaign(exchange.settings, buyer.id, fixed_price_minor=1500, caps=[{"window": "day", "max_count": 5}])

    async def do_ping(ctx):
        return await service.ping(ctx, supplier, msgspec.convert(ping_body(), PingIn))

    [offer] = _in_threads(exchange.settings, [do_ping])
    assert offer.status == "accepted"
    other_url = exchange.settings.database_url.replace("postgresql+psycopg://", "postgresql://")

    async def sweep() -> tuple[int, list[bool]]:
        db = Database(exchange.settings)
        claimed: list[bool] = []

        def post_claims_it(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            if not claimed and " ".join(statement.split()).upper().startswith("SELECT PINGS.ID"):
                claimed.append(True)  # what a post's claim does, committed from elsewhere
                with psycopg.connect(other_url, autocommit=True) as other:
                    other.execute("UPDATE pings SET status = 'posting' WHERE id = %s", (offer.ping_id,))

        event.listen(db.engine.sync_engine, "after_cursor_execute", post_claims_it)
        try:
            return await service.expire_pings(db, ids=[offer.ping_id]), claimed
        finally:
            await db.dispose()

    closed, claimed = asyncio.run(sweep())
    assert claimed and closed == 0
    counters = run(exchange.settings, lambda c: c.execute(sa.select(cap_counters.c.count))).scalars().all()
    assert counters == [1]  # still held for the post
    holds = run(exchange.settings, lambda c: c.execute(sa.select(cap_holds.c.ping_id))).scalars().all()
    assert holds == [offer.ping_id]
