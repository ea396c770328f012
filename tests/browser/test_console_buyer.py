"""The advertiser's console in headless Chromium: a buyer whose fixed-price campaign has a daily
cap of 1 sees why a second lead passed it by (the trace), raises the cap to 2 in the page and the
next lead is sold to it; reads a purchase with its contact details and files a return; a negative
price is refused next to its field and changes nothing, an amount typed as 12.50 is stored as
1250; pause and resume; the page at a phone's width. Screenshots go to ``var/screenshots/``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from exchange.auth.parties import PartyKind
from exchange.store.tables import campaigns
from tests.browser.conftest import PHONE
from tests.conftest import decode, run
from tests.integration.test_intake_api import solar_lead
from tests.market import fund

pytestmark = pytest.mark.browser

PRICE = 2500
REASONS = ["wrong_number", "not_interested"]
ALL_DAY = [{"start": 0, "end": 1440}]  # open whenever the test runs, still a schedule to show


@dataclass
class Shop:
    console: object
    buyer: object
    supplier: object
    capped: str  # CA leads, fixed price, at most 1 a day
    texas: str  # TX leads only: never buys the test's leads
    leads: int = 0

    def campaign(self, campaign_id: str) -> dict:
        r = self.console.client.get(f"/v1/campaigns/{campaign_id}", headers=self.buyer.headers)
        assert r.status_code == 200, r.text
        return decode(r)

    def post_lead(self) -> dict:
        """A California solar lead of a new person, straight to the auction."""
        self.leads += 1
        n = self.leads
        body = solar_lead(
            phone=f"(415) 555-{3000 + n}", email=f"p{n}-{uuid.uuid4().hex[:6]}@example.com"
        )
        r = self.console.client.post("/v1/leads", json=body, headers=self.supplier.headers)
        assert r.status_code == 201, r.text
        return decode(r)

    def purchases(self) -> list[dict]:
        r = self.console.client.get("/v1/purchases", headers=self.buyer.headers)
        assert r.status_code == 200, r.text
        return decode(r)["items"]


def _create(console, buyer, **overrides) -> str:
    body = {
        "name": "California solar", "vertical": "solar", "price_mode": "fixed",
        "fixed_price_minor": PRICE, "timezone": "America/Los_Angeles",
        "filters": [{"kind": "states_in", "field": "state", "states": ["CA"]},
                    {"kind": "boolean_is", "field": "homeowner", "value": True}],
        "caps": [{"window": "day", "max_count": 1}],
        "schedule": {"timezone": "America/Los_Angeles", "days": {d: ALL_DAY for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}},
        "returns": {"window_days": 7, "reasons": REASONS},
    } | overrides  # fmt: skip
    r = console.client.post("/v1/campaigns", json=body, headers=buyer.headers)
    assert r.status_code == 201, r.text
    return decode(r)["id"]


@pytest.fixture(scope="module")
def shop(console) -> Shop:
    console.seed_verticals()
    buyer = console.new_party(PartyKind.BUYER, "Sunny Solar")
    fund(console.settings, buyer.id, 100_000)
    capped = _create(console, buyer)
    texas = _create(
        console, buyer, name="Texas solar", caps=[], schedule=None,
        filters=[{"kind": "states_in", "field": "state", "states": ["TX"]}],
    )  # fmt: skip
    return Shop(console, buyer, console.new_party(PartyKind.SUPPLIER, "Leads Co"), capped, texas)


def _card(campaign_id: str) -> str:
    return f'#campaigns li.campaign[data-campaign-id="{campaign_id}"]'


def _type(page, selector: str, text: str) -> None:
    field = page.wait_for(selector)
    field.clear()
    field.send_keys(text)


def _open(page, shop: Shop) -> None:
    page.sign_in(shop.buyer.key)
    page.wait_url("/console/buyer")
    page.wait_for("body[data-ready]")


def test_a_buyer_raises_a_cap_in_the_page_and_the_next_lead_is_sold_to_it(shop, pair):
    a, _ = pair
    _open(a, shop)
    card = _card(shop.capped)
    a.wait_for(f"{card} .caps", "1 lead a day")
    assert "Fixed price $25.00" in a.css(f"{card} .bid").text
    assert "State is one of CA" in a.css(f"{card} .filters").text
    assert a.css(f"{card} .schedule").text == "Every day, all day (America/Los_Angeles)"
    a.wait_for("#balance", "$1,000.00")

    first = shop.post_lead()
    assert first["status"] == "sold", first
    second = shop.post_lead()  # another person, the same day: over the cap
    assert second["status"] == "unsold", second

    # Why didn't I get it: the trace of the buyer's own campaign, explained.
    _type(a, "#why-lead", second["lead_id"])
    a.click("#why-go")
    entry = a.wait_for(
        f'#why-result li.trace-entry[data-campaign-id="{shop.capped}"]', "cap_reached:day"
    )
    assert "California solar" in entry.text and "lead cap for the day was used up" in entry.text
    a.screenshot("buyer-why")

    # The cap goes to 2 in the editor; the page shows it, also after a reload.
    a.click(f"{card} button.edit")
    a.wait_for("#editor-title", "Edit California solar")  # read afresh, then shown
    _type(a, '#cap-rows .cap-row [name="max_count"]', "2")
    a.screenshot("buyer-campaign-editor")
    a.click("#save-campaign")
    a.wait_for(f"{card} .saved", "version 2")
    stored = shop.campaign(shop.capped)
    assert stored["caps"] == [{"window": "day", "max_count": 2}] and stored["version"] == 2
    assert stored["fixed_price_minor"] == PRICE and len(stored["filters"]) == 2  # the rest kept
    assert stored["schedule"]["days"]["sun"] == ALL_DAY
    a.driver.refresh()
    a.wait_for(f"{card} .caps", "2 leads a day")

    third = shop.post_lead()  # the raised cap takes effect at once
    assert third["status"] == "sold", third
    assert {p["lead_id"] for p in shop.purchases()} == {first["lead_id"], third["lead_id"]}
    a.click("#refresh-purchases")
    a.wait_for(f'#purchases tr[data-lead-id="{third["lead_id"]}"]', "$25.00")
    a.wait_for("#balance", "$950.00")
    a.screenshot("buyer-campaigns")

    # One purchase with the person's details, returned with one of the campaign's reasons.
    a.click(f'#purchases tr[data-lead-id="{first["lead_id"]}"] button.details')
    detail = a.wait_for("#purchase-detail", "Ana")
    assert "+1415555300" in detail.text and "null" not in detail.text
    assert a.css('#purchase-detail [data-field="monthly_electric_bill"]').text == "$1,234.50"
    from selenium.webdriver.support.ui import Select

    Select(a.wait_for("#return-reason")).select_by_value("not_interested")
    a.screenshot("buyer-purchase")
    a.click("#file-return")
    a.wait_for(f'#returns tr[data-lead-id="{first["lead_id"]}"]', "requested")
    a.wait_for("#purchase-detail", "Return requested.")
    r = shop.console.client.get("/v1/returns", headers=shop.buyer.headers)
    [filed] = decode(r)["items"]
    assert filed["lead_id"] == first["lead_id"]
    assert (filed["reason"], filed["status"]) == ("not_interested", "requested")
    a.screenshot("buyer-returns")

    # The statement link downloads this month's CSV with the session cookie.
    href = a.css("#statement-link").get_attribute("href")
    assert "/v1/ledger/me/statement.csv?period=" in href
    csv = a.driver.execute_async_script(
        "const done = arguments[1]; fetch(arguments[0]).then(r => r.text()).then(done)", href
    )
    assert csv.startswith("date,") and ",sale," in csv


def test_a_negative_price_is_refused_next_to_its_field_and_12_50_is_1250(shop, pair):
    a, _ = pair
    _open(a, shop)
    card = _card(shop.texas)
    before = shop.campaign(shop.texas)
    a.click(f"{card} button.edit")
    a.wait_for("#editor-title", "Edit Texas solar")
    _type(a, "#f-price", "-5")
    a.click("#save-campaign")
    error = a.wait_for('.field-error[data-error-for="fixed_price_minor"]', ">= 0")
    assert error.is_displayed()
    assert a.css("#f-price").get_attribute("aria-invalid") == "true"
    a.screenshot("buyer-campaign-error")
    assert shop.campaign(shop.texas) == before  # nothing changed

    _type(a, "#f-price", "12.505")  # refused in the page: cents have two digits
    a.click("#save-campaign")
    a.wait_for('.field-error[data-error-for="fixed_price_minor"]', "at most 2 digits")
    _type(a, "#f-filters", "[{")
    a.click("#save-campaign")
    a.wait_for('.field-error[data-error-for="filters"]', "not valid JSON")
    assert shop.campaign(shop.texas) == before

    _type(a, "#f-filters", '[{"kind": "states_in", "field": "state", "states": ["TX", "OK"]}]')
    _type(a, "#f-price", "12.50")
    _type(a, "#f-floor", "30")  # the API's own rule, under its field
    a.click("#save-campaign")
    a.wait_for('.field-error[data-error-for="floor_minor"]', "above fixed_price_minor")
    assert not a.css('.field-error[data-error-for="fixed_price_minor"]').is_displayed()
    assert shop.campaign(shop.texas) == before
    _type(a, "#f-floor", "")
    a.click("#save-campaign")
    a.wait_for(f"{card} .saved", "version 2")
    after = shop.campaign(shop.texas)
    assert after["fixed_price_minor"] == 1250  # "12.50", by string arithmetic
    assert sorted(after["filters"][0]["states"]) == ["OK", "TX"]
    a.wait_for(f"{card} .bid", "$12.50")

    a.click(f"{card} button.pause")
    a.wait_for(f"{card} .state", "Paused")
    assert shop.campaign(shop.texas)["active"] is False
    a.click(f"{card} button.resume")
    a.wait_for(f"{card} .state", "Active")
    assert shop.campaign(shop.texas)["active"] is True


def test_a_live_campaign_keeps_its_endpoint_secrets_when_edited_in_the_page(shop, pair):
    token = "s3cret-token"
    endpoints = {
        "ping": {"url": "https://buyer.example.com/ping", "auth": {"kind": "bearer", "token": token}},
        "post": {"url": "https://buyer.example.com/post", "auth": {"kind": "bearer", "token": token}},
    }  # fmt: skip
    live = _create(
        shop.console, shop.buyer, name="New York live", price_mode="live", fixed_price_minor=None,
        floor_minor=1500, endpoints=endpoints, caps=[], schedule=None,
        filters=[{"kind": "states_in", "field": "state", "states": ["NY"]}],
    )  # fmt: skip
    a, _ = pair
    _open(a, shop)
    card = _card(live)
    a.wait_for(f"{card} .bid", "Live bids from your endpoint, floor $15.00")
    a.click(f"{card} button.edit")
    a.wait_for("#editor-title", "Edit New York live")
    assert not a.css("#f-price").is_displayed()  # a live campaign's price is its endpoint's bid
    _type(a, "#f-floor", "17.25")
    a.click("#save-campaign")
    a.wait_for(f"{card} .saved", "version 2")
    assert shop.campaign(live)["floor_minor"] == 1725

    async def stored(conn):
        query = sa.select(campaigns.c.endpoints).where(campaigns.c.id == uuid.UUID(live))
        return (await conn.execute(query)).scalar_one()

    kept = run(shop.console.settings, stored)  # "[redacted]" went back; the secrets stayed
    assert kept["ping"]["auth"]["token"] == token and kept["post"]["auth"]["token"] == token


def test_the_page_at_a_phone_width(shop, pair):
    a, _ = pair
    a.reset(PHONE)
    _open(a, shop)
    a.wait_for(f"{_card(shop.capped)} .caps")
    width = "return [document.documentElement.scrollWidth, window.innerWidth]"
    scroll, inner = a.driver.execute_script(width)
    assert scroll <= inner, (scroll, inner)
    first, second = a.css(_card(shop.capped)).rect, a.css(_card(shop.texas)).rect
    assert first["x"] == second["x"] and second["y"] > first["y"]  # one column
    a.screenshot("buyer-phone")
    a.click(f"{_card(shop.capped)} button.edit")
    a.wait_for("#editor-title", "Edit California solar")
    scroll, inner = a.driver.execute_script(width)
    assert scroll <= inner, (scroll, inner)
    a.screenshot("buyer-phone-editor")
