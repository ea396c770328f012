"""Operators create and change verticals; every key may read them."""

from __future__ import annotations

import copy

from exchange.auth.parties import PartyKind
from tests.conftest import decode

PET = {
    "slug": "pet_insurance",
    "name": "Pet insurance",
    "dedupe_window_days": 14,
    "fields": [
        {"name": "zip", "format": "zip", "required_on_ping": True, "required_on_post": True},
        {"name": "species", "format": "enum", "choices": ["dog", "cat"], "required_on_post": True},
        {"name": "pet_age", "format": "integer", "minimum": 0, "maximum": 40},
        {"name": "phone", "format": "phone", "pii": True, "required_on_post": True},
    ],
}


def test_seeded_verticals_are_listed(exchange):
    exchange.seed_verticals()
    supplier = exchange.new_party(PartyKind.SUPPLIER)
    listed = decode(exchange.client.get("/v1/verticals", headers=supplier.headers))
    assert [v["slug"] for v in listed] == ["auto_insurance", "solar"]
    solar = decode(exchange.client.get("/v1/verticals/solar", headers=supplier.headers))
    phone = next(f for f in solar["fields"] if f["name"] == "phone")
    assert phone == {
        "name": "phone", "format": "phone", "label": "Phone",
        "required_on_post": True, "pii": True,
    }  # fmt: skip


def test_create_change_and_use_a_vertical(exchange):
    op = exchange.operator.headers
    r = exchange.client.post("/v1/verticals", json=PET, headers=op)
    assert r.status_code == 201, r.text
    assert decode(r)["version"] == 1
    assert exchange.client.post("/v1/verticals", json=PET, headers=op).status_code == 409

    supplier = exchange.new_party(PartyKind.SUPPLIER)
    lead = {"vertical": "pet_insurance", "fields": {"zip": "02134", "species": "DOG", "phone": "6175550100"}}
    assert exchange.client.post("/v1/leads", json=lead, headers=supplier.headers).status_code == 201

    changed = copy.deepcopy(PET)
    changed["fields"].append({"name": "breed", "format": "text", "max_length": 40, "required_on_post": True})
    r = exchange.client.put("/v1/verticals/pet_insurance", json=changed, headers=op)
    assert r.status_code == 200 and decode(r)["version"] == 2
    lead2 = {"vertical": "pet_insurance", "fields": {"zip": "02134", "species": "cat", "phone": "6175550101"}}
    r = exchange.client.post("/v1/leads", json=lead2, headers=supplier.headers)
    assert r.status_code == 422
    assert decode(r)["error"]["fields"] == [{"path": "fields.breed", "reason": "required on post"}]

    r = exchange.client.patch("/v1/verticals/pet_insurance", json={"active": False}, headers=op)
    assert decode(r)["active"] is False
    lead2["fields"]["breed"] = "Siamese"
    r = exchange.client.post("/v1/leads", json=lead2, headers=supplier.headers)
    assert r.status_code == 422 and decode(r)["error"]["fields"][0]["path"] == "vertical"


def test_invalid_definitions_name_every_problem(exchange):
    bad = copy.deepcopy(PET)
    bad["fields"] += [
        {"name": "zip", "format": "zip"},
        {"name": "kind", "format": "enum"},
        {"name": "age", "format": "integer", "minimum": 5, "maximum": 1},
        {"name": "email", "format": "email", "pii": True, "required_on_ping": True},
        {"name": "status", "format": "text"},
    ]
    r = exchange.client.post("/v1/verticals", json=bad, headers=exchange.operator.headers)
    assert r.status_code == 422
    paths = [f["path"] for f in decode(r)["error"]["fields"]]
    assert paths == [
        "fields[4].name",
        "fields[5].choices",
        "fields[6].maximum",
        "fields[7].required_on_ping",
        "fields[8].name",
    ]

    r = exchange.client.post(
        "/v1/verticals", json=PET | {"fields": [{"name": "Bad Name", "format": "text"}]},
        headers=exchange.operator.headers,
    )
    assert r.status_code == 422
    assert decode(r)["error"]["fields"][0]["path"] == "fields[0].name"

    r = exchange.client.put("/v1/verticals/pet_insurance", json=PET, headers=exchange.operator.headers)
    assert r.status_code == 404
