"""Shared fixtures: real SQLite and PostgreSQL databases, real Redis, and an app client.

Storage tests run on both databases (the ``backend`` parameter). Under ``CI=true`` a missing
PostgreSQL or Redis fails the run; on a laptop without them those tests are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
import redis
from litestar.testing import TestClient

from exchange.app import create_app
from exchange.auth.parties import PartyIn, PartyKind, create_party, issue_key
from exchange.intake import verticals
from exchange.settings import Settings, load_settings
from exchange.store import migrate
from exchange.store.db import Database
from exchange.store.tables import metadata

PG_ADMIN_URL = os.environ.get("EXCHANGE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("EXCHANGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
TEST_SECRET = "test-secret-not-for-production"


def _unavailable(service: str, exc: Exception) -> None:
    message = f"{service} is not reachable: {exc}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: real services are required)", pytrace=False)
    pytest.skip(message)


@contextlib.contextmanager
def scratch_pg_database(prefix: str, *, migrated: bool = True) -> Iterator[str]:
    """A new PostgreSQL database named ``<prefix>_<pid>_<random>``, migrated unless told not to
    (a test that migrates it as production would), dropped afterwards whatever happened."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        _unavailable("PostgreSQL", exc)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    try:
        if migrated:
            migrate.upgrade(load_settings(env={}, database_url=url, secret_key=TEST_SECRET))
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, migrated once, dropped at the end."""
    with scratch_pg_database("exchange_test") as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test copies it instead of migrating again."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    migrate.upgrade(load_settings(env={}, database_url=f"sqlite:///{path}", secret_key=TEST_SECRET))
    return path


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        _unavailable("Redis", exc)
    return REDIS_URL


def _truncate_pg(url: str) -> None:
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {names} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a clean, migrated database of each kind."""
    var_dir = tmp_path / "var"
    if request.param == "sqlite":
        path = tmp_path / "exchange.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_database")
        _truncate_pg(load_settings(env={}, database_url=url, secret_key=TEST_SECRET).database_url)
    # No campaign cache: tests write campaigns straight to the database and expect them at once.
    yield load_settings(
        env={}, database_url=url, secret_key=TEST_SECRET, var_dir=str(var_dir), campaign_cache_ttl_ms=0
    )


def run(settings: Settings, work: Any) -> Any:
    """Run ``work(conn)`` in a write transaction on its own event loop."""

    async def main() -> Any:
        db = Database(settings)
        try:
            async with db.write() as conn:
                return await work(conn)
        finally:
            await db.dispose()

    return asyncio.run(main())


class Exchange:
    """A running app on one backend, with an operator key and helpers to make parties."""

    def __init__(self, settings: Settings, client: TestClient) -> None:
        self.settings = settings
        self.client = client
        self.operator = self.new_party(PartyKind.OPERATOR, "Operator")

    def new_party(self, kind: PartyKind, name: str | None = None, **extra: Any) -> Party:
        async def work(conn: Any) -> Party:
            party = await create_party(
                conn, PartyIn(kind=kind, name=name or f"{kind.value} {uuid.uuid4().hex[:6]}", **extra)
            )
            key = await issue_key(conn, party.id, "test")
            return Party(party.id, key.key, key.id)

        return run(self.settings, work)

    def seed_verticals(self) -> None:
        run(self.settings, lambda conn: verticals.seed(conn, fields_max=200))


class Party:
    def __init__(self, id: uuid.UUID, key: str, key_id: uuid.UUID) -> None:
        self.id = id
        self.key = key
        self.key_id = key_id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
def exchange(backend: Settings) -> Iterator[Exchange]:
    app = create_app(backend, in_process_worker=False)
    with TestClient(app) as client:
        yield Exchange(backend, client)


def decode(response: Any) -> Any:
    return msgspec.json.decode(response.content)
