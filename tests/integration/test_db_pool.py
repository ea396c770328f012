"""Pooled PostgreSQL connections the server closed are replaced at checkout, without the
SELECT 1 per checkout that SQLAlchemy's pre-ping would cost."""

from __future__ import annotations

import asyncio

import psycopg
import sqlalchemy as sa
from sqlalchemy import event

from exchange.settings import load_settings
from exchange.store.db import Database
from tests.conftest import TEST_SECRET


def _backends(conn: psycopg.Connection, application_name: str) -> list[int]:
    return [
        row[0]
        for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        )
    ]


def test_a_connection_the_server_closed_is_replaced_at_checkout(pg_database):
    name = "exchange_pool_test"
    url = pg_database + ("&" if "?" in pg_database else "?") + f"application_name={name}"
    settings = load_settings(env={}, database_url=url, secret_key=TEST_SECRET)
    admin_url = pg_database.replace("postgresql+psycopg://", "postgresql://")

    async def scenario() -> tuple[int, list[str]]:
        db = Database(settings)
        statements: list[str] = []
        try:
            async with db.read() as conn:  # the pool now holds one idle connection
                assert (await conn.execute(sa.text("SELECT 1"))).scalar_one() == 1
            with psycopg.connect(admin_url, autocommit=True) as admin:
                pids = _backends(admin, name)
                assert pids, "the pooled connection is not visible on the server"
                for pid in pids:  # what a restart, failover or idle timeout does to it
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            await asyncio.sleep(0.2)  # the server's goodbye reaches the socket
            event.listen(db.engine.sync_engine, "before_cursor_execute",
                         lambda *args: statements.append(args[2]))  # fmt: skip
            async with db.read() as conn:
                value = (await conn.execute(sa.text("SELECT 41 + 1"))).scalar_one()
            return value, statements
        finally:
            await db.dispose()

    value, statements = asyncio.run(scenario())
    assert value == 42
    # No round trip was spent on checking the connection: only the query itself ran.
    assert statements == ["SELECT 41 + 1"]
