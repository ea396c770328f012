"""Returns: a buyer returns a lead it bought, within its campaign's policy; finance approves
(the ledger refunds the buyer, and claws back the supplier's payout per its terms) or denies.

Pure rules in ``rules``, wire structs in ``messages``, the database in ``service``; the HTTP
controllers are in ``exchange.api.returns``.
"""

from exchange.returns.messages import (
    DecisionIn,
    PiiState,
    Purchase,
    PurchaseDetail,
    Return,
    ReturnIn,
    ReturnStatus,
)
from exchange.returns.service import (
    ALREADY_DECIDED,
    NOT_CHARGED,
    NOT_DELIVERED,
    RATE_EXCEEDED,
    RETURN_EXISTS,
    RETURNS_NOT_ACCEPTED,
    WINDOW_CLOSED,
    decide,
    file_return,
    get_purchase,
    get_return,
    list_purchases,
    list_returns,
)

__all__ = [
    "ALREADY_DECIDED", "NOT_CHARGED", "NOT_DELIVERED", "RATE_EXCEEDED", "RETURN_EXISTS",
    "RETURNS_NOT_ACCEPTED", "WINDOW_CLOSED",
    "DecisionIn", "PiiState", "Purchase", "PurchaseDetail", "Return", "ReturnIn", "ReturnStatus",
    "decide", "file_return", "get_purchase", "get_return", "list_purchases", "list_returns",
]  # fmt: skip
