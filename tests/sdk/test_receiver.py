"""The receiver toolkit: the real exchange pings and posts to the example buyer server (its
campaign's endpoints pointing at it), which verifies every signature, bids and accepts."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from typing import Self

import pytest
from aiohttp import web

from buyers_sdk import CampaignIn, ExchangeClient, receiver
from buyers_sdk.examples.buyer_server import make_app
from exchange.auction.service import signing_secret
from exchange.auth.parties import PartyKind
from exchange.delivery import signing
from tests.integration.test_intake_api import solar_lead
from tests.market import fund

NOW = 1_800_000_000


class ExampleBuyer:
    """``buyers_sdk.examples.buyer_server`` on 127.0.0.1, in a thread with its own loop."""

    def __init__(self, secret: str, **options) -> None:  # type: ignore[no-untyped-def]
        self.seen: list[receiver.Ping | receiver.Post] = []
        self.app = make_app(secret, seen=self.seen, **options)
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="example-buyer", daemon=True)
        self._ready = threading.Event()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(self.app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.base_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def __enter__(self) -> Self:
        self._thread.start()
        assert self._ready.wait(5), "the example buyer did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def endpoints(self) -> dict:
        return receiver.endpoints(
            f"{self.base_url}/post", f"{self.base_url}/ping", ping_timeout_ms=1000
        )


def live_campaign(client: ExchangeClient, buyer: ExampleBuyer, **changes):  # type: ignore[no-untyped-def]
    return client.create_campaign(
        CampaignIn(
            name="Live solar",
            vertical="solar",
            price_mode="live",
            endpoints=buyer.endpoints(),
            **changes,
        )
    )


@pytest.fixture
def market(live_exchange):
    live_exchange.seed_verticals()
    buyer = live_exchange.new_party(PartyKind.BUYER, "Live buyer")
    supplier = live_exchange.new_party(PartyKind.SUPPLIER, "Supplier")
    fund(live_exchange.settings, buyer.id, 100_000)
    secret = signing_secret(live_exchange.settings, str(buyer.id))
    with ExchangeClient(live_exchange.base_url, buyer.key) as client:
        yield live_exchange, client, supplier, secret


def test_the_exchange_pings_and_posts_to_the_example_buyer(market):
    exchange, client, supplier, secret = market
    with ExampleBuyer(secret, bid="12.50") as buyer:
        campaign = live_campaign(client, buyer)
        r = exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers)
        assert r.status_code == 201 and r.json()["status"] == "sold", r.text
        lead_id = r.json()["lead_id"]

    ping, post = buyer.seen
    assert isinstance(ping, receiver.Ping) and isinstance(post, receiver.Post)
    assert (ping.protocol, ping.kind, ping.vertical) == ("exchange.v1", "ping", "solar")
    assert ping.fields["state"] == "CA" and "phone" not in ping.fields  # no PII on a ping
    assert (post.kind, post.lead_id) == ("post", lead_id)
    assert post.fields["phone"] and post.fields["first_name"] == "Ana"
    assert post.consent is not None and post.consent.ip_address

    purchase = client.list_purchases().items[0]
    assert (str(purchase.lead_id), purchase.campaign_id, purchase.price_minor) == (
        lead_id,
        campaign.id,
        1250,
    )
    trace = client.lead_trace(lead_id)
    assert any(
        e.reason == "sold" and e.bid_minor == 1250 for e in trace.by_campaign()[str(campaign.id)]
    )


def test_a_buyer_with_the_wrong_secret_refuses_and_gets_nothing(market):
    exchange, client, supplier, _ = market
    with ExampleBuyer("not-the-secret") as buyer:
        campaign = live_campaign(client, buyer)
        r = exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers)
    assert r.status_code == 201 and r.json()["status"] == "unsold", r.text
    assert buyer.seen == []  # nothing past the signature check
    entries = client.lead_trace(r.json()["lead_id"]).by_campaign()[str(campaign.id)]
    assert [e.reason for e in entries] == ["ping_rejected"]  # a 401 is a no
    assert client.list_purchases().items == []


def test_the_example_buyer_passes_on_skipped_states(market):
    exchange, client, supplier, secret = market
    with ExampleBuyer(secret, skip_states=["CA"]) as buyer:
        campaign = live_campaign(client, buyer)
        r = exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers)
    assert r.json()["status"] == "unsold"
    assert [m.kind for m in buyer.seen] == ["ping"]
    entries = client.lead_trace(r.json()["lead_id"]).by_campaign()[str(campaign.id)]
    assert entries[0].reason and entries[0].reason != "sold"


# --- the toolkit on its own ----------------------------------------------------------------------


def headers(secret: str, body: bytes, ts: int = NOW) -> dict[str, str]:
    return {
        signing.TIMESTAMP_HEADER: str(ts),
        signing.SIGNATURE_HEADER: signing.sign(secret, ts, body),
    }


def test_verify_accepts_the_exchanges_signature_and_nothing_else():
    body = b'{"protocol":"exchange.v1"}'
    good = headers("s3cret", body)
    assert receiver.verify("s3cret", good, body, now_s=NOW)
    lower = {k.lower(): v for k, v in good.items()}
    assert receiver.verify("s3cret", list(lower.items()), body, now_s=NOW + 300)  # names any case
    assert receiver.verify(["old", "s3cret"], good, body, now_s=NOW)  # during a rotation
    assert not receiver.verify("other", good, body, now_s=NOW)
    assert not receiver.verify("s3cret", good, body + b" ", now_s=NOW)  # tampered body
    assert not receiver.verify("s3cret", good, body, now_s=NOW + 301)  # stale: a replay
    assert not receiver.verify("s3cret", good, body, now_s=NOW - 301)
    assert receiver.verify("s3cret", good, body, now_s=NOW + 1000, tolerance_s=1000)
    assert not receiver.verify("s3cret", {}, body, now_s=NOW)
    assert not receiver.verify("s3cret", {**good, signing.TIMESTAMP_HEADER: "-1"}, body, now_s=NOW)
    assert not receiver.verify(
        "s3cret", {**good, signing.SIGNATURE_HEADER: "v1=é"}, body, now_s=NOW
    )
    assert not receiver.verify("", good, body, now_s=NOW)
    both = {**good, signing.SIGNATURE_HEADER: f"v1=00,{good[signing.SIGNATURE_HEADER]}"}
    assert receiver.verify("s3cret", both, body, now_s=NOW)
    # And the SDK's own signer matches the exchange's.
    assert receiver.sign("s3cret", NOW, body) == signing.sign("s3cret", NOW, body)
    assert receiver.delivery_id({"x-exchange-delivery-id": "d-1"}) == "d-1"


def test_answers_have_the_shapes_the_response_rules_read():
    from exchange.delivery.adapter import parse_price_minor

    for price, text in [(1250, "12.50"), (Decimal("12.5"), "12.50"), ("7", "7.00"), (0, "0.00")]:
        assert receiver.bid(price) == f'{{"status":"bid","bid":"{text}"}}'.encode()
        assert parse_price_minor(text) == (
            price if isinstance(price, int) else int(Decimal(price) * 100)
        )
    for bad in [1.5, "12.505", "-1", "abc", Decimal("NaN"), True]:
        with pytest.raises((TypeError, ValueError)):
            receiver.bid(bad)  # type: ignore[arg-type]
    assert receiver.no_bid("full") == b'{"status":"no_bid","reason":"full"}'
    assert receiver.no_bid() == b'{"status":"no_bid"}'
    assert receiver.accept("crm-1") == b'{"status":"accepted","id":"crm-1"}'
    assert receiver.reject("duplicate") == b'{"status":"rejected","reason":"duplicate"}'
    rules = receiver.endpoints(
        "https://b.example/post", "https://b.example/ping", auth={"kind": "bearer", "token": "t"}
    )
    assert (
        rules["ping"]["response"]["price_path"] == "bid"
        and rules["post"]["auth"]["kind"] == "bearer"
    )


def test_decode_refuses_what_is_not_the_native_protocol():
    ping = receiver.decode_ping(
        b'{"protocol":"exchange.v1","kind":"ping","vertical":"solar","fields":{"bill":1.5}}'
    )
    assert ping.fields["bill"] == Decimal("1.5") and ping.test is False
    for body in [
        b"not json",
        b'{"protocol":"other","kind":"ping","vertical":"v","fields":{}}',
        b"{}",
    ]:
        with pytest.raises(receiver.InvalidBody):
            receiver.decode_ping(body)
    with pytest.raises(receiver.InvalidBody):  # a ping is not a post
        receiver.decode_post(
            b'{"protocol":"exchange.v1","kind":"ping","vertical":"solar","fields":{}}'
        )
