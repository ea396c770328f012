"""What finance sends: deposits, payouts, adjustments, reversals. The optional ``id`` is the
entry's id and its idempotency key: send the same one again and the first entry comes back."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec

from exchange.ledger.entries import AMOUNT_MAX_MINOR, MEMO_CHARS_MAX, POSTINGS_MAX, POSTINGS_MIN

Amount = Annotated[int, msgspec.Meta(ge=1, le=AMOUNT_MAX_MINOR)]
SignedAmount = Annotated[int, msgspec.Meta(ge=-AMOUNT_MAX_MINOR, le=AMOUNT_MAX_MINOR)]
Memo = Annotated[str, msgspec.Meta(max_length=MEMO_CHARS_MAX)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=MEMO_CHARS_MAX)]
Period = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]


class DepositIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Money received from a buyer (or team), in its currency."""

    buyer_id: uuid.UUID
    amount_minor: Amount
    memo: Memo = ""
    id: uuid.UUID | None = None


class PayoutIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Money paid to a supplier, in its currency; at most what it is owed."""

    supplier_id: uuid.UUID
    amount_minor: Amount
    memo: Memo = ""
    id: uuid.UUID | None = None


class PostingIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    account: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    amount_minor: SignedAmount  # debit positive, credit negative
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]


class AdjustmentIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A balanced correction; the memo says why (it shows on statements)."""

    postings: Annotated[
        list[PostingIn], msgspec.Meta(min_length=POSTINGS_MIN, max_length=POSTINGS_MAX)
    ]
    memo: Reason
    id: uuid.UUID | None = None
    lead_id: uuid.UUID | None = None
    sale_id: uuid.UUID | None = None
    period: Period | None = None  # an earlier period that is still open; default: this month


class ReversalIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    memo: Memo = ""
