"""Building a market in tests: campaigns and buyer money written straight to the database, so
auction tests do not depend on the campaign API's shape."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
import sqlalchemy as sa

from exchange.ids import new_id
from exchange.store.tables import buyer_accounts, campaigns, supplier_terms, verticals
from tests.conftest import run

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def add_campaign(settings, buyer_id: uuid.UUID, vertical: str = "solar", **overrides: Any) -> str:
    values: dict[str, Any] = {
        "name": "c",
        "active": True,
        "timezone": "America/New_York",
        "tier": 1,
        "price_mode": "fixed",
        "fixed_price_minor": 2000,
        "floor_minor": 0,
        "max_sells": 1,
        "filters": [],
        "schedule": None,
        "caps": [],
        "endpoints": None,
    }
    values.update(overrides)
    for key in ("filters", "caps", "endpoints", "schedule"):
        if values[key] is not None and not isinstance(values[key], (list, dict)):
            values[key] = msgspec.to_builtins(values[key])
    campaign_id = new_id()

    async def work(conn):
        vertical_id = (await conn.execute(sa.select(verticals.c.id).where(verticals.c.slug == vertical))).scalar_one()
        await conn.execute(
            campaigns.insert().values(
                id=campaign_id, buyer_id=buyer_id, vertical_id=vertical_id, version=1,
                created_at=NOW, updated_at=NOW, **values,
            )
        )  # fmt: skip

    run(settings, work)
    return str(campaign_id)


def fund(settings, buyer_id: uuid.UUID, balance_minor: int, credit_minor: int = 0, **extra: Any) -> None:
    """Give a buyer money the way finance does: a deposit in the ledger (added to what it has),
    and its terms."""
    from exchange.ledger import deposit_entry, post_entry

    async def work(conn):
        await conn.execute(buyer_accounts.delete().where(buyer_accounts.c.buyer_id == buyer_id))
        await conn.execute(
            buyer_accounts.insert().values(
                buyer_id=buyer_id, balance_minor=0, credit_limit_minor=credit_minor,
                margin=extra.get("margin"), penalty_bps=extra.get("penalty_bps", 0),
                last_won_at=extra.get("last_won_at"), updated_at=NOW,
            )
        )  # fmt: skip
        if balance_minor > 0:
            entry = deposit_entry(uuid.uuid4(), buyer_id, balance_minor, "USD", memo="test deposit")
            await post_entry(conn, entry, now=dt.datetime.now(dt.timezone.utc))

    run(settings, work)


def balance(settings, buyer_id: uuid.UUID) -> int:
    """The buyer's ledger balance (prepaid money left)."""
    from exchange.ledger import accounts
    from exchange.ledger import balance as ledger_balance

    return run(settings, lambda c: ledger_balance(c, accounts.buyer(buyer_id)))


def set_supplier_terms(settings, supplier_id: uuid.UUID, **values: Any) -> None:
    row = {"margin": None, "min_payout_minor": 0, "auction_mode": None, "pings_per_second": 0, "ping_burst": 1}
    row.update(values)

    async def work(conn):
        await conn.execute(supplier_terms.delete().where(supplier_terms.c.supplier_id == supplier_id))
        await conn.execute(supplier_terms.insert().values(supplier_id=supplier_id, updated_at=NOW, **row))

    run(settings, work)


def set_vertical_margin(settings, slug: str, margin: dict | None, mode: str = "free_pick") -> None:
    run(
        settings,
        lambda c: c.execute(verticals.update().where(verticals.c.slug == slug).values(margin=margin, auction_mode=mode)),
    )
