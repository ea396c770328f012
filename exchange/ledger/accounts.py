"""Account codes and which way their balances point.

Every posting is signed: **a debit is positive, a credit is negative**, so an entry balances
when its amounts sum to zero per currency. The stored running balance of an account is the
plain sum of its postings, debits minus credits (``net_debit``).

People read balances on the account's *normal side* instead:

| account | code | normal side | a positive balance means |
|---|---|---|---|
| buyer | ``buyer:<party id>`` | credit | prepaid money left; below 0: owed, to its credit limit |
| supplier | ``supplier:<party id>`` | credit | what the exchange owes the supplier (payable) |
| revenue | ``exchange:revenue:<CCY>`` | credit | margin the exchange earned |
| cash | ``exchange:cash:<CCY>`` | debit | money the exchange holds (deposits in, payouts out) |

So a deposit debits cash and credits the buyer; a sale debits the buyer (its money goes down)
and credits the supplier and revenue. The exchange's own accounts are per currency because one
account holds one currency; a party's account holds the party's currency.
"""

from __future__ import annotations

import enum
import re
import uuid

import msgspec

ACCOUNT_CODE_CHARS_MAX = 80  # the column's width; the longest code today is 45 characters
CURRENCY = re.compile(r"^[A-Z]{3}$")


class AccountKind(str, enum.Enum):
    BUYER = "buyer"  # buyers and internal teams: prepaid balance, may go to minus credit limit
    SUPPLIER = "supplier"  # payable to the supplier
    REVENUE = "revenue"  # the exchange's margin
    CASH = "cash"  # money the exchange holds


class Side(str, enum.Enum):
    DEBIT = "debit"
    CREDIT = "credit"


NORMAL_SIDE = {
    AccountKind.BUYER: Side.CREDIT,
    AccountKind.SUPPLIER: Side.CREDIT,
    AccountKind.REVENUE: Side.CREDIT,
    AccountKind.CASH: Side.DEBIT,
}

# Party accounts keep a running balance row (exchange.store.tables.account_balances) that a
# guarded UPDATE moves: that row is the funds check and the lock. The exchange's accounts are
# never bounded, and a row for them would serialise every sale in the market on one lock, so
# their balances are summed from the postings when asked.
CACHED_KINDS = frozenset({AccountKind.BUYER, AccountKind.SUPPLIER})
PARTY_KINDS = CACHED_KINDS
HOUSE = "exchange"


class Account(msgspec.Struct, frozen=True):
    code: str
    kind: AccountKind
    party_id: uuid.UUID | None  # None for the exchange's own accounts
    currency: str | None  # only the exchange's codes carry it; a party's is its party's


def buyer(party_id: uuid.UUID) -> str:
    return f"{AccountKind.BUYER.value}:{party_id}"


def buyer_prefix() -> str:
    """What every buyer account code starts with (``buyer(id)`` is it plus the id)."""
    return f"{AccountKind.BUYER.value}:"


def supplier(party_id: uuid.UUID) -> str:
    return f"{AccountKind.SUPPLIER.value}:{party_id}"


def revenue(currency: str) -> str:
    return f"{HOUSE}:{AccountKind.REVENUE.value}:{currency}"


def cash(currency: str) -> str:
    return f"{HOUSE}:{AccountKind.CASH.value}:{currency}"


def parse(code: str) -> Account | None:
    """The account a code names, or None for a code that names none."""
    if len(code) > ACCOUNT_CODE_CHARS_MAX:
        return None
    parts = code.split(":")
    if len(parts) == 2 and parts[0] in (AccountKind.BUYER.value, AccountKind.SUPPLIER.value):
        try:
            party_id = uuid.UUID(parts[1])
        except ValueError:
            return None
        if str(party_id) != parts[1]:  # one spelling per account: lower case, hyphenated
            return None
        return Account(code, AccountKind(parts[0]), party_id, None)
    house_kinds = (AccountKind.REVENUE.value, AccountKind.CASH.value)
    if (
        len(parts) == 3
        and parts[0] == HOUSE
        and parts[1] in house_kinds
        and CURRENCY.match(parts[2])
    ):
        return Account(code, AccountKind(parts[1]), None, parts[2])
    return None


def normal_balance(kind: AccountKind, net_debit_minor: int) -> int:
    """A balance on the account's normal side (see the table above)."""
    return net_debit_minor if NORMAL_SIDE[kind] is Side.DEBIT else -net_debit_minor
