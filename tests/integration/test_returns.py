"""Returns through the API, on SQLite and PostgreSQL: a lead sold by the auction, returned by its
buyer inside the campaign's policy, approved or denied by finance, refunded in the ledger."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from exchange.auth.parties import PartyKind
from exchange.ledger.entries import EntryKind
from exchange.store.tables import sales
from tests.conftest import decode, run
from tests.integration.test_intake_api import solar_lead
from tests.market import balance, fund

T0 = dt.datetime(2026, 6, 10, 12, 0, tzinfo=dt.timezone.utc)  # when the leads are sold
DAY = dt.timedelta(days=1)
PRICE, PAYOUT = 2500, 2000  # the seeded solar vertical keeps a 20 % margin
REASONS = ["wrong_number", "not_interested"]
CAMPAIGN = {
    "name": "Solar, returnable",
    "vertical": "solar",
    "price_mode": "fixed",
    "fixed_price_minor": PRICE,
    "returns": {"window_days": 7, "reasons": REASONS},
}


@pytest.fixture
def shop(exchange):
    """A buyer with money and a returnable campaign, a supplier, another buyer and finance."""
    exchange.seed_verticals()
    buyer = exchange.new_party(PartyKind.BUYER, "Buyer")
    other = exchange.new_party(PartyKind.BUYER, "Other")
    fund(exchange.settings, buyer.id, 100_000)
    return (
        exchange,
        buyer,
        other,
        exchange.new_party(PartyKind.SUPPLIER, "Supplier"),
        exchange.new_party(PartyKind.FINANCE, "Finance"),
    )


def make_campaign(exchange, buyer, **returns) -> str:
    body = CAMPAIGN | {"returns": CAMPAIGN["returns"] | returns}
    r = exchange.client.post("/v1/campaigns", json=body, headers=buyer.headers)
    assert r.status_code == 201, r.text
    assert decode(r)["returns"] == body["returns"] | {"max_rate_bps": returns.get("max_rate_bps", 0)}
    return decode(r)["id"]


def sell(exchange, supplier, count: int) -> None:
    """Sell ``count`` leads at T0, each of a different person."""
    with freeze_time(T0, tick=True, real_asyncio=True):
        for i in range(count):
            lead = solar_lead(phone=f"(415) 555-{2600 + i}", email=f"ana{i}@example.com")
            r = exchange.client.post("/v1/leads", json=lead, headers=supplier.headers)
            assert r.status_code == 201 and decode(r)["status"] == "sold", r.text


def purchases(exchange, buyer) -> list[dict]:
    r = exchange.client.get("/v1/purchases", headers=buyer.headers)
    assert r.status_code == 200, r.text
    return decode(r)["items"]


def file(exchange, buyer, at: dt.datetime, **body):
    with freeze_time(at, real_asyncio=True):
        return exchange.client.post("/v1/returns", json={"reason": REASONS[0], **body}, headers=buyer.headers)


def decide(exchange, finance, return_id: str, verb: str, at: dt.datetime, **body):
    with freeze_time(at, real_asyncio=True):
        # The note is optional: without one, no body at all.
        return exchange.client.post(f"/v1/returns/{return_id}/{verb}", json=body or None, headers=finance.headers)


def owed_to(exchange, finance, party_id) -> int:
    r = exchange.client.get("/v1/ledger/balances", params={"party_id": str(party_id)}, headers=finance.headers)
    return sum(b["closing_minor"] for b in decode(r))


def books_are_clean(exchange, finance) -> None:
    trial = decode(exchange.client.get("/v1/ledger/trial-balance", headers=finance.headers))
    assert trial["balanced"] and all(t["difference_minor"] == 0 for t in trial["totals"])
    recon = decode(exchange.client.get("/v1/ledger/reconciliation", headers=finance.headers))
    assert recon["ok"], recon["anomalies"]


def error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    return decode(response)["error"]


def test_approved_returns_refund_the_buyer_and_claw_back_only_inside_the_hold(shop):
    exchange, buyer, _, supplier, finance = shop
    op = exchange.operator.headers
    terms = {"return_payout": "claw_back", "hold_days": 3}
    r = exchange.client.put(f"/v1/suppliers/{supplier.id}/terms", json=terms, headers=op)
    assert r.status_code == 200 and {k: decode(r)[k] for k in terms} == terms
    make_campaign(exchange, buyer)
    sell(exchange, supplier, 2)
    first, second = purchases(exchange, buyer)
    assert (first["status"], first["price_minor"], first["return_status"]) == ("delivered", PRICE, None)
    assert first["returnable_until"] is not None
    assert balance(exchange.settings, buyer.id) == 100_000 - 2 * PRICE
    assert owed_to(exchange, finance, supplier.id) == 2 * PAYOUT

    # Filed by sale id and by lead id; finance sees both waiting.
    r = file(exchange, buyer, T0 + DAY, sale_id=first["sale_id"], note="number disconnected")
    assert r.status_code == 201, r.text
    early = decode(r)
    assert (early["status"], early["reason"], early["buyer_id"]) == ("requested", REASONS[0], str(buyer.id))
    r = file(exchange, buyer, T0 + DAY, lead_id=second["lead_id"], reason=REASONS[1])
    late = decode(r)
    assert r.status_code == 201 and late["sale_id"] == second["sale_id"]
    waiting = decode(exchange.client.get("/v1/returns", params={"status": "requested"}, headers=finance.headers))
    assert {x["id"] for x in waiting["items"]} == {early["id"], late["id"]}  # filed in one instant

    # Inside the 3-day hold: the supplier gives its payout back.
    r = decide(exchange, finance, early["id"], "approve", T0 + 2 * DAY, note="confirmed")
    assert r.status_code == 200, r.text
    approved = decode(r)
    assert (approved["status"], approved["claw_back"], approved["decided_by"]) == ("approved", True, str(finance.id))
    assert approved["decision_note"] == "confirmed" and approved["entry_id"]
    assert balance(exchange.settings, buyer.id) == 100_000 - PRICE
    assert owed_to(exchange, finance, supplier.id) == PAYOUT
    # After the hold (still inside the buyer's window when filed): the exchange absorbs it.
    r = decide(exchange, finance, late["id"], "approve", T0 + 5 * DAY)
    assert r.status_code == 200 and decode(r)["claw_back"] is False
    assert balance(exchange.settings, buyer.id) == 100_000
    assert owed_to(exchange, finance, supplier.id) == PAYOUT

    entries = decode(exchange.client.get(f"/v1/ledger/leads/{first['lead_id']}", headers=finance.headers))
    assert [e["kind"] for e in entries] == [EntryKind.SALE.value, EntryKind.RETURN.value]
    assert entries[1]["id"] == approved["entry_id"]
    statuses = run(exchange.settings, lambda c: c.execute(sa.select(sales.c.status))).scalars().all()
    assert statuses == ["returned", "returned"]
    assert [(p["status"], p["return_status"]) for p in purchases(exchange, buyer)] == [("returned", "approved")] * 2
    books_are_clean(exchange, finance)


def test_refusals_name_the_rule(shop):
    exchange, buyer, _, supplier, _ = shop
    campaign_id = make_campaign(exchange, buyer)
    sell(exchange, supplier, 1)
    [bought] = purchases(exchange, buyer)
    sale = {"sale_id": bought["sale_id"]}

    err = error(file(exchange, buyer, T0 + DAY, reason="changed_my_mind", **sale), 422)
    assert [f["path"] for f in err["fields"]] == ["reason"] and "wrong_number" in err["fields"][0]["reason"]
    err = error(file(exchange, buyer, T0 + 7 * DAY + dt.timedelta(seconds=1), **sale), 409)
    assert err["code"] == "return_window_closed" and err["details"]["closed_at"].startswith("2026-06-17T12:00")
    assert error(file(exchange, buyer, T0 + DAY), 422)["fields"][0]["path"] == "sale_id"  # neither id
    assert error(file(exchange, buyer, T0 + DAY, lead_id=str(uuid.uuid4())), 404)["code"] == "not_found"

    # A campaign that takes returns must list reasons; one set to 0 days takes none.
    closed = CAMPAIGN | {"returns": {"window_days": 7, "reasons": []}}
    r = exchange.client.put(f"/v1/campaigns/{campaign_id}", json=closed, headers=buyer.headers)
    assert [f["path"] for f in error(r, 422)["fields"]] == ["returns.reasons"]
    closed = CAMPAIGN | {"returns": {"window_days": 0}}
    assert exchange.client.put(f"/v1/campaigns/{campaign_id}", json=closed, headers=buyer.headers).status_code == 200
    assert error(file(exchange, buyer, T0 + DAY, **sale), 409)["code"] == "returns_not_accepted"

    exchange.client.put(f"/v1/campaigns/{campaign_id}", json=CAMPAIGN, headers=buyer.headers)
    assert file(exchange, buyer, T0 + DAY, **sale).status_code == 201
    err = error(file(exchange, buyer, T0 + DAY, **sale), 409)  # one return per sale
    assert err["code"] == "return_exists" and err["details"]["return_id"]


def test_the_monthly_rate_counts_requested_and_approved_returns(shop):
    exchange, buyer, _, supplier, finance = shop
    make_campaign(exchange, buyer, max_rate_bps=3400)  # 34 %: 1 return of 3 purchases, not 2
    sell(exchange, supplier, 3)
    a, b, _ = purchases(exchange, buyer)
    first = decode(file(exchange, buyer, T0 + DAY, sale_id=a["sale_id"]))
    err = error(file(exchange, buyer, T0 + DAY, sale_id=b["sale_id"]), 409)
    assert err["code"] == "return_rate_exceeded"
    assert {k: err["details"][k] for k in ("period", "purchases", "open_returns")} == {
        "period": "2026-06", "purchases": 3, "open_returns": 1,
    }  # fmt: skip
    # A denied return no longer counts.
    assert decide(exchange, finance, first["id"], "deny", T0 + DAY).status_code == 200
    assert file(exchange, buyer, T0 + 2 * DAY, sale_id=b["sale_id"]).status_code == 201


def test_deciding_twice_moves_money_once_and_scoping(shop):
    exchange, buyer, other, supplier, finance = shop
    op = exchange.operator.headers
    r = exchange.client.put(f"/v1/suppliers/{supplier.id}/terms", json={"return_payout": "absorb"}, headers=op)
    assert r.status_code == 200
    make_campaign(exchange, buyer)
    sell(exchange, supplier, 2)
    a, b = purchases(exchange, buyer)
    kept = decode(file(exchange, buyer, T0 + DAY, sale_id=a["sale_id"]))
    refused = decode(file(exchange, buyer, T0 + DAY, sale_id=b["sale_id"]))

    # Only its buyer (and finance) sees a return; only finance decides.
    assert error(exchange.client.get(f"/v1/returns/{kept['id']}", headers=other.headers), 403)["code"] == "forbidden"
    mine = decode(exchange.client.get(f"/v1/returns/{kept['id']}", headers=buyer.headers))
    assert (mine["id"], mine["status"], mine["sale_id"]) == (kept["id"], "requested", a["sale_id"])
    assert decode(exchange.client.get("/v1/returns", headers=other.headers))["items"] == []
    assert exchange.client.get("/v1/returns", params={"buyer_id": str(buyer.id)}, headers=other.headers).status_code == 403
    assert decode(exchange.client.get("/v1/purchases", headers=other.headers))["items"] == []
    assert error(file(exchange, other, T0 + DAY, sale_id=a["sale_id"]), 403)["code"] == "forbidden"
    assert exchange.client.post(f"/v1/returns/{kept['id']}/approve", headers=buyer.headers).status_code == 403
    assert exchange.client.get("/v1/returns", headers=supplier.headers).status_code == 403
    assert exchange.client.post("/v1/returns", json={"sale_id": a["sale_id"], "reason": REASONS[0]}, headers=finance.headers).status_code == 403

    # Approving again answers the same and posts nothing more; the absorb terms keep the payout.
    once = decide(exchange, finance, kept["id"], "approve", T0 + 2 * DAY)
    again = decide(exchange, finance, kept["id"], "approve", T0 + 3 * DAY)
    assert once.status_code == again.status_code == 200 and decode(once) == decode(again)
    assert decode(once)["claw_back"] is False
    entries = decode(exchange.client.get(f"/v1/ledger/leads/{a['lead_id']}", headers=finance.headers))
    assert [e["kind"] for e in entries] == ["sale", "return"]
    assert error(decide(exchange, finance, kept["id"], "deny", T0 + 3 * DAY), 409)["code"] == "return_decided"

    # A denial records the decision only.
    denied = decide(exchange, finance, refused["id"], "deny", T0 + 2 * DAY, note="lead was contacted")
    assert (decode(denied)["status"], decode(denied)["entry_id"], decode(denied)["claw_back"]) == ("denied", None, None)
    assert decode(decide(exchange, finance, refused["id"], "deny", T0 + 3 * DAY)) == decode(denied)
    assert error(decide(exchange, finance, refused["id"], "approve", T0 + 3 * DAY), 409)["code"] == "return_decided"
    assert balance(exchange.settings, buyer.id) == 100_000 - PRICE
    assert owed_to(exchange, finance, supplier.id) == 2 * PAYOUT
    assert error(decide(exchange, finance, str(uuid.uuid4()), "approve", T0), 404)["code"] == "not_found"
    books_are_clean(exchange, finance)
