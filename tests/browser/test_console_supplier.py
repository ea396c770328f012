"""The supplier's console in headless Chromium: a supplier posts leads (four sold to a
fixed-price campaign, one by its web form, two nobody takes), signs in and sees the report's
numbers as ``GET /v1/reports/leads`` counts them (received, sold, sold rate, payout; by channel
and by source), its leads, one lead's trace reasons explained, its intake source, its balance
and statement link; the page at a phone's width. Screenshots go to ``var/screenshots/``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest

from exchange.auth.parties import PartyKind
from tests.browser.conftest import PHONE
from tests.conftest import decode
from tests.integration.test_channels import FORM_MAPPING
from tests.integration.test_intake_api import solar_lead
from tests.market import fund

pytestmark = pytest.mark.browser

PRICE = 2500
CALL_S = 125  # shown as 2:05


@dataclass
class Supply:
    console: object
    supplier: object
    source: dict  # its web form
    call_id: str = ""
    sold: list[str] = field(default_factory=list)
    unsold: list[str] = field(default_factory=list)

    def get(self, path: str, **params) -> dict:
        url = f"{path}?{urlencode(params, doseq=True)}" if params else path
        r = self.console.client.get(url, headers=self.supplier.headers)
        assert r.status_code == 200, r.text
        return decode(r)


def _dollars(minor: int) -> str:
    return f"${minor // 100:,}.{minor % 100:02d}"


@pytest.fixture(scope="module")
def supply(console) -> Supply:
    console.seed_verticals()
    buyer = console.new_party(PartyKind.BUYER, "Sunny Solar")
    fund(console.settings, buyer.id, 100_000)
    body = {
        "name": "California solar", "vertical": "solar", "price_mode": "fixed",
        "fixed_price_minor": PRICE, "timezone": "America/Los_Angeles",
        "filters": [{"kind": "states_in", "field": "state", "states": ["CA"]},
                    {"kind": "boolean_is", "field": "homeowner", "value": True}],
    }  # fmt: skip
    r = console.client.post("/v1/campaigns", json=body, headers=buyer.headers)
    assert r.status_code == 201, r.text
    supplier = console.new_party(PartyKind.SUPPLIER, "Leads Co")
    r = console.client.post(
        "/v1/intake-sources", headers=supplier.headers,
        json={"vertical": "solar", "channel": "form", "name": "Quote page", "source": "quote-page",
              "mapping": FORM_MAPPING},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    supply = Supply(console, supplier, decode(r))

    people = [("google", "yes"), ("google", "yes"), ("facebook", "yes"), ("facebook", "no"), (None, "no")]
    for n, (source, homeowner) in enumerate(people):
        lead = solar_lead(phone=f"(415) 555-{4100 + n}", email=f"s{n}-{uuid.uuid4().hex[:6]}@example.com",
                          homeowner=homeowner)  # fmt: skip
        lead.pop("source")
        if source:
            lead["source"] = source
        r = console.client.post("/v1/leads", json=lead, headers=supplier.headers)
        assert r.status_code == 201, r.text
        answer = decode(r)
        (supply.sold if answer["status"] == "sold" else supply.unsold).append(answer["lead_id"])
    form = {"name": "Ana Maria Garcia", "phone": "(415) 555-4199", "email": "form@example.com",
            "zip": "94103", "state": "CA", "address": "1 Market St", "bill": "$150",
            "tcpa": "I agree to be called."}  # fmt: skip
    r = console.client.post(supply.source["path"], data=form, headers={"Accept": "application/json"})
    assert r.status_code < 400, r.text
    assert len(supply.sold) == 3 and len(supply.unsold) == 2, supply

    # A call bought by a call campaign, connected and long enough to be billed.
    call_campaign = dict(body, name="Solar calls", filters=[],
                         call={"destination": "+14155550100", "min_duration_s": 60})  # fmt: skip
    r = console.client.post("/v1/campaigns", json=call_campaign, headers=buyer.headers)
    assert r.status_code == 201, r.text
    call_fields = {"zip": "94103", "state": "CA", "homeowner": "yes", "property_type": "single_family",
                   "monthly_electric_bill": "150"}  # fmt: skip
    r = console.client.post("/v1/calls", json={"vertical": "solar", "fields": call_fields, "source": "tv-spot"},
                            headers=supplier.headers)  # fmt: skip
    assert r.status_code == 200 and decode(r)["status"] == "accepted", r.text
    supply.call_id = decode(r)["call_id"]
    for step, json in (("connect", {"caller": "+14155554198"}), ("end", {"duration_s": CALL_S})):
        r = console.client.post(f"/v1/calls/{supply.call_id}/{step}", json=json, headers=supplier.headers)
        assert r.status_code == 200, r.text
    assert decode(r)["status"] == "completed" and decode(r)["sale_id"], r.text
    return supply


def _open(page, supply: Supply) -> None:
    page.sign_in(supply.supplier.key)
    page.wait_url("/console/supplier")
    page.wait_for("body[data-ready]")


def _report(supply: Supply, page, group_by: str | None = None) -> list[dict]:
    """The API's report over the range the page shows (the page's own from and to)."""
    body = page.css("body")
    params = {"from": body.get_attribute("data-from"), "to": body.get_attribute("data-to")}
    if group_by:
        params["group_by"] = group_by
    return supply.get("/v1/reports/leads", **params)["rows"]


def _rate(bps: int) -> str:
    return f"{bps // 100}.{bps // 10 % 10}%"


def _check_report(page, supply: Supply) -> None:
    (total,) = _report(supply, page)
    # Five posted, one by the form, one by a call: the form's and the call's leads were sold too.
    assert (total["received"], total["sold"]) == (7, 5), total
    assert total["revenue_minor"] is None and total["margin_minor"] is None
    page.wait_for("#t-received", "7")
    assert page.css("#t-sold").text == "5"
    assert page.css("#t-rate").text == _rate(total["sold_rate_bps"]) == "71.4%"
    assert page.css("#t-payout").text == _dollars(total["payout_minor"])
    assert total["payout_minor"] > 0
    for group, table in (("channel", "#by-channel"), ("source", "#by-source")):
        rows = _report(supply, page, group)
        shown = {tr.get_attribute("data-key"): tr for tr in page.all(f"{table} tbody tr[data-key]")}
        assert len(shown) == len(rows), (group, rows)
        for row in rows:
            key = row[group] if row[group] is not None else "(no source)"
            tr = shown[key]
            assert tr.find_element("css selector", ".received").text == str(row["received"])
            assert tr.find_element("css selector", ".sold").text == str(row["sold"])
            assert tr.find_element("css selector", ".rate").text == _rate(row["sold_rate_bps"])
            assert tr.find_element("css selector", ".payout").text == _dollars(row["payout_minor"])
    assert set(shown) == {"google", "facebook", "quote-page", "tv-spot", "(no source)"}
    assert {tr.get_attribute("data-key") for tr in page.all("#by-channel tbody tr")} == {"api", "form", "call"}
    # Revenue and margin are never shown to a supplier.
    assert "revenue" not in page.css("main").text.lower() and "margin" not in page.css("main").text.lower()


def test_a_supplier_sees_its_report_leads_and_a_leads_reasons(supply, pair):
    a, _ = pair
    _open(a, supply)
    a.wait_for("body[data-range='today']")
    _check_report(a, supply)
    a.screenshot("supplier-report")

    # Its leads, oldest first, as the API lists them.
    listed = [lead["lead_id"] for lead in supply.get("/v1/leads")["items"]]
    assert len(listed) == 7
    rows = [tr.get_attribute("data-lead-id") for tr in a.all("#leads tbody tr")]
    assert rows == listed
    assert a.css("#lead-count").text == "7"
    row = a.css(f'#leads tr[data-lead-id="{supply.unsold[0]}"]')
    assert "unsold" in row.text and "api" in row.text and "solar" in row.text

    # An unsold lead's reasons, explained; a sold one says so.
    a.click(f'#leads tr[data-lead-id="{supply.unsold[0]}"] button.details')
    reason = a.wait_for('#lead-detail li[data-reason="filtered:homeowner"]')
    assert "filter on homeowner did not match" in reason.text
    reasons = supply.get(f"/v1/leads/{supply.unsold[0]}/trace")["reasons"]
    assert [li.get_attribute("data-reason") for li in a.all("#lead-detail li[data-reason]")] == reasons
    bill = a.css('#lead-detail dd[data-field="monthly_electric_bill"]')  # 123450 minor units
    assert bill.text == "$1,234.50"
    a.screenshot("supplier-lead")
    a.click(f'#leads tr[data-lead-id="{supply.sold[0]}"] button.details')
    a.wait_for('#lead-detail li[data-reason="sold"]', "Sold to a buyer's campaign.")

    # The intake source (read-only); the call with its duration and payout, opening its lead.
    source = a.css(f'#sources tr[data-source-id="{supply.source["id"]}"]')
    assert "Quote page" in source.text and supply.source["path"] in source.text and "active" in source.text
    call = supply.get(f"/v1/calls/{supply.call_id}")
    row = a.css(f'#calls tr[data-call-id="{supply.call_id}"]')
    assert "completed" in row.text and "2:05" in row.text and _dollars(call["payout_minor"]) in row.text
    a.click(f'#calls tr[data-call-id="{supply.call_id}"] button.link-like')
    a.wait_for("#lead-detail dd", "call")
    assert a.css("#lead-detail").get_attribute("data-lead-id") == call["lead_id"]
    a.wait_for('#lead-detail li[data-reason="sold"]', "sold")  # the call's end, in its trace
    (balance,) = [b for b in supply.get("/v1/ledger/me/balance") if b["kind"] == "supplier"]
    assert balance["closing_minor"] == sum(r["payout_minor"] for r in _report(supply, a))  # owed
    assert a.css("#balances dd").text == _dollars(balance["closing_minor"])
    period = a.css("#statement-period").get_attribute("value")
    href = a.css("#statement-link").get_attribute("href")
    assert href.endswith(f"/v1/ledger/me/statement.csv?period={period}")
    a.driver.execute_script("document.getElementById('money-title').scrollIntoView()")
    a.screenshot("supplier-money")

    # Another range: this month (the same leads, read again for it).
    from selenium.webdriver.support.ui import Select

    Select(a.css("#range")).select_by_value("month")
    a.wait_for("body[data-range='month']")
    _check_report(a, supply)


def test_the_page_at_a_phone_width(supply, pair):
    a, _ = pair
    a.reset(PHONE)
    _open(a, supply)
    a.wait_for("#t-received", "7")
    a.wait_for("#leads tbody tr")
    width = "return [document.documentElement.scrollWidth, window.innerWidth]"
    scroll, inner = a.driver.execute_script(width)
    assert scroll <= inner, (scroll, inner)
    tiles = [li.rect for li in a.all("#tiles li")]
    assert tiles[0]["y"] == tiles[1]["y"] and tiles[2]["y"] > tiles[0]["y"]  # two a row
    a.screenshot("supplier-phone")
    a.click(f'#leads tr[data-lead-id="{supply.unsold[1]}"] button.details')
    a.wait_for("#lead-detail li[data-reason]")
    scroll, inner = a.driver.execute_script(width)
    assert scroll <= inner, (scroll, inner)
    a.screenshot("supplier-phone-lead")
