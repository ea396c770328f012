"""The SDK's clients against the real exchange, served by uvicorn over SQLite: campaigns,
account, purchases, traces, returns and statements, and the errors with their field paths."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import msgspec
import pytest

from buyers_sdk import (
    ApiError,
    AsyncExchangeClient,
    CampaignIn,
    Cap,
    Conflict,
    ExchangeClient,
    Forbidden,
    Interval,
    NotFound,
    Purchase,
    RateLimited,
    ReturnPolicy,
    Schedule,
    ServerError,
    TransportError,
    Unauthorized,
    ValidationFailed,
)
from exchange.auth.parties import PartyKind
from tests.integration.test_intake_api import solar_lead
from tests.market import fund

ROOT = Path(__file__).resolve().parents[2]
PRICE = 2500
REASONS = ["wrong_number", "not_interested"]


def returnable_campaign(**changes) -> CampaignIn:
    values = {
        "name": "Solar CA, returnable",
        "vertical": "solar",
        "timezone": "America/Chicago",
        "filters": [{"kind": "states_in", "field": "state", "states": ["CA", "TX"]}],
        "caps": [Cap(window="day", max_count=50), Cap(window="month", max_spend_minor=500_000)],
        "fixed_price_minor": PRICE,
        "returns": ReturnPolicy(window_days=7, reasons=REASONS),
    }
    values.update(changes)
    return CampaignIn(**values)


@pytest.fixture
def market(live_exchange):
    live_exchange.seed_verticals()
    buyer = live_exchange.new_party(PartyKind.BUYER, "Buyer")
    other = live_exchange.new_party(PartyKind.BUYER, "Other")
    supplier = live_exchange.new_party(PartyKind.SUPPLIER, "Supplier")
    fund(live_exchange.settings, buyer.id, 100_000, credit_minor=5_000)
    with ExchangeClient(live_exchange.base_url, buyer.key, timeout_s=10) as client:
        yield live_exchange, client, buyer, other, supplier


def sell(exchange, supplier, n: int = 0) -> str:
    """Sell one lead (of person ``n``) through the real auction; its lead id."""
    lead = solar_lead(phone=f"(415) 555-{2600 + n}", email=f"ana{n}@example.com")
    r = exchange.client.post("/v1/leads", json=lead, headers=supplier.headers)
    assert r.status_code == 201 and r.json()["status"] == "sold", r.text
    return r.json()["lead_id"]


def test_the_sdk_imports_without_the_exchange():
    code = (
        "import sys; sys.modules['exchange'] = None\n"
        "import buyers_sdk, buyers_sdk.client, buyers_sdk.receiver, buyers_sdk.errors\n"
        "import buyers_sdk.examples.buyer_server\n"
        "assert not any(m == 'exchange' or m.startswith('exchange.') for m in sys.modules"
        " if sys.modules[m] is not None)\n"
        "print('ok')"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_campaigns_round_trip(market):
    _, client, buyer, _, _ = market
    schedule = Schedule(timezone="America/Chicago", days={"mon": [Interval(start=540, end=1020)]})
    created = client.create_campaign(returnable_campaign(schedule=schedule))
    assert (created.buyer_id, created.version, created.active) == (buyer.id, 1, True)
    assert created.caps == [
        Cap(window="day", max_count=50),
        Cap(window="month", max_spend_minor=500_000),
    ]
    assert created.schedule == schedule and created.returns.reasons == REASONS
    assert created.price_mode == "fixed" and created.fixed_price_minor == PRICE
    assert client.get_campaign(created.id) == created
    assert client.get_campaign(str(created.id)).name == created.name

    # A plain dict works too, as in docs/campaigns.md.
    second = client.create_campaign(
        {"name": "Second", "vertical": "solar", "fixed_price_minor": 900}
    )
    page = client.list_campaigns(limit=1)
    assert [c.id for c in page.items] == [min(created.id, second.id, key=str)] and page.next_after
    assert {c.id for c in client.iter_campaigns(page_size=1)} == {created.id, second.id}
    assert client.list_campaigns(vertical="no-such-vertical").items == []

    replaced = client.replace_campaign(
        created.id, created.to_input(name="Renamed", floor_minor=100)
    )
    assert (replaced.name, replaced.floor_minor, replaced.version) == ("Renamed", 100, 2)
    assert replaced.caps == created.caps and replaced.schedule == schedule  # kept as read

    paused = client.pause_campaign(created.id)
    assert (paused.active, paused.version) == (False, 2)
    assert client.resume_campaign(created.id).active is True


def test_errors_are_typed_with_codes_and_field_paths(market):
    exchange, client, _, other, _ = market
    with pytest.raises(ValidationFailed) as caught:
        client.create_campaign(
            CampaignIn(
                name="Bad", vertical="solar", timezone="Mars/Olympus_Mons",
                filters=[{"kind": "boolean_is", "field": "colour", "value": True}],
            )
        )  # fmt: skip
    error = caught.value
    assert (error.status, error.code) == (422, "validation_failed")
    assert {"timezone", "fixed_price_minor", "filters[0].field"} <= set(error.paths)
    assert "IANA" in (error.reason_for("timezone") or "")
    assert error.message and isinstance(error, ApiError)

    # The example in docs/advertisers.md.
    with pytest.raises(ValidationFailed) as caught:
        client.create_campaign(CampaignIn(name="x", vertical="solar", timezone="Mars/Olympus_Mons"))
    assert caught.value.paths == ["timezone", "fixed_price_minor"]
    assert caught.value.reason_for("timezone") == "not an IANA time zone: 'Mars/Olympus_Mons'"

    # Refused by the decoder first (an unknown key): still 422, with its path.
    with pytest.raises(ValidationFailed) as caught:
        client.create_campaign({"name": "x", "vertical": "solar", "colour": "red"})
    assert caught.value.code == "validation_failed" and caught.value.fields

    with pytest.raises(NotFound) as missing:
        client.get_campaign(uuid.uuid4())
    assert (missing.value.status, missing.value.code) == (404, "not_found")

    theirs = ExchangeClient(exchange.base_url, other.key).create_campaign(
        CampaignIn(name="Theirs", vertical="solar", fixed_price_minor=100)
    )
    with pytest.raises(Forbidden) as denied:
        client.pause_campaign(theirs.id)
    assert denied.value.code == "forbidden"

    with ExchangeClient(exchange.base_url, "not-a-key") as stranger, pytest.raises(Unauthorized):
        stranger.account()

    with (
        ExchangeClient("http://127.0.0.1:9", "k", timeout_s=2) as nowhere,
        pytest.raises(TransportError),
    ):
        nowhere.account()


def test_account_purchases_traces_returns_and_statement(market):
    exchange, client, buyer, _, supplier = market
    account = client.account()
    assert (account.buyer_id, account.balance_minor, account.credit_limit_minor) == (
        buyer.id,
        100_000,
        5_000,
    )
    assert account.spendable_minor == 105_000

    campaign = client.create_campaign(returnable_campaign())
    lead_id = sell(exchange, supplier)
    sell(exchange, supplier, 1)

    assert client.account().balance_minor == 100_000 - 2 * PRICE
    purchases = client.list_purchases()
    assert len(purchases.items) == 2 and purchases.next_after is None
    first = next(p for p in purchases.items if str(p.lead_id) == lead_id)
    assert (first.campaign_id, first.price_minor, first.status, first.return_id) == (
        campaign.id,
        PRICE,
        "delivered",
        None,
    )
    assert (
        first.returnable_until is not None
        and next(iter(client.iter_purchases(page_size=1))) in purchases.items
    )
    # Purchase has no OpenAPI component (pages are untyped), so check its keys here.
    raw = exchange.client.get("/v1/purchases", headers=buyer.headers).json()["items"][0]
    assert set(raw) == set(Purchase.__struct_fields__)

    trace = client.lead_trace(lead_id)
    assert str(trace.lead_id) == lead_id and "sold" in trace.reasons
    mine = trace.by_campaign()[str(campaign.id)]
    assert any(e.reason == "sold" and e.bid_minor == PRICE for e in mine)

    with pytest.raises(ValidationFailed) as bad:
        client.file_return("not_a_reason", sale_id=first.sale_id)
    assert bad.value.paths == ["reason"]
    filed = client.file_return(REASONS[0], lead_id=lead_id, note="number disconnected")
    assert (filed.status, filed.reason, filed.sale_id, filed.note) == (
        "requested",
        REASONS[0],
        first.sale_id,
        "number disconnected",
    )
    with pytest.raises(Conflict) as twice:
        client.file_return(REASONS[1], sale_id=first.sale_id)
    assert twice.value.details.get("return_id") == str(filed.id)
    assert client.get_return(filed.id) == filed
    assert [r.id for r in client.list_returns(status="requested").items] == [filed.id]
    assert client.list_returns(status="approved").items == []
    with pytest.raises(ValidationFailed):
        client.list_returns(status="lost")
    assert client.list_purchases().items[0].return_status in {"requested", None}

    period = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    csv = client.statement_csv(period)
    assert csv.splitlines()[0] and len(csv.splitlines()) >= 3  # a header, the deposit, the sales
    balances = client.ledger_balance()
    assert balances and balances[0].party_id == buyer.id
    with pytest.raises(ValidationFailed) as wrong:
        client.statement_csv("November")
    assert wrong.value.paths == ["query.period"]


def test_the_async_client(market):
    exchange, _, buyer, _, _ = market

    async def main():
        async with AsyncExchangeClient(exchange.base_url, buyer.key) as client:
            created = await client.create_campaign(returnable_campaign())
            assert (await client.get_campaign(created.id)).id == created.id
            assert [c.id async for c in client.iter_campaigns()] == [created.id]
            assert (await client.pause_campaign(created.id)).active is False
            assert (await client.resume_campaign(created.id)).active is True
            renamed = await client.replace_campaign(created.id, created.to_input(name="Async"))
            assert renamed.version == 2
            assert (await client.account()).balance_minor == 100_000
            assert (await client.list_purchases()).items == []
            assert [p async for p in client.iter_purchases()] == []
            assert (await client.list_returns()).items == []
            assert await client.ledger_balance()
            assert await client.statement_csv(dt.datetime.now(dt.UTC).strftime("%Y-%m"))
            with pytest.raises(NotFound):
                await client.get_return(uuid.uuid4())
            with pytest.raises(NotFound):
                await client.lead_trace(uuid.uuid4())
            with pytest.raises(NotFound):
                await client.ping_trace(uuid.uuid4())

    asyncio.run(main())


def test_rate_limits_and_unexpected_answers_are_typed():
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/account":
            body = {"error": {"code": "rate_limited", "message": "slow down"}}
            return httpx.Response(429, json=body, headers={"Retry-After": "3"})
        return httpx.Response(502, text="<html>bad gateway</html>")

    with ExchangeClient(
        "http://exchange.test", "k", transport=httpx.MockTransport(answer)
    ) as client:
        with pytest.raises(RateLimited) as limited:
            client.account()
        assert (limited.value.retry_after_s, limited.value.code, limited.value.message) == (
            3.0,
            "rate_limited",
            "slow down",
        )
        with pytest.raises(ServerError) as broken:
            client.list_campaigns()
        assert (broken.value.status, broken.value.code) == (502, "http_502")
        assert "bad gateway" in broken.value.message


def test_campaign_in_sends_only_what_was_set():
    body = msgspec.json.decode(
        msgspec.json.encode(CampaignIn(name="n", vertical="solar", fixed_price_minor=5))
    )
    assert body == {"name": "n", "vertical": "solar", "fixed_price_minor": 5}
