"""Concurrent posts, each thread with its own event loop and connection pool (like separate
API processes), against the real database: one person is accepted once, one idempotency key
makes one lead."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from exchange.auction import service
from exchange.auction.market import Market
from exchange.auth.parties import PartyKind, Principal
from exchange.errors import ApiError
from exchange.intake.messages import LeadIn
from exchange.intake.ratelimit import MemoryRateLimiter
from exchange.store.db import Database
from exchange.store.tables import dedupe_keys, idempotency_keys, leads
from tests.conftest import run
from tests.integration.test_intake_api import solar_lead

THREADS = 8


def _post_concurrently(settings, principal, bodies: list[dict], keys: list[str | None]) -> list[Any]:
    barrier = threading.Barrier(len(bodies))
    results: list[Any] = [None] * len(bodies)

    def worker(i: int) -> None:
        async def main() -> Any:
            db = Database(settings)
            try:
                raw = msgspec.json.encode(bodies[i])
                lead_in = msgspec.json.decode(raw, type=LeadIn)
                await db.ping()  # connect before the barrier so the posts really overlap
                barrier.wait()
                ctx = service.Context(db=db, settings=settings, market=Market(db, 0), http=None, limiter=MemoryRateLimiter())
                return await service.direct_post(ctx, principal, lead_in, body=raw, idempotency_key=keys[i])
            except ApiError as exc:
                return exc
            finally:
                await db.dispose()

        results[i] = asyncio.run(main())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def _principal(exchange) -> Principal:
    party = exchange.new_party(PartyKind.SUPPLIER)
    return Principal(party_id=party.id, kind=PartyKind.SUPPLIER, key_id=party.key_id, name="s")


def _count(settings, table) -> int:
    return run(settings, lambda c: c.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()


def test_one_person_posted_at_once_by_many_is_accepted_once(exchange):
    exchange.seed_verticals()
    principal = _principal(exchange)
    # Same phone everywhere; distinct emails, so only the phone decides.
    bodies = [solar_lead(email=f"p{i}@example.com") for i in range(THREADS)]
    results = _post_concurrently(exchange.settings, principal, bodies, [None] * THREADS)
    accepted = [r for r in results if not isinstance(r, ApiError)]
    refused = [r for r in results if isinstance(r, ApiError)]
    assert len(accepted) == 1, results
    assert {e.body.code for e in refused} == {"duplicate"}
    assert _count(exchange.settings, leads) == 1
    # One dedupe row for the phone, one for the winner's email: losers left nothing behind.
    assert _count(exchange.settings, dedupe_keys) == 2


def test_one_idempotency_key_at_once_makes_one_lead_and_one_answer(exchange):
    """Twins that arrive while the first is still selling are told to retry (409
    post_in_progress, as Stripe answers concurrent uses of a key); every answer given is the
    first one, and a retry afterwards replays it."""
    exchange.seed_verticals()
    principal = _principal(exchange)
    bodies = [solar_lead()] * THREADS
    results = _post_concurrently(exchange.settings, principal, bodies, ["same-key"] * THREADS)
    answers = [r for r in results if not isinstance(r, ApiError)]
    refused = [r for r in results if isinstance(r, ApiError)]
    assert answers and {e.body.code for e in refused} <= {"post_in_progress"}, results
    assert len({r.body for r in answers}) == 1
    assert sum(not r.replayed for r in answers) == 1
    assert _count(exchange.settings, leads) == 1
    assert _count(exchange.settings, idempotency_keys) == 1
    [retry] = _post_concurrently(exchange.settings, principal, [solar_lead()], ["same-key"])
    assert retry.replayed and retry.body == answers[0].body


@pytest.mark.parametrize("n", [THREADS])
def test_distinct_people_at_once_are_all_accepted(exchange, n):
    exchange.seed_verticals()
    principal = _principal(exchange)
    bodies = [solar_lead(phone=f"212-555-01{i:02d}", email=f"d{i}@example.com") for i in range(n)]
    results = _post_concurrently(exchange.settings, principal, bodies, [None] * n)
    assert all(not isinstance(r, ApiError) for r in results), results
    assert _count(exchange.settings, leads) == n
