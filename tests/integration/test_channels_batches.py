"""Large CSV files taken in by a worker, on SQLite and PostgreSQL: the upload answers 202 at
once, the ``take_in_batch`` actor's chunks take every row in once (a chunk run again after a
crash answers the same leads), the report is read a page at a time, and a batch whose message
was lost is picked up by the sweep. Threshold and chunk size are made small here."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

import dramatiq
import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from exchange.app import create_app
from exchange.auction.context import Context
from exchange.auction.market import Market
from exchange.auth.parties import PartyKind
from exchange.channels import batches, service, store
from exchange.channels.messages import RowReport
from exchange.intake.ratelimit import MemoryRateLimiter
from exchange.store.db import Database
from exchange.store.tables import intake_batches, leads
from exchange.worker.actors import INTAKE_QUEUE
from exchange.worker.broker import reset_broker
from tests.conftest import decode, run
from tests.integration.test_channels import CSV, CSV_MAPPING, add_source, assert_taken_and_routed
from tests.integration.test_teams import Team

# CSV's four rows (accepted, rejected, duplicate, accepted) and one with a value too many.
BIG_CSV = CSV + "Di,Long,(212) 555-0143,di@example.com,10001,NY,4 Main St,$99,,extra\r\n"
REPORTED = [(2, "accepted"), (3, "rejected"), (5, "duplicate"), (6, "accepted"), (7, "rejected")]


@pytest.fixture
def team(exchange) -> Team:
    team = Team(exchange)
    team.configure(strategy="round_robin")
    team.worker = team.agent()  # the vertical's team works the unsold leads
    return team


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    monkeypatch.setattr(batches, "CSV_INLINE_ROWS_MAX", 2)
    monkeypatch.setattr(batches, "CHUNK_ROWS", 2)


def upload(team, source: dict, body: str = BIG_CSV) -> dict:
    r = team.client.post(f"{source['path']}?name=big.csv", content=body.encode(),
                         headers={**team.supplier.headers, "Content-Type": "text/csv"})  # fmt: skip
    assert r.status_code == 202, r.text
    batch = decode(r)
    assert r.headers["location"] == batch["path"] == f"/v1/intake-batches/{batch['id']}"
    return batch


def batch_of(team, batch_id: str, **params) -> dict:
    r = team.client.get(f"/v1/intake-batches/{batch_id}", params=params,
                        headers=team.supplier.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    return decode(r)


def call(settings, work):
    """Run ``work(ctx)`` on its own loop and pool, as the worker does."""

    async def main():
        db = Database(settings)
        ctx = Context(db=db, settings=settings, market=Market(db, 0), http=None,
                      limiter=MemoryRateLimiter())  # fmt: skip
        try:
            return await work(ctx)
        finally:
            await db.dispose()

    return asyncio.run(main())


def take_in(settings, batch_id: str) -> bool:
    return call(settings, lambda ctx: service.take_in_batch(ctx, uuid.UUID(batch_id)))


def take_in_all(settings, batch_id: str) -> int:
    chunks = 1
    while take_in(settings, batch_id):
        chunks += 1
        assert chunks < 20
    return chunks


def supplier_leads(team) -> list[uuid.UUID]:
    async def work(conn):
        query = sa.select(leads.c.id).where(leads.c.supplier_id == team.supplier.id)
        return sorted((await conn.execute(query)).scalars())

    return run(team.exchange.settings, work)


def stored(team, batch_id: str) -> sa.Row:
    async def work(conn):
        query = sa.select(intake_batches).where(intake_batches.c.id == uuid.UUID(batch_id))
        return (await conn.execute(query)).one()

    return run(team.exchange.settings, work)


def sent_batches() -> list[list]:
    queue = dramatiq.get_broker().queues.get(INTAKE_QUEUE)
    messages = [dramatiq.Message.decode(raw) for raw in (queue.queue if queue else [])]
    return [list(m.args) for m in messages if m.actor_name == "take_in_batch"]


def test_small_file_is_still_taken_in_inline(team):
    source = add_source(team, "csv", CSV_MAPPING)
    body = CSV.split("\r\n\r\n")[0] + "\r\n"  # the header and two rows: at the threshold
    r = team.client.post(source["path"], content=body.encode(),
                         headers={**team.supplier.headers, "Content-Type": "text/csv"})  # fmt: skip
    assert r.status_code == 201, r.text
    batch = decode(r)
    assert (batch["status"], batch["rows"], batch["processed"]) == ("done", 2, 2)


def test_large_file_answers_202_and_the_worker_takes_every_row_once(team):
    source = add_source(team, "csv", CSV_MAPPING)
    dramatiq.get_broker().flush_all()
    batch = upload(team, source)
    assert (batch["status"], batch["rows"], batch["processed"], batch["report"]) == (
        "processing", 5, 0, [])  # fmt: skip
    assert (batch["accepted"], batch["rejected"], batch["name"]) == (0, 0, "big.csv")
    assert sent_batches() == [[batch["id"]]]
    assert supplier_leads(team) == []  # nothing taken in inside the request

    assert take_in(team.exchange.settings, batch["id"]) is True  # rows 2 and 3
    midway = batch_of(team, batch["id"])
    assert (midway["status"], midway["processed"], midway["accepted"], midway["rejected"]) == (
        "processing", 2, 1, 1)  # fmt: skip
    assert len(stored(team, batch["id"]).pending_rows) == 3  # trimmed with the progress

    assert take_in_all(team.exchange.settings, batch["id"]) == 2
    done = batch_of(team, batch["id"])
    assert (done["status"], done["rows"], done["processed"]) == ("done", 5, 5)
    assert (done["accepted"], done["rejected"], done["duplicates"]) == (2, 3, 1)
    assert [(x["row"], x["status"]) for x in done["report"]] == REPORTED
    assert [f["path"] for f in done["report"][1]["fields"]] == ["Phone"]  # named by its column
    assert done["report"][4]["code"] == "malformed_row"
    for row in (done["report"][0], done["report"][3]):
        assert_taken_and_routed(team, row["lead_id"], source)
    taken = sorted(uuid.UUID(done["report"][i]["lead_id"]) for i in (0, 3))
    assert supplier_leads(team) == taken  # one lead a good row, no more
    assert stored(team, batch["id"]).pending_rows is None
    assert take_in(team.exchange.settings, batch["id"]) is False  # a late message: nothing

    # The report a page at a time.
    page = batch_of(team, batch["id"], limit=2)
    assert [x["row"] for x in page["report"]] == [2, 3] and page["report_next_after"] == 3
    page = batch_of(team, batch["id"], limit=2, after=3)
    assert [x["row"] for x in page["report"]] == [5, 6] and page["report_next_after"] == 6
    page = batch_of(team, batch["id"], limit=2, after=6)
    assert [x["row"] for x in page["report"]] == [7] and page["report_next_after"] is None
    r = team.client.get(f"/v1/intake-batches/{batch['id']}?limit=0", headers=team.supplier.headers)
    assert r.status_code == 422 and decode(r)["error"]["fields"][0]["path"] == "query.limit"
    other = team.exchange.new_party(PartyKind.SUPPLIER)
    r = team.client.get(f"/v1/intake-batches/{batch['id']}", headers=other.headers)
    assert r.status_code == 403
    assert team.client.get(f"/v1/intake-batches/{batch['id']}", headers=team.op).status_code == 200


class Crash(Exception):
    pass


def test_a_chunk_taken_in_again_after_a_crash_makes_no_second_lead(team, monkeypatch):
    source = add_source(team, "csv", CSV_MAPPING)
    batch = upload(team, source)
    real = store.add_progress

    async def crash(*args, **kwargs):
        raise Crash("the worker died before its progress committed")

    monkeypatch.setattr(store, "add_progress", crash)
    with pytest.raises(Crash):
        take_in(team.exchange.settings, batch["id"])
    first_run = supplier_leads(team)
    assert len(first_run) == 1  # row 2 was taken in; row 3 was refused
    assert batch_of(team, batch["id"])["processed"] == 0  # its progress was lost

    monkeypatch.setattr(store, "add_progress", real)
    assert take_in(team.exchange.settings, batch["id"]) is True  # the same chunk again
    midway = batch_of(team, batch["id"])
    assert [(x["row"], x["status"]) for x in midway["report"]] == REPORTED[:2]
    assert midway["report"][0]["lead_id"] == str(first_run[0])  # the replayed row's first lead
    assert supplier_leads(team) == first_run

    # A second run of that chunk (the sweep re-sent a batch that was only slow) finishing late
    # adds nothing: the batch moved on since it started.
    late = [RowReport(row=2, status="accepted", lead_id=first_run[0], lead_status="unsold")]

    async def stale(ctx):
        async with ctx.db.write() as conn:
            return await store.add_progress(conn, uuid.UUID(batch["id"]), 0, late, [],
                                            dt.datetime.now(dt.UTC))  # fmt: skip

    assert call(team.exchange.settings, stale) is False
    assert batch_of(team, batch["id"]) == midway

    assert take_in_all(team.exchange.settings, batch["id"]) == 2
    done = batch_of(team, batch["id"])
    assert [(x["row"], x["status"]) for x in done["report"]] == REPORTED
    assert (done["processed"], done["accepted"], done["rejected"]) == (5, 2, 3)
    assert len(supplier_leads(team)) == 2


def test_a_stalled_batch_is_picked_up_by_the_sweep(team):
    source = add_source(team, "csv", CSV_MAPPING)
    settings = team.exchange.settings
    batch = upload(team, source)
    dramatiq.get_broker().flush_all()  # its message was lost
    received = dt.datetime.fromisoformat(batch["received_at"])

    def sweep(at: dt.datetime) -> int:
        return call(settings, lambda ctx: batches.sweep_stalled(ctx.db, settings, at))

    assert sweep(received + dt.timedelta(minutes=1)) == 0  # only slow, not stalled
    later = received + batches.STALLED_AFTER + dt.timedelta(seconds=1)
    assert sweep(later) == 1
    assert sent_batches() == [[batch["id"]]]
    assert sweep(later) == 0  # postponed: the message just sent has its turn
    assert take_in_all(settings, batch["id"]) == 3
    done = batch_of(team, batch["id"])
    assert done["status"] == "done"
    assert [(x["row"], x["status"]) for x in done["report"]] == REPORTED

    # Stalled past the idempotency keys' lifetime: finished with its rows refused, no lead made.
    before = supplier_leads(team)
    old = upload(team, source)
    too_late = received + dt.timedelta(hours=settings.idempotency_ttl_hours, minutes=1)
    assert sweep(too_late) == 1
    gone = batch_of(team, old["id"])
    counts = (gone["status"], gone["processed"], gone["accepted"], gone["rejected"])
    assert counts == ("done", 5, 0, 5)
    assert {x["code"] for x in gone["report"]} == {"batch_expired"}
    assert supplier_leads(team) == before


def test_a_turned_off_source_refuses_the_rows_left(team):
    source = add_source(team, "csv", CSV_MAPPING)
    batch = upload(team, source)
    assert take_in(team.exchange.settings, batch["id"]) is True
    r = team.client.put(f"/v1/intake-sources/{source['id']}", json={"active": False},
                        headers=team.supplier.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    assert take_in(team.exchange.settings, batch["id"]) is False
    done = batch_of(team, batch["id"])
    counts = (done["status"], done["processed"], done["accepted"], done["rejected"])
    assert counts == ("done", 5, 1, 4)
    assert [x.get("code") for x in done["report"][2:]] == ["source_inactive"] * 3


def test_the_in_process_worker_takes_a_large_file_in(team):
    source = add_source(team, "csv", CSV_MAPPING)
    reset_broker()  # a broker of its own, so no other test's messages reach this worker
    try:
        with TestClient(create_app(team.exchange.settings, in_process_worker=True)) as client:
            team.client = client
            batch = upload(team, source)
            deadline = time.monotonic() + 30
            while batch_of(team, batch["id"])["status"] != "done" and time.monotonic() < deadline:
                time.sleep(0.05)
            done = batch_of(team, batch["id"])
    finally:
        reset_broker()
    assert [(x["row"], x["status"]) for x in done["report"]] == REPORTED
    assert (done["processed"], done["accepted"], done["rejected"]) == (5, 2, 3)
