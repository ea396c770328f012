"""``exchange bench --profile NAME``: where one lead's time goes, measured in one process.

The load scenarios say how fast; this says why. It builds the same market as the benchmark (a
fresh ``bench_*`` database, 1,000 fixed-price campaigns, 10 live-bid buyers, the buyer servers
in their own process), runs the exchange app in this process and sends it leads one at a time
(no concurrency, so nothing waits on anything but the work itself), then reports per lead:

- CPU of the API (this process) and of PostgreSQL (its server processes, read from /proc: run
  it on a quiet machine);
- every SQL statement: how many per lead, and the wall time each took (driver + server);
- the exchange's own functions with the most CPU (cProfile on a second batch, which it slows
  down: compare the functions with each other, not with the first figure).
"""

from __future__ import annotations

import asyncio
import collections
import cProfile
import datetime as dt
import logging
import os
import pstats
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec

from exchange.bench import PROFILE_LEADS, buyers, leads, procs, seed

WARMUP_LEADS = 50  # fills the caches and lets psycopg prepare every statement first
ROUTE_AGENTS = 100
STATEMENT_ROWS_MAX = 30
FUNCTION_ROWS_MAX = 30
BUYER_LATENCY_MS = (5.0, 10.0)


class Statement(msgspec.Struct, kw_only=True):
    sql: str
    per_lead: float
    mean_us: float


class Function(msgspec.Struct, kw_only=True):
    name: str
    cumulative_ms: float  # per lead, under cProfile
    calls: float  # per lead


class ProfileResult(msgspec.Struct, kw_only=True):
    name: str
    leads: int
    wall_ms: float
    api_cpu_ms: float
    postgres_cpu_ms: float
    statements_per_lead: float
    statement_wall_ms: float
    statements: list[Statement]
    functions: list[Function]


def postgres_cpu_s() -> dict[str, float]:
    """CPU seconds used so far by each of this machine's PostgreSQL server processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if not f.read().startswith(b"postgres:"):
                    continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return used


def postgres_cpu_since(before: dict[str, float]) -> float:
    """CPU seconds PostgreSQL used since ``before``: processes alive at both ends, and those
    started since (one that exited meanwhile took its time with it: a small undercount)."""
    return sum(t - before.get(pid, 0.0) for pid, t in postgres_cpu_s().items() if t >= before.get(pid, 0.0))


class _Statements:
    """SQL statements seen through the engine's events, with the wall time of each."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.engine = engine
        self.seen: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
        self._event = event

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        context._bench_started = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        entry = self.seen[" ".join(statement.split())[:140]]
        entry[0] += 1
        entry[1] += time.perf_counter() - context._bench_started

    def __enter__(self) -> _Statements:
        self._event.listen(self.engine, "before_cursor_execute", self._before)
        self._event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._event.remove(self.engine, "before_cursor_execute", self._before)
        self._event.remove(self.engine, "after_cursor_execute", self._after)


def _functions(profile: cProfile.Profile, count: int) -> list[Function]:
    stats = pstats.Stats(profile)
    rows = []
    for (path, line, name), (_cc, calls, _tt, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "/exchange/" not in path or "/exchange/bench/" in path:
            continue
        short = path.split("/exchange/", 1)[1]
        rows.append(Function(name=f"{name} (exchange/{short}:{line})", cumulative_ms=cumulative / count * 1000,
                             calls=calls / count))  # fmt: skip
    return sorted(rows, key=lambda f: -f.cumulative_ms)[:FUNCTION_ROWS_MAX]


async def _measure(name: str, send: Any, engine: Any, first_seq: int, count: int) -> ProfileResult:
    for i in range(WARMUP_LEADS):
        await send(first_seq + i)
    seq = first_seq + WARMUP_LEADS
    pg_before = postgres_cpu_s()
    wall, cpu = time.perf_counter(), time.process_time()
    with _Statements(engine) as statements:
        for i in range(count):
            await send(seq + i)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    pg = postgres_cpu_since(pg_before)
    seq += count
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    for i in range(count):
        await send(seq + i)
    profile.disable()
    seen = sorted(statements.seen.items(), key=lambda kv: -kv[1][1])
    return ProfileResult(
        name=name, leads=count, wall_ms=wall / count * 1000, api_cpu_ms=cpu / count * 1000,
        postgres_cpu_ms=pg / count * 1000,
        statements_per_lead=sum(n for n, _ in statements.seen.values()) / count,
        statement_wall_ms=sum(t for _, t in statements.seen.values()) / count * 1000,
        statements=[Statement(sql=sql, per_lead=n / count, mean_us=t / n * 1e6) for sql, (n, t) in seen[:STATEMENT_ROWS_MAX]],
        functions=_functions(profile, count),
    )  # fmt: skip


async def _profile(name: str, settings: Any, market: seed.Market, count: int) -> ProfileResult:
    import httpx

    from exchange.app import create_app

    app = create_app(settings, in_process_worker=False)
    headers = {"Authorization": f"Bearer {market.supplier_key}", "Content-Type": "application/json"}
    transport = httpx.ASGITransport(app=app)
    async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        engine = app.state.db.engine.sync_engine

        async def send_post(seq: int) -> None:
            body = leads.direct_post(seed.POST_VERTICAL, leads.SOLAR_LIKE, seq, "profile")
            answer = await client.post("/v1/leads", content=msgspec.json.encode(body), headers=headers)
            if answer.status_code != 201:
                raise RuntimeError(f"post answered {answer.status_code}: {answer.text[:300]}")

        async def send_ping(seq: int) -> None:
            body = leads.ping(seed.PING_VERTICAL, leads.AUTO_LIKE, seq)
            answer = await client.post("/v1/pings", content=msgspec.json.encode(body), headers=headers)
            if answer.status_code not in (200, 201):
                raise RuntimeError(f"ping answered {answer.status_code}: {answer.text[:300]}")

        if name == "post":
            return await _measure(name, send_post, engine, 0, count)
        if name == "ping":
            return await _measure(name, send_ping, engine, 0, count)
        return await _profile_route(settings, client, headers, count)


async def _profile_route(settings: Any, client: Any, headers: dict[str, str], count: int) -> ProfileResult:
    """Round-robin routing of unsold leads among ``ROUTE_AGENTS`` agents, one lead at a time."""
    from exchange.bench import teams as teams_bench
    from exchange.store.db import Database
    from exchange.teams import routing

    db = Database(settings)
    try:
        async with db.write() as conn:
            team = await teams_bench._team(conn, "profile round-robin", ROUTE_AGENTS, "round_robin")
        ids: list[uuid.UUID] = []
        for seq in range(WARMUP_LEADS + 2 * count):
            body = leads.direct_post(seed.TEAMS_VERTICAL, leads.SOLAR_LIKE, seq, "profile-route")
            body["source"] = teams_bench.RR_SOURCE
            answer = await client.post("/v1/leads", content=msgspec.json.encode(body), headers=headers)
            if answer.status_code != 201 or answer.json().get("status") != "unsold":
                raise RuntimeError(f"lead for routing not unsold: {answer.status_code} {answer.text[:300]}")
            ids.append(uuid.UUID(answer.json()["lead_id"]))
        async with db.write() as conn:
            await teams_bench._route(conn, team.team_id, teams_bench.RR_SOURCE)

        async def route(seq: int) -> None:
            if await routing.route_lead(db, ids[seq]) is None:
                raise RuntimeError("a lead was not routed")

        return await _measure("route", route, db.engine.sync_engine, 0, count)
    finally:
        await db.dispose()


def run(name: str, postgres_dsn: str, redis_url: str, log_dir: Path, *, count: int = PROFILE_LEADS,
        say: Any = print) -> ProfileResult:  # fmt: skip
    from exchange.bench.runner import _flush_redis, _migrate
    from exchange.settings import load_settings

    database = f"bench_profile_{dt.datetime.now():%Y%m%d_%H%M%S}_{secrets.token_hex(2)}"
    config = {f"live{b}": buyers.BuyerBehaviour(latency_min_ms=BUYER_LATENCY_MS[0], latency_max_ms=BUYER_LATENCY_MS[1])
              for b in range(seed.LIVE_BUYERS)}  # fmt: skip
    config[seed.FIXED_SIM] = buyers.BuyerBehaviour()
    from exchange.cluster import free_ports

    port = free_ports(1)[0]
    server = procs.start("buyers", ["-m", "exchange.bench.buyers", "--port", str(port), "--config",
                                    msgspec.json.encode(config).decode()], log_dir, port)  # fmt: skip
    seed.create_database(database, postgres_dsn)
    try:
        procs.wait_http(server)
        _flush_redis(redis_url)
        settings = load_settings(env={}, database_url=seed.database_url(database, postgres_dsn), redis_url=redis_url,
                                 var_dir=str(log_dir / "var"), secret_key=secrets.token_urlsafe(32),
                                 campaign_cache_ttl_ms=1_000, log_level="WARNING")  # fmt: skip
        _migrate(settings)
        say(f"profile {name}: database {database}, seeding the benchmark's market")
        market = asyncio.run(seed.seed_market(settings, server.url or "", 1_000))
        say(f"profile {name}: {WARMUP_LEADS} leads to warm up, then {count} measured and {count} under cProfile")
        quiet = logging.getLogger("exchange")
        level = quiet.level
        quiet.setLevel(logging.WARNING)
        try:
            return asyncio.run(_profile(name, settings, market, count))
        finally:
            quiet.setLevel(level)
    finally:
        server.stop(procs.STOP_GRACE_S)
        seed.drop_database(database, postgres_dsn)
        _flush_redis(redis_url)


def print_result(result: ProfileResult, console: Any) -> None:
    console.print(
        f"[bold]{result.name}[/bold], {result.leads} leads one at a time: {result.wall_ms:.2f} ms wall per lead; "
        f"CPU per lead: API {result.api_cpu_ms:.2f} ms, PostgreSQL {result.postgres_cpu_ms:.2f} ms; "
        f"{result.statements_per_lead:.1f} SQL statements per lead taking {result.statement_wall_ms:.2f} ms"
    )
    console.print(_table("SQL statements (wall time from the driver's send to its answer)",
                         ("per lead", "mean µs", "statement"),
                         [(f"{s.per_lead:.2f}", f"{s.mean_us:,.0f}", s.sql) for s in result.statements]))  # fmt: skip
    console.print(_table("The exchange's functions by cumulative CPU per lead (under cProfile, which inflates it)",
                         ("ms per lead", "calls per lead", "function"),
                         [(f"{f.cumulative_ms:.2f}", f"{f.calls:.1f}", f.name) for f in result.functions]))  # fmt: skip


def _table(title: str, columns: tuple[str, str, str], rows: list[tuple[str, str, str]]) -> Any:
    """Two right-aligned number columns, then the text."""
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column == columns[-1] else "right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table
