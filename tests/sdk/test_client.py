"""The SDK's clients against the real exchange, served by uvicorn: campaigns with typed filters,
schedules, caps and endpoints, keys, verticals, account, purchases, traces (why a lead did or did
not come), returns, balance and statements, and the errors with their codes and field paths.
Every method of both clients runs over SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import msgspec
import pytest

from buyers_sdk import (
    AgeRange,
    ApiError,
    AsyncExchangeClient,
    BearerAuth,
    BooleanIs,
    BuyerEndpoints,
    CallTerms,
    CampaignIn,
    Cap,
    Conflict,
    CrmConfig,
    CrmConnectionIn,
    EndpointConfig,
    EnumIn,
    ExchangeClient,
    Expression,
    FieldMap,
    Forbidden,
    HeaderAuth,
    Interval,
    NotFound,
    NumberRange,
    PercentMargin,
    Purchase,
    PurchaseDetail,
    RateLimited,
    ResponseRules,
    ReturnPolicy,
    Schedule,
    ServerError,
    StatesIn,
    TransportError,
    Unauthorized,
    ValidationFailed,
    ZipPrefix,
    ZipRadius,
    postback_url,
)
from buyers_sdk.client import ROUTES
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
        "filters": [StatesIn(field="state", states=["CA", "TX"])],
        "caps": [Cap(window="day", max_count=50), Cap(window="month", max_spend_minor=500_000)],
        "fixed_price_minor": PRICE,
        "returns": ReturnPolicy(window_days=7, reasons=REASONS),
    }
    values.update(changes)
    return CampaignIn(**values)


def _market(live_exchange):  # type: ignore[no-untyped-def]
    live_exchange.seed_verticals()
    buyer = live_exchange.new_party(PartyKind.BUYER, "Buyer")
    other = live_exchange.new_party(PartyKind.BUYER, "Other")
    supplier = live_exchange.new_party(PartyKind.SUPPLIER, "Supplier")
    fund(live_exchange.settings, buyer.id, 100_000, credit_minor=5_000)
    with ExchangeClient(live_exchange.base_url, buyer.key, timeout_s=10) as client:
        yield live_exchange, client, buyer, other, supplier


@pytest.fixture
def market(live_exchange):  # type: ignore[no-untyped-def]
    yield from _market(live_exchange)


@pytest.fixture
def market_on_each_database(live_backend_exchange):  # type: ignore[no-untyped-def]
    yield from _market(live_backend_exchange)


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


SCHEDULE = Schedule(
    timezone="America/Chicago",
    days={"mon": [Interval(start=540, end=1020)], "sat": [Interval(start=600, end=840)]},
)
FILTERS = [
    StatesIn(field="state", states=["CA", "TX"]),
    ZipPrefix(field="zip", prefixes=["94", "75"]),
    ZipRadius(field="zip", center="94103", miles=50.0),
    NumberRange(field="roof_age_years", maximum=20),
    EnumIn(field="property_type", values=["single_family", "townhouse"]),
    BooleanIs(field="homeowner", value=True),
    NumberRange(field="monthly_electric_bill", minimum=5000),
    Expression(expression="roof_age_years < 25"),
]
# Open every minute of every day: a campaign that must sell whatever the hour the suite runs.
ALWAYS = Schedule(
    timezone="America/Chicago",
    days={day: [Interval(start=0, end=1440)] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
)
CAPS = [Cap(window="day", max_count=50), Cap(window="month", max_spend_minor=500_000)]


def live_endpoints() -> BuyerEndpoints:
    """A live-bid campaign's endpoints: field mapping, auth, headers and response rules."""
    return BuyerEndpoints(
        post=EndpointConfig(
            url="https://crm.example.com/leads?api_key=s3cret",
            mapping=[
                FieldMap(target="applicant.phone", source="phone", required=True),
                FieldMap(target="applicant.state", source="state"),
                FieldMap(target="owner", source="homeowner", value_map={"true": "Y", "false": "N"}),
                FieldMap(target="vendor_key", constant="k-123", secret=True),
            ],
            headers={"X-Source": "exchange"},
            auth=BearerAuth(token="tok-1"),
            timeout_ms=5000,
            response=ResponseRules(
                success_path="status",
                success_values=["accepted"],
                reference_path="id",
                reason_path="reason",
            ),
        ),  # fmt: skip
        ping=EndpointConfig(
            url="https://crm.example.com/ping",
            auth=HeaderAuth(name="X-Api-Key", value="key-2"),
            response=ResponseRules(success_path="status", success_values=["bid"], price_path="bid"),
        ),
    )


def same_filters(left, right) -> bool:
    """Filters equal but for the order of set-like lists (the exchange keeps them as sets)."""

    def norm(f):  # type: ignore[no-untyped-def]
        values = msgspec.structs.asdict(f)
        return type(f), {k: sorted(v) if isinstance(v, list) else v for k, v in values.items()}

    return [norm(f) for f in left] == [norm(f) for f in right]


def test_campaigns_round_trip(market):
    _, client, buyer, _, _ = market
    created = client.create_campaign(returnable_campaign(schedule=SCHEDULE, filters=FILTERS))
    assert (created.buyer_id, created.version, created.active) == (buyer.id, 1, True)
    assert created.caps == CAPS
    assert same_filters(created.filters, FILTERS) and isinstance(created.filters[0], StatesIn)
    assert created.schedule == SCHEDULE and created.returns.reasons == REASONS
    assert created.price_mode == "fixed" and created.fixed_price_minor == PRICE
    assert created.endpoints is None
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
        created.id, created.to_input(name="Renamed", floor_minor=100, caps=CAPS[:1])
    )
    assert (replaced.name, replaced.floor_minor, replaced.version) == ("Renamed", 100, 2)
    assert replaced.caps == CAPS[:1] and replaced.schedule == SCHEDULE  # kept as read
    assert same_filters(replaced.filters, FILTERS)

    paused = client.pause_campaign(created.id)
    assert (paused.active, paused.version) == (False, 2)
    assert client.resume_campaign(created.id).active is True


def test_live_campaign_endpoints_are_typed_and_secrets_redacted(market):
    _, client, _, _, _ = market
    live = client.create_campaign(
        CampaignIn(
            name="Live", vertical="solar", price_mode="live", floor_minor=1000,
            endpoints=live_endpoints(),
        )
    )  # fmt: skip
    assert live.price_mode == "live" and live.endpoints is not None
    post, ping = live.endpoints.post, live.endpoints.ping
    assert isinstance(post, EndpointConfig) and ping is not None
    assert (
        post.url.startswith("https://crm.example.com/leads?api_key=") and "s3cret" not in post.url
    )
    assert post.auth == BearerAuth(token="[redacted]")
    assert ping.auth == HeaderAuth(name="X-Api-Key", value="[redacted]")
    assert post.headers == {"X-Source": "[redacted]"}
    assert [m.target for m in post.mapping] == [
        "applicant.phone", "applicant.state", "owner", "vendor_key",
    ]  # fmt: skip
    assert post.mapping[0].required and post.mapping[2].value_map == {"true": "Y", "false": "N"}
    assert (post.mapping[3].constant, post.mapping[3].secret) == ("[redacted]", True)
    assert post.response == live_endpoints().post.response and post.timeout_ms == 5000
    assert (post.method, post.body) == ("POST", "json")

    # Sent back as read, the redacted secrets keep the stored ones: the endpoints are unchanged.
    again = client.replace_campaign(live.id, live.to_input(name="Live 2"))
    assert (again.version, again.endpoints) == (2, live.endpoints)

    with pytest.raises(ValidationFailed) as caught:
        client.create_campaign(
            CampaignIn(
                name="No ping", vertical="solar", price_mode="live",
                endpoints=BuyerEndpoints(post=live_endpoints().post),
            )
        )  # fmt: skip
    assert caught.value.paths == ["endpoints.ping"]


def test_me_keys_verticals_and_signing_secret(market):
    exchange, client, buyer, _, _ = market
    me = client.me()
    assert (me.id, me.kind, me.name) == (buyer.id, "buyer", "Buyer")

    verticals = client.list_verticals()
    assert "solar" in {v.slug for v in verticals}
    solar = client.get_vertical("solar")
    fields = {f.name: f for f in solar.fields}
    assert fields["phone"].pii and not fields["state"].pii
    assert fields["property_type"].format == "enum" and "condo" in (
        fields["property_type"].choices or []
    )
    with pytest.raises(NotFound):
        client.get_vertical("no-such-vertical")

    fund(exchange.settings, buyer.id, 0, margin={"type": "percent", "bps": 1500})
    assert client.account().margin == PercentMargin(bps=1500)

    secret = client.signing_secret()
    assert secret.secret and secret.algorithm == "HMAC-SHA256"
    assert secret.signature_header == "X-Exchange-Signature" and secret.tolerance_s == 300

    # Rotation: issue a new key, use it, revoke the old one.
    (old,) = client.list_keys()
    new = client.issue_key("rotated")
    assert (new.party_id, new.name) == (buyer.id, "rotated") and new.prefix in new.key
    with ExchangeClient(exchange.base_url, new.key) as rotated:
        assert rotated.me().id == buyer.id
        revoked = rotated.revoke_key(old.id)
        assert revoked.id == old.id and revoked.revoked_at is not None
        assert {k.id: k.revoked_at is None for k in rotated.list_keys()} == {
            old.id: False,
            new.id: True,
        }
    with pytest.raises(Unauthorized) as refused:
        client.me()  # the old key
    assert refused.value.status == 401
    with (
        ExchangeClient(exchange.base_url, new.key) as rotated,
        pytest.raises(ValidationFailed) as bad,
    ):
        rotated.issue_key("")
    assert bad.value.fields


def test_errors_are_typed_with_codes_and_field_paths(market):
    exchange, client, _, other, _ = market
    with pytest.raises(ValidationFailed) as caught:
        client.create_campaign(
            CampaignIn(
                name="Bad", vertical="solar", timezone="Mars/Olympus_Mons",
                filters=[
                    BooleanIs(field="colour", value=True),
                    AgeRange(field="state", min_years=18),
                    StatesIn(field="state", states=["CA"]),
                ],
            )
        )  # fmt: skip
    error = caught.value
    assert (error.status, error.code) == (422, "validation_failed")
    assert {"timezone", "fixed_price_minor", "filters[0].field", "filters[1].field"} <= set(
        error.paths
    ), error.paths
    assert not any(p.startswith("filters[2]") for p in error.paths)
    assert "IANA" in (error.reason_for("timezone") or "")
    assert error.message and isinstance(error, ApiError)

    with pytest.raises(ValidationFailed) as caught:  # refused by the decoder: still a path
        client.create_campaign(returnable_campaign(caps=[Cap(window="day", max_count=-1)]))
    assert caught.value.paths == ["caps[0].max_count"]

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
    # The request's id, from the error body, to quote to support: the X-Request-Id header's.
    assert missing.value.request_id and missing.value.request_id == missing.value.headers["x-request-id"]

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
    exchange, client, buyer, other, supplier = market
    account = client.account()
    assert (account.buyer_id, account.balance_minor, account.credit_limit_minor) == (
        buyer.id,
        100_000,
        5_000,
    )
    assert account.spendable_minor == 105_000

    campaign = client.create_campaign(returnable_campaign())
    fund(exchange.settings, other.id, 100_000)
    theirs = ExchangeClient(exchange.base_url, other.key)
    new_roofs = theirs.create_campaign(
        returnable_campaign(
            name="New roofs", filters=[NumberRange(field="roof_age_years", maximum=5)]
        )
    )
    lead_id = sell(exchange, supplier)
    sell(exchange, supplier, 1)

    # Why the other buyer did not get the lead (a 12-year-old roof): its campaign's filter.
    why_not = theirs.lead_trace(lead_id)
    assert why_not.reasons == ["filtered:roof_age_years"], why_not.reasons
    (entry,) = why_not.by_campaign()[str(new_roofs.id)]
    assert (entry.reason, entry.buyer_id, entry.bid_minor) == (
        "filtered:roof_age_years", str(other.id), None,
    )  # fmt: skip
    theirs.close()

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
    # The JSON carries exactly the Struct's fields (test_contract.py checks the schema too).
    raw = exchange.client.get("/v1/purchases", headers=buyer.headers).json()["items"][0]
    assert set(raw) == set(Purchase.__struct_fields__)

    # One purchase read back: the lead as it was posted, PII included; not another buyer's.
    detail = client.get_purchase(first.sale_id)
    assert (detail.sale_id, detail.buyer_id, detail.vertical, detail.pii) == (
        first.sale_id, buyer.id, "solar", "included",
    )  # fmt: skip
    assert {"first_name", "phone", "email"} <= set(detail.fields) and detail.consent
    raw = exchange.client.get(f"/v1/purchases/{first.sale_id}", headers=buyer.headers).json()
    assert set(raw) == set(PurchaseDetail.__struct_fields__)
    with ExchangeClient(exchange.base_url, other.key) as stranger, pytest.raises(NotFound):
        stranger.get_purchase(first.sale_id)

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


class Recorder:
    """A client whose method calls are recorded by name (to prove every method ran)."""

    def __init__(self, client) -> None:  # type: ignore[no-untyped-def]
        self.client, self.names = client, set()

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        self.names.add(name)
        return getattr(self.client, name)


async def done(value):  # type: ignore[no-untyped-def]
    """The answer of a sync method, or of an async one's coroutine."""
    return await value if inspect.isawaitable(value) else value


async def collect(items) -> list:  # type: ignore[no-untyped-def]
    if hasattr(items, "__aiter__"):
        return [item async for item in items]
    return list(items)


async def every_method(exchange, client, buyer, supplier) -> None:  # type: ignore[no-untyped-def]
    """The same buyer's day with the sync or the async client, every method once at least."""
    assert (await done(client.me())).id == buyer.id
    assert "solar" in {v.slug for v in await done(client.list_verticals())}
    assert (await done(client.get_vertical("solar"))).slug == "solar"
    assert (await done(client.signing_secret())).secret
    assert (await done(client.account())).balance_minor == 100_000

    created = await done(client.create_campaign(returnable_campaign(schedule=ALWAYS)))
    assert await done(client.get_campaign(created.id)) == created
    assert [c.id for c in (await done(client.list_campaigns())).items] == [created.id]
    assert [c.id for c in await collect(client.iter_campaigns(page_size=1))] == [created.id]
    renamed = await done(client.replace_campaign(created.id, created.to_input(name="Day")))
    assert (renamed.name, renamed.version, renamed.schedule) == ("Day", 2, ALWAYS)
    assert (await done(client.pause_campaign(created.id))).active is False
    assert (await done(client.resume_campaign(created.id))).active is True

    # A CRM connection before the sale, so the sale is pushed to it (no worker here: pending).
    crm = await done(client.create_crm_connection(CrmConnectionIn(
        kind="webhook", name="Our CRM", secret="whsec-1",
        config=CrmConfig(url="http://127.0.0.1:9/crm", events=["sold", "outcome:won"]),
    )))  # fmt: skip
    assert (crm.party_id, crm.kind, crm.has_secret, crm.active) == (buyer.id, "webhook", True, True)
    assert crm.config.timeout_ms == 10_000 and crm.config.api_version == "v59.0"
    with pytest.raises(ValidationFailed) as bad_crm:
        await done(client.create_crm_connection(
            {"kind": "hubspot", "name": "No token", "config": {"url": "https://api.hubapi.com"}}
        ))  # fmt: skip
    assert bad_crm.value.paths == ["body.secret"]

    lead_id = sell(exchange, supplier)
    (purchase,) = (await done(client.list_purchases())).items
    assert isinstance(purchase, Purchase) and str(purchase.lead_id) == lead_id
    assert await collect(client.iter_purchases()) == [purchase]
    detail = await done(client.get_purchase(purchase.sale_id))
    assert isinstance(detail, PurchaseDetail) and (detail.pii, detail.pii_purged) == ("included", False)
    assert detail.lead_id == purchase.lead_id and detail.fields["phone"].startswith("+1")
    trace = await done(client.lead_trace(lead_id))
    assert "sold" in trace.reasons and str(created.id) in trace.by_campaign()
    with pytest.raises(NotFound):
        await done(client.ping_trace(uuid.uuid4()))

    reported = await done(client.report_outcome(lead_id, "won", value_minor=50_000))
    assert (reported.kind, reported.value_minor, reported.currency) == ("won", 50_000, "USD")
    assert await done(client.report_outcome(lead_id, "won")) == reported  # idempotent per kind
    with pytest.raises(ValidationFailed) as bad:
        await done(client.report_outcome(lead_id, "lost", value_minor=1))
    assert bad.value.paths == ["value_minor"]
    with pytest.raises(NotFound):
        await done(client.report_outcome(uuid.uuid4(), "contacted"))
    info = await done(client.postback_info())
    url = postback_url(exchange.base_url, info.secret, lead_id, info.party_id, "contacted")
    assert httpx.get(url, timeout=10).status_code == 201  # a signed postback, no key
    seen = await done(client.outcomes(lead_id))
    assert [(o.kind, o.channel) for o in seen.items] == [("won", "api"), ("contacted", "postback")]
    assert seen.first_response_ms is not None and seen.responses[0].reporter == "buyer"

    syncs = await done(client.lead_crm(lead_id))
    assert str(syncs.lead_id) == lead_id
    # The sale and the won outcome (the contacted one is not among the connection's events).
    assert [(x.connection_id, x.event) for x in syncs.items] == [
        (crm.id, "sold"), (crm.id, "outcome:won"),
    ]  # fmt: skip
    assert {x.status for x in syncs.items} <= {"pending", "synced", "failed"}
    assert await done(client.get_crm_connection(crm.id)) == crm
    assert [c.id for c in (await done(client.list_crm_connections())).items] == [crm.id]
    renamed_crm = await done(client.update_crm_connection(crm.id, name="Our CRM (sales)"))
    assert (renamed_crm.name, renamed_crm.has_secret, renamed_crm.config) == (
        "Our CRM (sales)", True, crm.config,
    )  # fmt: skip
    assert (await done(client.deactivate_crm_connection(crm.id))).active is False
    with pytest.raises(NotFound):
        await done(client.lead_crm(uuid.uuid4()))

    # A call campaign; a call its supplier's telephony ends too soon to bill (docs/calls.md).
    calls = await done(client.create_campaign(CampaignIn(
        name="Calls", vertical="solar", price_mode="fixed", fixed_price_minor=PRICE,
        caps=[Cap(window="concurrent", max_count=1)],
        call=CallTerms(destination="+14155550100", min_duration_s=60),
    )))  # fmt: skip
    assert calls.call == CallTerms(destination="+14155550100", min_duration_s=60)
    fields = {k: v for k, v in solar_lead()["fields"].items() if k in ("zip", "state", "homeowner",
              "property_type", "monthly_electric_bill")}  # fmt: skip
    offer = exchange.client.post("/v1/calls", json={"vertical": "solar", "fields": fields},
                                 headers=supplier.headers).json()  # fmt: skip
    assert offer["status"] == "accepted", offer
    exchange.client.post(f"/v1/calls/{offer['call_id']}/connect", json={"caller": "+14155550177"},
                         headers=supplier.headers)  # fmt: skip
    exchange.client.post(f"/v1/calls/{offer['call_id']}/end", json={"duration_s": 20},
                         headers=supplier.headers)  # fmt: skip
    call = await done(client.get_call(offer["call_id"]))
    assert (call.status, call.reason, call.price_minor, call.sale_id) == ("short", "call_too_short", PRICE, None)
    assert call.payout_minor is None  # the supplier's payout is not the buyer's to see
    assert [c.call_id for c in (await done(client.list_calls(status="short"))).items] == [call.call_id]

    filed = await done(client.file_return(REASONS[1], sale_id=purchase.sale_id))
    assert await done(client.get_return(filed.id)) == filed
    assert (await done(client.list_returns())).items == [filed]
    balances = await done(client.ledger_balance(dt.datetime.now(dt.UTC).strftime("%Y-%m")))
    assert (balances[0].normal_side, balances[0].closing_minor) == ("credit", 100_000 - PRICE)
    statement = await done(client.statement_csv(dt.datetime.now(dt.UTC).strftime("%Y-%m")))
    assert len(statement.splitlines()) >= 3

    new = await done(client.issue_key("spare"))
    assert new.id in {k.id for k in await done(client.list_keys())}
    assert (await done(client.revoke_key(new.id))).revoked_at is not None


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_every_client_method_against_the_exchange(market_on_each_database, kind):
    exchange, _, buyer, _, supplier = market_on_each_database

    async def main() -> set[str]:
        if kind == "sync":
            with ExchangeClient(exchange.base_url, buyer.key) as plain:
                recorder = Recorder(plain)
                await every_method(exchange, recorder, buyer, supplier)
        else:
            async with AsyncExchangeClient(exchange.base_url, buyer.key) as concurrent:
                recorder = Recorder(concurrent)
                await every_method(exchange, recorder, buyer, supplier)
        return recorder.names

    assert sorted(set(ROUTES) - asyncio.run(main())) == []


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
