"""The Litestar application: routes, authentication, error shape, lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import dramatiq
import msgspec
import sqlalchemy as sa
import sqlalchemy.exc
from litestar import Litestar, MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from exchange import __version__, geo, request_ids
from exchange.api import ROUTES
from exchange.api.metrics import metrics_endpoint
from exchange.auction import service as auction_service
from exchange.auction.market import Market
from exchange.auth.middleware import API_KEY_HEADER, ApiKeyMiddleware
from exchange.auth.parties import KeyCache
from exchange.console import CONSOLE_ROUTES
from exchange.delivery import new_session
from exchange.errors import ApiError, ErrorBody, ErrorResponse, FieldProblem
from exchange.intake.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from exchange.metrics import HttpMetricsMiddleware
from exchange.settings import Settings, load_settings
from exchange.store.db import Database
from exchange.worker.broker import setup_broker

log = logging.getLogger("exchange.app")

IN_PROCESS_WORKER_THREADS = 4
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
}
_MISSING_FIELD = re.compile(r"^Object missing required field `([^`]+)`$")
_MSGSPEC_PATH = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


def _error(status: int, body: ErrorBody, headers: dict[str, str] | None = None) -> Response:
    request_id = request_ids.current()
    if request_id is not None and body.request_id is None:
        body = msgspec.structs.replace(body, request_id=request_id)
    return Response(
        ErrorResponse(error=body), status_code=status, media_type=MediaType.JSON, headers=headers
    )


def _api_error(_: Request, exc: ApiError) -> Response:
    return _error(exc.status, exc.body, exc.headers)


def _validation(_: Request, exc: ValidationException) -> Response:
    """Litestar's decoding errors (bad JSON, wrong types, bad query params) in our shape."""
    problems: list[FieldProblem] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid"))
        match = _MSGSPEC_PATH.match(message)
        reason = match.group("reason") if match else message
        path = str(item.get("key") or (match.group("path") or "").lstrip(".") if match else "")
        missing = _MISSING_FIELD.match(reason)
        if missing:  # "Object missing required field `x`": the path is the missing field itself
            parent = "" if path in ("", "data") else path + "."
            path, reason = parent + missing.group(1), "required"
        source = getattr(item.get("source"), "value", item.get("source")) or "body"
        if source == "body":
            where = path or "body"
        else:
            where = f"{source}.{path}" if path else str(source)
        problems.append(FieldProblem(where, reason))
    if not problems:
        problems.append(FieldProblem("body", exc.detail or "invalid request"))
    malformed = any("malformed" in p.reason.lower() for p in problems)
    status, code = (400, "malformed_json") if malformed else (422, "validation_failed")
    return _error(status, ErrorBody(code=code, message="the request is invalid", fields=problems))


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):  # a cause chain is short; never loop on a cycle
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _http(_: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    if isinstance(exc, NotAuthorizedException):
        return _error(
            401,
            ErrorBody(code="unauthorized", message=exc.detail),
            {"WWW-Authenticate": 'Bearer realm="exchange"'},
        )
    if isinstance(exc, PermissionDeniedException):
        return _error(403, ErrorBody(code="forbidden", message=exc.detail))
    if isinstance(exc, NotFoundException):
        return _error(404, ErrorBody(code="not_found", message="no such route or resource"))
    if status >= 500:
        log.error("server error", exc_info=exc)
        return _error(status, ErrorBody(code="internal_error", message="internal error"))
    if status == 400 and _caused_by(exc, msgspec.DecodeError):
        return _error(
            400,
            ErrorBody(
                code="malformed_json",
                message=f"the body is not valid JSON: {exc.detail}",
                fields=[FieldProblem("body", exc.detail)],
            ),
        )
    code = STATUS_CODES.get(status, "client_error")
    return _error(status, ErrorBody(code=code, message=exc.detail), dict(exc.headers or {}))


# Every pooled database connection busy for the pool's whole timeout: the process is
# overloaded, not broken. A 503 with Retry-After tells a supplier to back off and send again.
OVERLOADED_RETRY_AFTER_S = 1


def _unexpected(request: Request, exc: Exception) -> Response:
    if _caused_by(exc, sqlalchemy.exc.TimeoutError):
        log.warning("overloaded: no database connection free", extra={"path": request.url.path})
        return _error(
            503,
            ErrorBody(code="overloaded", message="the exchange is at capacity; retry shortly"),
            {"Retry-After": str(OVERLOADED_RETRY_AFTER_S)},
        )
    log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    return _error(500, ErrorBody(code="internal_error", message="internal error; it was logged"))


async def _maintenance(interval_s: int, actor_name: str) -> None:
    """Enqueue housekeeping now and then. Several API processes may each do it: it is
    idempotent and cheap, and it needs no scheduler process of its own."""
    from exchange.worker import actors

    while True:
        await asyncio.sleep(interval_s)
        try:
            await asyncio.to_thread(getattr(actors, actor_name).send)
        except Exception:  # a broker outage must not stop the API; the next tick retries
            log.warning("could not enqueue %s", actor_name, exc_info=True)


async def _demo_traffic(settings: Settings) -> None:
    from pathlib import Path

    from exchange import demo

    key_path = Path(settings.var_dir) / demo.DEMO_KEY_FILE
    if not key_path.exists():
        log.warning("demo traffic off: no demo supplier key; run `exchange run`")
        return
    base_url = f"http://{settings.host}:{settings.port}"
    await demo.traffic(settings, base_url, key_path.read_text().strip())


def _stop_worker(worker: dramatiq.Worker, grace_s: int) -> None:
    """Stop the in-process worker: running actors finish (for up to ``grace_s``); messages it
    had not started go back to the in-memory broker and die with the process. That loses no
    work: each one is re-created from the database by a sweeper on the next start (deliveries
    from the outbox by ``sweep_deliveries``, unrouted leads by ``sweep_offers``, leads left
    mid-walk by the stuck-lead sweep, large CSV batches by the stalled-batch sweep) or is itself
    a timer's tick (housekeeping)."""
    worker.stop(timeout=grace_s * 1000)


def _limiter(settings: Settings) -> RateLimiter:
    """Across processes through Redis when there is one; in this process otherwise."""
    if settings.redis_url:
        import redis.asyncio

        return RedisRateLimiter(redis.asyncio.Redis.from_url(settings.redis_url))
    return MemoryRateLimiter()


async def _warm_and_freeze(market: Market, db: Database) -> None:
    """Load every active vertical's market now, then put what the process holds out of the
    cyclic garbage collector's reach (``gc.freeze``). Measured with 1,000 campaigns cached: a
    full collection paused the event loop ~50 ms (a ping's deadline is a few hundred); after
    the freeze, under 1 ms. Only long-lived serving processes cache markets, so only they do it;
    what is frozen is startup's (bounded), and later snapshots stay collectable."""
    import gc

    from exchange.store.tables import verticals

    try:
        async with db.read() as conn:
            slugs = (await conn.execute(sa.select(verticals.c.slug).where(verticals.c.active))).scalars().all()
        for slug in slugs:
            await market.get(slug)
    except Exception:  # the database is down or not migrated: serve anyway (503s until it is back)
        log.warning("could not load the campaign markets at startup; each loads on first use", exc_info=True)
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, *, in_process_worker: bool = True) -> Litestar:
    settings = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        broker = setup_broker(settings)
        # Load the zip table now (~20 ms, ~2 MB), not on the first lead.
        await asyncio.to_thread(geo.zip_info, "10001")
        db = Database(settings)
        app.state.db = db
        http = new_session(limit=settings.http_connections_max)
        app.state.auction = auction_service.Context(
            db=db,
            settings=settings,
            market=Market(db, settings.campaign_cache_ttl_ms),
            http=http,
            limiter=_limiter(settings),
        )
        app.state.settings = settings
        app.state.broker = broker
        app.state.key_cache = KeyCache(settings.key_cache_ttl_ms)
        worker = None
        if in_process_worker and not settings.redis_url:
            worker = dramatiq.Worker(broker, worker_threads=IN_PROCESS_WORKER_THREADS)
            worker.start()
        tasks = []
        if settings.maintenance_interval_s > 0:
            tasks.append(asyncio.create_task(_maintenance(settings.maintenance_interval_s, "purge_expired")))
        if settings.delivery_sweep_interval_s > 0:
            tasks.append(asyncio.create_task(_maintenance(settings.delivery_sweep_interval_s, "sweep_deliveries")))
        if settings.ping_sweep_interval_s > 0:
            tasks.append(asyncio.create_task(_maintenance(settings.ping_sweep_interval_s, "expire_pings")))
        if settings.offer_sweep_interval_s > 0:
            tasks.append(asyncio.create_task(_maintenance(settings.offer_sweep_interval_s, "sweep_offers")))
        if settings.demo:
            from exchange import demo

            tasks.append(asyncio.create_task(_demo_traffic(settings)))
            tasks.append(asyncio.create_task(demo.agents_at_work(settings)))
        if settings.campaign_cache_ttl_ms > 0:
            await _warm_and_freeze(app.state.auction.market, db)
        try:
            yield
        finally:
            # Runs after the server let requests in flight finish (EXCHANGE_SHUTDOWN_GRACE_S).
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                if worker is not None:
                    await asyncio.to_thread(_stop_worker, worker, settings.shutdown_grace_s)
                await app.state.auction.market.close()
                await http.close()
            finally:  # whatever failed above, the pool is closed on this loop, not left to GC
                await db.dispose()

    openapi = OpenAPIConfig(
        title="Lead exchange",
        version=__version__,
        description=(
            "Suppliers ping and post leads; advertisers buy them; internal teams work the rest. "
            "Authenticate with `Authorization: Bearer <key>`."
        ),
        path="/schema",
        render_plugins=[SwaggerRenderPlugin(), RedocRenderPlugin()],
        components=Components(
            security_schemes={
                "api_key": SecurityScheme(type="http", scheme="bearer"),
                "api_key_header": SecurityScheme(type="apiKey", name=API_KEY_HEADER, security_scheme_in="header"),
            }
        ),
        security=[{"api_key": []}, {"api_key_header": []}],
    )
    handlers: dict[Any, Any] = {
        ApiError: _api_error,
        ValidationException: _validation,
        HTTPException: _http,
        Exception: _unexpected,
    }
    app = Litestar(
        route_handlers=[
            *ROUTES, *CONSOLE_ROUTES, *([metrics_endpoint] if settings.metrics_enabled else [])
        ],
        lifespan=[lifespan],
        middleware=[
            HttpMetricsMiddleware,  # outermost: times authentication too
            # The console's pages resolve their session cookie themselves (a redirect to sign in,
            # not a JSON 401); its scripts' /v1 calls go through this middleware like any other.
            DefineMiddleware(
                ApiKeyMiddleware,
                exclude=["^/health$", "^/schema", "^/metrics$", "^/v1/postbacks/", "^/console(/|$)"],
            ),
        ],
        exception_handlers=handlers,
        openapi_config=openapi,
        request_max_body_size=settings.max_body_bytes,
        debug=False,
        logging_config=None,
        # datetime subclasses (freezegun's in tests) are not native to msgspec.
        type_encoders={dt.datetime: dt.datetime.isoformat},  # exchange.logs configures logging once per process
    )
    # Around routing and the error handlers, not inside a route: 404s and 401s get an id too.
    app.asgi_handler = request_ids.RequestIdMiddleware(app.asgi_handler)
    return app
