"""The agent's console in headless Chromium: two agents of one team race for a parallel lead
from two browser sessions (the offer appears in both without a reload; A's claim wins, B's
loses and B's page names A); A's lead shows its contact details and is marked contacted; a bad
key is refused on the sign-in page; the inbox at a phone's width, with a sequential offer's
countdown, presence and signing out; the other kinds' landing pages. Screenshots of each page
go to ``var/screenshots/``."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from exchange.auth.parties import PartyKind
from tests.browser.conftest import PHONE
from tests.conftest import decode
from tests.integration.test_teams import Team

pytestmark = pytest.mark.browser

STREAM = "*/v1/agents/me/stream*"
OFFER_LIST = "*/v1/agents/me/offers*"
COUNTDOWN = re.compile(r"^\d+:\d\d$")


@pytest.fixture(scope="module")
def team(console) -> Team:
    return Team(console)


def _agent(team: Team, name: str):
    agent = team.exchange.new_party(PartyKind.AGENT, name, team_id=team.team.id)
    r = team.client.put(
        f"/v1/agents/{agent.id}/profile", json={"heartbeat_ttl_s": None}, headers=team.op
    )
    assert r.status_code == 200, r.text
    team.members = {**getattr(team, "members", {}), str(agent.id): agent}
    return agent


def _wait_status(team: Team, agent, status: str) -> None:
    """The agent's manual status as the API reads it, once the page's request has landed."""
    for _ in range(200):
        if team.profile(agent)["manual_status"] == status:
            return
        time.sleep(0.025)
    raise AssertionError(f"the agent's status never became {status}")


def _offer_card(lead_id: uuid.UUID) -> str:
    return f'#offers li.offer[data-lead-id="{lead_id}"]'


def test_two_agents_race_for_a_parallel_lead_and_the_loser_sees_who_won(team, pair):
    team.configure(strategy="parallel", offer_timeout_s=300)
    ana, bruno = _agent(team, "Ana Avery"), _agent(team, "Bruno Banks")
    a, b = pair
    a.sign_in(ana.key)
    b.sign_in(bruno.key)
    for page in (a, b):
        page.wait_url("/console/agent")
        page.wait_for("#live", "Live")
        page.wait_for("#no-offers")

    lead_id = team.post_lead()
    assert team.route(lead_id).status == "offered"
    for page in (a, b):  # pushed by the stream: nobody reloads
        card = page.wait_for(_offer_card(lead_id))
        assert COUNTDOWN.match(card.find_element("css selector", ".countdown").text)
        assert card.find_element("css selector", "button.claim").text == "Claim"
        assert "94103" in card.text and "Ana" not in card.text  # fields; no PII before owning
        bill = f'{_offer_card(lead_id)} [data-field="monthly_electric_bill"]'
        page.wait_for(bill, "$1,234.50")  # money in minor units, shown in the vertical's currency
    a.screenshot("agent-inbox")

    # Bruno's page will not hear of Ana's claim (its stream and list reads are held), so it
    # still shows the offer, as any page does between her claim and the news of it.
    b.block([STREAM, OFFER_LIST])
    b.hold_streams()

    a.click(f"{_offer_card(lead_id)} button.claim")
    a.wait_for("#offers .result.won", "Yours")
    lead = a.wait_for(f'#leads li.lead[data-lead-id="{lead_id}"]')
    assert "Ana Garcia" in lead.text  # the contact details, now that Ana owns it
    phone = lead.find_element("css selector", "a.phone")
    assert phone.get_attribute("href").startswith("tel:+1212555")

    b.click(f"{_offer_card(lead_id)} button.claim")
    lost = b.wait_for("#offers .result.lost", "Taken by Ana Avery")
    assert lost.is_displayed()
    assert not b.all(f"{_offer_card(lead_id)} button.claim")
    b.screenshot("agent-lost-claim")
    assert team.routing(lead_id)["agent_id"] == str(ana.id)

    # With his stream up again, Bruno's page hears of the next claim by itself.
    b.block([])
    b.open("/console/agent")
    b.wait_for("#live", "Live")
    second = team.post_lead()
    assert team.route(second).status == "offered"
    b.wait_for(_offer_card(second))
    a.click(f"{_offer_card(second)} button.claim")
    b.wait_for(f"{_offer_card(second)} .result.lost", "Taken by")
    assert not b.all(f"{_offer_card(second)} button.claim")

    a.click(f'#leads li.lead[data-lead-id="{lead_id}"] button.mark-contacted')
    a.wait_for("#leads .contacted", "Contacted at")
    a.screenshot("agent-my-leads")
    r = team.client.get(f"/v1/leads/{lead_id}/outcomes", headers=ana.headers)
    assert [o["kind"] for o in decode(r)["items"]] == ["contacted"]
    assert team.routing(lead_id)["first_contact_at"] is not None


def test_a_bad_key_shows_an_error_on_the_sign_in_page(pair):
    a, _ = pair
    a.sign_in("lx_000000000000_not-a-real-key")
    error = a.wait_for("#login-error", "unknown, revoked or inactive")
    assert error.is_displayed()
    assert a.driver.current_url.endswith("/console/login")
    assert not a.driver.get_cookies()  # no session for a bad key
    a.screenshot("sign-in-error")


def test_the_inbox_at_a_phone_width_with_a_sequential_countdown_then_sign_out(team, pair):
    team.configure(strategy="sequential", offer_timeout_s=600)
    _agent(team, "Carla Chen")
    lead_id = team.post_lead()
    assert team.route(lead_id).status == "offered"
    holder = team.members[team.routing(lead_id)["offers"][0]["agent_id"]]  # the first in turn
    a, _ = pair
    a.reset(PHONE)
    a.sign_in(holder.key)
    a.wait_url("/console/agent")
    card = a.wait_for(_offer_card(lead_id))
    countdown = card.find_element("css selector", ".countdown")
    assert COUNTDOWN.match(countdown.text) and countdown.text.startswith(("9:", "10:"))
    assert card.find_element("css selector", "button.accept").text == "Accept"

    # One column, nothing wider than the screen, buttons big enough for a thumb.
    offers = a.css("#offers-title").rect
    leads = a.css("#leads-title").rect
    assert offers["x"] == leads["x"] and leads["y"] > offers["y"]
    width = a.driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert width[0] <= width[1], width
    assert card.find_element("css selector", "button.accept").rect["height"] >= 40
    a.screenshot("agent-inbox-phone")

    a.click(f"{_offer_card(lead_id)} button.accept")
    a.wait_for("#offers .result.won", "Yours")
    a.wait_for(f'#leads li.lead[data-lead-id="{lead_id}"]')
    assert team.profile(holder)["last_heartbeat_at"] is not None  # the open page's heartbeat
    a.click("#available")  # away: out of rotation
    _wait_status(team, holder, "away")
    a.click("#available")
    _wait_status(team, holder, "available")

    a.click("#sign-out")
    a.wait_for("#notice", "signed out")
    a.open("/console/agent")
    a.wait_url("/console/login")


@pytest.mark.parametrize("kind", [PartyKind.TEAM])  # the others have their own pages
def test_other_kinds_land_on_their_own_page(console, pair, kind):
    party = console.new_party(kind, f"A {kind.value}")
    a, _ = pair
    a.sign_in(party.key)
    a.wait_url(f"/console/{kind.value}")
    a.wait_for("h1", f"Welcome, A {kind.value}")
    a.open("/console/agent")  # another kind's page sends the key to its own
    a.wait_url(f"/console/{kind.value}")
    a.screenshot(f"landing-{kind.value}")
