"""Graceful shutdown of real processes: `exchange serve` finishes the request in flight on
SIGTERM and exits 0; `exchange worker` finishes the delivery it is running and exits 0, the
delivery made exactly once. Each runs the real command on a PostgreSQL database of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from exchange.app import create_app
from exchange.cluster import free_ports
from exchange.request_ids import HEADER
from exchange.settings import Settings, load_settings
from exchange.simulator import Behaviour, BuyerServer, post_endpoint
from exchange.store.tables import delivery_attempts, sales
from exchange.worker.broker import reset_broker, setup_broker
from tests.conftest import TEST_SECRET, _truncate_pg, decode, run, scratch_pg_database
from tests.integration.test_delivery_faults import _market, _one_charge, _sale_of, _wait
from tests.integration.test_intake_api import solar_lead
from tests.market import add_campaign

ROOT = Path(__file__).resolve().parents[2]
BUYER_ANSWER_S = 3.0  # the buyer holds each post this long: the request or actor is in flight
GRACE_S = 15
EXIT_WAIT_S = 20


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with scratch_pg_database("exchange_test_shutdown") as url:
        yield url


def _settings(database: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings on an emptied database: each test builds the only market in it."""
    _truncate_pg(load_settings(env={}, database_url=database, secret_key=TEST_SECRET).database_url)
    return load_settings(env={}, database_url=database, secret_key=TEST_SECRET, var_dir=str(tmp_path / "var"),
                         campaign_cache_ttl_ms=0, **overrides)  # fmt: skip


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env.update(
        PYTHONPATH=str(ROOT),
        EXCHANGE_DATABASE_URL=settings.database_url,
        EXCHANGE_SECRET_KEY=settings.secret_key,
        EXCHANGE_VAR_DIR=settings.var_dir,
        EXCHANGE_SHUTDOWN_GRACE_S=str(GRACE_S),
        EXCHANGE_LOG_JSON="true",
        **extra,
    )
    if settings.redis_url:
        env["EXCHANGE_REDIS_URL"] = settings.redis_url
    return env




def _start(argv: list[str], env: dict[str, str], tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"{argv[0]}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "exchange.cli", *argv], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    return proc, log


def _json_lines(log: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in log.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                pass
    return lines


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)


def _posts(server: BuyerServer) -> list:
    return [r for r in server.received if r.kind == "post"]


def test_serve_finishes_the_request_in_flight_on_sigterm_and_exits_0(database, tmp_path):
    settings = _settings(database, tmp_path)
    _, supplier, buyer, behaviour = _market(settings, None, Behaviour(latency_ms=5, post_latency_ms=int(BUYER_ANSWER_S * 1000)))
    with BuyerServer({"slow": behaviour}) as server:
        add_campaign(settings, buyer.id, fixed_price_minor=3000,
                     endpoints={"post": post_endpoint(server.base_url, "slow", timeout_ms=10_000)})  # fmt: skip
        port = free_ports(1)[0]
        base = f"http://127.0.0.1:{port}"
        proc, log = _start(["serve", "--port", str(port)], _env(settings), tmp_path)
        try:
            _wait(lambda: _healthy(base), seconds=15)
            answer: dict[str, Any] = {}

            def post() -> None:
                answer["response"] = httpx.post(f"{base}/v1/leads", json=solar_lead(), timeout=30,
                                                headers={**supplier.headers, HEADER: "in-flight-1"})  # fmt: skip

            client = threading.Thread(target=post)
            client.start()
            _wait(lambda: len(_posts(server)) == 1, seconds=10)  # the sale's post is at the buyer
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            with pytest.raises(httpx.ConnectError):  # shutting down: no new connections...
                httpx.get(f"{base}/health", timeout=2)
            client.join(EXIT_WAIT_S)
            response = answer["response"]  # ...but the one in flight gets its normal answer
            assert response.status_code == 201, response.text
            assert response.headers[HEADER] == "in-flight-1"
            out = decode(response)
            assert out["status"] == "sold"
            assert proc.wait(EXIT_WAIT_S) == 0
        finally:
            _stop(proc)
    assert _sale_of(settings, out["lead_id"]).status == "delivered"
    _one_charge(settings, out["lead_id"])
    access = [e for e in _json_lines(log) if e.get("logger") == "exchange.access" and e["route"] == "/v1/leads"]
    assert [(e["method"], e["status"], e["request_id"], e["party_id"]) for e in access] == [
        ("POST", 201, "in-flight-1", str(supplier.id))
    ]


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


FAST_BACKOFF = dict(delivery_backoff_min_ms=50, delivery_backoff_max_ms=200)


@pytest.fixture
def redis_settings(database, redis_url, tmp_path) -> Iterator[Settings]:
    reset_broker()
    settings = _settings(database, tmp_path, redis_url=redis_url, **FAST_BACKOFF)
    broker = setup_broker(settings)
    broker.flush_all()
    yield settings
    setup_broker(settings).flush_all()
    reset_broker()


def test_worker_finishes_the_delivery_it_runs_on_sigterm_and_exits_0(redis_settings, tmp_path):
    settings = redis_settings
    with BuyerServer({}) as server:
        with TestClient(create_app(settings, in_process_worker=False)) as client:
            _, supplier, buyer, behaviour = _market(settings, client, Behaviour(post_fail_first=1, latency_ms=5))
            server.behaviours["flaky"] = behaviour
            add_campaign(settings, buyer.id, fixed_price_minor=3000,
                         endpoints={"post": post_endpoint(server.base_url, "flaky", timeout_ms=10_000)})  # fmt: skip
            r = client.post("/v1/leads", json=solar_lead(), headers={**supplier.headers, HEADER: "post-for-worker"})
            out = decode(r)
            assert out["status"] == "sold" and _sale_of(settings, out["lead_id"]).status == "delivering"
        behaviour.post_latency_ms = int(BUYER_ANSWER_S * 1000)  # the worker's attempt takes a while
        env = _env(settings, **{f"EXCHANGE_{k.upper()}": str(v) for k, v in FAST_BACKOFF.items()})
        proc, log = _start(["worker", "--processes", "1", "--threads", "2"], env, tmp_path)
        try:
            _wait(lambda: len(_posts(server)) == 2, seconds=20)  # the retry is at the buyer
            assert _sale_of(settings, out["lead_id"]).status == "delivering"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(EXIT_WAIT_S) == 0
        finally:
            _stop(proc)
        time.sleep(0.2)
        assert len(_posts(server)) == 2  # the failed first post and the worker's: no third
    assert _sale_of(settings, out["lead_id"]).status == "delivered"
    attempts = run(settings, lambda c: c.execute(
        sa.select(delivery_attempts.c.outcome)
        .join(sales, sales.c.id == delivery_attempts.c.sale_id)
        .where(sales.c.lead_id == uuid.UUID(out["lead_id"]))
        .order_by(delivery_attempts.c.attempt)
    )).scalars().all()  # fmt: skip
    assert attempts == ["error", "accepted"]
    _one_charge(settings, out["lead_id"])
    lines = [e for e in _json_lines(log) if e.get("msg") == "delivery attempt"]
    assert [(e["request_id"], e["actor"], e["outcome"]) for e in lines] == [("post-for-worker", "deliver_sale", "accepted")]


def test_the_grace_and_heartbeat_must_be_positive():
    from exchange.settings import SettingsError

    for name in ("EXCHANGE_SHUTDOWN_GRACE_S", "EXCHANGE_WORKER_HEARTBEAT_TIMEOUT_S"):
        with pytest.raises(SettingsError, match=name):
            load_settings(env={name: "0"}, secret_key=TEST_SECRET)
