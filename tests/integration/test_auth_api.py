"""Keys and scoping: 401 without a valid key, 403 on another party's data."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from exchange.auth.parties import PartyKind
from exchange.store.tables import api_keys
from tests.conftest import decode, run
from tests.integration.test_intake_api import solar_lead


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer lx_000000000000_nope"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": "garbage"},
    ],
)
def test_requests_without_a_valid_key_are_401(exchange, headers):
    r = exchange.client.get("/v1/verticals", headers=headers)
    assert r.status_code == 401
    assert decode(r)["error"]["code"] == "unauthorized"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_health_and_schema_need_no_key(exchange):
    assert exchange.client.get("/health").status_code == 200
    schema = exchange.client.get("/schema/openapi.json")
    assert schema.status_code == 200
    paths = decode(schema)["paths"]
    assert "/v1/leads" in paths and "/v1/verticals" in paths
    assert exchange.client.get("/schema/swagger").status_code == 200


def test_keys_are_stored_hashed_and_shown_once(exchange):
    r = exchange.client.post(
        "/v1/parties", json={"kind": "supplier", "name": "Acme"}, headers=exchange.operator.headers
    )
    assert r.status_code == 201, r.text
    party_id = decode(r)["id"]
    r = exchange.client.post(
        f"/v1/parties/{party_id}/keys", json={"name": "prod"}, headers=exchange.operator.headers
    )
    assert r.status_code == 201
    new_key = decode(r)
    secret = new_key["key"]
    assert secret.startswith(f"lx_{new_key['prefix']}_")

    rows = run(exchange.settings, lambda c: c.execute(sa.select(api_keys)))
    stored = [tuple(str(v) for v in row) for row in rows.all()]
    assert stored and not any(secret.split("_", 2)[2] in "|".join(row) for row in stored)

    listed = decode(exchange.client.get(f"/v1/parties/{party_id}/keys", headers=exchange.operator.headers))
    assert [k["prefix"] for k in listed] == [new_key["prefix"]]
    assert "key" not in listed[0]

    me = exchange.client.get("/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert decode(me)["name"] == "Acme" and decode(me)["kind"] == "supplier"
    # The same key works in the X-API-Key header.
    assert exchange.client.get("/v1/me", headers={"X-API-Key": secret}).status_code == 200
    # A right prefix with a wrong secret is refused.
    forged = f"lx_{new_key['prefix']}_{'A' * 43}"
    assert exchange.client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_revoked_keys_and_inactive_parties_are_refused(exchange):
    supplier = exchange.new_party(PartyKind.SUPPLIER)
    assert exchange.client.get("/v1/me", headers=supplier.headers).status_code == 200

    second = decode(exchange.client.post("/v1/keys", json={"name": "rotation"}, headers=supplier.headers))
    rotated = {"Authorization": f"Bearer {second['key']}"}
    r = exchange.client.delete(f"/v1/keys/{supplier.key_id}", headers=rotated)
    assert r.status_code == 200 and decode(r)["revoked_at"]
    assert exchange.client.get("/v1/me", headers=supplier.headers).status_code == 401
    assert exchange.client.get("/v1/me", headers=rotated).status_code == 200

    r = exchange.client.patch(
        f"/v1/parties/{supplier.id}", json={"active": False}, headers=exchange.operator.headers
    )
    assert r.status_code == 200 and decode(r)["active"] is False
    assert exchange.client.get("/v1/me", headers=rotated).status_code == 401


def test_parties_see_only_their_own_data(exchange):
    exchange.seed_verticals()
    a = exchange.new_party(PartyKind.SUPPLIER, "A")
    b = exchange.new_party(PartyKind.SUPPLIER, "B")
    buyer = exchange.new_party(PartyKind.BUYER)
    lead_a = decode(exchange.client.post("/v1/leads", json=solar_lead(), headers=a.headers))["lead_id"]

    assert exchange.client.get(f"/v1/leads/{lead_a}", headers=a.headers).status_code == 200
    r = exchange.client.get(f"/v1/leads/{lead_a}", headers=b.headers)
    assert r.status_code == 403 and decode(r)["error"]["code"] == "forbidden"
    assert decode(exchange.client.get("/v1/leads", headers=b.headers))["items"] == []
    # Asking for PII is ignored for a supplier, even its own lead.
    assert "pii" not in decode(exchange.client.get(f"/v1/leads/{lead_a}?include_pii=true", headers=a.headers))

    # Other kinds of party cannot post or read supplier leads.
    assert exchange.client.post("/v1/leads", json=solar_lead(), headers=buyer.headers).status_code == 403
    assert exchange.client.get(f"/v1/leads/{lead_a}", headers=buyer.headers).status_code == 403

    # Only operators administer parties and verticals.
    for party in (a, buyer):
        assert exchange.client.get("/v1/parties", headers=party.headers).status_code == 403
        r = exchange.client.post("/v1/parties", json={"kind": "buyer", "name": "x"}, headers=party.headers)
        assert r.status_code == 403
    assert exchange.client.put("/v1/verticals/solar", json={}, headers=a.headers).status_code == 403

    # A party cannot revoke another party's key.
    r = exchange.client.delete(f"/v1/keys/{b.key_id}", headers=a.headers)
    assert r.status_code == 403
    assert exchange.client.get("/v1/me", headers=b.headers).status_code == 200


def test_agents_belong_to_teams(exchange):
    op = exchange.operator.headers
    r = exchange.client.post("/v1/parties", json={"kind": "agent", "name": "Sam"}, headers=op)
    assert r.status_code == 422
    assert decode(r)["error"]["fields"][0]["path"] == "team_id"
    team = decode(exchange.client.post("/v1/parties", json={"kind": "team", "name": "Closers"}, headers=op))
    r = exchange.client.post(
        "/v1/parties",
        json={"kind": "agent", "name": "Sam", "team_id": team["id"], "timezone": "America/Chicago"},
        headers=op,
    )
    assert r.status_code == 201 and decode(r)["team_id"] == team["id"]
    r = exchange.client.post(
        "/v1/parties", json={"kind": "buyer", "name": "x", "timezone": "Mars/Olympus"}, headers=op
    )
    assert r.status_code == 422 and decode(r)["error"]["fields"][0]["path"] == "timezone"
    listed = decode(exchange.client.get("/v1/parties?kind=agent", headers=op))["items"]
    assert [p["name"] for p in listed] == ["Sam"]
