"""This machine's limits, measured with bare endpoints the benchmark serves itself.

``insert_app``: a Litestar + msgspec endpoint that decodes a lead and does one INSERT through a
psycopg pool (no validation, no auction): what a lead's write path cannot beat.
``fanout_app``: a Litestar endpoint that posts a ping to N buyer endpoints at once with aiohttp
and answers the best bid: what a ping's fan-out cannot beat.

Both run under uvicorn (``--factory``) with the same worker count as the exchange's API; their
settings come from the environment (``BENCH_BASELINE_DSN``, ``BENCH_FANOUT_URLS``).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import aiohttp
import msgspec
from litestar import Litestar, Request, post

DSN_ENV = "BENCH_BASELINE_DSN"
FANOUT_URLS_ENV = "BENCH_FANOUT_URLS"
POOL_MAX_SIZE = 10  # the exchange's default pool (EXCHANGE_DATABASE_POOL_SIZE)
FANOUT_CONNECTIONS_MAX = 200  # the exchange's default (EXCHANGE_HTTP_CONNECTIONS_MAX)
FANOUT_TIMEOUT_S = 1.5
TABLE = "bench_baseline"
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id uuid PRIMARY KEY, vertical text NOT NULL, "
    "fields jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
)


class LeadIn(msgspec.Struct):
    vertical: str
    fields: dict[str, Any]
    source: str | None = None
    sub_ids: dict[str, str] | None = None
    consent: dict[str, Any] | None = None


def insert_app() -> Litestar:
    from psycopg.types.json import Jsonb
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(os.environ[DSN_ENV], min_size=2, max_size=POOL_MAX_SIZE, open=False)
    sql = f"INSERT INTO {TABLE} (id, vertical, fields) VALUES (%s, %s, %s)"

    @post("/lead", status_code=201)
    async def lead(data: LeadIn) -> dict[str, str]:
        lead_id = uuid.uuid4()
        async with pool.connection() as conn:
            await conn.execute(sql, (lead_id, data.vertical, Jsonb(data.fields)))
        return {"status": "stored", "lead_id": str(lead_id)}

    async def start() -> None:
        await pool.open()

    async def stop() -> None:
        await pool.close()

    return Litestar([lead], on_startup=[start], on_shutdown=[stop])


def fanout_app() -> Litestar:
    urls = [u for u in os.environ[FANOUT_URLS_ENV].split(",") if u]
    state: dict[str, aiohttp.ClientSession] = {}
    bid_decoder = msgspec.json.Decoder(dict)

    async def ask(http: aiohttp.ClientSession, url: str, body: bytes) -> int:
        try:
            async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                answer = bid_decoder.decode(await resp.read())
        except (aiohttp.ClientError, asyncio.TimeoutError, msgspec.DecodeError):
            return 0
        bid = answer.get("bid")
        return int(float(bid) * 100) if answer.get("status") == "bid" and bid else 0

    @post("/ping", status_code=200)
    async def ping(request: Request) -> dict[str, Any]:
        body = await request.body()
        bids = await asyncio.gather(*(ask(state["http"], url, body) for url in urls))
        return {"status": "accepted", "bid_minor": max(bids, default=0)}

    async def start() -> None:
        connector = aiohttp.TCPConnector(limit=FANOUT_CONNECTIONS_MAX)
        state["http"] = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=FANOUT_TIMEOUT_S)
        )

    async def stop() -> None:
        await state["http"].close()

    return Litestar([ping], on_startup=[start], on_shutdown=[stop])
