"""Database engines and transactions.

``Database.write()`` opens a transaction that will write; ``Database.read()`` one that only
reads. On PostgreSQL both come from one pool. On SQLite they differ: a write transaction starts
with ``BEGIN IMMEDIATE`` so it takes the write lock up front (two deferred transactions that
both read and then write would deadlock on the lock upgrade), while reads stay deferred and,
thanks to WAL, never wait for writers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import select
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from exchange.settings import Settings

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000

_json_decode = msgspec.json.decode


def json_loads(data: bytes | str) -> Any:
    """JSON columns are decoded by msgspec (several times faster than the stdlib, which matters
    when a vertical's campaigns are loaded). Same values for everything we store; the rare text
    msgspec refuses (a number beyond a float's range) goes to the stdlib, which reads it as
    ``inf``, so the answer never differs."""
    try:
        return _json_decode(data)
    except msgspec.DecodeError:
        return json.loads(data)


_json_encode = msgspec.json.encode


def json_dumps(value: Any) -> str:
    """JSON columns are encoded by msgspec too: several times faster than the stdlib on a
    trace of a few hundred entries, and it takes msgspec Structs as they are."""
    return _json_encode(value).decode()


class Database:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.is_sqlite = settings.is_sqlite
        if self.is_sqlite:
            _ensure_sqlite_dir(settings.database_url)
            self.engine = _sqlite_engine(settings.database_url, begin="BEGIN IMMEDIATE")
            self.read_engine = _sqlite_engine(settings.database_url, begin="BEGIN")
        else:
            self.engine = create_async_engine(
                settings.database_url,
                pool_size=settings.database_pool_size,
                max_overflow=settings.database_pool_overflow,
                pool_timeout=settings.database_timeout_s,
                # A checkout costs no round trip: a connection whose server went away (restart,
                # failover, idle timeout) shows it on its socket, checked without waiting
                # (``_drop_closed``). SQLAlchemy's pre-ping ran a SELECT 1 per checkout, five
                # per direct post.
                pool_pre_ping=False,
                connect_args={"connect_timeout": settings.database_timeout_s},
                json_deserializer=json_loads,  # set on psycopg's adapters for json and jsonb
                json_serializer=json_dumps,
            )
            self.read_engine = self.engine
            event.listen(self.engine.sync_engine.pool, "checkout", _drop_closed)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.read_engine.connect() as conn:
            yield conn

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


def _drop_closed(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled PostgreSQL connection the server has closed; the pool then opens a new
    one. An idle connection of ours has nothing to read (we never LISTEN), so a readable
    socket means the server spoke on its own: nearly always its goodbye (a FATAL error, then
    EOF). A rare harmless message (a notice) costs one reconnect."""
    pgconn = dbapi_conn.driver_connection.pgconn
    if pgconn.status != psycopg.pq.ConnStatus.OK:
        raise sa.exc.DisconnectionError("connection closed")
    readable, _, _ = select.select([pgconn.socket], [], [], 0)
    if readable:
        raise sa.exc.DisconnectionError("the server spoke on an idle connection (closed it)")


def _ensure_sqlite_dir(url: str) -> None:
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_engine(url: str, *, begin: str) -> AsyncEngine:
    engine = create_async_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        json_deserializer=json_loads,
        json_serializer=json_dumps,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (the driver's implicit one is always deferred).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine


def insert_for(dialect_name: str, table: sa.Table) -> Any:
    """An INSERT of the database's own dialect: it takes ``on_conflict_do_nothing`` and
    ``on_conflict_do_update`` on PostgreSQL and on SQLite alike."""
    return (postgresql if dialect_name == "postgresql" else sqlite).insert(table)


def dialect_insert(conn: AsyncConnection, table: sa.Table) -> Any:
    """``insert_for`` the connection's database."""
    return insert_for(conn.dialect.name, table)


# Deadlocks (40P01) and serialization failures (40001) are PostgreSQL telling one of two
# transactions to try again; the work is all inside the transaction, so running it again is
# safe. Bounded, with a little jitter so the two do not collide again in step.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
TRANSACTION_ATTEMPTS = 5
RETRY_JITTER_MS_MAX = 20


def is_retryable(exc: BaseException) -> bool:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in RETRYABLE_SQLSTATES


async def retrying(work, attempts: int = TRANSACTION_ATTEMPTS):  # type: ignore[no-untyped-def]
    """Run ``work()`` (which opens its own transaction) again when the database asks to."""
    import asyncio
    import random

    for attempt in range(attempts):
        try:
            return await work()
        except sa.exc.DBAPIError as exc:
            if not is_retryable(exc) or attempt == attempts - 1:
                raise
            await asyncio.sleep(random.uniform(0, RETRY_JITTER_MS_MAX) / 1000)
    raise AssertionError("unreachable")  # pragma: no cover


# --- work after a commit -------------------------------------------------------------------------
# Outboxes (notifications, CRM syncs) write their rows in the caller's transaction and want to
# wake a worker only once it committed; SQLAlchemy Core has no after-commit hook on a connection
# whose transaction the caller owns. So the work waits in the pooled connection's ``info`` until
# the pool takes the connection back (after its COMMIT), and a ROLLBACK drops it. Lost work
# loses nothing: every outbox also has a sweeper.

_AFTER_COMMIT = "exchange.after_commit"
_hooked_engines: set[int] = set()
_hook_lock = threading.Lock()


def after_commit(
    conn: AsyncConnection, key: str, flush: Callable[[Any], None], start: Callable[[], Any]
) -> Any:
    """The accumulator for ``key`` in ``conn``'s transaction (made by ``start`` the first time):
    add to it; once the transaction commits, ``flush(accumulator)`` runs once. A rollback drops
    it. ``flush`` must not raise for an expected failure (a broker down): log and move on."""
    _hook(conn)
    work = conn.info.setdefault(_AFTER_COMMIT, {})
    if key not in work:
        work[key] = (flush, start())
    return work[key][1]


def _hook(conn: AsyncConnection) -> None:
    engine = conn.sync_engine
    if id(engine) in _hooked_engines:
        return
    with _hook_lock:
        if id(engine) in _hooked_engines:
            return
        event.listen(engine.pool, "checkin", _run_after_commit)
        event.listen(engine, "rollback", _drop_after_commit)
        # A connection opened before the engine's listener existed needs its own.
        event.listen(conn.sync_connection, "rollback", _drop_after_commit)
        _hooked_engines.add(id(engine))


def _drop_after_commit(connection: Any) -> None:
    connection.info.pop(_AFTER_COMMIT, None)


def _run_after_commit(_dbapi_connection: Any, record: Any) -> None:
    work = record.info.pop(_AFTER_COMMIT, None) if record is not None else None
    for key, (flush, accumulated) in (work or {}).items():
        try:
            flush(accumulated)
        except Exception:
            log.exception("work after a commit failed", extra={"key": key})
