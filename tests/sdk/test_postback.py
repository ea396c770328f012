"""The SDK's ``postback_url`` and the exchange's postback check sign alike: whatever the
values (spaces, ``&``, ``=``, non-ASCII), a URL the SDK builds passes the exchange's check,
and the two canonical forms are the same bytes."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from urllib.parse import urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from buyers_sdk import postback as sdk_postback
from buyers_sdk import postback_url
from exchange.outcomes import postback

SECRET = postback.secret_for("exchange-secret", "party")
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(text.filter(bool), text, max_size=6))
def test_both_canonical_forms_are_the_same_bytes(params):
    assert sdk_postback.canonical(params) == postback.canonical(params)


@settings(max_examples=100, deadline=None)
@given(
    kind=st.sampled_from(["contacted", "qualified", "appointment", "won", "lost", "bad_lead"]),
    value=st.none() | st.integers(0, 10**12),
    reason=st.none() | text.filter(bool),
    currency=st.none() | st.just("USD"),
)
def test_a_url_the_sdk_builds_passes_the_exchanges_check(kind, value, reason, currency):
    lead_id, party_id = uuid.uuid4(), uuid.uuid4()
    now = int(time.time())
    url = postback_url(
        "https://exchange.example.com/", SECRET, lead_id, party_id, kind,
        value_minor=value, currency=currency, reason=reason, ts=now,
        occurred_at=dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.UTC),
    )  # fmt: skip
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "exchange.example.com", postback.POSTBACK_PATH)
    params = postback.parse_query(parts.query)
    assert postback.check(SECRET, params, now) is None
    assert (params["lead_id"], params["party_id"], params["kind"]) == (str(lead_id), str(party_id), kind)
    assert params.get("reason") == reason and params.get("value_minor") == (None if value is None else str(value))
    assert postback.check(postback.secret_for("exchange-secret", "other"), params, now) == postback.SIGNATURE_INVALID


def test_the_sdk_stamps_the_time_now():
    url = postback_url("https://x.example", SECRET, "L", "P", "won")
    params = postback.parse_query(urlsplit(url).query)
    assert abs(int(params["ts"]) - time.time()) < 5
    assert postback.check(SECRET, params, int(time.time())) is None
