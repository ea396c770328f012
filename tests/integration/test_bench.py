"""`exchange bench --quick` end to end: it runs every scenario on PostgreSQL, Redis and the
embedded default, and its correctness checks pass. Its speed is not checked here (the machine
running the suite is busy); that it finishes under two minutes on a quiet machine is the
benchmark's own promise, so this test allows more.

The benchmark flushes the Redis db it is given: the test gives it its own
(``EXCHANGE_TEST_BENCH_REDIS_URL``, default db 8), never the suite's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis

from exchange.bench import SCENARIOS
from tests.conftest import PG_ADMIN_URL, _unavailable

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

BENCH_REDIS_URL = os.environ.get("EXCHANGE_TEST_BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
TIMEOUT_S = 600  # --quick is meant for under two minutes; a loaded CI machine gets slack
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def services() -> None:
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        _unavailable("PostgreSQL", exc)
    try:
        redis.Redis.from_url(BENCH_REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        _unavailable("Redis", exc)


def test_quick_bench_runs_every_scenario_and_its_checks_pass(services: None, tmp_path: Path) -> None:
    report = ROOT / "docs" / "performance.md"
    before = report.read_bytes() if report.exists() else None
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "exchange.cli", "bench", "--quick", "--json", str(out),
         "--postgres-dsn", PG_ADMIN_URL, "--redis-url", BENCH_REDIS_URL],
        cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]
    results = json.loads(out.read_text())

    assert results["ok"] is True and results["failures"] == []
    assert results["scenarios_run"] == list(SCENARIOS)
    ran = {row["scenario"] for row in results["rows"]}
    assert set(SCENARIOS) | {"baseline"} <= ran, ran
    names = {check["name"] for check in results["checks"]}
    for where in ("PostgreSQL", "SQLite"):
        for check in ("every lead terminal", "no cap exceeded", "trial balance zero",
                      "ledger reconciles", "every sale delivered"):  # fmt: skip
            assert f"{check} ({where})" in names
    assert all(check["ok"] for check in results["checks"]), results["checks"]
    assert {t["scenario"] for t in results["targets"]} >= {"post", "ping", "deadline", "matching", "teams", "memory"}
    # --quick writes no report unless asked.
    assert (report.read_bytes() if report.exists() else None) == before
    database = results["settings"]["database"]
    assert database.startswith("bench_")
    with psycopg.connect(PG_ADMIN_URL) as conn:  # its database is gone
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (database,)).fetchone()
    assert left == (0,)


def test_profile_says_where_a_direct_posts_time_goes(services: None, tmp_path: Path) -> None:
    out = tmp_path / "profile.json"
    done = subprocess.run(
        [sys.executable, "-m", "exchange.cli", "bench", "--profile", "post", "--leads", "20", "--json", str(out),
         "--postgres-dsn", PG_ADMIN_URL, "--redis-url", BENCH_REDIS_URL],
        cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]
    result = json.loads(out.read_text())
    assert result["name"] == "post" and result["leads"] == 20
    assert result["api_cpu_ms"] > 0 and result["wall_ms"] >= result["statement_wall_ms"] > 0
    statements = {s["sql"].split(" ")[0] + " " + s["sql"].split(" ")[2] for s in result["statements"]}
    # The sale's own writes are among what it counts, each once per lead.
    assert {"INSERT leads", "INSERT sales", "INSERT deliveries", "INSERT journal_entries"} <= statements, statements
    assert any("direct_post" in f["name"] for f in result["functions"])
    assert "CPU per lead" in done.stdout


@pytest.mark.parametrize("name,statement", [("ping", "INSERT pings"), ("route", "INSERT lead_owners")])
def test_profile_runs_for_pings_and_routing(services: None, tmp_path: Path, name: str, statement: str) -> None:
    out = tmp_path / "profile.json"
    done = subprocess.run(
        [sys.executable, "-m", "exchange.cli", "bench", "--profile", name, "--leads", "10", "--json", str(out),
         "--postgres-dsn", PG_ADMIN_URL, "--redis-url", BENCH_REDIS_URL],
        cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]
    result = json.loads(out.read_text())
    assert result["name"] == name and result["leads"] == 10 and result["api_cpu_ms"] > 0
    statements = {s["sql"].split(" ")[0] + " " + s["sql"].split(" ")[2] for s in result["statements"]}
    assert statement in statements, statements
