"""Prometheus metrics: every metric the exchange exports, defined once, and the scrape.

Counters and histograms move where things happen (the buyer fan-out, the post walk, delivery
attempts, charges) and cost one labelled increment each: no I/O, nothing per lead kept. Labels
stay bounded: buyer and campaign ids, verticals, currencies, outcomes; never lead or sale ids.

What is read from elsewhere (queue depth from the broker, cap usage from the database) is read
when Prometheus scrapes, each part under a time limit: a slow or broken Redis or database
leaves that part out of the answer (``exchange_metrics_source_up{source} 0``) and counts
``exchange_metrics_source_errors_total``; the scrape itself still answers.

The API serves ``/metrics`` (``EXCHANGE_METRICS_ENABLED``). ``exchange worker`` processes share
their counters through prometheus_client's multiprocess mode and one small HTTP server on
``EXCHANGE_WORKER_METRICS_PORT`` (``serve_worker_metrics``); see deploy/README.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
import uuid
from collections.abc import Iterable
from typing import Any

import msgspec
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
SOURCE_TIMEOUT_S = 2.0  # each live part of a scrape (broker, database) gets this long
CAP_USAGE_TOP = 50  # the most-used cap windows reported (bounds the series)
CAP_SCAN_MAX = 10_000  # campaigns considered for cap usage per scrape
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Buyer answers come in milliseconds; the top buckets catch the slow ones and the deadline.
BUYER_LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
)  # fmt: skip
HTTP_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

# --- the auction ------------------------------------------------------------------------------

PINGS = Counter(
    "exchange_pings",
    "Pings sent to live-bid buyers, by answer: bid, rejected, error, timeout.",
    ["buyer", "outcome"],
)
PING_LATENCY = Histogram(
    "exchange_ping_latency_seconds",
    "Time a live-bid buyer took to answer a ping (a timeout counts at its cut-off).",
    ["buyer"],
    buckets=BUYER_LATENCY_BUCKETS,
)
PING_TIMEOUTS = Counter(
    "exchange_ping_timeouts",
    "Pings a buyer did not answer within its timeout or the auction deadline.",
    ["buyer"],
)
BIDS = Counter(
    "exchange_bids",
    "Bids received in auctions (live answers and fixed prices), before ranking.",
    ["vertical"],
)
AUCTIONS = Counter(
    "exchange_auctions",
    "Supplier pings (and direct posts) auctioned: offered a bid or unmatched.",
    ["vertical", "outcome"],
)
LEADS = Counter(
    "exchange_leads_posted",
    "Leads posted (mode post or direct) or walked on by a worker (resumed): sold or unsold.",
    ["vertical", "mode", "status"],
)
CALLS = Counter(
    "exchange_calls",
    "Calls as they ended (exchange.calls): completed, short, missed, expired, unreported.",
    ["status"],
)
SALES = Counter(
    "exchange_sales",
    "Sales the post walk made (delivery accepted, or pending a retry).",
    ["vertical", "mode"],
)
SALE_AMOUNT = Counter(
    "exchange_sale_amount_minor",
    "Money charged to buyers for delivered, accepted sales, in minor units.",
    ["currency"],
)
SALE_MARGIN = Counter(
    "exchange_sale_margin_minor",
    "The exchange's margin on delivered, accepted sales, in minor units.",
    ["currency"],
)

# --- delivery ---------------------------------------------------------------------------------

DELIVERY_ATTEMPTS = Counter(
    "exchange_delivery_attempts",
    "Attempts to post a sold lead to its buyer: accepted, rejected, retry (a transport error, "
    "tried again later), failed (out of attempts).",
    ["buyer", "outcome"],
)
DELIVERY_LATENCY = Histogram(
    "exchange_delivery_latency_seconds",
    "Time a buyer took to answer a post.",
    ["buyer"],
    buckets=BUYER_LATENCY_BUCKETS,
)

# --- internal teams ---------------------------------------------------------------------------

TEAM_OFFERS = Counter(
    "exchange_team_offers",
    "Offers of leads made to internal sales agents, by team and mode (sequential, parallel).",
    ["team", "mode"],
)
TEAM_ASSIGNMENTS = Counter(
    "exchange_team_assignments",
    "Leads given to an agent: assigned (round-robin or a fallback person) or claimed (an "
    "offer accepted).",
    ["how"],
)

NOTIFICATIONS = Counter(
    "exchange_notifications",
    "Notification attempts to agents and managers, by channel (email, webhook) and outcome "
    "(sent, retry, failed: out of attempts).",
    ["channel", "outcome"],
)

CRM_SYNCS = Counter(
    "exchange_crm_syncs",
    "CRM push attempts (exchange.crm), by connection kind (webhook, hubspot, salesforce) and "
    "verdict (synced, retry, failed).",
    ["kind", "verdict"],
)

# --- outcomes (exchange.outcomes) -------------------------------------------------------------

# From owning (or buying) a lead to first contact: minutes when a team is on it, days when not.
FIRST_RESPONSE_BUCKETS = (
    10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800,
)  # fmt: skip

LEAD_OUTCOMES = Counter(
    "exchange_lead_outcomes",
    "Outcomes reported on leads (first report of each kind per reporter), by kind "
    "(contacted, qualified, appointment, won, lost, bad_lead), reporter (agent, buyer) and "
    "channel (api, postback).",
    ["kind", "reporter", "channel"],
)
FIRST_RESPONSE = Histogram(
    "exchange_first_response_seconds",
    "Time to first contact: an agent's from owning the lead, a buyer's from the sale to its "
    "first contacted report.",
    ["reporter"],
    buckets=FIRST_RESPONSE_BUCKETS,
)

# --- HTTP -------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "exchange_http_requests",
    "API requests answered, by route template and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "exchange_http_request_duration_seconds",
    "Time to answer an API request, by route template.",
    ["method", "route"],
    buckets=HTTP_LATENCY_BUCKETS,
)

# --- the scrape itself ------------------------------------------------------------------------

SOURCE_ERRORS = Counter(
    "exchange_metrics_source_errors",
    "Live parts of a scrape (broker, database) that failed or ran out of time.",
    ["source"],
)


# --- recording helpers: one increment each, never raising into the caller ------------------------


def ping_answered(buyer_id: str, outcome: str, latency_ms: int | None) -> None:
    PINGS.labels(buyer_id, outcome).inc()
    if outcome == "timeout":
        PING_TIMEOUTS.labels(buyer_id).inc()
    if latency_ms is not None:
        PING_LATENCY.labels(buyer_id).observe(latency_ms / 1000)


def delivery_attempted(buyer_id: str, outcome: str, latency_ms: int | None) -> None:
    DELIVERY_ATTEMPTS.labels(buyer_id, outcome).inc()
    if latency_ms is not None:
        DELIVERY_LATENCY.labels(buyer_id).observe(latency_ms / 1000)


def sale_charged(currency: str, price_minor: int, payout_minor: int) -> None:
    SALE_AMOUNT.labels(currency).inc(price_minor)
    SALE_MARGIN.labels(currency).inc(price_minor - payout_minor)


# --- HTTP middleware ----------------------------------------------------------------------------


class HttpMetricsMiddleware:
    """Counts and times every routed request by its route template (``/v1/leads/{lead_id}``),
    never by its raw path, so the series stay bounded. Unrouted paths (404) are not counted."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_see(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_see)
        except Exception as exc:
            status = getattr(exc, "status_code", 500)  # the app's handlers answer it above us
            raise
        finally:
            method = scope.get("method", "")
            route = scope.get("path_template") or "unrouted"
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)


# --- live parts of a scrape -----------------------------------------------------------------------


def queue_names() -> tuple[str, ...]:
    from exchange.worker import actors

    return (actors.DELIVERY_QUEUE, actors.MAINTENANCE_QUEUE, actors.TEAMS_QUEUE,
            actors.NOTIFICATIONS_QUEUE, actors.CRM_QUEUE, actors.INTAKE_QUEUE)  # fmt: skip


def _queue_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "exchange_queue_depth",
        "Messages in the broker's queues: ready (waiting for a worker), delayed (a retry or a "
        "schedule not yet due, or held by a worker until due), dead (dead-lettered).",
        labels=["queue", "state"],
    )


def queue_depth_redis(redis_url: str, namespace: str, queues: Iterable[str]) -> GaugeMetricFamily:
    """Read the Dramatiq Redis broker's queue lengths (a client of our own, with timeouts)."""
    import redis

    family = _queue_family()
    client = redis.Redis.from_url(
        redis_url, socket_timeout=SOURCE_TIMEOUT_S, socket_connect_timeout=SOURCE_TIMEOUT_S
    )
    try:
        pipe = client.pipeline(transaction=False)
        names = list(queues)
        for name in names:
            key = f"{namespace}:{name}"
            pipe.llen(key)
            pipe.hlen(f"{key}.DQ.msgs")
            pipe.zcard(f"{key}.XQ")
        values = pipe.execute()
    finally:
        client.close()
    for i, name in enumerate(names):
        ready, delayed, dead = values[3 * i : 3 * i + 3]
        family.add_metric([name, "ready"], ready)
        family.add_metric([name, "delayed"], delayed)
        family.add_metric([name, "dead"], dead)
    return family


def queue_depth_stub(broker: Any, queues: Iterable[str]) -> GaugeMetricFamily:
    """The in-memory broker's queues (the embedded default)."""
    from dramatiq.common import dq_name

    family = _queue_family()
    for name in queues:
        ready = broker.queues.get(name)
        delayed = broker.queues.get(dq_name(name))
        family.add_metric([name, "ready"], ready.qsize() if ready is not None else 0)
        family.add_metric([name, "delayed"], delayed.qsize() if delayed is not None else 0)
        family.add_metric([name, "dead"], len(broker.dead_letters_by_queue.get(name, ())))
    return family


def queue_depth(broker: Any, redis_url: str | None) -> GaugeMetricFamily:
    from dramatiq.brokers.stub import StubBroker

    from exchange.worker.broker import REDIS_NAMESPACE

    if isinstance(broker, StubBroker) or (broker is not None and not redis_url):
        return queue_depth_stub(broker, queue_names())
    assert redis_url, "a Redis broker needs its URL"
    return queue_depth_redis(redis_url, REDIS_NAMESPACE, queue_names())


async def cap_usage(db: Any, now: dt.datetime | None = None, top: int = CAP_USAGE_TOP) -> GaugeMetricFamily:
    """How full the current cap windows of active campaigns are (0..1), the ``top`` fullest.

    One read of the capped active campaigns (at most CAP_SCAN_MAX) and one of their counters
    for the windows open now, each campaign in its own time zone.
    """
    import sqlalchemy as sa

    from exchange.matching.caps import Cap, window_key
    from exchange.store.tables import campaigns, cap_counters

    now = now or dt.datetime.now(dt.timezone.utc)
    family = GaugeMetricFamily(
        "exchange_cap_usage_ratio",
        f"Used / limit of the current cap windows of active campaigns (the {top} fullest): "
        "kind count (leads) or spend (money).",
        labels=["campaign", "window", "kind"],
    )
    limits: dict[tuple[str, str], tuple[str, Cap]] = {}  # (campaign, key) -> (window, cap)
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(campaigns.c.id, campaigns.c.timezone, campaigns.c.caps)
            .where(campaigns.c.active.is_(True))
            .limit(CAP_SCAN_MAX)
        )
        for row in rows:
            for cap in msgspec.convert(row.caps or [], list[Cap]):
                if cap.max_count is None and cap.max_spend_minor is None:
                    continue
                key = window_key(cap.window, row.timezone, now)
                limits[(str(row.id), key)] = (cap.window.value, cap)
        if not limits:
            return family
        ids = sorted({uuid.UUID(c) for c, _ in limits})
        keys = sorted({k for _, k in limits})
        counters = await conn.execute(
            sa.select(
                cap_counters.c.campaign_id, cap_counters.c.window_key, cap_counters.c.count,
                cap_counters.c.spend_minor,
            ).where(cap_counters.c.campaign_id.in_(ids), cap_counters.c.window_key.in_(keys))
        )  # fmt: skip
        used = {(str(r.campaign_id), r.window_key): (r.count, r.spend_minor) for r in counters}
    ratios: list[tuple[float, str, str, str]] = []
    for (campaign_id, key), (window, cap) in limits.items():
        count, spend = used.get((campaign_id, key), (0, 0))
        if cap.max_count is not None:
            ratios.append((_ratio(count, cap.max_count), campaign_id, window, "count"))
        if cap.max_spend_minor is not None:
            ratios.append((_ratio(spend, cap.max_spend_minor), campaign_id, window, "spend"))
    ratios.sort(key=lambda r: (-r[0], r[1], r[2], r[3]))
    for ratio, campaign_id, window, kind in ratios[:top]:
        family.add_metric([campaign_id, window, kind], ratio)
    return family


def _ratio(used: int, limit: int) -> float:
    return 1.0 if limit <= 0 else used / limit


class _Families(Collector):
    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Iterable[Any]:
        return self.families


def _up_family(up: dict[str, bool]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "exchange_metrics_source_up",
        "1 if this scrape could read the source (broker, database) in time, else 0.",
        labels=["source"],
    )
    for source, ok in sorted(up.items()):
        family.add_metric([source], 1 if ok else 0)
    return family


async def _live(source: str, work: Any, families: list[Any], up: dict[str, bool]) -> None:
    try:
        families.append(await asyncio.wait_for(work, SOURCE_TIMEOUT_S))
        up[source] = True
    except Exception as exc:  # a broken source leaves its part out, never the whole scrape
        SOURCE_ERRORS.labels(source).inc()
        up[source] = False
        log.warning("metrics: could not read %s: %s: %s", source, type(exc).__name__, exc)


async def render_api(db: Any, broker: Any, redis_url: str | None) -> bytes:
    """The API's /metrics: this process's counters plus queue depth and cap usage."""
    families: list[Any] = []
    up: dict[str, bool] = {}
    await asyncio.gather(
        _live("broker", asyncio.to_thread(queue_depth, broker, redis_url), families, up),
        _live("database", cap_usage(db), families, up),
    )
    families.append(_up_family(up))
    live = CollectorRegistry(auto_describe=False)
    live.register(_Families(families))
    return generate_latest(_own_registry()) + generate_latest(live)


def _own_registry() -> CollectorRegistry:
    """This process's metrics, or under ``exchange serve --workers N`` (multiprocess mode) the
    sum over all N: a scrape reaches one process, its answer must cover them all."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry(auto_describe=False)
    multiprocess.MultiProcessCollector(registry, path=directory)
    return registry


# --- the workers' metrics server ------------------------------------------------------------------


class _WorkerLive(Collector):
    """Queue depth for the workers' server: read from Redis at each scrape, under its timeout."""

    def __init__(self, redis_url: str | None) -> None:
        self.redis_url = redis_url

    def collect(self) -> Iterable[Any]:
        from exchange.worker.broker import REDIS_NAMESPACE

        ok = True
        if self.redis_url:
            try:
                yield queue_depth_redis(self.redis_url, REDIS_NAMESPACE, queue_names())
            except Exception as exc:
                SOURCE_ERRORS.labels("broker").inc()
                ok = False
                log.warning("metrics: could not read the broker: %s: %s", type(exc).__name__, exc)
        yield _up_family({"broker": ok})


def worker_registry(multiproc_dir: str, redis_url: str | None) -> CollectorRegistry:
    """Every worker process's counters (multiprocess files in ``multiproc_dir``) and the queues."""
    from prometheus_client import multiprocess

    registry = CollectorRegistry(auto_describe=False)
    multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
    registry.register(_WorkerLive(redis_url))
    return registry


def prepare_multiprocess_dir(var_dir: str, kind: str, port: int) -> str:
    """The multiprocess directory for ``exchange worker`` (``kind`` "worker") or a multi-process
    ``exchange serve`` ("api") on ``port``, emptied of a previous run's files (counters restart
    at zero with the processes, as Prometheus expects)."""
    from pathlib import Path

    path = Path(var_dir).resolve() / f"{kind}-metrics" / str(port)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    return str(path)


def start_worker_metrics_server(port: int, host: str, multiproc_dir: str, redis_url: str | None) -> Any:
    """Serve the workers' metrics on ``host:port`` from a thread; returns the server."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(
        port, addr=host, registry=worker_registry(multiproc_dir, redis_url)
    )
    return server


def serve_worker_metrics() -> int:
    """Dramatiq ``--fork-function``: the one process that serves all workers' metrics."""
    from exchange.settings import load_settings

    settings = load_settings()
    multiproc_dir = os.environ[MULTIPROC_ENV]
    start_worker_metrics_server(
        settings.worker_metrics_port, settings.host, multiproc_dir, settings.redis_url
    )
    log.info("worker metrics on %s:%s", settings.host, settings.worker_metrics_port)
    while True:  # dramatiq stops this process with a signal
        time.sleep(3600)
