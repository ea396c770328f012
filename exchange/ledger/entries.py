"""Journal entries as plain values, and the rules every entry obeys before it is stored.

An entry is the unit of money movement: two or more postings that sum to zero per currency,
stored all together or not at all. Its id is the idempotency key: the builders derive it from
the business event (``entry_id("sale", sale_id)``), so replaying a delivery or a message posts
the same id again, and the journal answers with the entry it already has.
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from collections import defaultdict

import msgspec

from exchange.errors import FieldProblem
from exchange.ledger import accounts
from exchange.ledger.periods import PERIOD

POSTINGS_MIN = 2  # one debit and one credit at least
POSTINGS_MAX = 20  # a sale has three; a bound keeps sums far from 64-bit overflow
AMOUNT_MAX_MINOR = 10**15  # ten trillion dollars in cents: no real posting comes near
MEMO_CHARS_MAX = 500

# Fixed for ever: changing it would change every derived entry id, and replays would post twice.
LEDGER_NAMESPACE = uuid.UUID("a0a550b4-a32b-40ca-a315-daa5f89f3081")


class EntryKind(str, enum.Enum):
    SALE = "sale"  # a delivered lead: buyer debited, supplier and revenue credited
    RETURN = "return"  # a returned lead: the sale undone for the buyer (and maybe the supplier)
    REVERSAL = "reversal"  # exactly undoes one earlier entry (e.g. a sale whose delivery failed)
    DEPOSIT = "deposit"  # money received from a buyer
    PAYOUT = "payout"  # money paid to a supplier
    ADJUSTMENT = "adjustment"  # a correction by finance; says why in its memo


class Posting(msgspec.Struct, frozen=True):
    """One leg: ``amount_minor`` > 0 debits the account, < 0 credits it."""

    account: str
    amount_minor: int
    currency: str


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    kind: EntryKind
    postings: tuple[Posting, ...]
    lead_id: uuid.UUID | None = None
    sale_id: uuid.UUID | None = None
    reverses_id: uuid.UUID | None = None  # reversals only
    memo: str = ""
    # The UTC month it belongs to; None: the month it is posted in. Only an open period takes it.
    period: str | None = None


def entry_id(*parts: object) -> uuid.UUID:
    """A deterministic id for a business event, e.g. ``entry_id("sale", sale_id)``."""
    return uuid.uuid5(LEDGER_NAMESPACE, "/".join(str(p) for p in parts))


def entry_hash(entry: Entry) -> str:
    """SHA-256 of what the entry *does*: kind, subjects and postings in a canonical order.

    The memo and period are left out on purpose: a replay from a later retry may word its memo
    differently or arrive in the next month, and it is still the same money movement.
    """
    legs = sorted((p.account, p.currency, p.amount_minor) for p in entry.postings)
    canonical = [
        entry.kind.value,
        str(entry.lead_id or ""),
        str(entry.sale_id or ""),
        str(entry.reverses_id or ""),
        [list(leg) for leg in legs],
    ]
    return hashlib.sha256(msgspec.json.encode(canonical)).hexdigest()


def sums(postings: tuple[Posting, ...] | list[Posting]) -> dict[str, int]:
    """Net of the postings per currency (zero for a balanced entry)."""
    total: dict[str, int] = defaultdict(int)
    for posting in postings:
        total[posting.currency] += posting.amount_minor
    return dict(total)


def check_entry(entry: Entry) -> list[FieldProblem]:
    """Every reason the entry may not be posted; empty when it may."""
    problems: list[FieldProblem] = []
    count = len(entry.postings)
    if not POSTINGS_MIN <= count <= POSTINGS_MAX:
        problems.append(
            FieldProblem(
                "postings", f"an entry has {POSTINGS_MIN} to {POSTINGS_MAX} postings, not {count}"
            )
        )
    for i, posting in enumerate(entry.postings):
        where = f"postings[{i}]"
        account = accounts.parse(posting.account)
        if account is None:
            problems.append(
                FieldProblem(f"{where}.account", f"{posting.account!r} names no account")
            )
        elif account.currency not in (None, posting.currency):
            problems.append(
                FieldProblem(
                    f"{where}.currency", f"account {posting.account} holds {account.currency}"
                )
            )
        if not accounts.CURRENCY.match(posting.currency):
            problems.append(
                FieldProblem(f"{where}.currency", "a 3-letter ISO 4217 code, upper case")
            )
        if posting.amount_minor == 0:
            problems.append(
                FieldProblem(f"{where}.amount_minor", "a posting moves money: not zero")
            )
        elif abs(posting.amount_minor) > AMOUNT_MAX_MINOR:
            problems.append(
                FieldProblem(f"{where}.amount_minor", f"at most {AMOUNT_MAX_MINOR} either way")
            )
    currency_of: dict[str, str] = {}
    for i, posting in enumerate(entry.postings):
        if currency_of.setdefault(posting.account, posting.currency) != posting.currency:
            problems.append(
                FieldProblem(f"postings[{i}].currency", "an account holds one currency")
            )
    for currency, net in sorted(sums(entry.postings).items()):
        if net != 0:
            problems.append(
                FieldProblem(
                    "postings",
                    f"{currency} postings sum to {net}, not 0: debits must equal credits",
                )
            )
    if len(entry.memo) > MEMO_CHARS_MAX:
        problems.append(FieldProblem("memo", f"at most {MEMO_CHARS_MAX} characters"))
    if entry.period is not None and not PERIOD.match(entry.period):
        problems.append(FieldProblem("period", "a UTC month, YYYY-MM"))
    if entry.kind in (EntryKind.SALE, EntryKind.RETURN) and entry.sale_id is None:
        problems.append(FieldProblem("sale_id", f"a {entry.kind.value} names its sale"))
    if (entry.kind is EntryKind.REVERSAL) != (entry.reverses_id is not None):
        problems.append(
            FieldProblem(
                "reverses_id", "a reversal, and only a reversal, names the entry it undoes"
            )
        )
    return problems
