"""Background work through the real Redis broker and through the in-process worker."""

from __future__ import annotations

import datetime as dt
import threading
import time

import dramatiq
import msgspec
import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from exchange.app import create_app
from exchange.ids import new_id
from exchange.intake import verticals
from exchange.store.tables import dedupe_keys, idempotency_keys, parties
from exchange.store.tables import verticals as verticals_table
from exchange.worker import actors
from exchange.worker.actors import MAINTENANCE_QUEUE
from exchange.worker.broker import reset_broker, setup_broker
from tests.conftest import decode, run

NOW = dt.datetime.now(dt.timezone.utc)


def _seed_expiring_rows(settings) -> None:
    async def work(conn):
        await verticals.seed(conn, fields_max=200)
        solar = (await conn.execute(sa.select(verticals_table.c.id).where(verticals_table.c.slug == "solar"))).scalar_one()
        party_id = new_id()
        await conn.execute(parties.insert().values(
            id=party_id, kind="supplier", name="s", timezone="UTC", currency="USD",
            active=True, created_at=NOW, updated_at=NOW,
        ))  # fmt: skip
        for key, age in (("old", dt.timedelta(hours=25)), ("fresh", dt.timedelta(hours=1))):
            await conn.execute(idempotency_keys.insert().values(
                party_id=party_id, key=key, request_hash="h", status_code=201, response=b"{}",
                created_at=NOW - age,
            ))  # fmt: skip
        for key, age in (("old", dt.timedelta(days=61)), ("fresh", dt.timedelta(days=59))):
            await conn.execute(dedupe_keys.insert().values(
                vertical_id=solar, key_hash=key, lead_id=new_id(), accepted_at=NOW - age,
            ))  # fmt: skip

    run(settings, work)


def _remaining(settings) -> tuple[list[str], list[str]]:
    async def work(conn):
        idem = (await conn.execute(sa.select(idempotency_keys.c.key))).scalars().all()
        dedupe = (await conn.execute(sa.select(dedupe_keys.c.key_hash))).scalars().all()
        return sorted(idem), sorted(dedupe)

    return run(settings, work)


@pytest.fixture
def redis_settings(backend, redis_url):
    reset_broker()
    yield msgspec.structs.replace(backend, redis_url=redis_url)
    reset_broker()


def test_purge_runs_through_the_real_redis_broker(redis_settings):
    _seed_expiring_rows(redis_settings)
    broker = setup_broker(redis_settings)
    assert type(broker).__name__ == "RedisBroker"
    broker.flush_all()
    actors.purge_expired.send()
    worker = dramatiq.Worker(broker, worker_threads=1)
    worker.start()
    try:
        broker.join(MAINTENANCE_QUEUE, timeout=20_000)
        worker.join()
    finally:
        worker.stop()
    assert _remaining(redis_settings) == (["fresh"], ["fresh"])


def test_health_reports_the_redis_broker(redis_settings):
    app = create_app(redis_settings, in_process_worker=False)
    with TestClient(app) as client:
        body = decode(client.get("/health"))
    assert body == {"status": "ok", "version": body["version"], "database": "ok", "broker": "ok"}


def test_health_is_503_when_redis_is_unreachable(backend):
    reset_broker()
    try:
        settings = msgspec.structs.replace(backend, redis_url="redis://127.0.0.1:1/0")
        with TestClient(create_app(settings, in_process_worker=False)) as client:
            r = client.get("/health")
        assert r.status_code == 503
        body = decode(r)
        assert body["status"] == "degraded" and body["database"] == "ok"
        assert body["broker"].startswith("error:")
    finally:
        reset_broker()


def test_in_process_worker_runs_actors_without_redis(backend):
    reset_broker()
    _seed_expiring_rows(backend)
    with TestClient(create_app(backend, in_process_worker=True)):
        actors.purge_expired.send()
        deadline = time.monotonic() + 20
        while _remaining(backend) != (["fresh"], ["fresh"]) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert _remaining(backend) == (["fresh"], ["fresh"])


def _sqlite_connection_threads() -> set[threading.Thread]:
    """aiosqlite runs each connection on a thread of its own until the connection is closed."""
    return {t for t in threading.enumerate() if t.name.endswith("(_connection_worker_thread)")}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_stopped_in_process_worker_closes_its_database_connections(backend):
    """A connection left open past its loop's end is stopped later by the garbage collector,
    in whatever thread it runs, which then answers on a closed loop: "Event loop is closed"
    in a thread, at some later moment."""
    reset_broker()
    _seed_expiring_rows(backend)
    before = _sqlite_connection_threads()
    with TestClient(create_app(backend, in_process_worker=True)):
        actors.purge_expired.send()  # the worker opens its own pool on its own loop
        deadline = time.monotonic() + 20
        while _remaining(backend) != (["fresh"], ["fresh"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _remaining(backend) == (["fresh"], ["fresh"])
    opened = _sqlite_connection_threads() - before
    for thread in opened:
        thread.join(timeout=5)  # a closed connection's thread ends at once; an open one never
    assert [t.name for t in opened if t.is_alive()] == []
