"""Delivery under faults, with real buyer servers, the real database and (where named) the real
Redis broker: a buyer that fails then recovers, a worker that dies holding a delivery, a broker
that loses its messages, a message delivered twice. Each ends with the lead delivered once and
charged once, and the books balanced."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

import dramatiq
import msgspec
import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from exchange.app import create_app
from exchange.auction import walking
from exchange.auction.context import Context, signing_secret
from exchange.auction.market import Market
from exchange.auth.parties import PartyKind
from exchange.delivery import new_session, outbox
from exchange.intake.ratelimit import MemoryRateLimiter
from exchange.ledger import reconcile, trial_balance
from exchange.simulator import Behaviour, BuyerServer, endpoints
from exchange.store.db import Database
from exchange.store.tables import deliveries, delivery_attempts, journal_entries, sales
from exchange.worker import actors
from exchange.worker.broker import reset_broker, setup_broker
from tests.conftest import Exchange, decode, run
from tests.integration.test_auction_api import PERCENT_20
from tests.integration.test_intake_api import solar_lead
from tests.market import add_campaign, balance, fund, set_vertical_margin

FAST_RETRIES = dict(delivery_backoff_min_ms=50, delivery_backoff_max_ms=200, delivery_lease_ms=300)
WAIT_S = 20


def _books(settings) -> tuple[bool, bool]:
    async def work(conn):
        return (await trial_balance(conn)).balanced, (await reconcile(conn)).ok

    return run(settings, work)


def _one_charge(settings, lead_id: str) -> None:
    def q(c):
        return c.execute(
            sa.select(journal_entries.c.id).where(
                journal_entries.c.lead_id == uuid.UUID(lead_id), journal_entries.c.kind == "sale"
            )
        )

    assert len(run(settings, q).all()) == 1
    assert _books(settings) == (True, True)


def _sale_of(settings, lead_id: str):
    return run(settings, lambda c: c.execute(sa.select(sales).where(sales.c.lead_id == uuid.UUID(lead_id)))).one()


def _wait(predicate, seconds: float = WAIT_S) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def _market(settings, client, behaviour: Behaviour):
    exchange = Exchange(settings, client)
    exchange.seed_verticals()
    set_vertical_margin(settings, "solar", PERCENT_20)
    supplier = exchange.new_party(PartyKind.SUPPLIER)
    buyer = exchange.new_party(PartyKind.BUYER)
    fund(settings, buyer.id, 100_000)
    behaviour.secret = signing_secret(settings, str(buyer.id))
    return exchange, supplier, buyer, behaviour


@pytest.fixture
def redis_settings(backend, redis_url):
    reset_broker()
    settings = msgspec.structs.replace(backend, redis_url=redis_url, **FAST_RETRIES)
    broker = setup_broker(settings)
    broker.flush_all()
    yield settings
    broker.flush_all()
    reset_broker()


def _worker(settings) -> dramatiq.Worker:
    worker = dramatiq.Worker(setup_broker(settings), worker_threads=2)
    worker.start()
    return worker


def test_a_buyer_failing_then_recovering_is_retried_and_charged_once(redis_settings):
    settings = redis_settings
    with TestClient(create_app(settings, in_process_worker=False)) as client:
        exchange, supplier, buyer, behaviour = _market(settings, client, Behaviour(post_fail_first=2, latency_ms=5))
        with BuyerServer({"flaky": behaviour}) as server:
            add_campaign(settings, buyer.id, fixed_price_minor=3000, endpoints=endpoints(server.base_url, "flaky", live=False))
            out = decode(client.post("/v1/leads", json=solar_lead(), headers=supplier.headers))
            assert out["status"] == "sold"  # for now: the buyer answered 500, a worker retries
            assert _sale_of(settings, out["lead_id"]).status == "delivering"
            assert balance(settings, buyer.id) == 100_000  # not charged before it accepts
            worker = _worker(settings)
            try:
                _wait(lambda: _sale_of(settings, out["lead_id"]).status == "delivered")
            finally:
                worker.stop()
            posts = [r for r in server.received if r.kind == "post"]
            assert len(posts) == 3 and len({r.delivery_id for r in posts}) == 1  # one delivery id
            assert all(r.signature_ok for r in posts)
    attempts = run(settings, lambda c: c.execute(sa.select(delivery_attempts.c.outcome).order_by(delivery_attempts.c.attempt))).scalars().all()
    assert attempts == ["error", "error", "accepted"]
    assert balance(settings, buyer.id) == 97_000
    _one_charge(settings, out["lead_id"])


def test_a_lost_message_and_a_dead_worker_are_made_good_by_the_sweeper(redis_settings):
    settings = redis_settings
    with TestClient(create_app(settings, in_process_worker=False)) as client:
        exchange, supplier, buyer, behaviour = _market(settings, client, Behaviour(post_fail_first=1, latency_ms=5))
        with BuyerServer({"flaky": behaviour}) as server:
            add_campaign(settings, buyer.id, fixed_price_minor=3000, endpoints=endpoints(server.base_url, "flaky", live=False))
            out = decode(client.post("/v1/leads", json=solar_lead(), headers=supplier.headers))
            sale_id = _sale_of(settings, out["lead_id"]).id

            # The broker loses every message (a Redis restart without persistence)...
            setup_broker(settings).flush_all()

            # ...and a worker takes the delivery and dies before finishing it.
            async def die_holding_it():
                db = Database(settings)
                try:
                    async with db.write() as conn:
                        return await outbox.claim(conn, sale_id, dt.datetime.now(dt.timezone.utc), dt.timedelta(milliseconds=300))
                finally:
                    await db.dispose()

            assert asyncio.run(die_holding_it()) is not None
            worker = _worker(settings)
            try:
                # The sweeper (each API process enqueues it on a timer) finds the delivery once its
                # lease has run out and its retry is due, and sends it again.
                deadline = time.monotonic() + WAIT_S
                while _sale_of(settings, out["lead_id"]).status != "delivered" and time.monotonic() < deadline:
                    actors.sweep_deliveries.send()
                    time.sleep(0.3)
            finally:
                worker.stop()
    assert _sale_of(settings, out["lead_id"]).status == "delivered"
    _one_charge(settings, out["lead_id"])


def test_a_message_delivered_twice_posts_and_charges_once(backend):
    """Two copies of one message at once (at-least-once brokers do this): the lease lets one
    attempt run; the other finds the delivery busy or done."""
    settings = msgspec.structs.replace(backend, **FAST_RETRIES)
    reset_broker()
    with TestClient(create_app(settings, in_process_worker=False)) as client:
        exchange, supplier, buyer, behaviour = _market(settings, client, Behaviour(post_fail_first=1, latency_ms=5, post_latency_ms=200))
        with BuyerServer({"slow": behaviour}) as server:
            add_campaign(settings, buyer.id, fixed_price_minor=3000, endpoints=endpoints(server.base_url, "slow", live=False))
            out = decode(client.post("/v1/leads", json=solar_lead(), headers=supplier.headers))
            sale_id = _sale_of(settings, out["lead_id"]).id
            time.sleep(0.3)  # past the retry time

            async def twice():
                db = Database(settings)
                http = new_session()
                ctx = Context(db=db, settings=settings, market=Market(db, 0), http=http, limiter=MemoryRateLimiter())
                try:
                    return await asyncio.gather(walking.after_delivery(ctx, sale_id), walking.after_delivery(ctx, sale_id))
                finally:
                    await http.close()
                    await db.dispose()

            results = asyncio.run(twice())
            assert sorted(r.outcome for r in results) == ["accepted", "busy"]
            posts = [r for r in server.received if r.kind == "post"]
            assert len(posts) == 2  # the failed first attempt and one retry, not three
    _one_charge(settings, out["lead_id"])


def test_a_delivery_that_never_succeeds_walks_on_to_the_next_bid(backend):
    settings = msgspec.structs.replace(backend, delivery_max_attempts=2, **FAST_RETRIES)
    reset_broker()
    with TestClient(create_app(settings, in_process_worker=True)) as client:  # the embedded worker
        exchange, supplier, buyer, behaviour = _market(settings, client, Behaviour(post_fail_first=99, latency_ms=5))
        backup = exchange.new_party(PartyKind.BUYER, "backup")
        fund(settings, backup.id, 100_000)
        with BuyerServer({"down": behaviour}) as server:
            add_campaign(settings, buyer.id, fixed_price_minor=3000, endpoints=endpoints(server.base_url, "down", live=False))
            add_campaign(settings, backup.id, fixed_price_minor=3000)  # pays the same: no loss
            out = decode(client.post("/v1/leads", json=solar_lead(), headers=supplier.headers))
            assert out["status"] == "sold" and out["payout_minor"] == 2400

            def settled():
                rows = run(settings, lambda c: c.execute(sa.select(sales.c.buyer_id, sales.c.status))).all()
                return sorted(r.status for r in rows) == ["delivered", "failed"]

            _wait(settled)
    rows = {r.buyer_id: r.status for r in run(settings, lambda c: c.execute(sa.select(sales.c.buyer_id, sales.c.status))).all()}
    assert rows == {buyer.id: "failed", backup.id: "delivered"}
    assert balance(settings, buyer.id) == 100_000 and balance(settings, backup.id) == 97_000
    pending = run(settings, lambda c: c.execute(sa.select(deliveries.c.status))).scalars().all()
    assert pending == ["failed"]
    _one_charge(settings, out["lead_id"])


def test_a_lead_whose_process_died_mid_walk_is_settled_and_frees_its_capacity(backend):
    """The post claimed the ping and stored the lead, then the process died before any sale:
    the sweeper brings the lead to `unsold` and gives back what the ping held."""
    from exchange.auction import posting
    from exchange.auction.messages import PingIn
    from exchange.auction.pinging import ping
    from exchange.auth.parties import Principal
    from exchange.intake import verticals as vertical_store
    from exchange.intake.messages import LeadIn
    from exchange.intake.validate import Stage, validate_lead
    from exchange.store.tables import cap_counters, leads, pings
    from tests.integration.test_auction_api import ping_body

    settings = backend
    reset_broker()
    with TestClient(create_app(settings, in_process_worker=False)) as client:
        exchange, supplier, buyer, _ = _market(settings, client, Behaviour())
        add_campaign(settings, buyer.id, fixed_price_minor=3000, caps=[{"window": "day", "max_count": 5}])
    principal = Principal(party_id=supplier.id, kind=PartyKind.SUPPLIER, key_id=supplier.key_id, name="s")

    async def crash_mid_walk():
        db = Database(settings)
        ctx = Context(db=db, settings=settings, market=Market(db, 0), http=None, limiter=MemoryRateLimiter())
        try:
            offer = await ping(ctx, principal, msgspec.convert(ping_body(), PingIn))
            async with db.read() as conn:
                vertical = await vertical_store.get(conn, "solar")
                row = (await conn.execute(sa.select(pings).where(pings.c.id == offer.ping_id))).one()
            ping_row = posting._PingRow(
                id=row.id, supplier_id=row.supplier_id, status=row.status, test=row.test, fields=row.fields,
                offer=row.offer, expires_at=row.expires_at, lead_id=row.lead_id,
            )  # fmt: skip
            lead_in = LeadIn(vertical="solar", fields=solar_lead()["fields"])
            valid = validate_lead(vertical.fields, lead_in, Stage.POST, posting.intake.limits_of(settings))
            now = dt.datetime.now(dt.timezone.utc)
            lead_id = await posting._claim_ping_and_store_lead(
                ctx, principal, vertical, ping_row, lead_in, valid, "k", b"{}", now, direct=False
            )
            return lead_id  # ...and here the process dies
        finally:
            await db.dispose()

    lead_id = asyncio.run(crash_mid_walk())
    counts = lambda: run(settings, lambda c: c.execute(sa.select(cap_counters.c.count))).scalars().all()  # noqa: E731
    assert counts() == [1]  # the ping's hold
    status = lambda: run(settings, lambda c: c.execute(sa.select(leads.c.status).where(leads.c.id == lead_id))).scalar_one()  # noqa: E731
    assert status() == "posting"

    async def sweep():
        db = Database(settings)
        ctx = Context(db=db, settings=settings, market=Market(db, 0), http=None, limiter=MemoryRateLimiter())
        try:
            return await walking.settle_stuck_leads(ctx, older_than=dt.timedelta(0))
        finally:
            await db.dispose()

    assert asyncio.run(sweep()) == 1
    assert status() == "unsold" and counts() == [0]
    assert asyncio.run(sweep()) == 0  # settled once
