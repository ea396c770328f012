"""The request the README shows works as shown."""

from __future__ import annotations

import json
import re
from pathlib import Path

from exchange.auth.parties import PartyKind
from tests.conftest import decode

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_curl_example_posts_a_lead(exchange):
    exchange.seed_verticals()
    supplier = exchange.new_party(PartyKind.SUPPLIER)
    body = re.search(r"-d '(\{.*?\})'", README.read_text(), re.S).group(1)
    headers = supplier.headers | {"Idempotency-Key": "order-1001"}
    r = exchange.client.post("/v1/leads", content=body.encode(), headers=headers | {"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    assert decode(r)["vertical"] == json.loads(body)["vertical"]
