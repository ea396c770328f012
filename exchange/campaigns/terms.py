"""Money terms of buyers and suppliers: accounts (balance, credit, margin override, penalty) and
supplier terms (margin override, minimum payout, auction mode, ping rate, who bears returns).

Operators write both; each party may read its own. A party without a row has the defaults:
a buyer has no money and no override, a supplier gets the ``DEFAULT_*`` terms below. Balance and
credit live here only until the ledger owns them (``exchange.auction.funds`` is their one reader
in the auction).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Annotated, Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.auction.margin import BasisPoints, MarginRule
from exchange.auction.ranking import Mode
from exchange.auth.parties import PartyKind, get_party
from exchange.campaigns.service import BUYER_KINDS, MONEY_MAX_MINOR, Money, utcnow
from exchange.errors import ApiError
from exchange.store.db import dialect_insert
from exchange.store.tables import buyer_accounts, supplier_terms

DEFAULT_MIN_PAYOUT_MINOR = 0  # no minimum beyond the auction's own (a payout of at least 1)
DEFAULT_PINGS_PER_SECOND = 0  # 0: unlimited
DEFAULT_PING_BURST = 1  # pings allowed at once above the steady rate
PINGS_PER_SECOND_MAX = 100_000
PING_BURST_MAX = 100_000
DEFAULT_HOLD_DAYS = 0  # 0: the return_payout policy applies whenever the return is approved
HOLD_DAYS_MAX = 365


class ReturnPayout(str, enum.Enum):
    """Who gives the supplier's payout back when a buyer's return of its lead is approved."""

    CLAW_BACK = "claw_back"  # the supplier: its payable goes down by the payout
    ABSORB = "absorb"  # the exchange: the supplier keeps its payout, revenue bears the refund

# A balance may be below zero while credit covers it.
SignedMoney = Annotated[int, msgspec.Meta(ge=-MONEY_MAX_MINOR, le=MONEY_MAX_MINOR)]


class BuyerAccountIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An operator sets a buyer's terms as a whole. The money itself is not set here: it is the
    buyer's ledger account (deposits in through finance, sales out), so nothing can overwrite it.
    The credit limit has no default: a PUT that forgot it must not cut a buyer off."""

    credit_limit_minor: Money  # how far below zero the balance may go
    margin: MarginRule | None = None  # overrides the vertical's margin for this buyer's sales
    # Lowers this buyer's ranking (never its price): 100 bps ranks a bid as 1 % lower.
    penalty_bps: BasisPoints = 0


class BuyerAccount(msgspec.Struct, kw_only=True):
    buyer_id: uuid.UUID
    balance_minor: int  # the ledger balance: prepaid money left (below 0: owed, up to the credit)
    credit_limit_minor: int
    spendable_minor: int  # balance + credit - sales still being delivered
    margin: MarginRule | None
    penalty_bps: int
    updated_at: dt.datetime | None  # None: never set, these are the defaults


class SupplierTermsIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An operator sets a supplier's terms as a whole; what is left out takes its default."""

    margin: MarginRule | None = None  # overrides buyer and vertical margins on its leads
    min_payout_minor: Money = DEFAULT_MIN_PAYOUT_MINOR  # bids paying it less are dropped
    auction_mode: Mode | None = None  # None: the vertical's mode
    pings_per_second: Annotated[int, msgspec.Meta(ge=0, le=PINGS_PER_SECOND_MAX)] = (
        DEFAULT_PINGS_PER_SECOND
    )
    ping_burst: Annotated[int, msgspec.Meta(ge=1, le=PING_BURST_MAX)] = DEFAULT_PING_BURST
    return_payout: ReturnPayout = ReturnPayout.CLAW_BACK
    # > 0: claw back only when the return is approved within this many days of the sale (the
    # supplier's money is on hold until then); later, the exchange absorbs it.
    hold_days: Annotated[int, msgspec.Meta(ge=0, le=HOLD_DAYS_MAX)] = DEFAULT_HOLD_DAYS


class SupplierTerms(msgspec.Struct, kw_only=True):
    supplier_id: uuid.UUID
    margin: MarginRule | None
    min_payout_minor: int
    auction_mode: Mode | None
    pings_per_second: int
    ping_burst: int
    return_payout: ReturnPayout
    hold_days: int
    updated_at: dt.datetime | None  # None: never set, these are the defaults


def _margin(stored: Any) -> MarginRule | None:
    return msgspec.convert(stored, MarginRule) if stored is not None else None


def _stored_margin(rule: MarginRule | None) -> Any:
    return msgspec.to_builtins(rule) if rule is not None else None


async def _require_party(
    conn: AsyncConnection, party_id: uuid.UUID, kinds: frozenset[PartyKind], what: str
) -> None:
    party = await get_party(conn, party_id)
    if party is None or party.kind not in kinds:
        raise ApiError(404, "not_found", f"no {what} with this id")


async def _upsert(
    conn: AsyncConnection, table: sa.Table, key: str, key_value: uuid.UUID, values: dict[str, Any]
) -> None:
    # One statement, so two concurrent writes of one party never race to insert the row.
    stmt = dialect_insert(conn, table).values({key: key_value, **values})
    await conn.execute(stmt.on_conflict_do_update(index_elements=[key], set_=values))


# --- buyer accounts ------------------------------------------------------------------------------


async def get_account(conn: AsyncConnection, buyer_id: uuid.UUID) -> BuyerAccount:
    """The buyer's (or team's) account; defaults when none was ever set. 404 for anyone else."""
    await _require_party(conn, buyer_id, BUYER_KINDS, "buyer or team")
    query = sa.select(buyer_accounts).where(buyer_accounts.c.buyer_id == buyer_id)
    row = (await conn.execute(query)).first()
    from exchange.auction.funds import buyer_states
    from exchange.ledger import accounts, balance

    money = await balance(conn, accounts.buyer(buyer_id))
    spendable = (await buyer_states(conn, [str(buyer_id)]))[str(buyer_id)].spendable_minor
    if row is None:
        return BuyerAccount(
            buyer_id=buyer_id,
            balance_minor=money,
            credit_limit_minor=0,
            spendable_minor=spendable,
            margin=None,
            penalty_bps=0,
            updated_at=None,
        )
    return BuyerAccount(
        buyer_id=buyer_id,
        balance_minor=money,
        credit_limit_minor=row.credit_limit_minor,
        spendable_minor=spendable,
        margin=_margin(row.margin),
        penalty_bps=row.penalty_bps,
        updated_at=row.updated_at,
    )


async def upsert_account(
    conn: AsyncConnection, buyer_id: uuid.UUID, data: BuyerAccountIn
) -> BuyerAccount:
    """Set the account. ``last_won_at`` (the auction's tie-break) is left as it is."""
    await _require_party(conn, buyer_id, BUYER_KINDS, "buyer or team")
    values = {
        "balance_minor": 0,  # unused: the ledger holds the money (column kept for old rows)
        "credit_limit_minor": data.credit_limit_minor,
        "margin": _stored_margin(data.margin),
        "penalty_bps": data.penalty_bps,
        "updated_at": utcnow(),
    }
    await _upsert(conn, buyer_accounts, "buyer_id", buyer_id, values)
    return await get_account(conn, buyer_id)


# --- supplier terms ------------------------------------------------------------------------------


async def get_terms(conn: AsyncConnection, supplier_id: uuid.UUID) -> SupplierTerms:
    """The supplier's terms; the ``DEFAULT_*`` ones when none were set. 404 for a non-supplier."""
    await _require_party(conn, supplier_id, frozenset({PartyKind.SUPPLIER}), "supplier")
    query = sa.select(supplier_terms).where(supplier_terms.c.supplier_id == supplier_id)
    row = (await conn.execute(query)).first()
    if row is None:
        return SupplierTerms(
            supplier_id=supplier_id,
            margin=None,
            min_payout_minor=DEFAULT_MIN_PAYOUT_MINOR,
            auction_mode=None,
            pings_per_second=DEFAULT_PINGS_PER_SECOND,
            ping_burst=DEFAULT_PING_BURST,
            return_payout=ReturnPayout.CLAW_BACK,
            hold_days=DEFAULT_HOLD_DAYS,
            updated_at=None,
        )
    return SupplierTerms(
        supplier_id=supplier_id,
        margin=_margin(row.margin),
        min_payout_minor=row.min_payout_minor,
        auction_mode=Mode(row.auction_mode) if row.auction_mode is not None else None,
        pings_per_second=row.pings_per_second,
        ping_burst=row.ping_burst,
        return_payout=ReturnPayout(row.return_payout),
        hold_days=row.hold_days,
        updated_at=row.updated_at,
    )


async def upsert_terms(
    conn: AsyncConnection, supplier_id: uuid.UUID, data: SupplierTermsIn
) -> SupplierTerms:
    await _require_party(conn, supplier_id, frozenset({PartyKind.SUPPLIER}), "supplier")
    values = {
        "margin": _stored_margin(data.margin),
        "min_payout_minor": data.min_payout_minor,
        "auction_mode": data.auction_mode.value if data.auction_mode is not None else None,
        "pings_per_second": data.pings_per_second,
        "ping_burst": data.ping_burst,
        "return_payout": data.return_payout.value,
        "hold_days": data.hold_days,
        "updated_at": utcnow(),
    }
    await _upsert(conn, supplier_terms, "supplier_id", supplier_id, values)
    return await get_terms(conn, supplier_id)
