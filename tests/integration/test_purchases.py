"""A buyer reads back a lead it bought, PII included (``GET /v1/purchases/{sale_id}``), on SQLite
and PostgreSQL: only its own, only once delivered, after a return too, and without the PII once
the retention purge erased it."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import sqlalchemy as sa

from exchange.store.db import Database
from exchange.store.tables import sales
from exchange.worker import maintenance
from tests.conftest import decode, run
from tests.integration import test_returns
from tests.integration.test_returns import (
    DAY,
    T0,
    decide,
    error,
    file,
    make_campaign,
    purchases,
    sell,
)

shop = test_returns.shop  # the fixture: a buyer, another, a supplier and finance
PII = {"first_name", "last_name", "phone", "email", "address"}


def show(exchange, party, sale_id):
    return exchange.client.get(f"/v1/purchases/{sale_id}", headers=party.headers)


def test_a_buyer_reads_its_purchase_with_the_pii_and_no_one_elses(shop):
    exchange, buyer, other, supplier, finance = shop
    make_campaign(exchange, buyer)
    sell(exchange, supplier, 1)
    [bought] = purchases(exchange, buyer)

    mine = decode(show(exchange, buyer, bought["sale_id"]))
    listed = {k: mine[k] for k in bought}
    assert listed == bought  # the same purchase as the list, plus the lead
    assert (mine["buyer_id"], mine["vertical"], mine["pii"], mine["pii_purged"]) == (str(buyer.id), "solar", "included", False)
    assert PII <= set(mine["fields"])
    assert (mine["fields"]["phone"], mine["fields"]["email"], mine["fields"]["state"]) == ("+14155552600", "ana0@example.com", "CA")
    assert mine["consent"]["tcpa_text"]

    # Another buyer cannot tell the sale exists; suppliers and agents may not ask at all.
    assert error(show(exchange, other, bought["sale_id"]), 404)["code"] == "not_found"
    assert error(show(exchange, buyer, uuid.uuid4()), 404)["code"] == "not_found"
    assert error(show(exchange, supplier, bought["sale_id"]), 403)["code"] == "forbidden"
    # Finance sees the purchase, never the PII; operators see it all.
    seen = decode(show(exchange, finance, bought["sale_id"]))
    assert (seen["pii"], seen["pii_purged"]) == ("withheld", False) and not PII & set(seen["fields"])
    assert decode(show(exchange, exchange.operator, bought["sale_id"]))["fields"] == mine["fields"]

    # A returned lead stays readable by its buyer: it was delivered, and its status says returned.
    r = file(exchange, buyer, T0 + DAY, sale_id=bought["sale_id"])
    assert r.status_code == 201, r.text
    assert decide(exchange, finance, decode(r)["id"], "approve", T0 + 2 * DAY).status_code == 200
    back = decode(show(exchange, buyer, bought["sale_id"]))
    assert (back["status"], back["return_status"], back["pii"]) == ("returned", "approved", "included")


def test_a_sale_not_delivered_is_not_a_purchase(shop):
    exchange, buyer, _, supplier, _ = shop
    make_campaign(exchange, buyer)
    sell(exchange, supplier, 2)
    first, second = purchases(exchange, buyer)

    async def set_status(conn):
        await conn.execute(sales.update().where(sales.c.id == uuid.UUID(first["sale_id"])).values(status="delivering"))
        await conn.execute(sales.update().where(sales.c.id == uuid.UUID(second["sale_id"])).values(status="failed"))

    run(exchange.settings, set_status)
    for sale, status in ((first, "delivering"), (second, "failed")):
        err = error(show(exchange, buyer, sale["sale_id"]), 409)
        assert (err["code"], err["details"]["status"]) == ("not_delivered", status)


def test_after_the_retention_purge_the_fields_stay_and_the_pii_is_gone(shop):
    exchange, buyer, _, supplier, _ = shop
    make_campaign(exchange, buyer)
    sell(exchange, supplier, 1)  # at T0, long ago
    [bought] = purchases(exchange, buyer)

    async def purge(settings):
        db = Database(settings)
        try:
            return await maintenance.purge_expired(db, settings)
        finally:
            await db.dispose()

    kept = asyncio.run(purge(exchange.settings))  # the default keeps PII for good
    assert kept["lead_pii"] == 0 and decode(show(exchange, buyer, bought["sale_id"]))["pii"] == "included"
    counts = asyncio.run(purge(msgspec.structs.replace(exchange.settings, pii_retention_days=1)))
    assert counts["lead_pii"] == 1

    after = decode(show(exchange, buyer, bought["sale_id"]))
    assert (after["pii"], after["pii_purged"], after["status"]) == ("purged", True, "delivered")
    assert not PII & set(after["fields"]) and after["fields"]["state"] == "CA"

    async def sale_count(conn):
        return (await conn.execute(sa.select(sa.func.count()).select_from(sales))).scalar_one()

    assert run(exchange.settings, sale_count) == 1  # the sale (and its ledger) stay
