"""Targets from issue 7, the rich table at the end, and docs/performance.md."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.table import Table

from exchange.bench.results import Report, Row, Target

# Targets (issue 7), on 2 cores with PostgreSQL and Redis on the same machine.
POST_MIN_RPS = 1_000
POST_MIN_INSERT_RATIO = 0.35
PING_MIN_RPS = 500
PING_MIN_FANOUT_RATIO = 0.5
OVERHEAD_MAX_P99_MS = 10.0
DEADLINE_SLACK_MS = 15.0
MATCHING_MAX_P50_MS = 1.0
MATCHING_MAX_P99_MS = 3.0
ROUND_ROBIN_MIN_RPS = 500
CLAIMS_MAX_P99_MS = 50.0
RSS_MAX_MIB = 200.0


def _target(scenario: str, what: str, goal: str, value: float | None, ok: bool | None, fmt: str = "{:.0f}") -> Target:
    return Target(scenario=scenario, what=what, goal=goal, value=value,
                  shown="-" if value is None else fmt.format(value), met=None if value is None else ok)  # fmt: skip


def _le(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def _ge(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


def targets(rows: list[Row], ratios: dict[str, float]) -> list[Target]:
    by = {r.label: r for r in rows}
    post = next((r for r in rows if r.scenario == "post"), None)
    ping_max = next((r for r in rows if r.label == "ping, max rate"), None)
    ping_half = next((r for r in rows if r.scenario == "ping" and r is not ping_max), None)
    deadline = next((r for r in rows if r.scenario == "deadline"), None)
    matching = by.get("matching: candidates + evaluate")
    rr = by.get("teams: round-robin")
    claims = by.get("teams: 50 claims on one parallel lead")
    memory = by.get("memory: API process RSS")
    post_rps = post.throughput if post else None
    ping_rps = ping_max.throughput if ping_max else None
    overhead = ping_half.extra.get("overhead", {}).get("p99_ms") if ping_half else None
    deadline_p99 = deadline.latency.p99_ms if deadline else None
    deadline_ms = deadline.extra.get("deadline_ms", 0) if deadline else 0
    return [
        _target("post", "direct post, full path", f">= {POST_MIN_RPS:,} leads/s", post_rps, _ge(post_rps, POST_MIN_RPS)),
        _target("post", "post / INSERT baseline", f">= {POST_MIN_INSERT_RATIO}", ratios.get("post / insert"),
                _ge(ratios.get("post / insert"), POST_MIN_INSERT_RATIO), "{:.2f}"),
        _target("ping", "pings, 10 live buyers", f">= {PING_MIN_RPS} pings/s", ping_rps, _ge(ping_rps, PING_MIN_RPS)),
        _target("ping", "ping / fan-out baseline", f">= {PING_MIN_FANOUT_RATIO}", ratios.get("ping / fan-out"),
                _ge(ratios.get("ping / fan-out"), PING_MIN_FANOUT_RATIO), "{:.2f}"),
        _target("ping", "overhead p99 at half rate", f"<= {OVERHEAD_MAX_P99_MS:g} ms", overhead,
                _le(overhead, OVERHEAD_MAX_P99_MS), "{:.1f} ms"),
        _target("deadline", "ping p99, one buyer silent", f"<= deadline + {DEADLINE_SLACK_MS:g} ms ({deadline_ms + DEADLINE_SLACK_MS:g} ms)",
                deadline_p99, _le(deadline_p99, deadline_ms + DEADLINE_SLACK_MS), "{:.1f} ms"),
        _target("matching", "eligibility median", f"<= {MATCHING_MAX_P50_MS:g} ms", matching.latency.p50_ms if matching else None,
                _le(matching.latency.p50_ms if matching else None, MATCHING_MAX_P50_MS), "{:.2f} ms"),
        _target("matching", "eligibility p99", f"<= {MATCHING_MAX_P99_MS:g} ms", matching.latency.p99_ms if matching else None,
                _le(matching.latency.p99_ms if matching else None, MATCHING_MAX_P99_MS), "{:.2f} ms"),
        _target("teams", "round-robin assignment", f">= {ROUND_ROBIN_MIN_RPS} leads/s", rr.throughput if rr else None,
                _ge(rr.throughput if rr else None, ROUND_ROBIN_MIN_RPS)),
        _target("teams", "50 claims settled, p99", f"<= {CLAIMS_MAX_P99_MS:g} ms", claims.latency.p99_ms if claims else None,
                _le(claims.latency.p99_ms if claims else None, CLAIMS_MAX_P99_MS), "{:.1f} ms"),
        _target("memory", "API RSS, campaigns cached", f"<= {RSS_MAX_MIB:g} MiB", memory.extra.get("rss_mib") if memory else None,
                _le(memory.extra.get("rss_mib") if memory else None, RSS_MAX_MIB), "{:.0f} MiB"),
    ]  # fmt: skip


def _n(value: float | None, fmt: str = "{:,.0f}") -> str:
    return "-" if value is None else fmt.format(value)


def _mark(met: bool | None) -> str:
    return {True: "pass", False: "MISS", None: "not run"}[met]


def console_tables(report: Report, console: Console) -> None:
    table = Table(title="exchange bench" + (" (quick: short runs, figures are indicative only)" if report.quick else ""))
    for column in ("scenario", "throughput", "p50", "p90", "p99", "errors", "notes"):
        table.add_column(column, justify="right" if column not in ("scenario", "notes") else "left",
                         overflow="fold")  # fmt: skip
    for row in report.rows:
        table.add_row(row.label, f"{_n(row.throughput)} {row.unit}" if row.throughput is not None else "-",
                      _n(row.latency.p50_ms, "{:.1f}"), _n(row.latency.p90_ms, "{:.1f}"),
                      _n(row.latency.p99_ms, "{:.1f}"), str(row.errors), row.notes)  # fmt: skip
    console.print(table)
    goals = Table(title="Targets (issue 7)")
    for column in ("scenario", "target", "goal", "measured", "result"):
        goals.add_column(column)
    for t in report.targets:
        style = {True: "green", False: "red", None: "dim"}[t.met]
        goals.add_row(t.scenario, t.what, t.goal, t.shown, f"[{style}]{_mark(t.met)}[/{style}]")
    console.print(goals)
    if report.ratios:
        console.print("ratios: " + ", ".join(f"{k} = {v:.2f}" for k, v in report.ratios.items()))
    checks = Table(title="Correctness after the run")
    for column in ("check", "result", "detail"):
        checks.add_column(column, overflow="fold")
    for c in report.checks:
        checks.add_row(c.name, "[green]ok[/green]" if c.ok else "[red]BROKEN[/red]", c.detail)
    console.print(checks)
    for failure in report.failures:
        console.print(f"[red]scenario failed:[/red] {failure}")


def _md_table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(report: Report) -> str:
    machine = _md_table(["", ""], [[k, v] for k, v in report.machine.items()])
    figures = _md_table(
        ["scenario", "throughput", "p50 ms", "p90 ms", "p99 ms", "errors", "notes"],
        [[r.label, f"{_n(r.throughput)} {r.unit}" if r.throughput is not None else "-", _n(r.latency.p50_ms, "{:.1f}"),
          _n(r.latency.p90_ms, "{:.1f}"), _n(r.latency.p99_ms, "{:.1f}"), str(r.errors), r.notes] for r in report.rows],
    )  # fmt: skip
    goals = _md_table(["scenario", "target", "goal", "measured", "result"],
                      [[t.scenario, t.what, t.goal, t.shown, _mark(t.met)] for t in report.targets])  # fmt: skip
    checks = _md_table(["check", "result", "detail"], [[c.name, "ok" if c.ok else "BROKEN", c.detail] for c in report.checks])
    ratios = "\n".join(f"- {k}: **{v:.2f}**" for k, v in report.ratios.items()) or "- none measured"
    settings = "\n".join(f"- `{k}`: {v}" for k, v in report.settings.items())
    p_campaigns = report.settings.get("fixed-price campaigns (post)", "the")
    quick = ("\n> This file was written by a `--quick` run: every scenario ran only briefly, so the "
             "figures are indicative, not a measurement.\n") if report.quick else ""  # fmt: skip
    return f"""# Performance

Written by `exchange bench` on {report.date}. Command: `{report.command}`.
{quick}
## How to run it

```sh no-run
.venv/bin/exchange bench                 # every scenario, full length; writes this file
.venv/bin/exchange bench --quick         # every scenario briefly (under two minutes); writes nothing
.venv/bin/exchange bench --scenario ping --duration 60 --json out.json
.venv/bin/exchange bench --profile post         # where one direct post's time goes, in-process
```

It needs PostgreSQL and Redis running (`--postgres-dsn`, `--redis-url`). It starts everything else
itself: a fresh `bench_*` database (dropped afterwards), migrations, verticals, buyers with money,
campaigns and agents; buyer servers in their own process (latency, timeout, error and reject rates);
the API and worker processes (`exchange.cluster`); the bare baselines; and drives the load from a
separate load-generator process (aiohttp). Run full measurements on a quiet machine: the load
generator, the buyer servers, PostgreSQL and Redis share the cores with the exchange.

## What each scenario measures

| scenario | what |
|---|---|
| post | closed-loop direct posts (`POST /v1/leads`) to {p_campaigns} fixed-price campaigns over 15 states: validate, dedupe, match, reserve caps, sell, ledger entry, outbox, the first delivery attempt to the buyer server; 1% of deliveries fail and are retried by the workers. Then the wait until every delivery is settled; "end to end" counts that wait too |
| ping | closed-loop pings answered by 10 live-bid buyers at once (10-30 ms each), posting 10% of the accepted ones; then an open loop at half that rate. Overhead = ping latency minus the slowest buyer's injected latency for that ping (the buyer servers record it per `ping_id`) |
| deadline | open loop at 200 pings/s where one of the buyers never answers: the auction deadline must cut it |
| matching | in-process: the index's candidates plus `evaluate` (a decision and its reason code) for one lead among 10,000 campaigns over 5 verticals and 50 states; the full trace adds every skipped campaign's reason |
| teams | round-robin routing (`teams.routing.route_lead` from 2 processes, 4 concurrent routers each, as API and worker processes route) of unsold leads among 100 agents; 50 agents claiming one parallel lead at once over HTTP, settle time from the first claim sent to the last answer |
| memory | a fresh API process's RSS (`/proc/<pid>/status` VmRSS) after every vertical's campaign cache is loaded |
| scale-out | the post scenario with 1 API + 1 worker process and with 2 + 2 |
| embedded | the post scenario on the default: SQLite, in-process worker, no Redis, one process |
| baselines | the same load on bare Litestar endpoints: one INSERT through a psycopg pool; a 10-way aiohttp fan-out to the same buyer servers |

Latencies are in milliseconds, measured by the load generator from when a request was due (open
loop) or sent (closed loop) to its answer; errors count non-2xx answers and client timeouts.

## Machine

{machine}

## Results

{figures}

## Ratios to this machine's limits

Our figures divided by the bare baselines measured in the same run (same API process count), so
runs on different machines compare:

{ratios}

## Targets

{goals}

Where a target is missed, `exchange bench --profile post` (or `ping`, `route`) says where one
lead's time goes: CPU per lead in the API and in PostgreSQL, every SQL statement with its count
and time, and the exchange's functions with the most CPU. [profiling.md](profiling.md) reads
those profiles: what was done, and what each missed target needs. Under load, `py-spy record
--pid <api pid>` on a scenario run alone (`--scenario NAME --duration 60`) shows the rest.

## Correctness after the run

{checks}

## Settings of this run

{settings}

## Scaling across machines

API processes are stateless: add `exchange serve` processes (behind a load balancer) and
`exchange worker` processes on other machines pointed at the same PostgreSQL and Redis. The
`scale-out` rows compare 1 API + 1 worker with 2 + 2 on this machine; on one 2-core machine the
second pair mostly competes for the same cores, so the gain shows on more cores or machines.
PostgreSQL (every lead's transaction) and, for rate limits and the broker, Redis are the shared
parts: the per-lead round trips to PostgreSQL set the ceiling of a single database.
"""
