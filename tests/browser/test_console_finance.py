"""Finance's console in headless Chromium: a lead sold on a campaign that takes returns, returned
by its buyer over the API; finance signs in, approves the return from the list, looks up the
lead's ledger and sees the refund to the buyer beside the sale's charge, with the trial balance
still balanced and no reconciliation anomaly; a statement's CSV downloads with the session; a
finished month is closed after a confirmation; at a phone's width a second return is denied and
nothing scrolls sideways. Screenshots of each view go to ``var/screenshots/``."""

from __future__ import annotations

import datetime as dt

import pytest

from exchange.auth.parties import PartyKind
from tests.browser.conftest import PHONE
from tests.conftest import decode
from tests.integration.test_intake_api import solar_lead
from tests.market import fund

pytestmark = pytest.mark.browser

PRICE = 2500  # $25.00; the seeded solar vertical pays the supplier 80 %
CAMPAIGN = {
    "name": "Solar, returnable",
    "vertical": "solar",
    "price_mode": "fixed",
    "fixed_price_minor": PRICE,
    "returns": {"window_days": 7, "reasons": ["wrong_number", "not_interested"]},
}


class Shop:
    """A buyer with money and a returnable campaign, a supplier and a finance party."""

    def __init__(self, exchange) -> None:  # type: ignore[no-untyped-def]
        exchange.seed_verticals()
        self.exchange = exchange
        self.buyer = exchange.new_party(PartyKind.BUYER, "Sunny Buyer")
        self.supplier = exchange.new_party(PartyKind.SUPPLIER, "Leads Co")
        self.finance = exchange.new_party(PartyKind.FINANCE, "Fran Finance")
        fund(exchange.settings, self.buyer.id, 100_000)
        r = exchange.client.post("/v1/campaigns", json=CAMPAIGN, headers=self.buyer.headers)
        assert r.status_code == 201, r.text
        self.sold = 0

    def sell_and_return(self, reason: str, note: str | None = None) -> dict:
        """Sell one lead to the buyer and have the buyer return it; the return as filed."""
        self.sold += 1
        lead = solar_lead(
            phone=f"(415) 555-{2700 + self.sold}", email=f"ana{self.sold}@example.com"
        )
        r = self.exchange.client.post("/v1/leads", json=lead, headers=self.supplier.headers)
        assert r.status_code == 201 and decode(r)["status"] == "sold", r.text
        body = {"lead_id": decode(r)["lead_id"], "reason": reason} | (
            {"note": note} if note else {}
        )
        r = self.exchange.client.post("/v1/returns", json=body, headers=self.buyer.headers)
        assert r.status_code == 201, r.text
        return decode(r)

    def get(self, path: str, **params) -> dict | list:  # type: ignore[no-untyped-def]
        r = self.exchange.client.get(path, params=params, headers=self.finance.headers)
        assert r.status_code == 200, r.text
        return decode(r)


@pytest.fixture(scope="module")
def shop(console) -> Shop:
    return Shop(console)


def _row(return_id: str) -> str:
    return f'#returns tr[data-return-id="{return_id}"]'


def _cells(row) -> list[str]:  # type: ignore[no-untyped-def]
    return [cell.text for cell in row.find_elements("css selector", "td")]


def test_finance_approves_a_return_and_sees_the_ledger_reverse(shop, pair):
    filed = shop.sell_and_return("wrong_number", note="number disconnected")
    lead_id, buyer = filed["lead_id"], str(shop.buyer.id)
    page, _ = pair
    page.sign_in(shop.finance.key)
    page.wait_url("/console/finance")

    row = page.wait_for(_row(filed["id"]))
    lead, who, reason, amount, status = _cells(row)[1:6]
    assert lead == f"…{lead_id[-8:]}" and who == f"…{buyer[-8:]}"
    assert "wrong number" in reason and "number disconnected" in reason
    assert amount == "$25.00" and status == "REQUESTED"
    page.wait_for("#trial-badge.good", "Trial balance: balanced")
    page.wait_for("#recon-badge.good", "Reconciliation: no anomalies")
    page.screenshot("finance-returns")

    page.css(f"{_row(filed['id'])} input.note").send_keys("carrier confirms")
    page.click(f"{_row(filed['id'])} button.approve")
    page.wait_for("#done", f"Approved: $25.00 refunded to buyer …{buyer[-8:]}")
    page.wait_for("#no-returns:not([hidden])")  # the list of returns to decide is empty now
    assert not page.all(_row(filed["id"]))
    decided = shop.get(f"/v1/returns/{filed['id']}")
    assert decided["status"] == "approved" and decided["decision_note"] == "carrier confirms"

    # The lead's ledger, looked up by its id: the sale's charge, then the refund beside it.
    page.click('.tabs a[data-tab="ledger"]')
    page.css("#lead-id").send_keys(lead_id)
    page.click("#lead-show")
    refund = page.wait_for('#lead-ledger article.entry[data-kind="return"]')
    kinds = [a.get_attribute("data-kind") for a in page.all("#lead-ledger article.entry")]
    assert kinds == ["sale", "return"]
    assert refund.get_attribute("data-entry-id") == decided["entry_id"]
    assert "the refund to the buyer" in refund.text
    buyer_row = f'tr[data-account="buyer:{buyer}"]'
    sale = page.css(f'#lead-ledger article[data-kind="sale"] {buyer_row}')
    back = page.css(f'#lead-ledger article[data-kind="return"] {buyer_row}')
    assert sale.find_element("css selector", ".debit").text == "$25.00"  # the buyer charged
    assert sale.find_element("css selector", ".credit").text == ""
    assert back.find_element("css selector", ".credit").text == "$25.00"  # and refunded
    assert back.find_element("css selector", ".debit").text == ""
    for entry in page.all("#lead-ledger article.entry"):  # each entry balances on the page
        total = entry.find_element("css selector", "tfoot tr.total")
        debit, credit = (
            total.find_element("css selector", f".{side}").text for side in ("debit", "credit")
        )
        assert debit == credit == "$25.00", entry.text
    page.driver.execute_script("document.getElementById('lead-ledger').scrollIntoView()")
    page.screenshot("finance-lead-ledger")  # the sale and its refund, one above the other

    # The books: still balanced, still no anomaly, and the page says so.
    page.wait_for("#trial-badge.good", "Trial balance: balanced")
    page.wait_for("#recon-badge.good", "Reconciliation: no anomalies")
    page.click('.tabs a[data-tab="balances"]')
    verdict = page.wait_for("#trial-totals .verdict.good", "Balanced")
    trial = shop.get("/v1/ledger/trial-balance")
    usd = next(t for t in trial["totals"] if t["currency"] == "USD")
    assert trial["balanced"] and usd["debits_minor"] == usd["credits_minor"]
    assert (
        verdict.text.startswith("USD: debits $")
        and f"= credits ${usd['credits_minor'] // 100:,}" in verdict.text
    )
    closing = page.wait_for(f'#balances tr[data-account="buyer:{buyer}"] td.closing')
    assert closing.text == "$1,000.00"  # 1,000.00 deposited, 25.00 charged, 25.00 refunded
    page.screenshot("finance-balances")

    # A statement downloads with the session cookie (a plain GET link).
    link = page.css(f'#balances tr[data-account="buyer:{buyer}"] a.statement')
    month = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m")
    assert link.get_attribute("href").endswith(f"/v1/ledger/statements/{buyer}.csv?period={month}")
    got = page.driver.execute_async_script(
        "const done = arguments[1];"
        "fetch(arguments[0]).then(async (r) => done([r.status, r.headers.get('content-type'), await r.text()]));",
        link.get_attribute("href"),
    )
    assert got[0] == 200 and got[1].startswith("text/csv"), got
    assert ",return," in got[2] and ",sale," in got[2]

    page.click('.tabs a[data-tab="reconciliation"]')
    page.wait_for("#recon-summary.good", "no anomalies")
    page.screenshot("finance-reconciliation")


def test_a_finished_month_is_closed_after_a_confirmation(shop, pair):
    today = dt.datetime.now(dt.timezone.utc).date()
    last_month = (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    r = shop.exchange.client.post(  # an entry dated last month makes the month appear
        "/v1/ledger/adjustments",
        json={"memo": "cash counted late", "period": last_month, "postings": [
            {"account": "exchange:cash:USD", "amount_minor": 100, "currency": "USD"},
            {"account": "exchange:revenue:USD", "amount_minor": -100, "currency": "USD"}]},
        headers=shop.finance.headers,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    page, _ = pair
    page.sign_in(shop.finance.key)
    page.wait_url("/console/finance")
    page.click('.tabs a[data-tab="periods"]')
    this_month = today.strftime("%Y-%m")
    page.wait_for(f'#periods tr[data-period="{this_month}"]', "in progress")  # no close button
    row = f'#periods tr[data-period="{last_month}"]'
    page.click(f"{row} button.close-period")
    page.wait_for(f"{row} .confirm-text", f"Close {last_month} for good?")
    page.click(f"{row} button.cancel-close")  # changed its mind: nothing happened
    page.wait_for(f"{row} button.close-period")
    assert not next(p for p in shop.get("/v1/ledger/periods") if p["period"] == last_month)[
        "closed"
    ]

    page.click(f"{row} button.close-period")
    page.screenshot("finance-close-confirm")
    page.click(f"{row} button.confirm-close")
    page.wait_for("#done", f"{last_month} is closed")
    page.wait_for(f'{row}[data-closed="true"]', "CLOSED")
    assert next(p for p in shop.get("/v1/ledger/periods") if p["period"] == last_month)["closed"]
    page.wait_for(f'#period option[value="{last_month}"]', "(closed)")
    page.screenshot("finance-periods")


def test_at_a_phone_width_a_return_is_denied_and_nothing_scrolls_sideways(shop, pair):
    filed = shop.sell_and_return("not_interested")
    page, _ = pair
    page.reset(PHONE)
    page.sign_in(shop.finance.key)
    page.wait_url("/console/finance")
    row = page.wait_for(_row(filed["id"]))
    assert "$25.00" in row.text
    width = page.driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert width[0] <= width[1], width
    deny = row.find_element("css selector", "button.deny")
    assert deny.rect["height"] >= 40 and deny.is_displayed()
    page.screenshot("finance-returns-phone")

    page.click(f"{_row(filed['id'])} button.deny")
    page.wait_for("#done", "Denied")
    page.wait_for("#no-returns:not([hidden])")
    assert shop.get(f"/v1/returns/{filed['id']}")["status"] == "denied"
    page.driver.execute_script(
        "document.getElementById('return-status').value = 'denied';"
        "document.getElementById('return-status').dispatchEvent(new Event('change'));"
    )
    page.wait_for(f'{_row(filed["id"])}[data-status="denied"]')

    # A bad lead id is answered next to the field; a good one shows the sale alone (denied).
    page.click('.tabs a[data-tab="ledger"]')
    page.css("#lead-id").send_keys("not-a-lead")
    page.click("#lead-show")
    page.wait_for("#lead-id-error", "A lead id is a UUID")
    page.css("#lead-id").clear()
    page.css("#lead-id").send_keys(filed["lead_id"])
    page.click("#lead-show")
    page.wait_for('#lead-ledger article.entry[data-kind="sale"]')
    assert page.css("#lead-id-error").is_displayed() is False
    assert not page.all('#lead-ledger article.entry[data-kind="return"]')
    width = page.driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert width[0] <= width[1], width
    page.screenshot("finance-lead-ledger-phone")

    page.click('.tabs a[data-tab="balances"]')
    page.wait_for(f'#balances tr[data-account="buyer:{shop.buyer.id}"] td.closing', "$")
    page.wait_for("#trial-totals .verdict.good", "Balanced")
    width = page.driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert width[0] <= width[1], width
    page.screenshot("finance-balances-phone")
