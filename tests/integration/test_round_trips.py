"""Database round trips of one direct post to a fixed-price campaign, end to end through the
HTTP handler (key, rate limit, vertical, validation, dedupe, auction, sale, delivery, ledger).

Counted on PostgreSQL with engine events: statements (``before_cursor_execute``; an
executemany is one), transactions (each a BEGIN and a COMMIT or ROLLBACK on the wire) and pool
checkouts (free since the pre-ping's SELECT 1 was replaced by a look at the socket). The bounds fail on a regression; lower them when the path gets
leaner."""

from __future__ import annotations

import collections
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from litestar.testing import TestClient
from sqlalchemy import event

from exchange.app import create_app
from exchange.auction.context import signing_secret
from exchange.auth.parties import PartyKind
from exchange.simulator import Behaviour, BuyerServer, endpoints
from tests.conftest import Exchange, decode
from tests.integration.test_auction_api import PERCENT_20
from tests.integration.test_intake_api import solar_lead
from tests.market import add_campaign, fund, set_vertical_margin

# Per direct post in a warmed-up process. Before issue 7's work: 53 statements, 12
# transactions, 12 checkouts (89 round trips with the pre-pings); then 37, 6, 6 (55); then
# 28, 5, 5 (43): the ledger entry takes 3 statements (claim with the period and account checks,
# one balance UPDATE, the postings), and the first delivery attempt is leased with the sale;
# now 28, 4, 4 (36, no pre-ping): an auction that pings nobody reads in the write transaction.
MAX_STATEMENTS = 28
MAX_TRANSACTIONS = 4
MAX_CHECKOUTS = 4


class Counter:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.statements: list[str] = []
        self.transactions = 0
        self.checkouts = 0

    def __enter__(self) -> Counter:
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "begin", self._begin)
        event.listen(self.engine.pool, "checkout", self._checkout)
        return self

    def __exit__(self, *exc: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "begin", self._begin)
        event.remove(self.engine.pool, "checkout", self._checkout)

    def _statement(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        self.statements.append(" ".join(statement.split())[:90])

    def _begin(self, conn) -> None:  # type: ignore[no-untyped-def]
        self.transactions += 1

    def _checkout(self, *args: Any) -> None:
        self.checkouts += 1

    @property
    def round_trips(self) -> int:
        # each transaction is a BEGIN and an end
        return len(self.statements) + 2 * self.transactions

    def summary(self) -> str:
        kinds = collections.Counter(s.split(" ")[0] for s in self.statements)
        return (
            f"{len(self.statements)} statements {dict(kinds)}, {self.transactions} transactions, "
            f"{self.checkouts} checkouts, {self.round_trips} round trips:\n  " + "\n  ".join(self.statements)
        )


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_direct_post_to_a_fixed_price_campaign_makes_few_round_trips(backend):
    # As in production, the process caches its markets (the tests' default is no cache).
    settings = msgspec.structs.replace(backend, campaign_cache_ttl_ms=60_000)
    with TestClient(create_app(settings, in_process_worker=False)) as client:
        _count_one_post(Exchange(settings, client))


def _count_one_post(exchange: Exchange) -> None:
    settings, client = exchange.settings, exchange.client
    exchange.seed_verticals()
    set_vertical_margin(settings, "solar", PERCENT_20)
    supplier = exchange.new_party(PartyKind.SUPPLIER)
    buyer = exchange.new_party(PartyKind.BUYER)
    fund(settings, buyer.id, 1_000_000)
    behaviour = Behaviour(latency_ms=1)
    behaviour.secret = signing_secret(settings, str(buyer.id))
    with BuyerServer({"b": behaviour}) as server:
        add_campaign(
            settings, buyer.id, fixed_price_minor=3000, endpoints=endpoints(server.base_url, "b", live=False),
            caps=[{"window": "day", "max_count": 1000}],
        )  # fmt: skip
        # the first post warms the process's caches (market, keys, verticals)
        first = client.post("/v1/leads", json=solar_lead(phone="(415) 555-2601", email="a1@example.com"), headers=supplier.headers)
        assert first.status_code == 201 and decode(first)["status"] == "sold", first.text
        engine = client.app.state.db.engine.sync_engine
        with Counter(engine) as counted:
            r = client.post("/v1/leads", json=solar_lead(phone="(415) 555-2602", email="a2@example.com"), headers=supplier.headers)
        assert r.status_code == 201 and decode(r)["status"] == "sold", r.text
    print(counted.summary())
    assert len(counted.statements) <= MAX_STATEMENTS, counted.summary()
    assert counted.transactions <= MAX_TRANSACTIONS, counted.summary()
    assert counted.checkouts <= MAX_CHECKOUTS, counted.summary()
