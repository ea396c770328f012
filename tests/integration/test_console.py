"""The console's session and pages over HTTP (no browser): sign-in sets a signed, HttpOnly,
SameSite=Strict cookie that authenticates /v1 calls; state-changing calls by cookie need the
page's CSRF token (API-key calls do not); a revoked key or a tampered, expired or signed-out
session is refused; each kind of key lands on its own page; static files are versioned and
cached for good; a lost claim names the winner of the claimer's own team."""

from __future__ import annotations

import re
import uuid
from http.cookies import SimpleCookie

import pytest

from exchange.auth import sessions
from exchange.auth.parties import PartyKind, Principal
from exchange.console import assets
from exchange.errors import ApiError
from exchange.store.db import Database
from exchange.teams import service
from tests.conftest import TEST_SECRET, decode
from tests.integration.test_teams import Team, call


def _cookie(response) -> SimpleCookie:
    jar = SimpleCookie()
    jar.load(response.headers["set-cookie"])
    return jar


def sign_in(exchange, key: str, **headers: str):
    exchange.client.cookies.clear()
    return exchange.client.post(
        "/console/login", data={"key": key}, headers=headers, follow_redirects=False
    )


def csrf_of(page_html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page_html)
    assert found, page_html
    return found.group(1)


def test_sign_in_sets_a_signed_http_only_strict_cookie_and_lands_on_the_kind_page(exchange):
    agent_team = exchange.new_party(PartyKind.TEAM)
    agent = exchange.new_party(PartyKind.AGENT, "Ana Agent", team_id=agent_team.id)
    r = sign_in(exchange, agent.key)
    assert r.status_code == 303 and r.headers["location"] == "/console/agent"
    morsel = _cookie(r)[sessions.COOKIE_NAME]
    assert morsel["httponly"] and morsel["samesite"].lower() == "strict" and morsel["path"] == "/"
    assert not morsel["secure"]  # plain http here; https below
    assert int(morsel["max-age"]) == sessions.SESSION_TTL_S
    assert agent.key not in morsel.value and agent.key.split("_", 2)[2] not in morsel.value
    assert sessions.verify(TEST_SECRET, morsel.value) == agent.key_id

    page = exchange.client.get("/console/agent")
    assert page.status_code == 200
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.text
    assert "Ana Agent" in page.text and page.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert (
        exchange.client.get("/console/", follow_redirects=False).headers["location"]
        == "/console/agent"
    )


def test_the_cookie_is_secure_over_https(exchange):
    buyer = exchange.new_party(PartyKind.BUYER)
    r = exchange.client.post(
        "https://testserver.local/console/login", data={"key": buyer.key}, follow_redirects=False
    )
    assert r.status_code == 303
    assert _cookie(r)[sessions.COOKIE_NAME]["secure"]


@pytest.mark.parametrize("key", ["", "lx_000000000000_nope", "garbage" * 40])
def test_a_bad_key_is_refused_with_a_message_and_no_cookie(exchange, key):
    r = sign_in(exchange, key)
    assert r.status_code == 401
    assert "unknown, revoked or inactive" in r.text and 'aria-invalid="true"' in r.text
    assert "set-cookie" not in r.headers


def test_the_session_authenticates_api_calls_and_writes_need_the_csrf_token(exchange):
    operator = exchange.operator
    assert sign_in(exchange, operator.key).status_code == 303
    me = exchange.client.get("/v1/me")
    assert me.status_code == 200 and decode(me)["id"] == str(operator.id)

    body = {"kind": "supplier", "name": "By cookie"}
    refused = exchange.client.post("/v1/parties", json=body)
    assert refused.status_code == 403 and decode(refused)["error"]["code"] == "csrf_failed"
    wrong = exchange.client.post("/v1/parties", json=body, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403

    token = csrf_of(exchange.client.get("/console/operator").text)
    made = exchange.client.post("/v1/parties", json=body, headers={"X-CSRF-Token": token})
    assert made.status_code == 201, made.text

    # API-key requests are unchanged: no CSRF token, and the key wins over a cookie.
    exchange.client.cookies.clear()
    by_key = exchange.client.post("/v1/parties", json=body, headers=operator.headers)
    assert by_key.status_code == 201
    supplier = exchange.new_party(PartyKind.SUPPLIER)
    assert sign_in(exchange, operator.key).status_code == 303
    mine = decode(exchange.client.get("/v1/me", headers=supplier.headers))
    assert mine["id"] == str(supplier.id)


def test_a_revoked_key_ends_its_sessions(exchange):
    buyer = exchange.new_party(PartyKind.BUYER)
    assert sign_in(exchange, buyer.key).status_code == 303
    assert exchange.client.get("/v1/me").status_code == 200
    cookie = exchange.client.cookies[sessions.COOKIE_NAME]

    r = exchange.client.delete(f"/v1/keys/{buyer.key_id}", headers=exchange.operator.headers)
    assert r.status_code in (200, 204), r.text
    exchange.client.cookies.set(sessions.COOKIE_NAME, cookie)
    refused = exchange.client.get("/v1/me")
    assert refused.status_code == 401 and "sign in again" in decode(refused)["error"]["message"]
    page = exchange.client.get("/console/buyer", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/console/login?expired=1"


def test_tampered_expired_and_signed_out_sessions_are_refused(exchange):
    finance = exchange.new_party(PartyKind.FINANCE)
    assert sign_in(exchange, finance.key).status_code == 303
    good = exchange.client.cookies[sessions.COOKIE_NAME]
    key_hex, expires, nonce, mac = good.split(".")
    other = exchange.new_party(PartyKind.OPERATOR)
    for bad in (
        f"{other.key_id.hex}.{expires}.{nonce}.{mac}",  # someone else's key id, same signature
        f"{key_hex}.{int(expires) + 3600}.{nonce}.{mac}",  # a longer life
        f"{key_hex}.{expires}.{nonce}.{mac[:-1]}{'B' if mac.endswith('A') else 'A'}",
        "nonsense",
    ):
        exchange.client.cookies.clear()
        exchange.client.cookies.set(sessions.COOKIE_NAME, bad)
        assert exchange.client.get("/v1/me").status_code == 401, bad

    stale, _ = sessions.issue(TEST_SECRET, finance.key_id, now_s=1_000)
    assert sessions.verify(TEST_SECRET, stale) is None
    assert sessions.verify("another secret", good) is None

    exchange.client.cookies.clear()
    exchange.client.cookies.set(sessions.COOKIE_NAME, good)
    token = csrf_of(exchange.client.get("/console/finance").text)
    assert exchange.client.post("/console/logout", data={"csrf": "no"}).status_code == 403
    out = exchange.client.post("/console/logout", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/console/login?signed_out=1"
    cleared = _cookie(out)[sessions.COOKIE_NAME]
    assert cleared.value == "" and int(cleared["max-age"]) == 0 and cleared["path"] == "/"


def test_a_form_posted_from_another_site_is_refused(exchange):
    r = sign_in(exchange, exchange.operator.key, Origin="https://evil.example")
    assert r.status_code == 403 and "set-cookie" not in r.headers
    assert (
        sign_in(exchange, exchange.operator.key, Origin="http://testserver.local").status_code
        == 303
    )


def test_each_kind_lands_on_its_own_page(exchange):
    buyer = exchange.new_party(PartyKind.BUYER, "Acme Solar")
    assert sign_in(exchange, buyer.key).headers["location"] == "/console/buyer"
    r = exchange.client.get("/console/agent", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/buyer"
    page = exchange.client.get("/console/buyer")
    assert page.status_code == 200 and "Acme Solar" in page.text and "buyer" in page.text
    exchange.client.cookies.clear()
    r = exchange.client.get("/console/buyer", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    login = exchange.client.get("/console/login")
    assert login.status_code == 200 and 'name="key"' in login.text


def test_names_in_pages_are_escaped(exchange):
    buyer = exchange.new_party(PartyKind.BUYER, "<script>alert(1)</script>")
    sign_in(exchange, buyer.key)
    page = exchange.client.get("/console/buyer").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


def test_static_files_are_versioned_and_cached_for_good(exchange):
    url = assets.url("agent.js")
    assert url.startswith(f"/console/static/{assets.version()}/")
    r = exchange.client.get(url)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.headers["cache-control"] == assets.CACHE_FOREVER
    old = exchange.client.get("/console/static/0123456789ab/agent.js", follow_redirects=False)
    assert old.status_code == 302 and old.headers["location"] == url
    assert (
        exchange.client.get(f"/console/static/{assets.version()}/..%2Fpages.py").status_code == 404
    )
    assert exchange.client.get(f"/console/static/{assets.version()}/nope.js").status_code == 404
    login = exchange.client.get("/console/login").text
    assert assets.url("console.css") in login


def test_a_lost_claim_names_the_winner_of_the_same_team_only(exchange):
    team = Team(exchange)
    team.configure(strategy="parallel", offer_timeout_s=300)
    a = team.exchange.new_party(PartyKind.AGENT, "Agent Ana", team_id=team.team.id)
    b = team.exchange.new_party(PartyKind.AGENT, "Agent Bo", team_id=team.team.id)
    for agent in (a, b):
        r = team.client.put(
            f"/v1/agents/{agent.id}/profile", json={"heartbeat_ttl_s": None}, headers=team.op
        )
        assert r.status_code == 200, r.text
    lead_id = team.post_lead()
    assert team.route(lead_id).status == "offered"
    offer_a, offer_b = team.offers(a)[0]["id"], team.offers(b)[0]["id"]
    assert team.client.post(f"/v1/offers/{offer_a}/claim", headers=a.headers).status_code == 200
    lost = team.client.post(f"/v1/offers/{offer_b}/claim", headers=b.headers)
    assert lost.status_code == 409
    details = decode(lost)["error"]["details"]
    assert details["owner_id"] == str(a.id) and details["owner_name"] == "Agent Ana"

    # The owner is an agent of another team (say, a person fallback): not named.
    other_team = exchange.new_party(PartyKind.TEAM)
    outsider = exchange.new_party(PartyKind.AGENT, "Outsider", team_id=other_team.id)
    error = ApiError(409, "already_claimed", "taken", details={"owner_id": str(outsider.id)})

    async def name(db: Database) -> None:
        principal = Principal(party_id=b.id, kind=PartyKind.AGENT, key_id=b.key_id, name="Agent Bo")
        await service._name_owner(db, principal, error)

    call(exchange.settings, name)
    assert "owner_name" not in error.body.details
    assert uuid.UUID(error.body.details["owner_id"]) == outsider.id
