"""Returns on the wire: what a buyer files, what finance decides, what both read back."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Annotated, Any

import msgspec

from exchange.campaigns.service import RETURN_REASON_MAX_CHARS

NOTE_MAX_CHARS = 1000  # the returns table's note columns


class ReturnStatus(str, enum.Enum):
    REQUESTED = "requested"  # filed by the buyer, waiting for finance
    APPROVED = "approved"  # refunded: a `return` ledger entry was posted
    DENIED = "denied"  # final: nothing moved


Note = Annotated[str, msgspec.Meta(max_length=NOTE_MAX_CHARS)]


class ReturnIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A buyer returns a lead it bought: name the sale, or the lead (one sale per buyer)."""

    sale_id: uuid.UUID | None = None
    lead_id: uuid.UUID | None = None
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=RETURN_REASON_MAX_CHARS)]
    note: Note | None = None


class DecisionIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    note: Note | None = None


class Return(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    sale_id: uuid.UUID
    lead_id: uuid.UUID
    buyer_id: uuid.UUID
    supplier_id: uuid.UUID
    campaign_id: uuid.UUID
    price_minor: int  # what the buyer paid, and gets back on approval
    payout_minor: int  # what the supplier was owed for the lead
    currency: str
    reason: str
    note: str | None
    status: ReturnStatus
    requested_at: dt.datetime
    decided_at: dt.datetime | None
    decided_by: uuid.UUID | None
    decision_note: str | None
    claw_back: bool | None  # approved: whether the supplier gave its payout back
    entry_id: uuid.UUID | None  # approved: the ledger's `return` entry


class Purchase(msgspec.Struct, kw_only=True):
    """A lead a buyer bought and was charged for."""

    sale_id: uuid.UUID
    lead_id: uuid.UUID
    campaign_id: uuid.UUID
    price_minor: int
    currency: str
    delivered_at: dt.datetime
    status: str  # delivered, or returned (refunded)
    returnable_until: dt.datetime | None  # None: the campaign takes no returns
    return_id: uuid.UUID | None
    return_status: ReturnStatus | None


class PiiState(str, enum.Enum):
    """Whether a purchase read back carries the lead's personal data."""

    INCLUDED = "included"  # the PII is in ``fields``, as it was posted to the buyer
    PURGED = "purged"  # erased by the retention purge (or on request): non-PII fields only
    WITHHELD = "withheld"  # a finance key: the purchase and non-PII fields, never the PII


class PurchaseDetail(msgspec.Struct, kw_only=True):
    """One lead a buyer bought and was charged for, read back with its fields (and PII)."""

    sale_id: uuid.UUID
    lead_id: uuid.UUID
    buyer_id: uuid.UUID
    campaign_id: uuid.UUID
    vertical: str
    price_minor: int
    currency: str
    delivered_at: dt.datetime
    status: str  # delivered, or returned (refunded)
    returnable_until: dt.datetime | None  # None: the campaign takes no returns
    return_id: uuid.UUID | None
    return_status: ReturnStatus | None
    reference: str | None  # the buyer's own id for the lead, from its answer to the post
    fields: dict[str, Any]  # the lead's fields; its PII too when ``pii`` is ``included``
    consent: dict[str, Any] | None  # as the supplier sent it (TCPA text, certificates...)
    pii: PiiState
    pii_purged: bool  # True once the lead's PII was erased (``pii`` is ``purged``)
