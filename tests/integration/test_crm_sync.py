"""CRM sync end to end, on SQLite and PostgreSQL, against a local aiohttp server playing
HubSpot, Salesforce and a webhook receiver. The server checks what it receives (the token or
the signature, the paths, the required fields, the JSON's shape) and can fail the first calls.

A sold lead goes to the buyer's HubSpot and an assigned lead to the team's Salesforce; a later
outcome updates the same record; failures retry, then succeed; a refusal ends ``failed`` and
shows in ``GET /v1/leads/{id}/crm``; without a connection nothing is written."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
import uuid
from typing import Any

import aiohttp
import msgspec
import pytest
import sqlalchemy as sa
from aiohttp import web

from exchange.auth.parties import PartyKind
from exchange.crm import sender
from exchange.crm.sender import MAX_ATTEMPTS
from exchange.delivery import signing
from exchange.store.db import Database
from exchange.store.tables import crm_syncs
from tests.conftest import decode, run
from tests.integration.test_intake_api import solar_lead
from tests.integration.test_returns import make_campaign
from tests.integration.test_teams import Team
from tests.market import fund

HUBSPOT_TOKEN = "pat-na1-test-token"
SALESFORCE_TOKEN = "00Dxx0000001gPF!AQ4AQtest"
WEBHOOK_SECRET = "whsec-test"
STOP_TIMEOUT_S = 5


class FakeCrm:
    """HubSpot under /hubspot, Salesforce under /sf, a webhook at /hook, on 127.0.0.1."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []  # (method, path, JSON body)
        self.problems: list[str] = []  # what a check found wrong: the test asserts none
        self.fail_first = 0  # answer this many calls with ``fail_status``
        self.fail_status = 503
        self.contacts: dict[str, dict] = {}  # HubSpot id -> properties
        self.sf_leads: dict[str, dict] = {}
        self.base_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _failing(self) -> web.Response | None:
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.json_response({"message": "try later"}, status=self.fail_status)
        return None

    def _check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        body = msgspec.json.decode(raw) if raw else None
        self.calls.append((request.method, request.path, body))
        return raw, body

    async def hubspot_create(self, request: web.Request) -> web.Response:
        _, body = await self._body(request)
        if (failing := self._failing()) is not None:
            return failing
        if request.headers.get("Authorization") != f"Bearer {HUBSPOT_TOKEN}":
            return web.json_response({"status": "error", "message": "Authentication credentials not found.", "category": "INVALID_AUTHENTICATION"}, status=401)  # fmt: skip
        props = body.get("properties") if isinstance(body, dict) else None
        self._check(isinstance(props, dict) and set(body) == {"properties"}, f"hubspot shape: {body}")
        self._check(all(isinstance(v, str) for v in (props or {}).values()), "hubspot: values are strings")
        self._check("email" in (props or {}) and "hs_lead_status" in (props or {}), f"hubspot props: {props}")
        for existing, known in self.contacts.items():
            if known.get("email") == (props or {}).get("email"):
                return web.json_response({"status": "error", "message": f"Contact already exists. Existing ID: {existing}", "category": "CONFLICT"}, status=409)  # fmt: skip
        contact_id = str(100 + len(self.contacts))
        self.contacts[contact_id] = dict(props or {})
        return web.json_response({"id": contact_id, "properties": props, "createdAt": "2026-11-24T09:30:00Z", "archived": False}, status=201)  # fmt: skip

    async def hubspot_update(self, request: web.Request) -> web.Response:
        _, body = await self._body(request)
        if (failing := self._failing()) is not None:
            return failing
        self._check(request.headers.get("Authorization") == f"Bearer {HUBSPOT_TOKEN}", "hubspot token")
        contact_id = request.match_info["id"]
        if contact_id not in self.contacts:
            return web.json_response({"status": "error", "message": "resource not found"}, status=404)
        self._check(isinstance(body, dict) and set(body) == {"properties"}, f"hubspot shape: {body}")
        self.contacts[contact_id].update(body["properties"])
        return web.json_response({"id": contact_id, "properties": self.contacts[contact_id]})

    async def salesforce_create(self, request: web.Request) -> web.Response:
        _, body = await self._body(request)
        if (failing := self._failing()) is not None:
            return failing
        if request.headers.get("Authorization") != f"Bearer {SALESFORCE_TOKEN}":
            return web.json_response([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], status=401)  # fmt: skip
        missing = [f for f in ("LastName", "Company") if not (body or {}).get(f)]
        if missing:
            return web.json_response([{"message": f"Required fields are missing: {missing}", "errorCode": "REQUIRED_FIELD_MISSING", "fields": missing}], status=400)  # fmt: skip
        lead_id = f"00Q5e{len(self.sf_leads):013d}"
        self.sf_leads[lead_id] = dict(body)
        return web.json_response({"id": lead_id, "success": True, "errors": []}, status=201)

    async def salesforce_update(self, request: web.Request) -> web.Response:
        _, body = await self._body(request)
        if (failing := self._failing()) is not None:
            return failing
        self._check(request.headers.get("Authorization") == f"Bearer {SALESFORCE_TOKEN}", "sf token")
        lead_id = request.match_info["id"]
        if lead_id not in self.sf_leads:
            return web.json_response([{"message": "not found", "errorCode": "NOT_FOUND"}], status=404)
        self.sf_leads[lead_id].update(body)
        return web.Response(status=204)

    async def hook(self, request: web.Request) -> web.Response:
        raw, body = await self._body(request)
        if (failing := self._failing()) is not None:
            return failing
        signed = signing.verify(
            WEBHOOK_SECRET, request.headers.get(signing.TIMESTAMP_HEADER, ""), raw,
            request.headers.get(signing.SIGNATURE_HEADER, ""), now_s=int(time.time()),
        )  # fmt: skip
        if not signed:
            return web.json_response({"error": "bad signature"}, status=401)
        self._check(request.headers.get(signing.DELIVERY_ID_HEADER) is not None, "webhook delivery id")
        lead = body.get("lead", {})
        self._check({"id", "vertical", "fields", "pii", "score", "priority", "source", "channel", "created_at"} <= set(lead), f"webhook lead: {lead}")  # fmt: skip
        return web.json_response({"id": f"rec-{lead.get('id')}"})

    def __enter__(self) -> FakeCrm:
        app = web.Application()
        app.router.add_post("/hubspot/crm/v3/objects/contacts", self.hubspot_create)
        app.router.add_patch("/hubspot/crm/v3/objects/contacts/{id}", self.hubspot_update)
        app.router.add_post("/sf/services/data/v59.0/sobjects/Lead/", self.salesforce_create)
        app.router.add_patch("/sf/services/data/v59.0/sobjects/Lead/{id}", self.salesforce_update)
        app.router.add_post("/hook", self.hook)
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.base_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=main, name="fake-crm", daemon=True)
        self._thread.start()
        assert ready.wait(STOP_TIMEOUT_S)
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._loop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STOP_TIMEOUT_S)


@pytest.fixture
def crm():
    with FakeCrm() as server:
        yield server
        assert server.problems == []


def sync(settings, lead_id, *, at: dt.datetime | None = None) -> sender.Synced:
    """One worker pass over the lead, at ``at`` (later than now: retries come due)."""

    async def main() -> sender.Synced:
        db = Database(settings)
        try:
            async with aiohttp.ClientSession() as session:
                clock = (lambda: at) if at is not None else None
                return await sender.sync_lead(db, session, uuid.UUID(str(lead_id)), now=clock)
        finally:
            await db.dispose()

    return asyncio.run(main())


def sync_rows(settings, lead_id=None) -> list[Any]:
    async def work(conn):
        query = sa.select(crm_syncs).order_by(crm_syncs.c.created_at)
        if lead_id is not None:
            query = query.where(crm_syncs.c.lead_id == uuid.UUID(str(lead_id)))
        return list(await conn.execute(query))

    return run(settings, work)


def connect(exchange, party, kind: str, url: str, secret: str | None, **config) -> dict:
    body = {"kind": kind, "name": f"{kind} of {party.id}", "config": {"url": url, **config}}
    if secret is not None:
        body["secret"] = secret
    r = exchange.client.post("/v1/crm-connections", json=body, headers=party.headers)
    assert r.status_code == 201, r.text
    out = decode(r)
    assert "secret" not in out and out["has_secret"] is (secret is not None)
    return out


class Shop:
    def __init__(self, exchange) -> None:
        self.exchange = exchange
        exchange.seed_verticals()
        self.buyer = exchange.new_party(PartyKind.BUYER, "Buyer")
        self.supplier = exchange.new_party(PartyKind.SUPPLIER, "Supplier")
        fund(exchange.settings, self.buyer.id, 100_000)
        make_campaign(exchange, self.buyer)
        self.sold = 0

    def sell(self, email: str | None = None) -> str:
        self.sold += 1
        n = self.sold
        lead = solar_lead(phone=f"(415) 555-{3300 + n}", email=email or f"crm{n}-{uuid.uuid4().hex[:6]}@example.com")
        r = self.exchange.client.post("/v1/leads", json=lead, headers=self.supplier.headers)
        assert r.status_code == 201 and decode(r)["status"] == "sold", r.text
        return decode(r)["lead_id"]

    def status(self, party, lead_id) -> Any:
        return self.exchange.client.get(f"/v1/leads/{lead_id}/crm", headers=party.headers)


def later(hours: float = 1) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=hours)


def test_a_sold_lead_goes_to_hubspot_and_an_outcome_updates_the_contact(exchange, crm):
    shop = Shop(exchange)
    connect(exchange, shop.buyer, "hubspot", f"{crm.base_url}/hubspot", HUBSPOT_TOKEN)
    lead_id = shop.sell(email="ana.crm@example.com")
    [row] = sync_rows(exchange.settings, lead_id)
    assert (row.event, row.status, row.attempts) == ("sold", "pending", 0)

    assert sync(exchange.settings, lead_id).synced == 1
    method, path, body = crm.calls[-1]
    assert (method, path) == ("POST", "/hubspot/crm/v3/objects/contacts")
    assert body["properties"]["email"] == "ana.crm@example.com"
    assert body["properties"]["firstname"] == "Ana" and body["properties"]["hs_lead_status"] == "NEW"

    r = exchange.client.post(f"/v1/leads/{lead_id}/outcomes", json={"kind": "won", "value_minor": 9_000}, headers=shop.buyer.headers)
    assert r.status_code == 201, r.text
    assert sync(exchange.settings, lead_id).synced == 1
    method, path, body = crm.calls[-1]
    assert (method, path) == ("PATCH", "/hubspot/crm/v3/objects/contacts/100")  # the same contact
    assert body["properties"]["hs_lead_status"] == "OPEN_DEAL"
    assert len(crm.contacts) == 1

    r = shop.status(shop.buyer, lead_id)
    assert r.status_code == 200, r.text
    items = decode(r)["items"]
    assert [(i["event"], i["status"], i["external_id"], i["attempts"]) for i in items] == [
        ("sold", "synced", "100", 1), ("outcome:won", "synced", "100", 1),
    ]  # fmt: skip
    assert sync(exchange.settings, lead_id).synced == 0  # nothing left: a repeat sends nothing
    # Another buyer sees neither the lead's syncs nor the connection.
    other = exchange.new_party(PartyKind.BUYER)
    assert shop.status(other, lead_id).status_code == 404
    assert decode(exchange.client.get("/v1/crm-connections", headers=other.headers))["items"] == []


def test_an_existing_hubspot_contact_is_updated_not_duplicated(exchange, crm):
    shop = Shop(exchange)
    connect(exchange, shop.buyer, "hubspot", f"{crm.base_url}/hubspot", HUBSPOT_TOKEN)
    crm.contacts["77"] = {"email": "known@example.com"}
    lead_id = shop.sell(email="known@example.com")
    assert sync(exchange.settings, lead_id).synced == 1
    assert [(m, p) for m, p, _ in crm.calls] == [
        ("POST", "/hubspot/crm/v3/objects/contacts"), ("PATCH", "/hubspot/crm/v3/objects/contacts/77"),
    ]  # fmt: skip
    assert sync_rows(exchange.settings, lead_id)[0].external_id == "77"


def test_an_assigned_lead_goes_to_the_teams_salesforce(exchange, crm):
    team = Team(exchange)
    team.configure(strategy="round_robin")
    agent = team.agent()
    connect(exchange, team.team, "salesforce", f"{crm.base_url}/sf", SALESFORCE_TOKEN, lead_source="Partner Referral")
    lead_id = team.post_lead()
    assert team.route(lead_id).status == "owned"
    assert sync(exchange.settings, lead_id).synced == 1
    method, path, body = crm.calls[-1]
    assert (method, path) == ("POST", "/sf/services/data/v59.0/sobjects/Lead/")
    assert body["LastName"] == "Garcia" and body["Company"] == "Individual"
    assert (body["LeadSource"], body["Status"]) == ("Partner Referral", "Open - Not Contacted")

    r = exchange.client.post(f"/v1/leads/{lead_id}/outcomes", json={"kind": "contacted"}, headers=agent.headers)
    assert r.status_code == 201, r.text
    assert sync(exchange.settings, lead_id).synced == 1
    method, path, body = crm.calls[-1]
    assert (method, path) == ("PATCH", "/sf/services/data/v59.0/sobjects/Lead/00Q5e0000000000000")
    assert body["Status"] == "Working - Contacted"
    items = decode(team.client.get(f"/v1/leads/{lead_id}/crm", headers=team.team.headers))["items"]
    assert {i["external_id"] for i in items} == {"00Q5e0000000000000"}
    assert [i["event"] for i in items] == ["assigned", "outcome:contacted"]


def test_failures_are_retried_then_succeed(exchange, crm):
    shop = Shop(exchange)
    connect(exchange, shop.buyer, "webhook", f"{crm.base_url}/hook", WEBHOOK_SECRET, events=["sold"])
    crm.fail_first = 2
    lead_id = shop.sell()
    done = sync(exchange.settings, lead_id)
    assert (done.retrying, done.synced) == (1, 0) and done.retry_at is not None
    [row] = sync_rows(exchange.settings, lead_id)
    assert (row.status, row.attempts) == ("pending", 1) and row.last_error.startswith("HTTP 503")
    assert sync(exchange.settings, lead_id).synced == 0  # not due yet: nothing is sent
    assert len(crm.calls) == 1
    crm.fail_status = 429
    assert sync(exchange.settings, lead_id, at=later(1)).retrying == 1
    assert sync(exchange.settings, lead_id, at=later(2)).synced == 1
    [row] = sync_rows(exchange.settings, lead_id)
    assert (row.status, row.attempts, row.last_error) == ("synced", 3, None)
    assert row.external_id == f"rec-{lead_id}"
    # The connection takes only "sold": an outcome writes nothing.
    r = exchange.client.post(f"/v1/leads/{lead_id}/outcomes", json={"kind": "contacted"}, headers=shop.buyer.headers)
    assert r.status_code == 201 and len(sync_rows(exchange.settings, lead_id)) == 1


def test_out_of_retries_ends_failed(exchange, crm):
    shop = Shop(exchange)
    connect(exchange, shop.buyer, "webhook", f"{crm.base_url}/hook", WEBHOOK_SECRET)
    crm.fail_first = MAX_ATTEMPTS
    lead_id = shop.sell()
    for hour in range(MAX_ATTEMPTS):
        sync(exchange.settings, lead_id, at=later(hour + 1))
    [row] = sync_rows(exchange.settings, lead_id)
    assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)


def test_a_refusal_fails_at_once_and_shows_in_the_leads_status(exchange, crm):
    shop = Shop(exchange)
    connect(exchange, shop.buyer, "hubspot", f"{crm.base_url}/hubspot", "pat-wrong-token")
    lead_id = shop.sell()
    assert sync(exchange.settings, lead_id).failed == 1
    items = decode(shop.status(exchange.operator, lead_id))["items"]
    assert [(i["status"], i["attempts"]) for i in items] == [("failed", 1)]
    assert items[0]["last_error"].startswith("HTTP 401") and "pat-wrong-token" not in items[0]["last_error"]
    assert decode(shop.status(shop.buyer, lead_id))["items"][0]["status"] == "failed"
    assert sync(exchange.settings, lead_id, at=later(5)).failed == 0  # final: never sent again


def test_no_connection_no_rows(exchange, crm):
    shop = Shop(exchange)
    other = exchange.new_party(PartyKind.BUYER)
    connect(exchange, other, "webhook", f"{crm.base_url}/hook", WEBHOOK_SECRET)  # not the buyer's
    lead_id = shop.sell()
    r = exchange.client.post(f"/v1/leads/{lead_id}/outcomes", json={"kind": "contacted"}, headers=shop.buyer.headers)
    assert r.status_code == 201
    assert sync_rows(exchange.settings) == []
    assert decode(shop.status(shop.buyer, lead_id))["items"] == []


def test_connections_are_scoped_validated_and_deactivated(exchange, crm):
    shop = Shop(exchange)
    op = exchange.operator.headers
    client = exchange.client
    r = client.post("/v1/crm-connections", json={"kind": "salesforce", "name": "SF", "config": {"url": "ftp://x"}, "party_id": str(shop.buyer.id)}, headers=op)  # fmt: skip
    assert r.status_code == 422
    paths = {f["path"] for f in decode(r)["error"]["fields"]}
    assert paths == {"body.config.url", "body.secret"}
    r = client.post("/v1/crm-connections", json={"kind": "webhook", "name": "W", "config": {"url": "https://x.example/h", "events": ["sold", "bogus"]}, "party_id": str(shop.buyer.id)}, headers=op)  # fmt: skip
    assert r.status_code == 422 and decode(r)["error"]["fields"][0]["path"] == "body.config.events[1]"
    r = client.post("/v1/crm-connections", json={"kind": "webhook", "name": "W", "config": {"url": "https://x.example/h"}, "party_id": str(shop.supplier.id)}, headers=op)  # fmt: skip
    assert r.status_code == 422
    r = client.post("/v1/crm-connections", json={"kind": "webhook", "name": "W", "config": {"url": "https://x.example/h"}}, headers=shop.supplier.headers)  # fmt: skip
    assert r.status_code == 403
    assert sync_rows(exchange.settings) == []

    made = client.post("/v1/crm-connections", json={"kind": "webhook", "name": "W", "config": {"url": f"{crm.base_url}/hook"}, "secret": WEBHOOK_SECRET, "party_id": str(shop.buyer.id)}, headers=op)  # fmt: skip
    assert made.status_code == 201, made.text
    conn_id = decode(made)["id"]
    mine = decode(client.get("/v1/crm-connections", headers=shop.buyer.headers))["items"]
    assert [c["id"] for c in mine] == [conn_id] and "secret" not in mine[0]
    other = exchange.new_party(PartyKind.BUYER)
    assert client.get(f"/v1/crm-connections/{conn_id}", headers=other.headers).status_code == 404
    r = client.put(f"/v1/crm-connections/{conn_id}", json={"name": "Renamed"}, headers=shop.buyer.headers)
    assert r.status_code == 200 and decode(r)["name"] == "Renamed" and decode(r)["has_secret"] is True
    r = client.delete(f"/v1/crm-connections/{conn_id}", headers=shop.buyer.headers)
    assert r.status_code == 200 and decode(r)["active"] is False
    lead_id = shop.sell()  # an inactive connection takes nothing
    assert sync_rows(exchange.settings, lead_id) == []


def test_the_in_process_worker_pushes_after_the_commit(backend, crm):
    """Embedded mode: the sale's commit asks the worker, which pushes without any help."""
    from litestar.testing import TestClient

    from exchange.app import create_app
    from tests.conftest import Exchange

    with TestClient(create_app(backend, in_process_worker=True)) as client:
        exchange = Exchange(backend, client)
        shop = Shop(exchange)
        connect(exchange, shop.buyer, "webhook", f"{crm.base_url}/hook", WEBHOOK_SECRET)
        lead_id = shop.sell()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rows = sync_rows(backend, lead_id)
            if rows and rows[0].status == "synced":
                break
            time.sleep(0.05)
        assert [(r.event, r.status) for r in rows] == [("sold", "synced")]
        assert [p for _, p, _ in crm.calls] == ["/hook"]


def test_a_later_event_waits_for_the_first_and_the_sweeper_finds_due_rows(exchange, crm):
    from exchange.crm import outbox

    shop = Shop(exchange)
    connect(exchange, shop.buyer, "webhook", f"{crm.base_url}/hook", WEBHOOK_SECRET)
    crm.fail_first = 1
    lead_id = shop.sell()
    r = exchange.client.post(f"/v1/leads/{lead_id}/outcomes", json={"kind": "contacted"}, headers=shop.buyer.headers)
    assert r.status_code == 201
    assert sync(exchange.settings, lead_id).retrying == 1
    assert len(crm.calls) == 1  # the outcome was not sent ahead of the sale it updates

    def due(at):
        return run(exchange.settings, lambda conn: outbox.due_leads(conn, at, 10))

    assert due(later(1)) == [uuid.UUID(lead_id)]  # a lost message: the sweeper asks again
    assert sync(exchange.settings, lead_id, at=later(1)).synced == 2
    assert [b["event"] for _, _, b in crm.calls] == ["sold", "sold", "outcome:contacted"]
    assert crm.calls[-1][2]["external_id"] == f"rec-{lead_id}"  # the record the sale made
    assert crm.calls[-1][2]["outcome"]["kind"] == "contacted"
    assert due(later(10)) == []



def test_a_lead_reassigned_by_the_sla_is_pushed_again_with_its_new_owner(exchange, crm):
    team = Team(exchange)
    team.configure(strategy="round_robin", sla_minutes=10, max_reassigns=1)
    a, b = team.agent(), team.agent()
    connect(exchange, team.team, "webhook", f"{crm.base_url}/hook", WEBHOOK_SECRET)
    lead_id = team.post_lead()
    first = team.route(lead_id).agent_id
    assert sync(exchange.settings, lead_id).synced == 1
    assert crm.calls[-1][2]["assignment"]["agent_id"] == str(first)

    breach = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=11)
    assert team.sweep(breach).reassigned == 1
    second = team.routing(lead_id)["agent_id"]
    assert second not in (None, str(first)) and {str(a.id), str(b.id)} == {str(first), second}
    assert [(r.event, r.status) for r in sync_rows(exchange.settings, lead_id)] == [
        ("assigned", "synced"), ("assigned:2", "pending"),
    ]  # fmt: skip
    assert sync(exchange.settings, lead_id, at=breach).synced == 1
    _, path, body = crm.calls[-1]
    assert path == "/hook" and body["event"] == "assigned"
    assert body["assignment"]["agent_id"] == second  # the new owner
    assert body["external_id"] == f"rec-{lead_id}"  # the record the first push made, updated
    assert len(crm.calls) == 2
    assert team.sweep(breach).reassigned == 0  # nothing more to push, nothing pushed twice
    assert sync(exchange.settings, lead_id, at=breach).synced == 0
