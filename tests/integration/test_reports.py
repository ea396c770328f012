"""GET /v1/reports/leads on SQLite and PostgreSQL, with leads sold through the real flow (direct
posts, a shared ping-post, an HTML form) to fixed-price campaigns: exact counts and money by
channel, source, vertical, UTC day and currency; scoping by key; bad parameters refused."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from exchange.auth.parties import PartyKind
from exchange.store.tables import campaigns, leads, sales
from tests.conftest import decode, run
from tests.integration.test_auction_api import PERCENT_20, ping_body
from tests.integration.test_channels import FORM, FORM_MAPPING
from tests.integration.test_intake_api import row_counts, solar_lead
from tests.integration.test_verticals_api import PET
from tests.market import add_campaign, fund, set_vertical_margin

D1, D2 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
RANGE = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-03T00:00:00Z"}
NOTHING = {"received": 0, "sold": 0, "unsold": 0, "other": 0, "sold_rate_bps": 0}


class World:
    """Known leads. Solar (USD) has a 20% margin; buyer A pays 30.00 a lead, buyer B 25.00
    (both take shared leads). Supplier 1 sends, on 1 November (UTC): L1 by the API (sold to
    A), L2 by ping-post shared (A and B), L3 by a form (sold to A); with the campaigns paused,
    on 2 November: L4 by the form, L5 by the API, L6 a test lead, L7 a pet insurance lead
    (EUR, no buyers), all unsold; then supplier 2: L8 by the API (sold to A)."""

    def __init__(self, exchange) -> None:
        self.exchange, self.client, self.settings = exchange, exchange.client, exchange.settings
        self.op = exchange.operator.headers
        exchange.seed_verticals()
        set_vertical_margin(self.settings, "solar", PERCENT_20)
        r = self.client.post("/v1/verticals", json=dict(PET, currency="EUR"), headers=self.op)
        assert r.status_code == 201, r.text
        self.s1 = exchange.new_party(PartyKind.SUPPLIER)
        self.s2 = exchange.new_party(PartyKind.SUPPLIER)
        self.a = exchange.new_party(PartyKind.BUYER, "A")
        self.b = exchange.new_party(PartyKind.BUYER, "B")
        for buyer in (self.a, self.b):
            fund(self.settings, buyer.id, 100_000)
        add_campaign(self.settings, self.a.id, fixed_price_minor=3000, max_sells=2)
        add_campaign(self.settings, self.b.id, fixed_price_minor=2500, max_sells=2)
        body = {"vertical": "solar", "channel": "form", "name": "Quote page", "source": "quote-page",
                "mapping": FORM_MAPPING}  # fmt: skip
        r = self.client.post("/v1/intake-sources", json=body, headers=self.s1.headers)
        assert r.status_code == 201, r.text
        form_path = decode(r)["path"]

        l1 = self.direct(self.s1, 1, "sold")
        offer = decode(self.client.post(
            "/v1/pings", json=ping_body() | {"max_sells": 2}, headers=self.s1.headers))  # fmt: skip
        assert offer["status"] == "accepted" and len(offer["bids"]) == 2, offer
        post = {"ping_id": offer["ping_id"], "fields": self.fields(2)}
        out = decode(self.client.post("/v1/posts", json=post, headers=self.s1.headers))
        assert (out["status"], out["sales"]) == ("sold", 2), out
        l2 = out["lead_id"]
        l3 = self.form(form_path, 3, "sold")
        self.campaigns_active(False)
        l4 = self.form(form_path, 4, "unsold")
        l5 = self.direct(self.s1, 5, "unsold")
        l6 = self.direct(self.s1, 6, "unsold", test=True)
        pet = {"vertical": "pet_insurance", "source": "google",
               "fields": {"zip": "02134", "species": "dog", "phone": "6175550107"}}  # fmt: skip
        r = self.client.post("/v1/leads", json=pet, headers=self.s1.headers)
        assert r.status_code == 201 and decode(r)["status"] == "unsold", r.text
        l7 = decode(r)["lead_id"]
        self.campaigns_active(True)
        self.l8 = self.direct(self.s2, 8, "sold")
        at = {l1: D1, l2: D1 + dt.timedelta(hours=12),
              l3: D2 - dt.timedelta(milliseconds=1),  # the last instant of 1 November
              l4: D2, l5: D2 + dt.timedelta(hours=10), l6: D2 + dt.timedelta(hours=10),
              l7: D2 + dt.timedelta(hours=11), self.l8: D2 + dt.timedelta(hours=23)}  # fmt: skip
        self.set_created_at(at)
        self.ids = {"l1": l1, "l2": l2, "l3": l3, "l4": l4, "l5": l5, "l6": l6, "l7": l7}
        self.sales = run(self.settings, lambda c: c.execute(sa.select(sales))).all()
        assert len(self.sales) == 5 and {s.status for s in self.sales} == {"delivered"}

    @staticmethod
    def fields(n: int) -> dict[str, Any]:
        return solar_lead(phone=f"212-555-03{n:02d}", email=f"r{n}@example.com")["fields"]

    def direct(self, supplier, n: int, status: str, **extra: Any) -> str:
        body = solar_lead() | {"fields": self.fields(n), **extra}
        r = self.client.post("/v1/leads", json=body, headers=supplier.headers)
        assert r.status_code == 201 and decode(r)["status"] == status, r.text
        return decode(r)["lead_id"]

    def form(self, path: str, n: int, status: str) -> str:
        form = dict(FORM, phone=f"(646) 555-03{n:02d}", email=f"f{n}@example.com")
        r = self.client.post(path, data=form, headers={"Accept": "application/json"})
        assert r.status_code == 201 and decode(r)["status"] == status, r.text
        return decode(r)["lead_id"]

    def campaigns_active(self, active: bool) -> None:
        run(self.settings, lambda c: c.execute(campaigns.update().values(active=active)))

    def set_created_at(self, at: dict[str, dt.datetime]) -> None:
        async def work(conn):
            for lead_id, when in at.items():
                await conn.execute(
                    leads.update().where(leads.c.id == uuid.UUID(lead_id)).values(created_at=when)
                )

        run(self.settings, work)

    def report(self, headers=None, status: int = 200, **params: Any) -> Any:
        r = self.client.get("/v1/reports/leads", params=RANGE | params, headers=headers or self.op)
        assert r.status_code == status, r.text
        return decode(r)


@pytest.fixture
def world(exchange) -> World:
    return World(exchange)


def row(currency: str = "USD", **values: Any) -> dict[str, Any]:
    return {"currency": currency, **NOTHING, **values}


def money(revenue: int | None, payout: int) -> dict[str, Any]:
    margin = None if revenue is None else revenue - payout
    return {"revenue_minor": revenue, "payout_minor": payout, "margin_minor": margin}


def test_an_operator_sees_every_lead_by_channel_day_vertical_and_currency(world):
    out = world.report(group_by="channel")
    assert (out["from"], out["to"], out["group_by"]) == (RANGE["from"], RANGE["to"], ["channel"])
    assert out["rows"] == [
        row("EUR", channel="api", received=1, unsold=1, **money(0, 0)),  # L7
        # L1 (30.00), L2 (30.00 + 25.00, paying 24.00 + 20.00), L5, L8: L6 is a test lead.
        row(channel="api", received=4, sold=3, unsold=1, sold_rate_bps=7500, **money(11500, 9200)),
        row(channel="form", received=2, sold=1, unsold=1, sold_rate_bps=5000, **money(3000, 2400)),
    ]
    # Keys come in a fixed order (channel, source, vertical, day) however they were asked.
    out = world.report(group_by=["day", "channel"])
    assert out["group_by"] == ["channel", "day"]
    assert out["rows"] == [
        row(channel="api", day="2026-11-01", received=2, sold=2, sold_rate_bps=10000, **money(8500, 6800)),
        row("EUR", channel="api", day="2026-11-02", received=1, unsold=1, **money(0, 0)),
        row(channel="api", day="2026-11-02", received=2, sold=1, unsold=1, sold_rate_bps=5000, **money(3000, 2400)),
        row(channel="form", day="2026-11-01", received=1, sold=1, sold_rate_bps=10000, **money(3000, 2400)),
        row(channel="form", day="2026-11-02", received=1, unsold=1, **money(0, 0)),
    ]  # fmt: skip
    assert world.report(group_by="vertical,source")["rows"] == [
        row("EUR", source="google", vertical="pet_insurance", received=1, unsold=1, **money(0, 0)),
        row(source="google", vertical="solar", received=4, sold=3, unsold=1, sold_rate_bps=7500, **money(11500, 9200)),
        row(source="quote-page", vertical="solar", received=2, sold=1, unsold=1, sold_rate_bps=5000, **money(3000, 2400)),
    ]  # fmt: skip
    assert world.report()["rows"] == [  # no keys: one row per currency
        row("EUR", received=1, unsold=1, **money(0, 0)),
        row(received=6, sold=4, unsold=2, sold_rate_bps=6666, **money(14500, 11600)),
    ]
    # Filters.
    assert world.report(channel="form")["rows"] == [
        row(received=2, sold=1, unsold=1, sold_rate_bps=5000, **money(3000, 2400))
    ]
    out = world.report(channel="api", vertical="solar", source="google", supplier_id=str(world.s2.id))
    assert out["rows"] == [row(received=1, sold=1, sold_rate_bps=10000, **money(3000, 2400))]
    # from included, to not: L3 (23:59:59.999 on 1 November) and L8 (23:00) are outside.
    out = world.report(**{"from": "2026-11-01T19:00:00-05:00", "to": "2026-11-02T23:00:00Z"})
    assert out["from"] == "2026-11-02T00:00:00Z"
    assert out["rows"] == [row("EUR", received=1, unsold=1, **money(0, 0)), row(received=2, unsold=2, **money(0, 0))]

    # Revenue counts delivered sales: a returned one no longer does (the lead stays sold).
    run(world.settings, lambda c: c.execute(
        sales.update().where(sales.c.lead_id == uuid.UUID(world.l8)).values(status="returned")))  # fmt: skip
    assert world.report(channel="api", vertical="solar")["rows"] == [
        row(received=4, sold=3, unsold=1, sold_rate_bps=7500, **money(8500, 6800))
    ]


def test_a_supplier_sees_only_its_own_leads_and_no_buyer_prices(world):
    out = world.report(world.s1.headers, group_by="source")
    assert out["rows"] == [
        row("EUR", source="google", received=1, unsold=1, **money(None, 0)),
        row(source="google", received=3, sold=2, unsold=1, sold_rate_bps=6666, **money(None, 6800)),
        row(source="quote-page", received=2, sold=1, unsold=1, sold_rate_bps=5000, **money(None, 2400)),
    ]  # fmt: skip
    assert world.report(world.s2.headers)["rows"] == [
        row(received=1, sold=1, sold_rate_bps=10000, **money(None, 2400))
    ]
    mine = world.report(world.s2.headers, supplier_id=str(world.s2.id))
    assert mine["rows"] == world.report(world.s2.headers)["rows"]
    world.report(world.s1.headers, 403, supplier_id=str(world.s2.id))
    for kind in (PartyKind.BUYER, PartyKind.TEAM, PartyKind.FINANCE):
        world.report(world.exchange.new_party(kind).headers, 403)
    world.report(world.a.headers, 403)


def test_one_query_answers_a_report(world):
    db = world.client.app.state.db
    engines = {id(e.sync_engine): e.sync_engine for e in (db.engine, db.read_engine)}.values()
    statements: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:
        if statement.split()[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            statements.append(statement)

    world.report(group_by="day")  # the key is cached from here on
    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        rows = world.report(group_by="channel,source,vertical,day")["rows"]
    finally:
        for engine in engines:
            sa.event.remove(engine, "before_cursor_execute", seen)
    assert len(rows) == 5 and sum(r["received"] for r in rows) == 7
    assert [s for s in statements if "leads" in s] == statements and len(statements) == 1, statements


def test_a_suppliers_leads_show_their_channel_and_filter_by_it(world):
    def listed(headers, **params) -> dict[str, str]:
        r = world.client.get("/v1/leads", params=params, headers=headers)
        assert r.status_code == 200, r.text
        return {item["lead_id"]: item["channel"] for item in decode(r)["items"]}

    ids = world.ids
    api = {ids[k] for k in ("l1", "l2", "l5", "l6", "l7")}
    assert listed(world.s1.headers) == {i: "api" for i in api} | {ids["l3"]: "form", ids["l4"]: "form"}
    assert listed(world.s1.headers, channel="form") == {ids["l3"]: "form", ids["l4"]: "form"}
    assert listed(world.s1.headers, channel="api") == {i: "api" for i in api}
    assert listed(world.s1.headers, channel="csv") == {}
    assert listed(world.op, channel="api") == {i: "api" for i in api | {world.l8}}
    r = world.client.get("/v1/leads", params={"channel": "fax"}, headers=world.s1.headers)
    assert r.status_code == 422 and decode(r)["error"]["fields"][0]["path"] == "query.channel"
    for lead_id, channel in ((ids["l3"], "form"), (ids["l1"], "api")):
        r = world.client.get(f"/v1/leads/{lead_id}", headers=world.s1.headers)
        assert r.status_code == 200 and decode(r)["channel"] == channel


@pytest.mark.parametrize(
    "params, path, reason",
    [
        ({"group_by": "channel,week"}, "query.group_by", "'week' is not one of channel, source, vertical, day"),
        ({"from": "2026-11-03T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "query.from", "must be before to"),
        ({"to": "2026-11-01T00:00:00Z"}, "query.from", "must be before to"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2027-01-02T00:00:01Z"}, "query.to", "at most 366 days after from"),
        ({"from": "2026-11-01T00:00:00"}, "query.from", "needs a time zone, e.g. 2026-11-01T00:00:00Z"),
        ({"to": "tomorrow"}, "query.to", "not an ISO 8601 instant, e.g. 2026-11-01T00:00:00Z"),
        ({"from": ""}, "query.from", "required"),
        ({"channel": "fax"}, "query.channel", "one of api, call, csv, email, form, google_ads, meta"),
    ],
)  # fmt: skip
def test_bad_parameters_are_422_naming_the_parameter_and_store_nothing(world, params, path, reason):
    before = row_counts(world.settings)
    error = world.report(status=422, **params)["error"]
    assert error["code"] == "validation_failed"
    assert error["fields"] == [{"path": path, "reason": reason}]
    assert row_counts(world.settings) == before
    # 366 days is allowed (a leap year's worth).
    world.report(**{"from": "2026-01-01T00:00:00Z", "to": "2027-01-02T00:00:00Z"})
