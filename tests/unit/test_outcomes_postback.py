"""Signed postback URLs without a database: the canonical form, the secret, the signature
checks (good, tampered, wrong secret, stale, missing) and the query's own rules."""

from __future__ import annotations

import pytest

from exchange.delivery import signing
from exchange.outcomes import postback

NOW_S = 1_795_000_000
SECRET = postback.secret_for("exchange-secret", "party-1")
PARAMS = {"lead_id": "L-1", "party_id": "party-1", "kind": "won", "value_minor": "125000"}


def signed(params=PARAMS, secret=SECRET, ts=NOW_S) -> dict[str, str]:
    return {**params, "ts": str(ts), "sig": postback.sign(secret, params, ts)}


def test_the_secret_is_derived_per_party_and_stable():
    assert SECRET == postback.secret_for("exchange-secret", "party-1")
    assert len(SECRET) == 64 and int(SECRET, 16) >= 0
    assert SECRET != postback.secret_for("exchange-secret", "party-2")
    assert SECRET != postback.secret_for("another-secret", "party-1")


def test_canonical_sorts_encodes_and_leaves_out_the_signature():
    params = {"reason": "went with a rival & more", "kind": "lost", "sig": "v1=ab", "a b": "é/"}
    assert postback.canonical(params) == b"a%20b=%C3%A9%2F&kind=lost&reason=went%20with%20a%20rival%20%26%20more"
    assert postback.canonical(params) == postback.canonical(list(reversed(params.items())))


def test_a_good_signature_passes():
    assert postback.check(SECRET, signed(), NOW_S) is None
    assert postback.check(SECRET, signed(), NOW_S + signing.SIGNATURE_TOLERANCE_S) is None


def test_a_tampered_parameter_fails():
    for key, value in (("value_minor", "999999"), ("kind", "lost"), ("lead_id", "L-2")):
        tampered = {**signed(), key: value}
        assert postback.check(SECRET, tampered, NOW_S) == postback.SIGNATURE_INVALID
    added = {**signed(), "reason": "slipped in"}
    assert postback.check(SECRET, added, NOW_S) == postback.SIGNATURE_INVALID
    moved_ts = {**signed(), "ts": str(NOW_S + 1)}  # the timestamp is inside the signature
    assert postback.check(SECRET, moved_ts, NOW_S) == postback.SIGNATURE_INVALID


def test_the_wrong_secret_fails():
    other = postback.secret_for("exchange-secret", "party-2")
    assert postback.check(SECRET, signed(secret=other), NOW_S) == postback.SIGNATURE_INVALID


def test_a_stale_or_future_timestamp_fails():
    late = NOW_S + signing.SIGNATURE_TOLERANCE_S + 1
    assert postback.check(SECRET, signed(), late) == postback.SIGNATURE_STALE
    early = NOW_S - signing.SIGNATURE_TOLERANCE_S - 1
    assert postback.check(SECRET, signed(), early) == postback.SIGNATURE_STALE
    assert postback.check(SECRET, {**signed(), "ts": "soon"}, NOW_S) == postback.SIGNATURE_STALE


def test_a_missing_signature_or_timestamp_fails():
    assert postback.check(SECRET, PARAMS, NOW_S) == postback.SIGNATURE_MISSING
    no_ts = {k: v for k, v in signed().items() if k != "ts"}
    assert postback.check(SECRET, no_ts, NOW_S) == postback.SIGNATURE_MISSING
    assert postback.check(SECRET, {**signed(), "sig": "v1=" + "0" * 64}, NOW_S) == postback.SIGNATURE_INVALID
    assert postback.check(SECRET, {**signed(), "sig": "garbage\u00e9"}, NOW_S) == postback.SIGNATURE_INVALID


def test_the_query_is_parsed_strictly():
    assert postback.parse_query("kind=won&lead_id=L%201&reason=a+b") == {
        "kind": "won", "lead_id": "L 1", "reason": "a b",
    }  # fmt: skip
    assert postback.parse_query("") == {}
    for raw, path in (
        ("kind=won&kind=lost", "query.kind"),
        ("kind=won&colour=red", "query.colour"),
        ("x" * (postback.QUERY_MAX_CHARS + 1), "query"),
    ):
        with pytest.raises(postback.BadQuery) as bad:
            postback.parse_query(raw)
        assert bad.value.path == path
