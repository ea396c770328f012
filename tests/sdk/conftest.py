"""The real exchange app served by uvicorn on 127.0.0.1 (an ephemeral port) over SQLite (and,
with ``live_backend_exchange``, PostgreSQL too), so the SDK's sync and async clients talk to it
over real sockets, exactly as an advertiser would."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import msgspec
import pytest
import redis
import uvicorn

from exchange.app import create_app
from exchange.settings import load_settings
from tests.conftest import TEST_SECRET, Exchange

START_TIMEOUT_S = 10.0


class LiveServer:
    """``app`` under uvicorn in a thread of its own; ``base_url`` once started."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        port = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name="exchange-uvicorn",
            daemon=True,
        )

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the exchange did not start under uvicorn")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(START_TIMEOUT_S)
        self._sock.close()


class LiveExchange(Exchange):
    """``tests.conftest.Exchange`` (parties, verticals) plus the URL of the live server."""

    base_url: str


def _serve(settings) -> Iterator[LiveExchange]:  # type: ignore[no-untyped-def]
    app = create_app(settings, in_process_worker=False)
    with LiveServer(app) as server:
        import httpx

        exchange = LiveExchange(settings, httpx.Client(base_url=server.base_url, timeout=10))
        exchange.base_url = server.base_url
        try:
            yield exchange
        finally:
            exchange.client.close()


@pytest.fixture
def live_exchange(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveExchange]:
    path = tmp_path / "exchange.db"
    shutil.copy(sqlite_template, path)
    settings = load_settings(
        env={}, database_url=f"sqlite:///{path}", secret_key=TEST_SECRET,
        var_dir=str(tmp_path / "var"), campaign_cache_ttl_ms=0,
    )  # fmt: skip
    yield from _serve(settings)


@pytest.fixture
def live_backend_exchange(backend, request) -> Iterator[LiveExchange]:  # type: ignore[no-untyped-def]
    """The live exchange over each database of ``tests.conftest.backend``: SQLite alone, and
    PostgreSQL with Redis (broker and rate limits), the production pairing."""
    if backend.database_url.startswith("postgresql"):
        redis_url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(redis_url).flushdb()
        backend = msgspec.structs.replace(backend, redis_url=redis_url)
    yield from _serve(backend)
