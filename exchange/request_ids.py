"""Request ids and the access log.

Every request gets an id: the client's ``X-Request-Id`` when it is a sane one (1 to 128
characters of letters, digits and ``-_.:``), a new UUIDv7 otherwise. The id is answered in the
``X-Request-Id`` header of every response (errors too), put in error bodies as
``error.request_id``, carried on every log line written while serving the request, and into
every Dramatiq message the request enqueues (``exchange.worker.request_ids``), so a delivery
retried by a worker logs the id of the post that sold the lead.

One access log line per request (logger ``exchange.access``; INFO, but DEBUG for ``/health`` and
``/metrics``): method, route template (never the path itself nor the query string, which may
carry ids or secrets), status, duration and the calling party once its key was checked. No
headers are logged.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from exchange import logs
from exchange.ids import new_id

HEADER = "X-Request-Id"
_HEADER_BYTES = HEADER.lower().encode()
MAX_CHARS = 128
_VALID = re.compile(r"^[A-Za-z0-9._:\-]{1,%d}$" % MAX_CHARS)
QUIET_ROUTES = frozenset({"/health", "/metrics"})  # probes and scrapes: DEBUG, not INFO

access_log = logging.getLogger("exchange.access")


def new_request_id() -> str:
    return str(new_id())


def accepted(value: str | bytes | None) -> str | None:
    """The client's id if it is safe to echo and log, else None."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    return value if _VALID.match(value) else None


def current() -> str | None:
    return logs.request_id.get()


class RequestIdMiddleware:
    """Plain ASGI middleware, wrapped around the whole Litestar handler (routing and error
    handlers included) so 404s and authentication errors get an id too."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == _HEADER_BYTES:
                incoming = accepted(value)
                break
        rid = incoming or new_request_id()
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        status = 500  # what the client sees if nothing is sent

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _HEADER_BYTES]
                headers.append((_HEADER_BYTES, rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _access(scope, status, time.perf_counter() - started)
            logs.request_id.reset(token)


def _access(scope: dict[str, Any], status: int, elapsed_s: float) -> None:
    route = scope.get("path_template") or "(no route)"
    level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
    if not access_log.isEnabledFor(level):
        return
    extra: dict[str, Any] = {
        "method": scope.get("method"),
        "route": route,
        "status": status,
        "duration_ms": round(elapsed_s * 1000, 1),
    }
    party = getattr(scope.get("user"), "party_id", None)
    if party is not None:
        extra["party_id"] = str(party)
    access_log.log(level, "request", extra=extra)
