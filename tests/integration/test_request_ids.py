"""Request ids: answered on every response, carried on log lines and into Dramatiq messages, so
a worker's log lines name the request that caused them."""

from __future__ import annotations

import logging
import time
import uuid

import dramatiq
import msgspec
import pytest
from litestar.testing import TestClient

from exchange import logs
from exchange.app import create_app
from exchange.auth.parties import PartyKind
from exchange.logs import ContextFilter, JsonFormatter, TextFormatter
from exchange.request_ids import HEADER, MAX_CHARS, accepted
from exchange.worker.broker import reset_broker, setup_broker
from exchange.worker.request_ids import OPTION
from tests.conftest import decode

PROBE_QUEUE = "request_id_probe"


@pytest.fixture
def captured(caplog):
    caplog.handler.addFilter(ContextFilter())
    caplog.set_level(logging.DEBUG)
    return caplog


def test_accepted_ids_are_bounded_and_of_a_safe_charset():
    assert accepted("abc-123_x.y:z") == "abc-123_x.y:z"
    assert accepted(b"0f8fad5b-d9cb-469f-a165-70867728950e") == "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert accepted("x" * MAX_CHARS) == "x" * MAX_CHARS
    for bad in ("", "x" * (MAX_CHARS + 1), "a b", "a\nb", "<script>", "é", b"\xff", None):
        assert accepted(bad) is None


def test_every_response_carries_a_request_id_and_errors_quote_it(exchange):
    client = exchange.client
    made = client.get("/health")
    assert made.status_code == 200
    assert uuid.UUID(made.headers[HEADER]).version == 7
    assert client.get("/health").headers[HEADER] != made.headers[HEADER]

    kept = client.get("/v1/campaigns", headers={HEADER: "trace-42"})  # 401: no key
    assert kept.status_code == 401 and kept.headers[HEADER] == "trace-42"
    assert decode(kept)["error"]["request_id"] == "trace-42"

    for bad in ("has spaces", "x" * (MAX_CHARS + 1)):
        replaced = client.get("/nowhere", headers={HEADER: bad})
        assert replaced.status_code == 404
        assert replaced.headers[HEADER] != bad
        assert decode(replaced)["error"] == {
            "code": "not_found", "message": "no such route or resource",
            "request_id": replaced.headers[HEADER],
        }  # fmt: skip

    operator = exchange.operator
    invalid = client.post("/v1/campaigns", content=b"{", headers={**operator.headers, HEADER: "bad-json"})
    assert invalid.status_code == 400
    assert decode(invalid)["error"]["request_id"] == "bad-json" == invalid.headers[HEADER]


def test_access_log_has_route_status_party_and_no_query_or_headers(exchange, captured):
    supplier = exchange.new_party(PartyKind.SUPPLIER)
    r = exchange.client.get(
        "/v1/leads?api_key=supersecret&limit=5", headers={**supplier.headers, HEADER: "acc-1"}
    )
    assert r.status_code == 200, r.text
    lines = [rec for rec in captured.records if rec.name == "exchange.access"]
    assert len(lines) == 1
    line = lines[0]
    assert line.levelno == logging.INFO and line.getMessage() == "request"
    assert (line.method, line.route, line.status, line.request_id) == ("GET", "/v1/leads", 200, "acc-1")
    assert line.party_id == str(supplier.id)
    assert isinstance(line.duration_ms, float) and line.duration_ms >= 0
    text = JsonFormatter().format(line)
    assert "supersecret" not in text and supplier.key not in text and "authorization" not in text.lower()

    captured.clear()
    exchange.client.get("/health")
    (health,) = [rec for rec in captured.records if rec.name == "exchange.access"]
    assert health.levelno == logging.DEBUG and health.route == "/health" and not hasattr(health, "party_id")


def test_both_formats_print_the_context_ids():
    record = logging.LogRecord("exchange.x", logging.INFO, __file__, 1, "hello", (), None)
    tokens = [logs.request_id.set("rid-1"), logs.message_id.set("mid-1"), logs.actor.set("deliver_sale")]
    try:
        assert ContextFilter().filter(record)
    finally:
        logs.actor.reset(tokens[2])
        logs.message_id.reset(tokens[1])
        logs.request_id.reset(tokens[0])
    entry = msgspec.json.decode(JsonFormatter().format(record))
    assert (entry["request_id"], entry["message_id"], entry["actor"]) == ("rid-1", "mid-1", "deliver_sale")
    line = TextFormatter("%(message)s").format(record)
    assert "request_id=rid-1" in line and "message_id=mid-1" in line and "actor=deliver_sale" in line

    outside = logging.LogRecord("exchange.x", logging.INFO, __file__, 1, "hello", (), None)
    ContextFilter().filter(outside)
    assert not hasattr(outside, "request_id")


def _probe_actors(broker: dramatiq.Broker, seen: list[dict]) -> tuple[dramatiq.Actor, dramatiq.Actor]:
    """A sync and an async actor that note the logging context they run in, and log a line."""
    log = logging.getLogger("exchange.test.probe")

    def note(kind: str) -> None:
        seen.append({"kind": kind, "request_id": logs.request_id.get(),
                     "message_id": logs.message_id.get(), "actor": logs.actor.get()})  # fmt: skip
        log.info("probe ran", extra={"kind": kind})

    def sync_probe() -> None:
        note("sync")

    async def async_probe() -> None:
        note("async")

    return (
        dramatiq.actor(sync_probe, actor_name="sync_probe", queue_name=PROBE_QUEUE, broker=broker, max_retries=0),
        dramatiq.actor(async_probe, actor_name="async_probe", queue_name=PROBE_QUEUE, broker=broker, max_retries=0),
    )


def _carry_and_process(broker: dramatiq.Broker, captured) -> None:
    seen: list[dict] = []
    sync_probe, async_probe = _probe_actors(broker, seen)
    token = logs.request_id.set("req-from-a-post")
    try:
        sent = [sync_probe.send(), async_probe.send()]
    finally:
        logs.request_id.reset(token)
    orphan = sync_probe.send()  # outside any request: an id of its own
    assert [m.options[OPTION] for m in sent] == ["req-from-a-post"] * 2
    assert accepted(orphan.options[OPTION]) and orphan.options[OPTION] != "req-from-a-post"

    worker = dramatiq.Worker(broker, worker_threads=1)
    worker.start()
    try:
        deadline = time.monotonic() + 15
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()
    by_message = {s["message_id"]: s for s in seen}
    assert by_message[sent[0].message_id] == {
        "kind": "sync", "request_id": "req-from-a-post", "message_id": sent[0].message_id, "actor": "sync_probe"
    }  # fmt: skip
    assert by_message[sent[1].message_id] == {
        "kind": "async", "request_id": "req-from-a-post", "message_id": sent[1].message_id, "actor": "async_probe"
    }  # fmt: skip
    assert by_message[orphan.message_id]["request_id"] == orphan.options[OPTION]
    probe_lines = [r for r in captured.records if r.name == "exchange.test.probe"]
    assert {(r.kind, r.request_id, r.actor) for r in probe_lines} >= {
        ("sync", "req-from-a-post", "sync_probe"), ("async", "req-from-a-post", "async_probe")
    }  # fmt: skip
    assert logs.request_id.get() is None and logs.message_id.get() is None


def test_the_request_id_rides_stub_broker_messages_into_the_worker(backend, captured):
    reset_broker()
    try:
        broker = setup_broker(msgspec.structs.replace(backend, redis_url=None))
        _carry_and_process(broker, captured)
    finally:
        reset_broker()


def test_the_request_id_rides_redis_messages_into_the_worker(backend, redis_url, captured):
    reset_broker()
    try:
        broker = setup_broker(msgspec.structs.replace(backend, redis_url=redis_url))
        broker.flush_all()
        _carry_and_process(broker, captured)
        broker.flush_all()
    finally:
        reset_broker()


def test_a_post_and_the_delivery_retry_it_causes_log_one_request_id(backend, captured):
    """The supplier's post enqueues the delivery's retry; the in-process worker's line about
    that attempt carries the post's request id."""
    from exchange.simulator import Behaviour, BuyerServer, endpoints
    from tests.integration.test_delivery_faults import FAST_RETRIES, _market, _sale_of, _wait
    from tests.integration.test_intake_api import solar_lead
    from tests.market import add_campaign

    reset_broker()
    settings = msgspec.structs.replace(backend, **FAST_RETRIES)
    try:
        with TestClient(create_app(settings, in_process_worker=True)) as client:
            _, supplier, buyer, behaviour = _market(settings, client, Behaviour(post_fail_first=1, latency_ms=5))
            with BuyerServer({"flaky": behaviour}) as server:
                add_campaign(settings, buyer.id, fixed_price_minor=3000, endpoints=endpoints(server.base_url, "flaky", live=False))
                r = client.post("/v1/leads", json=solar_lead(), headers={**supplier.headers, HEADER: "post-7"})
                assert r.status_code in (200, 201) and r.headers[HEADER] == "post-7"
                out = decode(r)
                _wait(lambda: _sale_of(settings, out["lead_id"]).status == "delivered")
    finally:
        reset_broker()
    attempts = [r for r in captured.records if r.getMessage() == "delivery attempt"]
    assert attempts and all(r.request_id == "post-7" and r.actor == "deliver_sale" for r in attempts)
    assert any(r.outcome == "accepted" for r in attempts)
