"""``exchange bench``: set everything up, run the chosen scenarios, check, report.

Order: matching (in-process); then on PostgreSQL + Redis: the database and market, the buyer
servers, the bare baselines, the exchange's cluster (post, ping, deadline, teams, memory),
the scale-out clusters; then the embedded default (SQLite, in-process worker); the correctness
checks on both databases; the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import secrets
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console

from exchange.bench import (
    DEFAULT_POSTGRES_DSN,
    DEFAULT_REDIS_URL,
    SCENARIOS,
    buyers,
    matching,
    memory,
    procs,
    report,
    scenarios,
    seed,
)
from exchange.bench import teams as teams_bench
from exchange.bench.checks import Check, run_checks
from exchange.bench.results import Report, Row
from exchange.cluster import Cluster, free_ports
from exchange.settings import Settings, load_settings

PORTS = range(18600, 18800)  # the ports the benchmark may listen on
AUCTION_DEADLINE_MS = 500  # the exchange's auction deadline during the run
DELIVERY_BACKOFF_MIN_MS = 200  # retries of failed deliveries come quickly, so the run drains
LOG_LEVEL = "WARNING"  # per-lead INFO lines would measure the disk
FIXED_POST_ERROR_RATE = 0.01  # fixed-price buyers answer this share of posts 500: workers retry
LIVE_LATENCY_MIN_MS, LIVE_LATENCY_MAX_MS = 10.0, 30.0
WORKER_THREADS = 4
STOP_GRACE_S = 5.0  # SIGTERM, then this long for the cluster's processes, then SIGKILL
REPORT_WIDTH = 160  # columns when the output is not a terminal


class Profile(msgspec.Struct, kw_only=True, frozen=True):
    duration_s: float
    warmup_s: float
    concurrency: int
    post_campaigns: int
    memory_campaigns: int
    matching_campaigns: int
    matching_leads: int
    agents: int
    rr_leads: int
    claimers: int
    claim_trials: int


FULL = Profile(duration_s=30, warmup_s=3, concurrency=64, post_campaigns=1_000, memory_campaigns=10_000,
               matching_campaigns=10_000, matching_leads=2_000, agents=100, rr_leads=2_000, claimers=50,
               claim_trials=30)  # fmt: skip
QUICK = Profile(duration_s=3, warmup_s=1, concurrency=16, post_campaigns=200, memory_campaigns=2_000,
                matching_campaigns=10_000, matching_leads=300, agents=100, rr_leads=100, claimers=50,
                claim_trials=3)  # fmt: skip


class Options(msgspec.Struct, kw_only=True):
    quick: bool = False
    duration_s: float | None = None
    scenarios: list[str] = []
    api_processes: int = 2
    workers: int = 2
    concurrency: int | None = None
    json_path: str | None = None
    write_path: str | None = None
    postgres_dsn: str = DEFAULT_POSTGRES_DSN
    redis_url: str = DEFAULT_REDIS_URL
    keep: bool = False
    command: str = ""


class Bench:
    def __init__(self, options: Options, console: Console) -> None:
        self.options = options
        self.console = console
        base = QUICK if options.quick else FULL
        overrides: dict[str, Any] = {}
        if options.duration_s:
            overrides["duration_s"] = options.duration_s
        if options.concurrency:
            overrides["concurrency"] = options.concurrency
        self.profile = msgspec.structs.replace(base, **overrides)
        self.chosen = [s for s in SCENARIOS if not options.scenarios or s in options.scenarios]
        self.rows: list[Row] = []
        self.checks: list[Check] = []
        self.failures: list[str] = []
        self.used_ports: set[int] = set()
        self.started = time.perf_counter()

    def port(self) -> int:
        """A port of ours nothing listens on now (checked when needed: other programs come and
        go while a run lasts), never one handed out before in this run."""
        port = free_ports(1, [p for p in PORTS if p not in self.used_ports])[0]
        self.used_ports.add(port)
        return port

    # --- output -------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.console.log(f"[{time.perf_counter() - self.started:5.1f} s] {text}")

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A scenario: a failure is reported and the run goes on with the next one."""
        try:
            with self.console.status(f"[bold]{name}[/bold] running..."):
                yield
        except Exception as exc:
            self.failures.append(f"{name}: {type(exc).__name__}: {exc}"[:2000])
            self.say(f"[red]{name} failed: {type(exc).__name__}: {str(exc)[:500]}[/red]")

    def want(self, *names: str) -> bool:
        return any(n in self.chosen for n in names)

    # --- the run ------------------------------------------------------------------------------

    def run(self) -> Report:
        with contextlib.ExitStack() as stack:
            if self.options.keep:  # the logs stay for inspection, like the database
                tmp = tempfile.mkdtemp(prefix="exchange-bench-")
            else:
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="exchange-bench-"))
            self.log_dir = Path(tmp)
            self.say(f"scenarios: {', '.join(self.chosen)}; logs under {tmp}")
            if self.want("matching"):
                with self.step("matching"):
                    self._matching()
            if self.want("post", "ping", "deadline", "teams", "memory", "scale", "embedded"):
                self._with_buyers()
        ratios = self._ratios()
        return Report(
            date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            command=self.options.command, quick=self.options.quick,
            machine=self._machine(), settings=self._settings(), scenarios_run=self.chosen,
            rows=self.rows, ratios=ratios, targets=report.targets(self.rows, ratios),
            checks=self.checks, failures=self.failures,
        )  # fmt: skip

    def _machine(self) -> dict[str, str]:
        from exchange.bench import machine

        return machine.describe(self.options.postgres_dsn, self.options.redis_url)

    def _settings(self) -> dict[str, Any]:
        p = self.profile
        return {
            "duration per measurement": f"{p.duration_s:g} s (+{p.warmup_s:g} s warm-up)",
            "load-generator connections": p.concurrency,
            "API processes / workers": f"{self.options.api_processes} / {self.options.workers} "
                                       f"(workers: 1 process, {WORKER_THREADS} threads each)",
            "fixed-price campaigns (post)": p.post_campaigns,
            "auction deadline": f"{AUCTION_DEADLINE_MS} ms",
            "live buyers' latency": f"{LIVE_LATENCY_MIN_MS:g}-{LIVE_LATENCY_MAX_MS:g} ms, uniform",
            "fixed-price buyers' post errors (retried by workers)": f"{FIXED_POST_ERROR_RATE:.0%}",
            "log level": LOG_LEVEL,
            "database": getattr(self, "database_name", "none"),
        }  # fmt: skip

    def _ratios(self) -> dict[str, float]:
        by = {r.label: r for r in self.rows}
        insert = by.get("baseline: one INSERT (psycopg pool)")
        fanout = by.get("baseline: 10-way fan-out (aiohttp)")
        post = next((r for r in self.rows if r.scenario == "post"), None)
        ping = by.get("ping, max rate")
        ratios = {}
        if insert and post and insert.throughput and post.throughput is not None:
            ratios["post / insert"] = post.throughput / insert.throughput
        if fanout and ping and fanout.throughput and ping.throughput is not None:
            ratios["ping / fan-out"] = ping.throughput / fanout.throughput
        embedded = by.get("embedded (SQLite, in-process worker): post")
        if insert and embedded and insert.throughput and embedded.throughput is not None:
            ratios["embedded post / insert"] = embedded.throughput / insert.throughput
        return ratios

    def _matching(self) -> None:
        p = self.profile
        self.say(f"matching: {p.matching_campaigns:,} campaigns, {p.matching_leads:,} leads, in-process")
        result = matching.run(p.matching_campaigns, p.matching_leads)
        notes = f"{result.campaigns:,} campaigns; {result.candidates_mean:.0f} candidates, {result.eligible_mean:.0f} eligible per lead"
        self.rows.append(Row(scenario="matching", label="matching: candidates + evaluate", unit="", latency=result.auction,
                             notes=notes, extra=msgspec.to_builtins(result)))  # fmt: skip
        self.rows.append(Row(scenario="matching", label="matching: full trace (every campaign's reason)", unit="",
                             latency=result.full_trace, notes=f"{result.full_trace.count} leads sampled"))  # fmt: skip

    # --- PostgreSQL + Redis ---------------------------------------------------------------------

    def _buyer_config(self) -> str:
        live = buyers.BuyerBehaviour(latency_min_ms=LIVE_LATENCY_MIN_MS, latency_max_ms=LIVE_LATENCY_MAX_MS)
        config = {f"live{b}": live for b in range(seed.LIVE_BUYERS)}
        config[seed.HANG_BUYER] = buyers.BuyerBehaviour(timeout_rate=1.0)
        config[seed.FIXED_SIM] = buyers.BuyerBehaviour(post_error_rate=FIXED_POST_ERROR_RATE)
        return msgspec.json.encode(config).decode()

    def _with_buyers(self) -> None:
        port = self.port()
        server = procs.start("buyers", ["-m", "exchange.bench.buyers", "--port", str(port), "--config",
                                        self._buyer_config()], self.log_dir, port)  # fmt: skip
        try:
            procs.wait_http(server)
            self.buyers_url = server.url or ""
            if self.want("post", "ping", "deadline", "teams", "memory", "scale"):
                self._postgres()
            if self.want("embedded"):
                with self.step("embedded"):
                    self._embedded()
        finally:
            server.stop(procs.STOP_GRACE_S)

    def _postgres(self) -> None:
        name = self.database_name = f"bench_{dt.datetime.now():%Y%m%d_%H%M%S}_{secrets.token_hex(2)}"
        self.say(f"PostgreSQL database {name}, Redis {self.options.redis_url}")
        seed.create_database(name, self.options.postgres_dsn)
        try:
            _flush_redis(self.options.redis_url)
            self.pg_settings = _settings(seed.database_url(name, self.options.postgres_dsn), self.options.redis_url, self.log_dir / "pg")
            _migrate(self.pg_settings)
            self.say(f"seeding {self.profile.post_campaigns:,} fixed-price campaigns and {seed.LIVE_BUYERS} live buyers")
            self.market = asyncio.run(seed.seed_market(self.pg_settings, self.buyers_url, self.profile.post_campaigns))
            if self.want("post", "scale", "embedded"):
                with self.step("baseline insert"):
                    self._baseline("insert", seed.database_url(name, self.options.postgres_dsn).replace("+psycopg", ""))
            if self.want("ping"):
                with self.step("baseline fan-out"):
                    self._baseline("fanout", "")
            with self.step("cluster"):
                self._main_cluster()
            if self.want("scale"):
                self._scale_out()
            with self.step("checks (PostgreSQL)"):
                self.say("correctness checks on PostgreSQL")
                self.checks += [_tagged(c, "PostgreSQL") for c in asyncio.run(run_checks(self.pg_settings))]
        finally:
            if not self.options.keep:
                seed.drop_database(name, self.options.postgres_dsn)
                _flush_redis(self.options.redis_url)

    def _stage(self, urls: list[str], settings: Settings) -> scenarios.Stage:
        p = self.profile
        return scenarios.Stage(urls=urls, supplier_key=self.market.supplier_key, buyers_url=self.buyers_url,
                               settings=settings, log_dir=self.log_dir, duration_s=p.duration_s,
                               warmup_s=p.warmup_s, concurrency=p.concurrency, say=self.say)  # fmt: skip

    def _baseline(self, kind: str, dsn: str) -> None:
        count = self.options.api_processes
        servers = []
        try:
            if kind == "insert":
                import psycopg

                from exchange.bench.baselines import CREATE_TABLE

                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(CREATE_TABLE)
                env = {"BENCH_BASELINE_DSN": dsn}
                factory, path = "exchange.bench.baselines:insert_app", "/lead"
            else:
                urls = [f"{buyers.url_for(self.buyers_url, f'live{b}')}/live{b}/ping" for b in range(seed.LIVE_BUYERS)]
                env = {"BENCH_FANOUT_URLS": ",".join(urls)}
                factory, path = "exchange.bench.baselines:fanout_app", "/ping"
            for i in range(count):
                port = self.port()
                servers.append(procs.uvicorn(f"baseline-{kind}-{i}", factory, port, self.log_dir, env))
            for server in servers:
                procs.wait_http(server, path, method="POST")
            stage = self._stage([s.url or "" for s in servers], self.pg_settings)
            row = scenarios.baseline_insert(stage, stage.urls) if kind == "insert" else scenarios.baseline_fanout(stage, stage.urls)
            self.rows.append(row)
        finally:
            for server in servers:
                server.stop(procs.STOP_GRACE_S)

    def _cluster(self, apis: int, workers: int, label: str) -> Cluster:
        env = {
            "EXCHANGE_AUCTION_DEADLINE_MS": str(AUCTION_DEADLINE_MS),
            "EXCHANGE_DELIVERY_BACKOFF_MIN_MS": str(DELIVERY_BACKOFF_MIN_MS),
            "EXCHANGE_OFFER_SWEEP_INTERVAL_S": "0",  # the teams scenario routes its leads itself
        }
        self.say(f"starting {apis} API + {workers} worker processes ({label})")
        return Cluster(database_url=self.pg_settings.database_url, redis_url=self.options.redis_url,
                       secret_key=self.pg_settings.secret_key, api_ports=[self.port() for _ in range(apis)],
                       workers=workers, log_dir=self.log_dir / label, env=env, worker_threads=WORKER_THREADS,
                       api_env={"EXCHANGE_LOG_LEVEL": LOG_LEVEL},  # workers log at INFO: the cluster
                       migrate=False, grace_s=STOP_GRACE_S)  # waits for dramatiq's "ready for action" line  # fmt: skip

    def _main_cluster(self) -> None:
        if not self.want("post", "ping", "deadline", "teams", "memory", "scale"):
            return
        api, workers = self.options.api_processes, self.options.workers
        self.main_shape = (api, workers)
        with self._cluster(api, workers, "main") as cluster:
            stage = self._stage(cluster.api_urls, self.pg_settings)
            if self.want("post", "scale"):
                with self.step("post"):
                    self.rows.append(scenarios.post(stage, f"post, {api} API + {workers} workers", 1))
            if self.want("ping"):
                with self.step("ping"):
                    self.rows += scenarios.ping(stage)
            if self.want("deadline"):
                with self.step("deadline"):
                    self.rows.append(scenarios.deadline(stage, AUCTION_DEADLINE_MS))
            if self.want("teams"):
                with self.step("teams"):
                    self._teams(cluster)
            if self.want("memory"):
                with self.step("memory"):
                    self._memory(cluster)
            cluster.check_running()

    def _teams(self, cluster: Cluster) -> None:
        p = self.profile
        self.say(f"teams: round-robin among {p.agents} agents ({p.rr_leads:,} leads), "
                 f"{p.claimers} simultaneous claims x {p.claim_trials} leads")  # fmt: skip
        result = asyncio.run(teams_bench.run(
            self.pg_settings, cluster.api_urls, self.market.supplier_key, agents=p.agents, rr_leads=p.rr_leads,
            claimers=p.claimers, trials=p.claim_trials, seq_start=7 * 1_000_000,
        ))  # fmt: skip
        extra = msgspec.to_builtins(result)
        self.rows.append(Row(scenario="teams", label="teams: round-robin", unit="leads/s", throughput=result.rr_leads_per_s,
                             latency=result.rr_route, notes=f"{result.leads} leads, {result.agents} agents, "
                             f"spread {result.rr_spread} (most - fewest per agent), {teams_bench.ROUTER_PROCESSES} processes x {teams_bench.ROUTERS_PER_PROCESS} routers",
                             extra=extra))  # fmt: skip
        winners_ok = result.single_winner_trials == result.trials
        self.rows.append(Row(scenario="teams", label=f"teams: {result.claimers} claims on one parallel lead", unit="",
                             latency=result.settle, notes=f"{result.trials} leads; settle time per lead; "
                             f"per claim p99 {result.claim.p99_ms or 0:.1f} ms; one winner each: {winners_ok}",
                             extra=extra))  # fmt: skip
        self.checks.append(Check(name="parallel claims: exactly one winner", ok=winners_ok,
                                 detail=f"{result.single_winner_trials}/{result.trials} leads had one 200 and 49 409s"))  # fmt: skip

    def _memory(self, cluster: Cluster) -> None:
        total = self.profile.memory_campaigns
        self.say(f"memory: {total:,} campaigns, then a fresh API process warms its cache")
        campaigns = memory.add_campaigns(self.pg_settings, self.buyers_url, total)
        fresh = Cluster(database_url=self.pg_settings.database_url, redis_url=self.options.redis_url,
                        secret_key=self.pg_settings.secret_key, api_ports=[self.port()], workers=0,
                        log_dir=self.log_dir / "memory", api_env={"EXCHANGE_LOG_LEVEL": LOG_LEVEL},
                        migrate=False, grace_s=STOP_GRACE_S)  # fmt: skip
        with fresh:
            api = fresh.apis[0]
            loaded = [(p.url or "", p.pid or 0) for p in cluster.apis]
            result = memory.measure((api.url or "", api.pid or 0), loaded, self.market.operator_key, campaigns,
                                    self.pg_settings.campaign_cache_ttl_ms)  # fmt: skip
        loaded_text = ", ".join(f"{m:.0f}" for m in result.loaded_mib)
        self.rows.append(Row(scenario="memory", label="memory: API process RSS", unit="", throughput=None,
                             notes=f"fresh process: {result.rss_mib:.0f} MiB with {result.campaigns:,} campaigns cached "
                                   f"({result.rss_before_mib:.0f} MiB before; cache loaded in {result.warm_s:.1f} s); "
                                   f"the processes that served the load: {loaded_text} MiB",
                             extra=msgspec.to_builtins(result)))  # fmt: skip

    def _scale_out(self) -> None:
        for apis, workers in ((1, 1), (2, 2)):
            with self.step(f"scale-out {apis}+{workers}"):
                if (apis, workers) == self.main_shape:
                    main = next((r for r in self.rows if r.scenario == "post"), None)
                    if main is not None:
                        self.rows.append(msgspec.structs.replace(
                            main, scenario="scale", label=f"scale-out: {apis} API + {workers} workers",
                            notes="the post scenario's own run (same shape); " + main.notes))  # fmt: skip
                        continue
                with self._cluster(apis, workers, f"scale-{apis}-{workers}") as cluster:
                    stage = self._stage(cluster.api_urls, self.pg_settings)
                    self.rows.append(scenarios.post(stage, f"scale-out: {apis} API + {workers} workers", 8 + apis, "scale"))

    # --- the embedded default -------------------------------------------------------------------

    def _embedded(self) -> None:
        directory = self.log_dir / "embedded"
        directory.mkdir()
        settings = _settings(f"sqlite+aiosqlite:///{directory}/exchange.db", None, directory)
        _migrate(settings)
        self.say(f"embedded: SQLite, seeding {self.profile.post_campaigns:,} campaigns")
        market = asyncio.run(seed.seed_market(settings, self.buyers_url, self.profile.post_campaigns))
        port = self.port()
        env = {"EXCHANGE_DATABASE_URL": settings.database_url, "EXCHANGE_SECRET_KEY": settings.secret_key,
               "EXCHANGE_VAR_DIR": str(directory), "EXCHANGE_LOG_LEVEL": LOG_LEVEL,
               "EXCHANGE_DELIVERY_BACKOFF_MIN_MS": str(DELIVERY_BACKOFF_MIN_MS)}  # fmt: skip
        server = procs.start("embedded", ["-m", "exchange.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                             self.log_dir, port, env)  # fmt: skip
        try:
            procs.wait_http(server)
            saved, self.market = getattr(self, "market", None), market
            try:
                stage = self._stage([server.url or ""], settings)
                self.rows.append(scenarios.post(stage, "embedded (SQLite, in-process worker): post", 12, "embedded"))
            finally:
                if saved is not None:
                    self.market = saved
        finally:
            server.stop(procs.STOP_GRACE_S)
        self.say("correctness checks on SQLite")
        self.checks += [_tagged(c, "SQLite") for c in asyncio.run(run_checks(settings))]


def _settings(database_url: str, redis_url: str | None, var_dir: Path) -> Settings:
    return load_settings(env={}, database_url=database_url, redis_url=redis_url, var_dir=str(var_dir),
                         secret_key=secrets.token_urlsafe(32), campaign_cache_ttl_ms=1_000)  # fmt: skip


def _migrate(settings: Settings) -> None:
    from exchange.store import migrate

    alembic = logging.getLogger("alembic")
    level = alembic.level
    alembic.setLevel(logging.WARNING)  # its INFO lines would break the progress display
    try:
        migrate.upgrade(settings)
    finally:
        alembic.setLevel(level)


def _tagged(check: Check, where: str) -> Check:
    return msgspec.structs.replace(check, name=f"{check.name} ({where})")


def _flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def main(options: Options, console: Console | None = None) -> int:
    # Piped output (a test, a CI log) gets a table wide enough to read, not 80 columns.
    console = console or Console(width=None if sys.stdout.isatty() else REPORT_WIDTH)
    options.command = options.command or "exchange " + shlex.join(sys.argv[1:])
    bench = Bench(options, console)
    result = bench.run()
    report.console_tables(result, console)
    if options.json_path:
        Path(options.json_path).write_text(json.dumps(msgspec.to_builtins(result) | {"ok": result.ok}, indent=2))
        console.print(f"results written to {options.json_path}")
    write = options.write_path or (None if options.quick or options.scenarios else "docs/performance.md")
    if write:
        Path(write).write_text(report.markdown(result))
        console.print(f"report written to {write}")
    elapsed = time.perf_counter() - bench.started
    console.print(f"finished in {elapsed:.0f} s: " + ("[green]all checks passed[/green]" if result.ok else "[red]BROKEN[/red]"))
    return 0 if result.ok else 1
