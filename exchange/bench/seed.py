"""A fresh benchmark market: the database, verticals, buyers with money, campaigns, a supplier.

Everything is written in-process through the exchange's own services (faster than thousands of
HTTP calls, and the same validation). Live-bid and fixed-price campaigns point at the benchmark's
buyer servers (``exchange.bench.buyers``).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

import msgspec
import psycopg
import sqlalchemy as sa

from exchange.bench import leads
from exchange.settings import Settings

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
POST_VERTICAL = "solar"  # scenario 1: fixed-price campaigns
PING_VERTICAL = "auto_insurance"  # scenario 2: ten live-bid buyers
DEADLINE_VERTICAL = "bench_deadline"  # scenario 3: nine answer, one never does
TEAMS_VERTICAL = "bench_teams"  # scenario 5: no campaigns, unsold leads go to a team
MEMORY_VERTICAL = "bench_memory"  # scenario 6: campaigns loaded only to weigh the cache
COPIES = {DEADLINE_VERTICAL: "auto_insurance", TEAMS_VERTICAL: "solar", MEMORY_VERTICAL: "solar"}

LIVE_BUYERS = 10
CAMPAIGNS_PER_BUYER = 10  # fixed-price campaigns are spread over buyers this many each...
FIXED_BUYERS_MAX = 100  # ...up to this many buyers
HANG_BUYER = "hang"
FIXED_SIM = "fixed"  # the buyer-server name every fixed-price campaign posts to
DEPOSIT_MINOR = 1_000_000_000  # $10M per buyer: money never runs out during a run
FIXED_PRICE_MIN_MINOR = 1_500
FIXED_PRICE_MAX_MINOR = 3_000
STATES_PER_CAMPAIGN = 3
SMALL_CAP_SHARE = 0.1  # this share of fixed-price campaigns has a small hourly cap
SMALL_CAP_PER_HOUR = 25
DAY_CAP = 100_000
PING_TIMEOUT_MS = 1_000  # each live buyer's own ping timeout
HANG_PING_TIMEOUT_MS = 10_000  # the silent buyer's: longer than the deadline, which must cut it
POST_TIMEOUT_MS = 5_000


class Market(msgspec.Struct, kw_only=True):
    supplier_key: str
    operator_key: str
    campaigns: int


def create_database(name: str, admin_dsn: str = ADMIN_DSN) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str, admin_dsn: str = ADMIN_DSN) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(name: str, admin_dsn: str = ADMIN_DSN) -> str:
    """The exchange's URL for database ``name`` on the server of ``admin_dsn``."""
    url = sa.engine.make_url(admin_dsn).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


def endpoints(buyers_url: str, name: str, *, live: bool, ping_timeout_ms: int = PING_TIMEOUT_MS) -> dict[str, Any]:
    from exchange.bench.buyers import url_for
    from exchange.simulator import ping_endpoint, post_endpoint

    base = url_for(buyers_url, name)  # each buyer on its own host
    result: dict[str, Any] = {"post": post_endpoint(base, name, POST_TIMEOUT_MS)}
    if live:
        result["ping"] = ping_endpoint(base, name, ping_timeout_ms)
    return result


async def _buyer(conn: Any, name: str) -> uuid.UUID:
    from exchange.auth.parties import PartyIn, PartyKind, create_party
    from exchange.campaigns.terms import BuyerAccountIn, upsert_account
    from exchange.ledger import deposit_entry, entry_id, post_entry

    party = await create_party(conn, PartyIn(kind=PartyKind.BUYER, name=name, timezone="America/New_York"))
    await upsert_account(conn, party.id, BuyerAccountIn(credit_limit_minor=0))
    deposit = deposit_entry(entry_id("bench-deposit", party.id), party.id, DEPOSIT_MINOR, "USD", memo="bench")
    await post_entry(conn, deposit, now=dt.datetime.now(dt.timezone.utc))
    return party.id


async def _campaign(conn: Any, buyer_id: uuid.UUID, data: dict[str, Any]) -> None:
    from exchange.campaigns import service as campaigns

    await campaigns.create(conn, buyer_id, msgspec.convert(data, campaigns.CampaignIn))


def fixed_campaign(rng: random.Random, vertical: str, buyers_url: str, i: int) -> dict[str, Any]:
    caps: list[dict[str, Any]] = [{"window": "day", "max_count": DAY_CAP}]
    if rng.random() < SMALL_CAP_SHARE:
        caps.append({"window": "hour", "max_count": SMALL_CAP_PER_HOUR})
    return {
        "name": f"fixed {i}", "vertical": vertical, "price_mode": "fixed",
        "fixed_price_minor": rng.randint(FIXED_PRICE_MIN_MINOR, FIXED_PRICE_MAX_MINOR),
        "filters": [{"kind": "states_in", "field": "state",
                     "states": rng.sample(leads.STATES, STATES_PER_CAMPAIGN)}],
        "caps": caps, "endpoints": endpoints(buyers_url, FIXED_SIM, live=False),
    }  # fmt: skip


async def seed_verticals(conn: Any, settings: Settings) -> None:
    from exchange.intake import verticals

    await verticals.seed(conn, fields_max=settings.vertical_fields_max)
    specs = {spec.slug: spec for spec in verticals.seed_specs()}
    for slug, original in COPIES.items():
        if await verticals.get(conn, slug) is None:
            spec = msgspec.structs.replace(specs[original], slug=slug, name=f"Benchmark {slug}")
            await verticals.create(conn, spec, fields_max=settings.vertical_fields_max)


async def seed_market(settings: Settings, buyers_url: str, fixed_campaigns: int) -> Market:
    """Verticals, a supplier and an operator (with keys), the fixed-price and live markets."""
    from exchange.auth.parties import PartyIn, PartyKind, create_party, issue_key
    from exchange.store.db import Database

    db = Database(settings)
    try:
        async with db.write() as conn:
            await seed_verticals(conn, settings)
            supplier = await create_party(conn, PartyIn(kind=PartyKind.SUPPLIER, name="bench supplier"))
            supplier_key = (await issue_key(conn, supplier.id, "bench")).key
            operator = await create_party(conn, PartyIn(kind=PartyKind.OPERATOR, name="bench operator"))
            operator_key = (await issue_key(conn, operator.id, "bench")).key
            for b in range(LIVE_BUYERS):
                buyer_id = await _buyer(conn, f"live buyer {b}")
                name = f"live{b}"
                await _campaign(conn, buyer_id, {"name": name, "vertical": PING_VERTICAL, "price_mode": "live",
                                                 "endpoints": endpoints(buyers_url, name, live=True)})  # fmt: skip
                deadline_name = HANG_BUYER if b == LIVE_BUYERS - 1 else name
                timeout = HANG_PING_TIMEOUT_MS if deadline_name == HANG_BUYER else PING_TIMEOUT_MS
                await _campaign(conn, buyer_id, {
                    "name": f"{name} deadline", "vertical": DEADLINE_VERTICAL, "price_mode": "live",
                    "endpoints": endpoints(buyers_url, deadline_name, live=True, ping_timeout_ms=timeout),
                })  # fmt: skip
        await add_fixed_campaigns(settings, buyers_url, POST_VERTICAL, fixed_campaigns, seed=5)
    finally:
        await db.dispose()
    return Market(supplier_key=supplier_key, operator_key=operator_key, campaigns=fixed_campaigns + 2 * LIVE_BUYERS)


async def add_fixed_campaigns(settings: Settings, buyers_url: str, vertical: str, count: int, *, seed: int,
                              buyers_max: int = FIXED_BUYERS_MAX) -> None:  # fmt: skip
    """``count`` fixed-price campaigns of ``vertical``, ``CAMPAIGNS_PER_BUYER`` per new buyer."""
    from exchange.store.db import Database

    rng = random.Random(seed)
    db = Database(settings)
    try:
        async with db.write() as conn:
            buyer_ids = [await _buyer(conn, f"{vertical} buyer {b}") for b in range(max(1, min(buyers_max, count // CAMPAIGNS_PER_BUYER)))]
            specs = [(buyer_ids[i % len(buyer_ids)], fixed_campaign(rng, vertical, buyers_url, i)) for i in range(count)]
            await bulk_campaigns(conn, vertical, specs)
    finally:
        await db.dispose()


async def bulk_campaigns(conn: Any, vertical: str, specs: list[tuple[uuid.UUID, dict[str, Any]]]) -> None:
    """Create campaigns with the service's own checks, in one multi-row INSERT: thousands of
    ``campaigns.create`` calls (three queries each) would take minutes."""
    from exchange.campaigns import service as campaigns
    from exchange.ids import new_id
    from exchange.intake import verticals
    from exchange.store.tables import campaigns as campaigns_table

    found = await verticals.get(conn, vertical)
    assert found is not None, vertical
    now = dt.datetime.now(dt.timezone.utc)
    rows = []
    for buyer_id, spec in specs:
        data = msgspec.convert(spec, campaigns.CampaignIn)
        timezone = data.timezone or "UTC"
        stored_endpoints, problems = campaigns._check_endpoints(data, None)
        problems += campaigns._check(data, timezone, found.fields)
        if problems:
            raise ValueError(f"bench campaign refused: {problems}")
        rows.append({"id": new_id(), "buyer_id": buyer_id, "vertical_id": found.id, "version": 1,
                     "created_at": now, "updated_at": now,
                     **campaigns._columns(data, timezone, stored_endpoints)})  # fmt: skip
    if rows:
        await conn.execute(campaigns_table.insert(), rows)


async def count_rows(settings: Settings, table: sa.Table) -> int:
    from exchange.store.db import Database

    db = Database(settings)
    try:
        async with db.read() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())
    finally:
        await db.dispose()
