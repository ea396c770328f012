"""Liveness and readiness: can we reach the database and the broker?"""

from __future__ import annotations

import asyncio

import msgspec
from litestar import Request, Response, get

from exchange import __version__
from exchange.worker.broker import check_broker

CHECK_TIMEOUT_S = 3.0


class Health(msgspec.Struct):
    status: str
    version: str
    database: str
    broker: str


@get("/health", tags=["health"], summary="Database and broker reachability")
async def health(request: Request) -> Response[Health]:
    state = request.app.state

    async def check(coro) -> str:  # type: ignore[no-untyped-def]
        try:
            await asyncio.wait_for(coro, CHECK_TIMEOUT_S)
        except Exception as exc:  # report any failure, don't raise it
            return f"error: {type(exc).__name__}: {exc}"[:200]
        return "ok"

    database = await check(state.db.ping())
    broker = await check(asyncio.to_thread(check_broker, state.broker))
    ok = database == "ok" and broker == "ok"
    body = Health(status="ok" if ok else "degraded", version=__version__, database=database, broker=broker)
    return Response(body, status_code=200 if ok else 503)
