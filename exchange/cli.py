"""The ``exchange`` command: run, serve, worker, migrate, seed, and party/key administration."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from exchange.settings import Settings, SettingsError, load_settings


def _db(settings: Settings):  # type: ignore[no-untyped-def]
    from exchange.store.db import Database

    return Database(settings)


def _run_db(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        db = _db(settings)
        try:
            async with db.write() as conn:
                return await work(conn)
        finally:
            await db.dispose()

    return asyncio.run(main())


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from exchange.store import migrate

    migrate.upgrade(settings, args.revision)
    print(f"database at revision {args.revision}: {_safe_url(settings.database_url)}")
    return 0


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    from exchange.intake import verticals

    created = _run_db(settings, lambda c: verticals.seed(c, fields_max=settings.vertical_fields_max))
    print("created verticals: " + (", ".join(created) if created else "none (all present)"))
    return 0


def cmd_admin_key(settings: Settings, args: argparse.Namespace) -> int:
    """Create the first operator (if none) and a key for it."""
    import sqlalchemy as sa

    from exchange.auth.parties import PartyIn, PartyKind, create_party, issue_key
    from exchange.store.tables import parties

    async def work(conn: Any) -> Any:
        row = (
            await conn.execute(
                sa.select(parties.c.id)
                .where(parties.c.kind == PartyKind.OPERATOR.value)
                .order_by(parties.c.id)
                .limit(1)
            )
        ).first()
        party_id = row.id if row else (
            await create_party(conn, PartyIn(kind=PartyKind.OPERATOR, name=args.operator))
        ).id
        return await issue_key(conn, party_id, args.name)

    key = _run_db(settings, work)
    if args.export:
        _print_exports(args.export, key.party_id, key.key)
    else:
        _print_key(key, "operator")
    return 0


def cmd_party_create(settings: Settings, args: argparse.Namespace) -> int:
    from exchange.auth.parties import PartyIn, PartyKind, create_party, issue_key

    async def work(conn: Any) -> Any:
        party = await create_party(
            conn,
            PartyIn(
                kind=PartyKind(args.kind),
                name=args.name,
                timezone=args.timezone,
                team_id=uuid.UUID(args.team_id) if args.team_id else None,
            ),
        )
        return party, await issue_key(conn, party.id, "default")

    party, key = _run_db(settings, work)
    if args.export:
        _print_exports(args.export, party.id, key.key)
        return 0
    print(f"created {party.kind.value} {party.name!r}: {party.id}")
    _print_key(key, party.kind.value)
    return 0


def cmd_key_revoke(settings: Settings, args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from exchange.auth.parties import revoke_key
    from exchange.store.tables import api_keys

    async def work(conn: Any) -> Any:
        row = (
            await conn.execute(sa.select(api_keys.c.id).where(api_keys.c.prefix == args.prefix))
        ).first()
        return await revoke_key(conn, row.id) if row else None

    info = _run_db(settings, work)
    if info is None:
        print(f"no key with prefix {args.prefix!r}", file=sys.stderr)
        return 1
    print(f"revoked key {info.prefix} ({info.name}) at {info.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    host = args.host or settings.host
    port = args.port or settings.port
    print(f"exchange listening on http://{host}:{port}")
    print(f"  API docs:  http://{host}:{port}/schema/swagger  (and /schema/redoc)")
    print(f"  OpenAPI:   http://{host}:{port}/schema/openapi.json")
    print(f"  health:    http://{host}:{port}/health")
    if not settings.redis_url:
        print("  worker:    in-process (set EXCHANGE_REDIS_URL to use Redis and `exchange worker`)")
    workers = args.workers or settings.http_workers
    if workers > 1 and settings.metrics_enabled:
        # Each HTTP process writes its counters there; /metrics in any of them answers the sum.
        from exchange import metrics

        os.environ[metrics.MULTIPROC_ENV] = metrics.prepare_multiprocess_dir(settings.var_dir, "api", port)
    # uvicorn catches SIGTERM, shuts down gracefully, then raises the signal again for the
    # handler it found: make that an ordinary exit (status 0), not a death by signal.
    signal.signal(signal.SIGTERM, _exit_quietly)
    uvicorn.run(
        "exchange.asgi:app",
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        log_level=settings.log_level.lower(),
        access_log=False,  # exchange.request_ids writes one with the request id and party
        log_config=None,  # keep exchange.logs' structured format
        # On SIGTERM: stop accepting, let requests in flight finish for up to this long, then
        # run the app's shutdown (maintenance timers, in-process worker).
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )
    return 0


def _exit_quietly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    """What `make run` does: migrate, seed a demo market with simulated buyers, then serve
    with simulated supplier traffic."""
    from exchange import demo
    from exchange.simulator import BuyerServer

    cmd_migrate(settings, argparse.Namespace(revision="head"))
    cmd_seed(settings, args)
    simulator = BuyerServer(demo.demo_behaviours())
    simulator.start()
    created = _run_db(settings, lambda c: demo.ensure_demo_market(c, simulator.base_url))
    key = _run_db(settings, lambda c: demo.ensure_demo_supplier(c, settings))
    _run_db(settings, demo.ensure_demo_team)
    print(f"demo market: {len(demo.DEMO_BUYERS)} buyers ({created} campaigns created), "
          f"simulated buyer endpoints at {simulator.base_url}")
    print(f"demo team: {demo.DEMO_TEAM_NAME!r}, {len(demo.DEMO_AGENTS)} agents working the "
          "leads nobody buys (predictive routing, solar leads scored)")
    if key:
        print(f"demo supplier key (kept in {settings.var_dir}/demo_supplier_key): {key}")
    console_keys = _run_db(settings, lambda c: demo.ensure_demo_console_keys(c, settings))
    where = f"http://{args.host or settings.host}:{args.port or settings.port}/console"
    print(f"console: {where}; sign in with a demo key (kept in {settings.var_dir}/"
          f"{demo.DEMO_CONSOLE_KEYS_FILE}):")
    for kind, console_key in console_keys.items():
        print(f"  {kind:<9} {console_key}")
    os.environ["EXCHANGE_DEMO"] = "true" if not args.no_traffic else "false"
    # The demo traffic posts to the address served: --host and --port, when given, not only
    # the settings' (it used to post to port 8000 whatever --port said).
    if args.host:
        os.environ["EXCHANGE_HOST"] = args.host
    if args.port:
        os.environ["EXCHANGE_PORT"] = str(args.port)
    try:
        return cmd_serve(load_settings(), args)
    finally:
        simulator.stop()


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """A finite simulated run on a fresh embedded database, then a summary."""
    import tempfile

    import msgspec
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    from exchange import demo

    console = Console()
    with tempfile.TemporaryDirectory(prefix="exchange-demo-") as tmp:
        demo_settings = msgspec.structs.replace(
            settings,
            database_url=f"sqlite+aiosqlite:///{tmp}/demo.db",
            var_dir=tmp,
            redis_url=None,
            demo=False,
            campaign_cache_ttl_ms=1_000,
        )
        with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as progress:  # fmt: skip
            task = progress.add_task("posting simulated leads", total=args.leads)
            summary = asyncio.run(
                demo.run_demo(demo_settings, args.leads, lambda n: progress.update(task, completed=n))
            )
    table = Table(title=f"Demo run: {summary.leads} leads")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("sold", f"{summary.sold} ({100 * summary.sold / max(summary.leads, 1):.0f}%)")
    table.add_row("unsold", str(summary.unsold))
    table.add_row("refused (bad input, duplicate)", str(summary.refused))
    table.add_row("revenue (buyers paid)", _money(summary.revenue_minor))
    table.add_row("paid to the supplier", _money(summary.payout_minor))
    table.add_row("exchange margin", _money(summary.revenue_minor - summary.payout_minor))
    table.add_row("trial balance zero", "yes" if summary.books_balance else "NO")
    table.add_row("reconciliation", "no anomaly" if summary.reconciled else "ANOMALIES")
    console.print(table)
    if summary.reasons:
        reasons = Table(title="Why leads did not sell (reason: leads)")
        reasons.add_column("reason")
        reasons.add_column("leads", justify="right")
        for reason, count in sorted(summary.reasons.items(), key=lambda kv: -kv[1]):
            reasons.add_row(reason, str(count))
        console.print(reasons)
    return 0


def cmd_explain(settings: Settings, args: argparse.Namespace) -> int:
    """Every campaign's decision for a lead, selling nothing."""
    import json

    import msgspec
    from rich.console import Console
    from rich.table import Table

    from exchange.auction import service
    from exchange.auction.market import Market
    from exchange.auction.messages import PingIn
    from exchange.intake.ratelimit import MemoryRateLimiter

    try:
        fields = json.loads(args.fields)
    except json.JSONDecodeError as exc:
        print(f"error: --fields is not JSON: {exc}", file=sys.stderr)
        return 2

    async def main() -> Any:
        db = _db(settings)
        try:
            ctx = service.Context(db=db, settings=settings, market=Market(db, 0), http=None, limiter=MemoryRateLimiter())
            return await service.explain(ctx, None, msgspec.convert({"vertical": args.vertical, "fields": fields}, PingIn))
        finally:
            await db.dispose()

    result = asyncio.run(main())
    table = Table(title=f"{result.vertical}: {len(result.entries)} campaigns, {result.mode}; "
                        f"payout offered {_money(result.payout_minor)}")  # fmt: skip
    for column in ("campaign", "buyer", "reason", "bid", "payout", "details"):
        table.add_column(column)
    for e in result.entries:
        table.add_row(
            e.campaign_id[:8], e.buyer_id[:8], e.reason or "eligible",
            _money(e.bid_minor) if e.bid_minor is not None else "",
            _money(e.payout_minor) if e.payout_minor is not None else "",
            json.dumps(e.details)[:60],
        )  # fmt: skip
    Console().print(table)
    return 0


def _money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}${abs(minor) // 100:,}.{abs(minor) % 100:02d}"


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.redis_url:
        print(
            "exchange worker needs EXCHANGE_REDIS_URL: without Redis the API process runs its "
            "own in-process worker",
            file=sys.stderr,
        )
        return 2
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "exchange.worker.main",
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
        # On SIGTERM each process stops fetching, re-queues what it prefetched, and lets the
        # actors running finish for up to this long; a message still running then is re-queued
        # by the other workers once this one's heartbeat is EXCHANGE_WORKER_HEARTBEAT_TIMEOUT_S old.
        "--worker-shutdown-timeout",
        str(settings.shutdown_grace_s * 1000),
    ]
    if settings.worker_metrics_port:
        # Every process writes its counters to files there; one forked process serves them all.
        from exchange import metrics

        os.environ[metrics.MULTIPROC_ENV] = metrics.prepare_multiprocess_dir(
            settings.var_dir, "worker", settings.worker_metrics_port
        )
        argv += ["--fork-function", "exchange.metrics:serve_worker_metrics"]
    os.execv(sys.executable, argv)
    return 0  # pragma: no cover


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    from exchange.bench import runner

    if args.profile:
        return _bench_profile(args)
    options = runner.Options(
        quick=args.quick, duration_s=args.duration, scenarios=args.scenario or [],
        api_processes=args.api_processes, workers=args.workers, concurrency=args.connections,
        json_path=args.json, write_path=args.write, postgres_dsn=args.postgres_dsn,
        redis_url=args.redis_url, keep=args.keep,
    )  # fmt: skip
    return runner.main(options)


def _bench_profile(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    import msgspec
    from rich.console import Console

    from exchange.bench import profiling
    from exchange.bench.procs import BenchError

    console = Console(width=None if sys.stdout.isatty() else 160)  # piped: wide enough to read
    with tempfile.TemporaryDirectory(prefix="exchange-profile-") as tmp:
        try:
            result = profiling.run(args.profile, args.postgres_dsn, args.redis_url, Path(tmp), count=args.leads,
                                   say=lambda text: console.print(f"[dim]{text}[/dim]"))  # fmt: skip
        except BenchError as exc:
            console.print(f"[red]profile failed:[/red] {exc}")
            return 1
    profiling.print_result(result, console)
    if args.json:
        Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(result)))
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    import msgspec
    from rich.console import Console

    from exchange import simulation

    if args.scenario:
        try:
            scenario = msgspec.json.decode(Path(args.scenario).read_bytes(), type=simulation.Scenario)
        except (OSError, msgspec.DecodeError) as exc:  # ValidationError is a DecodeError
            print(f"error: scenario {args.scenario}: {exc}", file=sys.stderr)
            return 2
        given = {"seed": args.seed, "hours": args.hours, "leads_per_day": args.leads_per_day,
                 "floor_pct": args.floor}  # fmt: skip
        scenario = msgspec.structs.replace(scenario, **{k: v for k, v in given.items() if v is not None})
    else:
        scenario = simulation.default_scenario(
            seed=1 if args.seed is None else args.seed, agents=args.agents,
            leads_per_day=5000 if args.leads_per_day is None else args.leads_per_day,
            hours=24.0 if args.hours is None else args.hours, start_hour=args.start_hour,
            floor_pct=50 if args.floor is None else args.floor, always_available=args.always_available,
        )  # fmt: skip
    if args.write_scenario:
        Path(args.write_scenario).write_bytes(msgspec.json.format(msgspec.json.encode(scenario)))
    started = time.perf_counter()
    shown = False

    def progress(strategy: str, fraction: float) -> None:
        nonlocal shown
        # A quick run stays quiet, and so does one whose stderr is not a terminal (a log).
        if sys.stderr.isatty() and time.perf_counter() - started > 1.0:
            shown = True
            print(f"\rsimulating {strategy}: {fraction * 100:3.0f}% of the day", end="", file=sys.stderr, flush=True)

    report = simulation.simulate(scenario, args.strategies, progress)
    if shown:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    simulation.render(report, Console(width=None if sys.stdout.isatty() else 140))
    if args.json:
        Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(report)))
    return 0


def _strategies(value: str) -> list[str]:
    from exchange.simulation import SIM_STRATEGIES

    names = list(SIM_STRATEGIES) if value == "all" else [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in SIM_STRATEGIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"one or more of {', '.join(SIM_STRATEGIES)} (or all): {value!r}")
    return names


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {value}")
    return number


def _hours(value: str) -> float:
    number = float(value)
    if not 0 < number <= 24 * 31:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 744 (31 days): {value}")
    return number


def _percent(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 100:
        raise argparse.ArgumentTypeError(f"must be 0 to 100: {value}")
    return number


def _add_simulate_command(sub: Any) -> None:
    sim = sub.add_parser(
        "simulate",
        help="a simulated market day: compare routing strategies side by side",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""Simulate a market day in seconds and compare the team's routing strategies.

Synthetic suppliers send leads (a daily curve); advertisers with valuations, daily budgets and
caps bid (the exchange's own ranking and margin rules, first price); unsold leads go to an
internal team whose agents have hidden conversion rates, working hours, breaks and concurrent
caps, and are routed by each strategy in turn (the exchange's own round-robin, performance,
predictive, sequential, parallel and hybrid code; agents accept or decline offers with hidden
probabilities and delays), learning from outcomes as they are reported. Every strategy sees
the same leads, bids and agents, so the columns are a paired comparison.

Prints, per strategy: sold rate, revenue, payouts, margin, the team's conversions and won
value, first response time p50/p90, and fairness (leads per agent, the lowest agent's share of
an equal share). docs/simulation.md explains the model and how to read the table.

strategies: round_robin, performance, predictive, sequential, parallel, hybrid (round-robin at
weekday peak hours, predictive otherwise), or all""",
        epilog="examples:\n  exchange simulate\n"
        "  exchange simulate --strategies all --seed 7 --floor 30 --json sim.json\n"
        "  exchange simulate --start-hour 9 --hours 4 --leads-per-day 2000 --agents 10",
    )
    sim.add_argument("--strategies", type=_strategies, default=["round_robin", "performance", "predictive"],
                     metavar="LIST", help="comma-separated strategies to compare, or all (default: round_robin,performance,predictive)")
    sim.add_argument("--seed", type=int, metavar="N", help="the random seed: same seed, same report (default: 1)")
    sim.add_argument("--hours", type=_hours, metavar="H", help="simulated hours from Monday 00:00 team time (default: 24)")
    sim.add_argument("--start-hour", type=int, default=0, choices=range(0, 24), metavar="H",
                     help="the hour of Monday (team time, New York) the run starts at (default: %(default)s)")
    sim.add_argument("--leads-per-day", type=_positive_int, metavar="N", help="leads per simulated day (default: 5000)")
    sim.add_argument("--agents", type=_positive_int, default=20, metavar="N", help="agents in the team (default: %(default)s)")
    sim.add_argument("--floor", type=_percent, metavar="PCT",
                     help="fairness floor for performance and predictive: no agent below PCT%% of an equal share (default: 50)")
    sim.add_argument("--always-available", action="store_true",
                     help="agents work around the clock with no breaks (default: 08:00-22:00, some breaks)")
    sim.add_argument("--scenario", metavar="PATH", help="read the scenario from this JSON file (see --write-scenario)")
    sim.add_argument("--write-scenario", metavar="PATH", help="write the scenario used as JSON, to edit and rerun")
    sim.add_argument("--json", metavar="PATH", help="write the report as JSON (per-agent figures included)")
    sim.set_defaults(func=cmd_simulate)


def _add_bench_command(sub: Any) -> None:
    from exchange.bench import (
        DEFAULT_POSTGRES_DSN,
        DEFAULT_REDIS_URL,
        PROFILE_LEADS,
        PROFILES,
        SCENARIOS,
    )

    bench = sub.add_parser(
        "bench",
        help="measure it on this machine: start everything, drive load, check correctness",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""Measure the exchange on this machine (issue 7's targets).

Starts everything itself: a fresh PostgreSQL database named bench_* (dropped afterwards) and a
Redis db (flushed), migrations, verticals, buyers with money, campaigns and agents; buyer servers
in their own process; `exchange serve` and `exchange worker` processes; bare baselines (one
INSERT through a psycopg pool; a 10-way aiohttp fan-out) served with the same process count;
and drives load from a separate load-generator process. Prints progress, a table of throughput
and p50/p90/p99 latency per scenario, the targets met or missed, the ratios to the baselines,
and correctness checks (every lead terminal, no cap exceeded, ledger balanced and reconciled,
every sale delivered): exit status 1 when one is broken.

scenarios:
  post      direct posts to fixed-price campaigns, full path incl. delivery (and its drain)
  ping      pings answered by 10 live-bid buyers (+ posts of 10% of the accepted), at max
            rate and at half of it; exchange overhead = ping latency - slowest buyer's
  deadline  one buyer never answers; pings at 200/s; p99 vs the auction deadline
  matching  in-process: eligibility with reason codes among 10,000 campaigns
  teams     round-robin among 100 agents; 50 simultaneous claims on one parallel lead
  memory    an API process's RSS with 10,000 campaigns cached
  scale     the post scenario with 1 API + 1 worker and with 2 + 2
  embedded  the post scenario on the default (SQLite, in-process worker, no Redis)

A full run writes docs/performance.md; --quick (every scenario briefly, under two minutes)
writes nothing unless --write PATH says where.

--profile NAME says where the time goes instead: the same market, the exchange in this process,
leads sent one at a time; CPU per lead (API and PostgreSQL), every SQL statement with its count
and time per lead, and the exchange's functions with the most CPU. Profiles:
  post      direct posts to the 1,000 fixed-price campaigns (a first delivery attempt included)
  ping      pings answered by the 10 live-bid buyers
  route     round-robin routing of unsold leads among 100 agents""",
        epilog="examples:\n  exchange bench --quick --scenario post\n  exchange bench --profile post",
    )
    bench.add_argument("--quick", action="store_true", help="every scenario briefly (figures only indicative)")
    bench.add_argument("--duration", type=float, metavar="SECONDS", help="length of each measurement (default: 30; 3 with --quick)")
    bench.add_argument("--scenario", action="append", choices=SCENARIOS, metavar="NAME",
                       help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}")
    bench.add_argument("--api-processes", type=int, default=2, metavar="N", help="exchange serve processes (default: 2)")
    bench.add_argument("--workers", type=int, default=2, metavar="N", help="exchange worker processes (default: 2)")
    bench.add_argument("--connections", type=int, metavar="N", help="load-generator connections (default: 64; 16 with --quick)")
    bench.add_argument("--json", metavar="PATH", help="write the results as JSON")
    bench.add_argument("--write", metavar="PATH", help="write the Markdown report here (default: docs/performance.md on a full run)")
    bench.add_argument("--postgres-dsn", default=DEFAULT_POSTGRES_DSN, metavar="DSN",
                       help="an admin connection that may create bench_* databases (default: %(default)s)")
    bench.add_argument("--redis-url", default=DEFAULT_REDIS_URL, metavar="URL",
                       help="a Redis db the benchmark may flush (default: %(default)s)")
    bench.add_argument("--keep", action="store_true", help="keep the bench database and the processes' logs afterwards (to inspect them)")
    bench.add_argument("--profile", choices=PROFILES, metavar="NAME",
                       help="profile one lead's path in-process instead: post, ping or route")
    bench.add_argument("--leads", type=int, default=PROFILE_LEADS, metavar="N",
                       help="with --profile: leads measured, and as many again under cProfile (default: %(default)s)")
    bench.set_defaults(func=cmd_bench)


def _print_key(key: Any, kind: str) -> None:
    print(f"{kind} key {key.prefix} ({key.name}); shown once, store it now:")
    print(f"  {key.key}")


def _export_name(value: str) -> str:
    import re

    if not re.fullmatch(r"[A-Z][A-Z0-9_]*", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an upper-case shell variable prefix, e.g. BUYER")
    return value


def _print_exports(prefix: str, party_id: Any, key: str) -> None:
    """Shell lines for `eval "$(exchange ... --export BUYER)"`: BUYER_ID and BUYER_KEY."""
    print(f"export {prefix}_ID={party_id}")
    print(f"export {prefix}_KEY={key}")


def _safe_url(url: str) -> str:
    import sqlalchemy as sa

    return sa.engine.make_url(url).render_as_string(hide_password=True)


# --- exchange ledger ...: finance at the console (exchange.ledger) --------------------------------


def _ledger_period(value: str | None) -> str | None:
    from exchange.ledger import is_period

    if value is not None and not is_period(value):
        raise SystemExit(f"error: period {value!r} is not a UTC month, YYYY-MM")
    return value


def cmd_ledger_trial_balance(settings: Settings, args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from exchange import ledger

    period = _ledger_period(args.period)
    report = _run_db(settings, lambda conn: ledger.trial_balance(conn, period))
    table = Table(title=f"Trial balance at the end of {period or 'now'} (minor units)")
    for column in ("account", "currency", "debit", "credit"):
        table.add_column(column, justify="right" if column in ("debit", "credit") else "left")
    for line in report.lines:
        table.add_row(line.account, line.currency, f"{line.debit_minor:,}", f"{line.credit_minor:,}")
    for total in report.totals:
        table.add_row(f"[bold]total (difference {total.difference_minor:,})", total.currency,
                      f"{total.debits_minor:,}", f"{total.credits_minor:,}")  # fmt: skip
    console = Console()
    console.print(table)
    console.print("balanced" if report.balanced else "[red]NOT BALANCED[/red]")
    return 0 if report.balanced else 1


def cmd_ledger_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from exchange import ledger

    period = _ledger_period(args.period)
    report = _run_db(settings, lambda conn: ledger.reconcile(conn, period))
    console = Console()
    if report.ok:
        console.print(f"reconciled {report.sales_checked} sales ({period or 'all periods'}): no anomaly")
        return 0
    table = Table(title=f"{len(report.anomalies)} anomalies in {report.sales_checked} sales ({period or 'all periods'})")
    table.add_column("anomaly", no_wrap=True)  # the code is what people grep for
    for column in ("sale", "entry", "account", "detail"):
        table.add_column(column, overflow="fold")
    for a in report.anomalies:
        table.add_row(a.code, str(a.sale_id or ""), str(a.entry_id or ""), a.account or "", a.detail)
    console.print(table)
    return 1


def cmd_ledger_statement(settings: Settings, args: argparse.Namespace) -> int:
    from exchange import ledger

    period = _ledger_period(args.period)
    try:
        party_id = uuid.UUID(args.party)
    except ValueError:
        print(f"error: --party {args.party!r} is not a party id", file=sys.stderr)
        return 2
    text = _run_db(settings, lambda conn: ledger.statement_csv(conn, party_id, period))
    if args.out:
        with open(args.out, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        print(f"wrote {text.count(chr(10)) - 1} lines to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_ledger_close_period(settings: Settings, args: argparse.Namespace) -> int:
    import datetime as dt

    from exchange import ledger

    period = _ledger_period(args.period)
    now = dt.datetime.now(dt.timezone.utc)
    info = _run_db(settings, lambda conn: ledger.close_period(conn, period, now=now))
    print(f"period {info.period} closed at {info.closed_at:%Y-%m-%d %H:%M:%S} UTC; "
          "later corrections go into an open period")  # fmt: skip
    return 0


def _command(sub: Any, name: str, summary: str, description: str, example: str) -> argparse.ArgumentParser:
    """A subcommand whose --help reads: its summary, what it does, and one example."""
    return sub.add_parser(
        name,
        help=summary,
        description=f"{summary[0].upper()}{summary[1:]}.\n\n{description}",
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _subcommands(parser: argparse.ArgumentParser, dest: str) -> Any:
    return parser.add_subparsers(dest=dest, required=True, metavar="COMMAND", title="commands")


EXPORT_HELP = "print only `export PREFIX_ID=... PREFIX_KEY=...` lines, for eval (PREFIX: upper case)"
PERIOD = "YYYY-MM"


def _add_ledger_commands(sub: Any) -> None:
    ledger_parser = _command(
        sub, "ledger", "finance: trial balance, reconciliation, statements, period close",
        "Read and close the double-entry ledger from the database named by EXCHANGE_DATABASE_URL.\n"
        "Money is printed in minor units (cents).",
        "exchange ledger reconcile --period 2026-06",
    )  # fmt: skip
    ledger_sub = _subcommands(ledger_parser, "ledger_command")
    trial = _command(
        ledger_sub, "trial-balance", "balances per account; exit status 1 unless debits equal credits",
        "Sums every account's entries up to the end of a period (or now) and checks that the\n"
        "debits equal the credits.",
        "exchange ledger trial-balance --period 2026-06",
    )  # fmt: skip
    trial.add_argument("--period", metavar=PERIOD, help="balances at the end of this UTC month (default: now)")
    trial.set_defaults(func=cmd_ledger_trial_balance)
    rec = _command(
        ledger_sub, "reconcile", "pair delivered sales with charges; exit status 1 on any anomaly",
        "Pairs every delivered sale with exactly one charge and one payout (and a returned one\n"
        "with its refund) and lists every anomaly. Run it from cron.",
        "exchange ledger reconcile",
    )  # fmt: skip
    rec.add_argument("--period", metavar=PERIOD, help="only sales of this UTC month (default: all periods)")
    rec.set_defaults(func=cmd_ledger_reconcile)
    statement = _command(
        ledger_sub, "statement", "a party's statement for a month, as CSV",
        "Every ledger line of one party's accounts in one UTC month, as CSV (amounts in minor\n"
        "units).",
        "exchange ledger statement --party 0191c3e2-... --period 2026-06 --out june.csv",
    )  # fmt: skip
    statement.add_argument("--party", required=True, metavar="PARTY_ID", help="the party's id (a UUID)")
    statement.add_argument("--period", required=True, metavar=PERIOD, help="the UTC month")
    statement.add_argument("--out", metavar="PATH", help="write the CSV to this file (default: standard output)")
    statement.set_defaults(func=cmd_ledger_statement)
    close = _command(
        ledger_sub, "close-period", "lock a finished month against new entries",
        "Closes a finished UTC month: no entry may be posted into it afterwards (corrections go\n"
        "into the open month).",
        "exchange ledger close-period 2026-06",
    )  # fmt: skip
    close.add_argument("period", metavar=PERIOD, help="the UTC month to close; it must be over")
    close.set_defaults(func=cmd_ledger_close_period)


PARTY_KINDS = ["operator", "supplier", "buyer", "team", "agent", "finance"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="exchange",
        description="The lead exchange: serve the API, run workers, and administer parties,\n"
        "keys and the ledger. Settings come from EXCHANGE_* environment variables\n"
        "(docs/settings.md).",
        epilog="example:\n  exchange run    # migrate, seed a demo market and serve on :8000\n\n"
        "`exchange COMMAND --help` describes each command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = _subcommands(parser, "command")

    run = _command(
        sub, "run", "migrate, seed a demo market and serve (what `make run` does)",
        "Upgrades the database, creates the shipped verticals, a demo market of simulated buyers\n"
        "(served by this process) and a demo supplier key, then serves the API with simulated\n"
        "supplier traffic.",
        "exchange run --no-traffic",
    )  # fmt: skip
    run.add_argument("--host", help="address to bind (default: EXCHANGE_HOST, 127.0.0.1)")
    run.add_argument("--port", type=int, help="TCP port to bind (default: EXCHANGE_PORT, 8000)")
    run.add_argument("--workers", type=int, metavar="N", help="HTTP worker processes (default: EXCHANGE_HTTP_WORKERS, 1)")
    run.add_argument("--no-traffic", action="store_true", help="serve without simulated supplier traffic")
    run.set_defaults(func=cmd_run)

    demo = _command(
        sub, "demo", "a finite simulated market on a throw-away database, with a summary",
        "Sells simulated leads to simulated buyers on a temporary SQLite database, then prints\n"
        "what sold, the revenue, the margin and why the rest did not sell.",
        "exchange demo --leads 500",
    )  # fmt: skip
    demo.add_argument("--leads", type=int, default=200, metavar="COUNT", help="how many leads to post (default: %(default)s)")
    demo.set_defaults(func=cmd_demo)

    explain = _command(
        sub, "explain", "every campaign's decision for a lead (sells nothing)",
        "Runs a lead's non-PII fields through every campaign of the vertical and prints each\n"
        "one's reason code (docs/reason-codes.md) and bid, without selling or reserving anything.",
        """exchange explain --vertical solar --fields '{"zip": "94103", "state": "CA"}'""",
    )  # fmt: skip
    explain.add_argument("--vertical", required=True, metavar="SLUG", help="the vertical's slug, e.g. solar")
    explain.add_argument("--fields", required=True, metavar="JSON", help='the ping fields as a JSON object, e.g. \'{"zip": "94103"}\'')
    explain.set_defaults(func=cmd_explain)

    serve = _command(
        sub, "serve", "serve the HTTP API",
        "Serves the API (and /metrics). Without EXCHANGE_REDIS_URL it also runs an in-process\n"
        "worker; with it, run `exchange worker` beside it.",
        "exchange serve --host 0.0.0.0 --port 8000 --workers 2",
    )  # fmt: skip
    serve.add_argument("--host", help="address to bind (default: EXCHANGE_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port to bind (default: EXCHANGE_PORT, 8000)")
    serve.add_argument("--workers", type=int, metavar="N", help="HTTP worker processes (default: EXCHANGE_HTTP_WORKERS, 1)")
    serve.set_defaults(func=cmd_serve)

    worker = _command(
        sub, "worker", "run Dramatiq workers on the Redis broker",
        "Runs the deliveries, team offers and housekeeping queued by the API processes. Needs\n"
        "EXCHANGE_REDIS_URL; EXCHANGE_WORKER_METRICS_PORT serves their metrics.",
        "exchange worker --processes 2 --threads 8",
    )  # fmt: skip
    worker.add_argument("--processes", type=int, default=2, metavar="N", help="worker processes (default: %(default)s)")
    worker.add_argument("--threads", type=int, default=8, metavar="N", help="threads per worker process (default: %(default)s)")
    worker.set_defaults(func=cmd_worker)

    mig = _command(
        sub, "migrate", "upgrade the database schema",
        "Applies the schema migrations (Alembic) to the database named by EXCHANGE_DATABASE_URL.\n"
        "Safe to run again: an up-to-date database is left as it is.",
        "exchange migrate",
    )  # fmt: skip
    mig.add_argument("revision", nargs="?", default="head", help="the revision to upgrade to (default: %(default)s)")
    mig.set_defaults(func=cmd_migrate)

    seed = _command(
        sub, "seed", "create the verticals that ship with the exchange",
        "Creates the shipped verticals (solar, auto_insurance) when they are missing.",
        "exchange seed",
    )  # fmt: skip
    seed.set_defaults(func=cmd_seed)

    admin = _command(
        sub, "admin", "operator keys",
        "Bootstraps operator access: the first operator party and its keys.",
        "exchange admin create-key --name laptop",
    )  # fmt: skip
    admin_sub = _subcommands(admin, "admin_command")
    create_key = _command(
        admin_sub, "create-key", "create an operator key (the first one, or another)",
        "Creates the operator party when there is none yet, then a key for it; the key is shown\n"
        "once.",
        'eval "$(exchange admin create-key --export OPERATOR)"',
    )  # fmt: skip
    create_key.add_argument("--name", default="admin", help="the key's name, to tell keys apart (default: %(default)s)")
    create_key.add_argument("--operator", default="Operator", metavar="NAME",
                            help="the operator party's name when none exists yet (default: %(default)s)")
    create_key.add_argument("--export", metavar="PREFIX", type=_export_name, help=EXPORT_HELP)
    create_key.set_defaults(func=cmd_admin_key)

    party = _command(
        sub, "party", "parties (suppliers, buyers, teams, agents, finance)",
        "Creates parties, each with its first API key (docs/keys.md).",
        'exchange party create --kind buyer --name "Acme Solar"',
    )  # fmt: skip
    party_sub = _subcommands(party, "party_command")
    pcreate = _command(
        party_sub, "create", "create a party and its first key",
        "Creates a party of any kind and issues its first API key, shown once.",
        'eval "$(exchange party create --kind supplier --name "Acme Leads" --export SUPPLIER)"',
    )  # fmt: skip
    pcreate.add_argument("--kind", required=True, choices=PARTY_KINDS, metavar="KIND",
                         help=f"what the party is: {', '.join(PARTY_KINDS)}")
    pcreate.add_argument("--name", required=True, help="the party's display name")
    pcreate.add_argument("--timezone", default="UTC", metavar="ZONE",
                         help="IANA time zone, e.g. America/Chicago (default: %(default)s)")
    pcreate.add_argument("--team-id", metavar="TEAM_ID", help="agents only: the id of the agent's team")
    pcreate.add_argument("--export", metavar="PREFIX", type=_export_name, help=EXPORT_HELP)
    pcreate.set_defaults(func=cmd_party_create)

    key = _command(
        sub, "key", "API keys",
        "Manages API keys of any party. Parties manage their own over the API (docs/keys.md).",
        "exchange key revoke 3f9a2c1b7d04",
    )  # fmt: skip
    key_sub = _subcommands(key, "key_command")
    revoke = _command(
        key_sub, "revoke", "revoke a key by its prefix",
        "Revokes the key with this prefix (keys read lx_<prefix>_<secret>; listings show the\n"
        "prefix); API processes refuse it within EXCHANGE_KEY_CACHE_TTL_MS (docs/keys.md).",
        "exchange key revoke 3f9a2c1b7d04",
    )  # fmt: skip
    revoke.add_argument("prefix", help="the key's prefix: the part between `lx_` and the next `_`")
    revoke.set_defaults(func=cmd_key_revoke)

    _add_ledger_commands(sub)
    _add_bench_command(sub)
    _add_simulate_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"settings error: {exc}", file=sys.stderr)
        return 2
    from exchange.logs import configure_logging

    configure_logging(settings)
    try:
        return int(args.func(settings, args))
    except Exception as exc:  # a person reads this: say what failed, not a traceback
        from exchange.errors import ApiError

        if isinstance(exc, ApiError):
            detail = "; ".join(f"{f.path}: {f.reason}" for f in exc.body.fields or [])
            print(f"error: {exc.body.message}" + (f" ({detail})" if detail else ""), file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
