"""The buyer adapter, pure: config validation, mapping, bodies, auth, signing, answer parsing."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from urllib.parse import parse_qs, parse_qsl, urlsplit

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.auction.ranking import MIN_BID_MINOR
from exchange.delivery import (
    DELIVERY_ID_HEADER,
    PING_TIMEOUT_MS_DEFAULT,
    POST_TIMEOUT_MS_DEFAULT,
    PRICE_MAX_MINOR,
    REASON_MAX_CHARS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BasicAuth,
    BearerAuth,
    BuyerEndpoints,
    EndpointConfig,
    FieldMap,
    HeaderAuth,
    LeadPayload,
    MappingError,
    Outcome,
    ResponseRules,
    build_request,
    parse_price_minor,
    parse_response,
    sign,
    verify,
)
from exchange.intake.messages import Consent

SECRET = "buyer-signing-secret"
NOW_S = 1_700_000_000
URL = "https://buyer.example/leads"
PII = {"first_name": "Ada", "last_name": "Lovelace", "phone": "+15555550100", "email": "a@x.io"}
LEAD = LeadPayload(
    vertical="auto",
    lead_id="lead-1",
    ping_id="ping-1",
    source="sup-9",
    fields={"zip": "90210", "state": "CA", "homeowner": True, "age": 44, "cars": ["a", "b"]},
    pii=PII,
    consent=Consent(tcpa_text="I agree", jornaya_leadid="J-1", ip_address="10.0.0.1"),
    test=True,
)
PRICED = ResponseRules(
    success_path="status",
    success_values=("success", True),
    price_path="bid",
    reference_path="id",
    reason_path="details",
)


def cfg(*maps: FieldMap, **kw) -> EndpointConfig:
    return EndpointConfig(url=kw.pop("url", URL), mapping=maps, **kw)


def build(config: EndpointConfig, kind: str = "post", lead: LeadPayload = LEAD):
    return build_request(config, kind, lead, secret=SECRET, now_s=NOW_S, delivery_id="dlv-1")


def body_json(config: EndpointConfig, kind: str = "post", lead: LeadPayload = LEAD) -> dict:
    return json.loads(build(config, kind, lead).body)


def answer(rules: ResponseRules, status: int = 200, body: object = b"", kind: str = "ping"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_response(EndpointConfig(url=URL, response=rules), kind, status, raw, None)


# --- config ------------------------------------------------------------------------------------


def test_config_round_trips_through_json_with_tags() -> None:
    config = cfg(
        FieldMap(target="applicant.phone", source="phone", required=True),
        FieldMap(target="home", source="homeowner", value_map={"true": "Y", "false": "N"}),
        auth=HeaderAuth(name="X-Api-Key", value="k"),
        headers={"X-Src": "exchange"},
        timeout_ms=800,
        response=PRICED,
    )
    encoded = msgspec.json.encode(BuyerEndpoints(post=config, ping=config))
    raw = json.loads(encoded)
    assert raw["post"]["kind"] == "http" and raw["post"]["auth"]["kind"] == "header"
    decoded = msgspec.json.decode(encoded, type=BuyerEndpoints)
    assert decoded == BuyerEndpoints(post=config, ping=config)


@pytest.mark.parametrize(
    "raw",
    [
        {"url": "ftp://buyer.example/x"},
        {"url": "https:///no-host"},
        {"url": "https://buyer.example/a b"},
        {"url": "https://buyer.example/#frag"},
        {"url": URL, "method": "DELETE"},
        {"url": URL, "method": "GET"},  # GET needs a form (query string)
        {"url": URL, "body": "form"},  # a form needs a mapping
        {"url": URL, "timeout_ms": 60_000},
        {"url": URL, "timeout_ms": 1},
        {"url": URL, "headers": {"X-Exchange-Signature": "forged"}},
        {"url": URL, "headers": {"Content-Type": "text/plain"}},
        {"url": URL, "headers": {"X-A": "evil\r\nX-B: 1"}},
        {"url": URL, "headers": {"Bad Name": "v"}},
        {"url": URL, "auth": {"kind": "oauth"}},
        {"url": URL, "auth": {"kind": "bearer", "token": "t"}, "headers": {"authorization": "x"}},
        {"url": URL, "auth": {"kind": "header", "name": "X-K", "value": "v"},
         "headers": {"x-k": "x"}},
        {"url": URL, "mapping": [{"target": "a"}]},  # neither source nor constant
        {"url": URL, "mapping": [{"target": "a", "source": "x", "constant": 1}]},
        {"url": URL, "mapping": [{"target": "a", "source": "x"}, {"target": "a", "source": "y"}]},
        {"url": URL, "mapping": [{"target": "a", "source": "x"}, {"target": "a.b", "source": "y"}]},
        {"url": URL, "mapping": [{"target": "a..b", "source": "x"}]},
        {"url": URL, "mapping": [{"target": "a", "source": "consent.nope"}]},
        {"url": URL, "mapping": [{"target": "a", "source": "x", "extra": 1}]},
        {"url": URL, "response": {"success_path": "status"}},  # no success_values
        {"url": URL, "response": {"price_regex": "no group"}},
        {"url": URL, "response": {"success_regex": "("}},
        {"url": URL, "response": {"price_path": "a", "price_regex": "(x)"}},
        {"url": URL, "unknown": True},
    ],
)
def test_bad_configs_are_refused_on_decode(raw: dict) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(json.dumps({"kind": "http", **raw}), type=EndpointConfig)


def test_bad_config_is_refused_in_code_too() -> None:
    with pytest.raises(ValueError):
        EndpointConfig(url="javascript:alert(1)")


def test_timeouts_default_by_role() -> None:
    assert cfg().timeout_for("ping") == PING_TIMEOUT_MS_DEFAULT
    assert cfg().timeout_for("post") == POST_TIMEOUT_MS_DEFAULT
    assert cfg(timeout_ms=250).timeout_for("post") == 250


def test_redacted_view_and_repr_hide_every_secret() -> None:
    secrets = ["tok-123", "pw-456", "hdr-789", "const-000", "qkey-111", "userpw-222"]
    for auth in (BearerAuth(token="tok-123"), BasicAuth(username="u", password="pw-456")):
        config = cfg(
            FieldMap(target="Key", constant="const-000", secret=True),
            url="https://u:userpw-222@buyer.example/x?key=qkey-111",
            headers={"X-Api-Key": "hdr-789"},
            auth=auth,
        )
        for text in (repr(config), repr(config.redacted()), str(BuyerEndpoints(post=config))):
            assert not any(s in text for s in secrets), text
        assert config.redacted().url.startswith("https://redacted@buyer.example/x?key=")
        request = build(config)
        assert not any(s in repr(request) for s in secrets)
        assert "Ada" not in repr(request)  # the post body (PII) is not in the repr either
    assert "hdr-789" not in repr(HeaderAuth(name="X-Key", value="hdr-789"))


# --- building ----------------------------------------------------------------------------------


def test_mapping_nested_targets_value_maps_envelope_and_consent() -> None:
    config = cfg(
        FieldMap(target="applicant.phone", source="phone"),
        FieldMap(target="applicant.name.first", source="first_name"),
        FieldMap(target="geo.zip", source="zip"),
        FieldMap(target="owns_home", source="homeowner", value_map={"true": "Y", "false": "N"}),
        FieldMap(target="st", source="state", value_map={"NY": "New York"}),  # unlisted: as is
        FieldMap(target="meta.lead", source="lead_id"),
        FieldMap(target="meta.ping", source="ping_id"),
        FieldMap(target="meta.delivery", source="delivery_id"),
        FieldMap(target="meta.vertical", source="vertical"),
        FieldMap(target="meta.source", source="source"),
        FieldMap(target="meta.test", source="test"),
        FieldMap(target="tcpa", source="consent.tcpa_text"),
        FieldMap(target="jornaya", source="consent.jornaya_leadid"),
        FieldMap(target="tf", source="consent.trustedform_cert_url"),  # missing: omitted
        FieldMap(target="campaign", constant="C-7"),
        FieldMap(target="age", source="fields.age"),
    )
    assert body_json(config) == {
        "applicant": {"phone": "+15555550100", "name": {"first": "Ada"}},
        "geo": {"zip": "90210"},
        "owns_home": "Y",
        "st": "CA",
        "meta": {
            "lead": "lead-1",
            "ping": "ping-1",
            "delivery": "dlv-1",
            "vertical": "auto",
            "source": "sup-9",
            "test": True,
        },
        "tcpa": "I agree",
        "jornaya": "J-1",
        "campaign": "C-7",
        "age": 44,
    }


def test_consent_may_be_given_as_its_stored_dict() -> None:
    as_dict = msgspec.structs.replace(LEAD, consent=msgspec.to_builtins(LEAD.consent))
    config = cfg(FieldMap(target="tcpa", source="consent.tcpa_text"))
    assert body_json(config, lead=as_dict) == body_json(config) == {"tcpa": "I agree"}
    assert body_json(cfg(), lead=as_dict) == body_json(cfg())


def test_request_carries_the_timeout_of_its_kind() -> None:
    assert build(cfg(), "ping").timeout_ms == PING_TIMEOUT_MS_DEFAULT
    assert build(cfg(), "post").timeout_ms == POST_TIMEOUT_MS_DEFAULT
    assert build(cfg(timeout_ms=300), "post").timeout_ms == 300


def test_missing_field_is_omitted_unless_required() -> None:
    optional = cfg(FieldMap(target="x", source="not_there"), FieldMap(target="z", source="zip"))
    assert body_json(optional) == {"z": "90210"}
    required = cfg(FieldMap(target="x", source="not_there", required=True))
    with pytest.raises(MappingError, match="not_there"):
        build(required)
    no_consent = LeadPayload(vertical="auto", fields={})
    with pytest.raises(MappingError):
        ip = FieldMap(target="ip", source="consent.ip_address", required=True)
        build(cfg(ip), "post", no_consent)


def test_pii_never_in_a_ping_even_when_mapped() -> None:
    maps = [FieldMap(target=f"c.{k}", source=k) for k in PII]
    maps.append(FieldMap(target="zip", source="zip"))
    config = cfg(*maps, headers={"X-Src": "x"})
    ping = build(config, "ping")
    assert json.loads(ping.body) == {"zip": "90210"}
    for value in PII.values():
        assert value.encode() not in ping.body and value not in ping.url
        assert all(value not in v for v in ping.headers.values())
    assert json.loads(build(config, "post").body)["c"] == PII  # the post carries it
    with pytest.raises(MappingError, match="PII"):
        build(cfg(FieldMap(target="p", source="phone", required=True)), "ping")
    # the native body (no mapping) follows the same rule
    native_ping = build(cfg(), "ping")
    assert all(v.encode() not in native_ping.body for v in PII.values())


def test_pii_on_a_get_ping_stays_out_of_the_query_string() -> None:
    config = cfg(FieldMap(target="email", source="email"), FieldMap(target="zip", source="zip"),
                 method="GET", body="form")  # fmt: skip
    ping = build(config, "ping")
    assert parse_qs(urlsplit(ping.url).query) == {"zip": ["90210"]} and ping.body == b""


def test_a_key_in_both_fields_and_pii_is_refused() -> None:
    with pytest.raises(ValueError, match="share keys"):
        LeadPayload(vertical="auto", fields={"phone": "1"}, pii={"phone": "1"})


def test_native_body_when_no_mapping() -> None:
    ping = body_json(cfg(), "ping")
    assert ping["protocol"] == "exchange.v1" and ping["kind"] == "ping"
    assert ping["fields"] == LEAD.fields and ping["consent"]["tcpa_text"] == "I agree"
    assert ping["delivery_id"] == "dlv-1" and ping["test"] is True
    post = body_json(cfg(), "post")
    assert post["fields"] == {**LEAD.fields, **PII}


def test_form_body_flattens_lists_booleans_and_keeps_dotted_keys() -> None:
    config = cfg(
        FieldMap(target="applicant.zip", source="zip"),
        FieldMap(target="owner", source="homeowner"),
        FieldMap(target="cars", source="cars"),
        FieldMap(target="name", source="first_name"),
        body="form",
    )
    request = build(config)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qsl(request.body.decode()) == [
        ("applicant.zip", "90210"), ("owner", "true"), ("cars", "a"), ("cars", "b"), ("name", "Ada")
    ]  # fmt: skip


def test_get_puts_the_form_in_the_query_and_signs_it() -> None:
    config = cfg(FieldMap(target="zip", source="zip"), method="GET", body="form",
                 url="https://buyer.example/p?key=abc")  # fmt: skip
    request = build(config, "ping")
    assert request.method == "GET" and request.body == b""
    assert request.url == "https://buyer.example/p?key=abc&zip=90210"
    query = urlsplit(request.url).query.encode()
    headers = request.headers
    assert verify(SECRET, headers[TIMESTAMP_HEADER], query, headers[SIGNATURE_HEADER], NOW_S)
    assert "Content-Type" not in request.headers


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        (BearerAuth(token="t0k"), "Authorization", "Bearer t0k"),
        (BasicAuth(username="u", password="p:w"), "Authorization",
         "Basic " + base64.b64encode(b"u:p:w").decode()),
        (HeaderAuth(name="X-Api-Key", value="k3y"), "X-Api-Key", "k3y"),
    ],
)  # fmt: skip
def test_auth_headers(auth, header: str, value: str) -> None:
    request = build(cfg(auth=auth, headers={"X-Static": "s"}))
    assert request.headers[header] == value
    assert request.headers["X-Static"] == "s"
    assert request.redacted_headers()[header] == "[redacted]"


def test_request_carries_signature_timestamp_and_delivery_id() -> None:
    request = build(cfg(method="PUT"))
    assert request.method == "PUT" and request.headers["Content-Type"] == "application/json"
    assert request.headers[TIMESTAMP_HEADER] == str(NOW_S)
    assert request.headers[DELIVERY_ID_HEADER] == "dlv-1"
    assert request.headers[SIGNATURE_HEADER] == sign(SECRET, NOW_S, request.body)


# --- signing -----------------------------------------------------------------------------------


def test_sign_and_verify() -> None:
    body = b'{"zip":"90210"}'
    signature = sign(SECRET, NOW_S, body)
    assert signature.startswith("v1=") and len(signature) == 3 + 64
    assert verify(SECRET, NOW_S, body, signature, NOW_S)
    assert verify(SECRET, str(NOW_S), body, signature, NOW_S + 300)  # header text, edge of window
    assert verify(SECRET, NOW_S, body, f"v1=deadbeef, {signature}", NOW_S)  # rotation list


@pytest.mark.parametrize(
    ("secret", "ts", "body", "now"),
    [
        ("other-secret", NOW_S, b'{"zip":"90210"}', NOW_S),  # wrong secret
        (SECRET, NOW_S, b'{"zip":"90211"}', NOW_S),  # tampered body
        (SECRET, NOW_S + 1, b'{"zip":"90210"}', NOW_S),  # tampered timestamp
        (SECRET, NOW_S, b'{"zip":"90210"}', NOW_S + 301),  # stale
        (SECRET, NOW_S, b'{"zip":"90210"}', NOW_S - 301),  # from the future
        (SECRET, "17e8", b'{"zip":"90210"}', NOW_S),  # not a plain integer
        ("", NOW_S, b'{"zip":"90210"}', NOW_S),  # empty secret
    ],
)
def test_verify_refuses(secret: str, ts, body: bytes, now: int) -> None:
    signature = sign(SECRET, NOW_S, b'{"zip":"90210"}')
    assert not verify(secret, ts, body, signature, now)


@pytest.mark.parametrize(
    "signature", ["", "v1=", "v2=abc", "garbage", "v1=é" * 3, "v1=" + "0" * 64]
)
def test_verify_refuses_garbage_signatures(signature: str) -> None:
    assert not verify(SECRET, NOW_S, b"x", signature, NOW_S)


def test_sign_refuses_an_empty_secret() -> None:
    with pytest.raises(ValueError):
        sign("", NOW_S, b"")


@given(st.binary(max_size=256), st.integers(min_value=0, max_value=2**40))
def test_any_body_verifies_and_any_flip_fails(body: bytes, ts: int) -> None:
    signature = sign(SECRET, ts, body)
    assert verify(SECRET, ts, body, signature, ts)
    assert not verify(SECRET, ts, body + b"\x00", signature, ts)


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "outcome", "price", "reason"),
    [
        (200, {"status": "success", "bid": "12.50", "id": 7}, Outcome.ACCEPTED, 1250, None),
        (200, {"status": "SUCCESS", "bid": 22}, Outcome.ACCEPTED, 2200, None),
        (200, {"status": True, "bid": 0.1}, Outcome.ACCEPTED, 10, None),  # JSON true ~ True
        (200, {"status": "failure", "details": "Quota"}, Outcome.REJECTED, None, "Quota"),
        (200, {"nothing": 1}, Outcome.REJECTED, None, "http 200"),  # path missing: not a yes
        (200, {"status": "success", "bid": "0.00"}, Outcome.REJECTED, None, "zero bid"),
        (200, {"status": "success"}, Outcome.ERROR, None, None),  # yes, but for how much?
        (200, {"status": "success", "bid": None}, Outcome.ERROR, None, None),
        (200, {"status": "success", "bid": "-1"}, Outcome.ERROR, None, None),
        (200, {"status": "success", "bid": "1.005"}, Outcome.ERROR, None, None),
        (200, {"status": "success", "bid": "12,50"}, Outcome.ERROR, None, None),
        (200, {"status": "success", "bid": True}, Outcome.ERROR, None, None),
        (200, {"status": "success", "bid": "1e3"}, Outcome.ERROR, None, None),
        (400, {"details": ["bad zip", "bad st"]}, Outcome.REJECTED, None, "bad zip; bad st"),
        (422, {"status": "success", "bid": "5"}, Outcome.REJECTED, None, "http 422"),  # never yes
        (500, {"status": "success", "bid": "99"}, Outcome.ERROR, None, None),
        (503, b"", Outcome.ERROR, None, None),
        (429, {"status": "failure"}, Outcome.ERROR, None, None),
        (408, b"", Outcome.ERROR, None, None),
        (302, b"", Outcome.ERROR, None, None),
        (200, b"<html>oops</html>", Outcome.ERROR, None, None),  # unreadable, a path is set
        (200, b"", Outcome.ERROR, None, None),
        (404, b"Not Found", Outcome.ERROR, None, None),
    ],
)  # fmt: skip
def test_parse_rules(status: int, body, outcome: Outcome, price, reason) -> None:
    got = answer(PRICED, status, body)
    assert got.outcome is outcome, got
    assert got.price_minor == price
    if reason is not None:
        assert got.reason == reason
    if outcome is Outcome.ERROR:
        assert got.error and got.price_minor is None


def test_reference_is_read_as_text() -> None:
    got = answer(PRICED, 200, {"status": "success", "bid": 5, "id": 123456})
    assert got.reference == "123456"


def test_nested_paths_and_list_indexes() -> None:
    rules = ResponseRules(
        success_path="result.ok",
        success_values=("1",),
        price_path="result.bids.0.amount",
        reference_path="result.bids.0.id",
    )
    body = {"result": {"ok": 1, "bids": [{"amount": "3.5", "id": "b-1"}]}}
    got = answer(rules, 200, body)
    assert (got.outcome, got.price_minor, got.reference) == (Outcome.ACCEPTED, 350, "b-1")
    assert answer(rules, 200, {"result": {"ok": 1, "bids": []}}).outcome is Outcome.ERROR


def test_status_only_buyer() -> None:
    rules = ResponseRules()
    assert answer(rules, 201, b"thanks").outcome is Outcome.ACCEPTED
    assert answer(rules, 200, b"<html>anything</html>").outcome is Outcome.ACCEPTED  # no path
    rejected = answer(rules, 400, b"duplicate lead")
    assert rejected.outcome is Outcome.REJECTED and rejected.reason == "duplicate lead"
    assert answer(rules, 502, b"bad gateway").outcome is Outcome.ERROR
    assert answer(rules, 200, b"").price_minor is None  # no price rule: a fixed-price yes


def test_regex_rules_for_text_bodies() -> None:
    rules = ResponseRules(success_regex=r"(?i)<status>matched</status>",
                          price_regex=r"<best_bid>([\d.]+)</best_bid>")  # fmt: skip
    xml = b"<response><status>Matched</status><best_bid>0.10</best_bid></response>"
    got = answer(rules, 200, xml)
    assert (got.outcome, got.price_minor) == (Outcome.ACCEPTED, 10)
    assert answer(rules, 200, b"<status>Unmatched</status>").outcome is Outcome.REJECTED
    assert answer(rules, 200, b"<status>Matched</status>").outcome is Outcome.ERROR  # no price


def test_reason_is_truncated() -> None:
    got = answer(PRICED, 200, {"status": "no", "details": "x" * 10_000})
    assert got.reason == "x" * REASON_MAX_CHARS


def test_post_answers_ignore_price() -> None:
    got = answer(PRICED, 200, {"status": "success", "id": "L-9"}, kind="post")
    assert (got.outcome, got.reference, got.price_minor) == (Outcome.ACCEPTED, "L-9", None)


def test_charset_from_content_type() -> None:
    rules = ResponseRules(success_regex="réussi")
    config = EndpointConfig(url=URL, response=rules)
    body = "réussi".encode("latin-1")
    latin = parse_response(config, "post", 200, body, "text/plain; charset=latin-1")
    assert latin.outcome is Outcome.ACCEPTED
    bogus = parse_response(config, "post", 200, body, "text/plain; charset=bogus")  # utf-8
    assert bogus.outcome is Outcome.REJECTED


# --- prices ------------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=PRICE_MAX_MINOR))
def test_price_text_round_trips_to_minor_units(minor: int) -> None:
    major, cents = divmod(minor, 100)
    assert parse_price_minor(f"{major}.{cents:02d}") == minor
    assert parse_price_minor(Decimal(minor) / 100) == minor
    if cents == 0:
        assert parse_price_minor(major) == minor and parse_price_minor(str(major)) == minor
    if cents % 10 == 0:
        assert parse_price_minor(f"{major}.{cents // 10}") == minor  # "12.5"
    assert parse_price_minor(f"{major}.{cents:02d}000") == minor  # trailing zeros are exact


@given(st.integers(min_value=0, max_value=PRICE_MAX_MINOR * 10), st.integers(1, 9))
def test_sub_cent_prices_are_refused(tenths_of_cent: int, last: int) -> None:
    text = f"{tenths_of_cent // 1000}.{tenths_of_cent % 1000:03d}"[:-1] + str(last)
    assert parse_price_minor(text) is None
    assert parse_price_minor(Decimal(text)) is None


@given(st.decimals(allow_nan=True, allow_infinity=True))
def test_any_decimal_is_exact_or_refused(value: Decimal) -> None:
    minor = parse_price_minor(value)
    if minor is not None:
        assert 0 <= minor <= PRICE_MAX_MINOR and Decimal(minor) / 100 == value


@given(st.text(max_size=30))
def test_any_text_never_raises(text: str) -> None:
    minor = parse_price_minor(text)
    assert minor is None or 0 <= minor <= PRICE_MAX_MINOR


TOO_BIG = str(PRICE_MAX_MINOR // 100 + 1)


@pytest.mark.parametrize(
    "value",
    [12.5, True, False, None, [], {}, "-0.01", "+1", " ", "1e2", "NaN", "Infinity", "١٢", TOO_BIG],
)
def test_prices_refused(value) -> None:
    assert parse_price_minor(value) is None


def test_bid_from_raw_json_number_is_exact() -> None:
    # 0.1 + 0.2 style trouble never appears: the JSON text is read as a Decimal.
    got = answer(PRICED, 200, b'{"status":"success","bid":19.99}')
    assert got.price_minor == 1999 >= MIN_BID_MINOR
    huge = answer(PRICED, 200, b'{"status":"success","bid":1e999999}')
    assert huge.outcome is Outcome.ERROR
