"""The operator's console in headless Chromium: leads posted through the API (three sold to a
buyer taking young roofs only, two with older roofs unsold, one of them routed to a team's queue) and
pings counted for the buyer; the operator sees the flow's numbers as the API counts them (the
tiles, one chart bar per minute, the buyer's pings and timeouts, the team queue), searches a
lead and opens its trace with every campaign's reason explained, its routing to the team and a
sold lead's winning bid; a bad id is answered next to the field; the page at a phone's width.
Screenshots of each view go to ``var/screenshots/``."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from exchange import metrics
from exchange.auth.parties import PartyKind
from tests.browser.conftest import PHONE
from tests.conftest import decode
from tests.integration.test_intake_api import solar_lead
from tests.integration.test_teams import Team
from tests.market import add_campaign, fund

pytestmark = pytest.mark.browser

PRICE = 3000  # the buyer's fixed price: $30.00
YOUNG_ROOF = {"roof_age_years": "5"}  # the buyer takes roofs of 10 years at most


class Market:
    """The module's leads, posted once: ``sold`` (young roofs) and ``unsold`` (older roofs, the
    first routed to a team with no agents: it waits in the team's queue)."""

    def __init__(self, console) -> None:
        self.console = console
        self.team = Team(console)  # seeds the verticals; routes solar leads to its team
        self.buyer = console.new_party(PartyKind.BUYER, "Acme Solar")
        fund(console.settings, self.buyer.id, 100_000)
        add_campaign(console.settings, self.buyer.id, fixed_price_minor=PRICE,
                     filters=[{"kind": "number_range", "field": "roof_age_years", "maximum": 10}])  # fmt: skip
        self.sold = [self.post(n, "sold", **YOUNG_ROOF) for n in range(3)]
        self.unsold = [self.team.post_lead() for _ in range(2)]
        assert self.team.route(self.unsold[0]).status == "queued"
        self.operator = console.new_party(PartyKind.OPERATOR, "Olga Ops")

    def post(self, n: int, status: str, **fields: str) -> uuid.UUID:
        body = solar_lead(phone=f"646-555-07{n:02d}", email=f"op{n}@example.com", **fields)
        r = self.console.client.post("/v1/leads", json=body, headers=self.team.supplier.headers)
        assert r.status_code == 201 and decode(r)["status"] == status, r.text
        return uuid.UUID(decode(r)["lead_id"])

    def flow(self) -> dict:
        r = self.console.client.get("/v1/ops/flow", headers=self.operator.headers)
        assert r.status_code == 200, r.text
        return decode(r)


@pytest.fixture(scope="module")
def market(console) -> Market:
    return Market(console)


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch, market: Market) -> None:
    """The server runs in this process: fresh ping collectors, fed for the buyer, so other
    modules' pings do not crowd the list."""
    registry = CollectorRegistry()
    monkeypatch.setattr(metrics, "PINGS", Counter("exchange_pings", "", ["buyer", "outcome"], registry=registry))
    monkeypatch.setattr(metrics, "PING_TIMEOUTS", Counter("exchange_ping_timeouts", "", ["buyer"], registry=registry))
    monkeypatch.setattr(metrics, "PING_LATENCY", Histogram(
        "exchange_ping_latency_seconds", "", ["buyer"], registry=registry, buckets=metrics.BUYER_LATENCY_BUCKETS))  # fmt: skip
    for ms in (80, 120, 160):
        metrics.ping_answered(str(market.buyer.id), "bid", ms)
    metrics.ping_answered(str(market.buyer.id), "timeout", 1000)


def _no_page_scroll(browser) -> None:
    width = browser.driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width


def test_the_operator_sees_the_flow_and_opens_a_lead_s_trace(market, pair, pings):
    api = market.flow()
    assert (api["totals"]["received"], api["totals"]["sold"], api["totals"]["unsold"]) == (5, 3, 2)
    a, _ = pair
    a.sign_in(market.operator.key)
    a.wait_url("/console/operator")
    a.wait_for("#live", "Live")
    assert a.css("#kpi-received").text == "5"
    assert a.css("#kpi-sold-rate").text == "60.0%"
    assert a.css("#kpi-price").text == "$30.00"
    assert "$90.00 over 3 sales" in a.css("#kpi-revenue").text
    assert a.css("#kpi-timeouts").text == "1"
    bars = a.all("#chart svg g.bar")
    assert len(bars) == 60  # one per minute of the last hour
    assert sum(int(b.get_attribute("data-received")) for b in bars) == 5
    assert sum(int(b.get_attribute("data-sold")) for b in bars) == 3
    buyer = a.wait_for(f'#buyers tr[data-buyer-id="{market.buyer.id}"]')
    assert "Acme Solar" in buyer.text and "340 ms" in buyer.text  # (80+120+160+1000) / 4
    assert buyer.find_element("css selector", '[data-col="timeouts"]').text == "1"
    team = a.wait_for(f'#teams tr[data-team-id="{market.team.team.id}"]')
    assert team.find_elements("css selector", "td")[1].text == "1"  # the routed lead waits
    a.wait_for('#outboxes tr[data-outbox="deliveries"]')
    a.screenshot("operator-flow")

    # Search a lead by id: an unsold one, filtered out by the campaign's roof age.
    lead = market.unsold[0]
    a.css("#lead-id").send_keys(str(lead))
    a.click("#find")
    a.wait_for("#lead-status", "unsold")
    entry = a.wait_for('#trace tr.entry[data-reason="filtered:roof_age_years"]')
    assert "a campaign filter on roof_age_years failed" in entry.text
    a.wait_for('#trace tr.entry[data-reason="filtered:roof_age_years"] [data-party]', "Acme Solar")
    assert "filtered:roof_age_years" in a.css("#trace-reasons").text
    routing = a.wait_for("#routing")
    assert "queued" in routing.text and "nobody_eligible" in routing.text
    team_name = decode(market.console.client.get(f"/v1/parties/{market.team.team.id}", headers=market.team.op))["name"]
    a.wait_for("#routing [data-party]", team_name)
    assert a.driver.current_url.endswith(f"#lead={lead}")  # a link to this trace
    a.screenshot("operator-trace")

    # A sold lead, opened from the recent leads: the winning campaign, its bid and payout.
    a.click(f'#recent tr[data-lead-id="{market.sold[0]}"] a.open-lead')
    a.wait_for("#lead-status", "sold")
    won = a.wait_for('#trace tr.entry.won[data-reason="sold"]')
    assert "$30.00" in won.text and "the lead was sold to this campaign" in won.text
    assert not a.all("#routing")  # it never went to a team

    # A bad id is answered next to the field; an unknown one too.
    a.css("#lead-id").clear()
    a.css("#lead-id").send_keys("not-a-lead")
    a.click("#find")
    assert "A lead id looks like" in a.wait_for("#search-error").text
    assert a.css("#lead-id").get_attribute("aria-invalid") == "true"
    a.css("#lead-id").clear()
    a.css("#lead-id").send_keys(str(uuid.uuid4()))
    a.click("#find")
    a.wait_for("#search-error", "No lead has that id.")


def test_the_operator_page_at_a_phone_width_and_other_keys_kept_out(market, console, pair):
    a, _ = pair
    a.reset(PHONE)
    a.sign_in(market.operator.key)
    a.wait_url("/console/operator")
    a.wait_for("#kpi-received", "5")
    a.wait_for("#chart svg g.bar")
    _no_page_scroll(a)
    tiles = a.all("#tiles .tile")
    assert tiles[0].rect["y"] == tiles[1].rect["y"] and tiles[2].rect["y"] > tiles[0].rect["y"]  # two a row
    a.screenshot("operator-flow-phone")

    a.open(f"/console/operator#lead={market.sold[1]}")  # a link opens the trace
    a.wait_for('#trace tr.entry.won[data-reason="sold"]')
    _no_page_scroll(a)  # the trace's table scrolls inside its box
    a.screenshot("operator-trace-phone")

    # Another kind's key never sees it: the page sends it to its own, the API refuses.
    supplier = market.team.supplier
    r = console.client.get("/v1/ops/flow", headers=supplier.headers)
    assert r.status_code == 403
    a.reset()
    a.sign_in(supplier.key)
    a.wait_url("/console/supplier")
    a.open("/console/operator")
    a.wait_url("/console/supplier")
