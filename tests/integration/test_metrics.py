"""Prometheus metrics: /metrics answers, the counters move where things happen, a broken source
never breaks the scrape, and `exchange worker` serves its processes' metrics."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
import redis
from litestar.testing import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from exchange import metrics
from exchange.app import create_app
from exchange.auth.parties import PartyKind
from exchange.settings import load_settings
from tests.conftest import decode
from tests.integration.test_auction_api import ping_body
from tests.integration.test_auction_live import _campaign, live  # noqa: F401 (a fixture)
from tests.integration.test_intake_api import solar_lead
from tests.market import add_campaign, fund

WORKER_METRICS_PORT = 18157


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics_answer_without_a_key_and_stay_out_of_the_schema(exchange):
    r = exchange.client.get("/metrics")
    assert r.status_code == 200
    for name in (
        "exchange_pings_total", "exchange_ping_latency_seconds", "exchange_ping_timeouts_total",
        "exchange_bids_total", "exchange_sales_total", "exchange_sale_amount_minor_total",
        "exchange_delivery_attempts_total", "exchange_http_requests_total", "exchange_queue_depth",
        "exchange_cap_usage_ratio", "exchange_metrics_source_up",
    ):  # fmt: skip
        assert f"# TYPE {name} " in r.text, name
    samples = scrape(exchange.client)
    assert samples[("exchange_queue_depth", (("queue", "delivery"), ("state", "ready")))] == 0
    assert samples[("exchange_metrics_source_up", (("source", "database"),))] == 1
    assert samples[("exchange_metrics_source_up", (("source", "broker"),))] == 1
    # Requests are counted by route template, never by raw path (bounded series).
    lead_id = uuid.uuid4()
    exchange.client.get(f"/v1/leads/{lead_id}", headers=exchange.operator.headers)
    text = exchange.client.get("/metrics").text
    assert 'route="/v1/leads/{lead_id}"' in text and str(lead_id) not in text
    assert exchange.client.get("/v1/leads").status_code == 401  # the API still wants a key
    schema = exchange.client.get("/schema/openapi.json").json()
    assert "/metrics" not in schema["paths"]


def test_metrics_can_be_turned_off(backend):
    settings = load_settings(env={"EXCHANGE_METRICS_ENABLED": "false"}, database_url=backend.database_url,
                             secret_key=backend.secret_key, var_dir=backend.var_dir)  # fmt: skip
    with TestClient(create_app(settings, in_process_worker=False)) as client:
        assert client.get("/metrics").status_code == 404


def test_pings_bids_timeouts_and_sales_are_counted(live):  # noqa: F811
    exchange, supplier, buyers, server = live
    _campaign(exchange, buyers, server, "fast")
    _campaign(exchange, buyers, server, "slow")
    _campaign(exchange, buyers, server, "broken")
    fast, slow, broken = (str(buyers[n].id) for n in ("fast", "slow", "broken"))
    before_bids = value("exchange_bids_total", vertical="solar")
    before_offered = value("exchange_auctions_total", vertical="solar", outcome="offered")
    before_sales = value("exchange_sales_total", vertical="solar", mode="post")
    before_amount = value("exchange_sale_amount_minor_total", currency="USD")
    before_margin = value("exchange_sale_margin_minor_total", currency="USD")

    offer = decode(exchange.client.post("/v1/pings", json=ping_body(), headers=supplier.headers))
    assert offer["status"] == "accepted"
    assert value("exchange_pings_total", buyer=fast, outcome="bid") == 1
    assert value("exchange_pings_total", buyer=slow, outcome="timeout") == 1
    assert value("exchange_ping_timeouts_total", buyer=slow) == 1
    assert value("exchange_pings_total", buyer=broken, outcome="error") == 1
    assert value("exchange_ping_latency_seconds_count", buyer=fast) == 1
    assert value("exchange_ping_latency_seconds_bucket", buyer=fast, le="0.3") == 1  # ms-scale buckets
    assert value("exchange_bids_total", vertical="solar") == before_bids + 1
    assert value("exchange_auctions_total", vertical="solar", outcome="offered") == before_offered + 1

    post = {"ping_id": offer["ping_id"], "fields": solar_lead()["fields"]}
    out = decode(exchange.client.post("/v1/posts", json=post, headers=supplier.headers))
    assert out["status"] == "sold"
    assert value("exchange_delivery_attempts_total", buyer=fast, outcome="accepted") == 1
    assert value("exchange_delivery_latency_seconds_count", buyer=fast) == 1
    assert value("exchange_sales_total", vertical="solar", mode="post") == before_sales + 1
    assert value("exchange_sale_amount_minor_total", currency="USD") == before_amount + 3000
    assert value("exchange_sale_margin_minor_total", currency="USD") == before_margin + 600
    # What the API serves is what was counted.
    samples = scrape(exchange.client)
    key = ("exchange_pings_total", (("buyer", slow), ("outcome", "timeout")))
    assert samples[key] == 1


def test_rejected_and_retried_deliveries_are_counted(live):  # noqa: F811
    from exchange.simulator import endpoints

    exchange, supplier, buyers, server = live
    picky, broken = str(buyers["picky"].id), str(buyers["broken"].id)
    # A fixed-price buyer whose post endpoint refuses connections: sold, its delivery left
    # for a retry.
    add_campaign(exchange.settings, buyers["broken"].id, fixed_price_minor=2000,
                 endpoints=endpoints("http://127.0.0.1:1", "broken", live=False))  # fmt: skip
    before_sales = value("exchange_sales_total", vertical="solar", mode="direct")
    out = decode(exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers))
    assert out["status"] == "sold"
    assert value("exchange_delivery_attempts_total", buyer=broken, outcome="retry") == 1
    assert value("exchange_sales_total", vertical="solar", mode="direct") == before_sales + 1

    _campaign(exchange, buyers, server, "picky")  # bids 50.00 (above 20.00), rejects every post
    before_unsold = value("exchange_leads_posted_total", vertical="solar", mode="direct", status="unsold")
    lead = solar_lead(phone="212-555-0123", email="picky@example.com")
    out = decode(exchange.client.post("/v1/leads", json=lead, headers=supplier.headers))
    assert out["status"] == "unsold"
    assert value("exchange_delivery_attempts_total", buyer=picky, outcome="rejected") == 1
    assert value("exchange_leads_posted_total", vertical="solar", mode="direct", status="unsold") == before_unsold + 1


def test_cap_usage_is_read_at_scrape_time(exchange):
    exchange.seed_verticals()
    supplier = exchange.new_party(PartyKind.SUPPLIER)
    buyer = exchange.new_party(PartyKind.BUYER)
    fund(exchange.settings, buyer.id, 1_000_000)
    campaign = add_campaign(exchange.settings, buyer.id, caps=[
        {"window": "day", "max_count": 4}, {"window": "month", "max_spend_minor": 10_000},
    ])  # fmt: skip
    out = decode(exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers))
    assert out["status"] == "sold"
    samples = scrape(exchange.client)
    ratio = lambda window, kind: samples[  # noqa: E731
        ("exchange_cap_usage_ratio", (("campaign", campaign), ("kind", kind), ("window", window)))
    ]
    assert ratio("day", "count") == 0.25
    assert ratio("month", "spend") == 0.2  # 20.00 of 100.00


class _BrokenDb:
    def __init__(self, hang: bool) -> None:
        self.hang = hang

    @contextlib.asynccontextmanager
    async def read(self):
        if self.hang:
            import asyncio

            await asyncio.sleep(3600)
        raise OSError("connection refused")
        yield  # pragma: no cover


@pytest.mark.parametrize("hang", [False, True], ids=["refused", "hangs"])
def test_a_broken_database_or_broker_never_breaks_the_scrape(exchange, monkeypatch, hang):
    monkeypatch.setattr(metrics, "SOURCE_TIMEOUT_S", 0.3)
    state = exchange.client.app.state
    monkeypatch.setattr(state, "db", _BrokenDb(hang))
    before = value("exchange_metrics_source_errors_total", source="database")
    started = time.monotonic()
    samples = scrape(exchange.client)
    assert time.monotonic() - started < 2
    assert samples[("exchange_metrics_source_up", (("source", "database"),))] == 0
    assert samples[("exchange_metrics_source_up", (("source", "broker"),))] == 1
    assert value("exchange_metrics_source_errors_total", source="database") == before + 1
    assert not any(name == "exchange_cap_usage_ratio" for name, _ in samples)
    # A broker that cannot be read: the same, and the next scrape recovers once it can.
    monkeypatch.setattr(state, "settings", state.settings.__class__(
        **{**{f: getattr(state.settings, f) for f in state.settings.__struct_fields__},
           "redis_url": "redis://127.0.0.1:1/0"}
    ))  # fmt: skip
    monkeypatch.setattr(state, "broker", None)
    samples = scrape(exchange.client)
    assert samples[("exchange_metrics_source_up", (("source", "broker"),))] == 0
    monkeypatch.undo()
    samples = scrape(exchange.client)
    assert samples[("exchange_metrics_source_up", (("source", "database"),))] == 1


def test_queue_depth_reads_the_redis_broker(redis_url):
    namespace = f"metrics-test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    keys = [f"{namespace}:delivery", f"{namespace}:delivery.DQ.msgs", f"{namespace}:delivery.XQ"]
    try:
        client.rpush(keys[0], "a", "b")
        client.hset(keys[1], "c", "{}")
        client.zadd(keys[2], {"d": 1})
        family = metrics.queue_depth_redis(redis_url, namespace, ["delivery", "teams"])
        got = {tuple(s.labels.values()): s.value for s in family.samples}
        assert got[("delivery", "ready")] == 2
        assert got[("delivery", "delayed")] == 1
        assert got[("delivery", "dead")] == 1
        assert got[("teams", "ready")] == 0
    finally:
        client.delete(*keys)
        client.close()


def test_worker_processes_counters_are_aggregated(tmp_path):
    """Each worker process writes its counters to the multiprocess directory; the workers'
    server adds them up."""
    directory = metrics.prepare_multiprocess_dir(str(tmp_path), "worker", WORKER_METRICS_PORT)
    buyer = f"b-{uuid.uuid4().hex[:6]}"
    code = (
        "from exchange import metrics; "
        f"metrics.delivery_attempted({buyer!r}, 'accepted', 12)"
    )
    env = {**os.environ, metrics.MULTIPROC_ENV: directory}
    for _ in range(2):  # two processes
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    registry = metrics.worker_registry(directory, None)
    labels = {"buyer": buyer, "outcome": "accepted"}
    assert registry.get_sample_value("exchange_delivery_attempts_total", labels) == 2
    assert registry.get_sample_value("exchange_metrics_source_up", {"source": "broker"}) == 1


def test_api_processes_answer_the_sum_of_all_of_them(exchange, tmp_path, monkeypatch):
    """`exchange serve --workers N`: a scrape reaches one process and answers for all N."""
    directory = metrics.prepare_multiprocess_dir(str(tmp_path), "api", 18158)
    buyer = f"b-{uuid.uuid4().hex[:6]}"
    code = f"from exchange import metrics; metrics.ping_answered({buyer!r}, 'bid', 40)"
    env = {**os.environ, metrics.MULTIPROC_ENV: directory}
    for _ in range(3):
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    monkeypatch.setenv(metrics.MULTIPROC_ENV, directory)
    samples = scrape(exchange.client)
    assert samples[("exchange_pings_total", (("buyer", buyer), ("outcome", "bid")))] == 3
    assert samples[("exchange_metrics_source_up", (("source", "database"),))] == 1


def test_serve_with_several_processes_uses_multiprocess_mode(tmp_path, monkeypatch):
    import uvicorn

    from exchange import cli

    settings = load_settings(env={}, var_dir=str(tmp_path / "var"), secret_key="s")
    monkeypatch.setenv(metrics.MULTIPROC_ENV, "")  # restored after the test
    monkeypatch.delenv(metrics.MULTIPROC_ENV)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: None)
    monkeypatch.setattr(cli.signal, "signal", lambda *a: None)
    cli.cmd_serve(settings, argparse.Namespace(host=None, port=18159, workers=1))
    assert metrics.MULTIPROC_ENV not in os.environ
    cli.cmd_serve(settings, argparse.Namespace(host=None, port=18159, workers=2))
    assert os.environ[metrics.MULTIPROC_ENV].endswith("api-metrics/18159")


def test_exchange_worker_serves_metrics_on_its_port(tmp_path, redis_url, monkeypatch):
    # What `exchange worker` runs: a forked metrics server beside the Dramatiq processes.
    from exchange import cli

    settings = load_settings(env={}, redis_url=redis_url, worker_metrics_port=WORKER_METRICS_PORT,
                             var_dir=str(tmp_path / "var"), secret_key="s")  # fmt: skip
    seen = []
    monkeypatch.setenv(metrics.MULTIPROC_ENV, "")  # restored after the test
    monkeypatch.setattr(os, "execv", lambda exe, argv: seen.append(argv))
    cli.cmd_worker(settings, argparse.Namespace(processes=1, threads=1))
    argv = seen[0]
    assert argv[argv.index("--fork-function") + 1] == "exchange.metrics:serve_worker_metrics"
    assert os.environ[metrics.MULTIPROC_ENV].startswith(str(tmp_path / "var"))
    off = load_settings(env={}, redis_url=redis_url, var_dir=str(tmp_path / "var"), secret_key="s")
    seen.clear()
    cli.cmd_worker(off, argparse.Namespace(processes=1, threads=1))
    assert "--fork-function" not in seen[0]

    # And for real: the worker command, its port answering with the queues' depth.
    monkeypatch.undo()
    env = {
        **os.environ,
        "EXCHANGE_REDIS_URL": redis_url,
        "EXCHANGE_WORKER_METRICS_PORT": str(WORKER_METRICS_PORT),
        "EXCHANGE_VAR_DIR": str(tmp_path / "var"),
        "EXCHANGE_DATABASE_URL": f"sqlite:///{tmp_path}/worker.db",
        "EXCHANGE_SECRET_KEY": "s",
        "EXCHANGE_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "exchange.cli", "worker", "--processes", "1", "--threads", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        text = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and text is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{WORKER_METRICS_PORT}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                time.sleep(0.2)
        assert text is not None, "the worker metrics port never answered"
        assert 'exchange_queue_depth{queue="delivery",state="ready"}' in text
        assert 'exchange_metrics_source_up{source="broker"} 1.0' in text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
