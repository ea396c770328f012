"""Valid, unique leads for the benchmark's verticals (solar and auto insurance shapes).

A lead's phone and email come from its sequence number, so no two leads of one run are
duplicates; each scenario starts its numbers at its own offset (``SEQ_BLOCK`` apart).
"""

from __future__ import annotations

from typing import Any

SEQ_BLOCK = 1_000_000  # sequence numbers per scenario: more leads than any run posts
ZIPS = [
    ("10001", "NY"), ("11201", "NY"), ("94103", "CA"), ("90012", "CA"), ("73301", "TX"),
    ("77002", "TX"), ("33101", "FL"), ("60601", "IL"), ("85004", "AZ"), ("98101", "WA"),
    ("80202", "CO"), ("30303", "GA"), ("02108", "MA"), ("19103", "PA"), ("97201", "OR"),
]  # fmt: skip
STATES = sorted({state for _, state in ZIPS})
AREA_CODES = ["212", "415", "512", "305", "312", "602", "206", "303", "404", "617"]
LINES_PER_EXCHANGE = 10_000
EXCHANGES = [e for e in range(201, 1000) if e % 100 != 11 and e != 555]  # no N11 service codes
CONSENT = {
    "tcpa_text": (
        "By clicking Submit I agree to be contacted by up to four partners of this site about "
        "my request, by phone, text and email, including by automated means; consent is not a "
        "condition of purchase. Message and data rates may apply. I can opt out at any time."
    ),
    "ip_address": "203.0.113.7",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) bench",
    "landing_page_url": "https://quotes.example.com/start?utm_source=bench",
}
SOLAR_LIKE = "solar"
AUTO_LIKE = "auto_insurance"


def phone(seq: int) -> str:
    line = seq % LINES_PER_EXCHANGE
    rest = seq // LINES_PER_EXCHANGE
    exchange = EXCHANGES[rest % len(EXCHANGES)]
    area = AREA_CODES[(rest // len(EXCHANGES)) % len(AREA_CODES)]
    return f"({area}) {exchange}-{line:04d}"


def ping_fields(shape: str, seq: int) -> dict[str, Any]:
    zip_code, state = ZIPS[seq % len(ZIPS)]
    if shape == AUTO_LIKE:
        return {
            "zip": zip_code, "state": state, "date_of_birth": f"19{60 + seq % 35}-0{1 + seq % 9}-1{seq % 9}",
            "currently_insured": seq % 4 != 0, "vehicle_count": 1 + seq % 3, "vehicle_make": "Toyota",
        }  # fmt: skip
    return {
        "zip": zip_code, "state": state, "homeowner": True, "property_type": "single_family",
        "monthly_electric_bill": f"{120 + seq % 200}.40", "roof_shade": "no_shade",
        "credit_rating": "good", "purchase_timeframe": "1_3_months", "utility_provider": "PG&E",
    }  # fmt: skip


def pii_fields(seq: int, tag: str) -> dict[str, Any]:
    return {
        "first_name": "Ana", "last_name": "Garcia", "phone": phone(seq),
        "email": f"bench.{tag}.{seq}@example.com", "address": f"{1 + seq % 999} Market St",
    }  # fmt: skip


def direct_post(vertical: str, shape: str, seq: int, tag: str) -> dict[str, Any]:
    """A whole lead for ``POST /v1/leads`` (about 1 KB of JSON)."""
    return {
        "vertical": vertical,
        "fields": {**ping_fields(shape, seq), **pii_fields(seq, tag)},
        "source": "bench",
        "sub_ids": {"sub1": f"aff-{seq % 50}", "sub2": f"creative-{seq % 7}"},
        "consent": CONSENT,
    }


def ping(vertical: str, shape: str, seq: int) -> dict[str, Any]:
    return {"vertical": vertical, "fields": ping_fields(shape, seq), "source": "bench",
            "sub_ids": {"sub1": f"aff-{seq % 50}"}}  # fmt: skip


def post(ping_id: str, seq: int, tag: str) -> dict[str, Any]:
    return {"ping_id": ping_id, "fields": pii_fields(seq, tag), "consent": CONSENT}
