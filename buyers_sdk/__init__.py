"""The lead exchange's SDK for advertisers (buyers).

- ``ExchangeClient`` / ``AsyncExchangeClient``: campaigns, account, purchases, traces, returns
  and ledger statements over the exchange's HTTP API, with typed answers and errors.
- ``buyers_sdk.receiver``: verify the exchange's signed pings and posts, read them, answer them.

Standalone: it needs ``httpx`` and ``msgspec`` only, never the exchange's own code.
"""

from buyers_sdk import receiver
from buyers_sdk.client import AsyncExchangeClient, ExchangeClient
from buyers_sdk.errors import (
    ApiError,
    BadRequest,
    Conflict,
    ExchangeError,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    ValidationFailed,
)
from buyers_sdk.models import (
    AccountBalance,
    BuyerAccount,
    Campaign,
    CampaignIn,
    Cap,
    FieldProblem,
    Interval,
    Page,
    Purchase,
    Return,
    ReturnPolicy,
    Schedule,
    Trace,
    TraceEntry,
    TraceView,
)

__version__ = "0.1.0"

__all__ = [
    "AccountBalance", "ApiError", "AsyncExchangeClient", "BadRequest", "BuyerAccount", "Campaign",
    "CampaignIn", "Cap", "Conflict", "ExchangeClient", "ExchangeError", "FieldProblem", "Forbidden",
    "Interval", "NotFound", "Page", "Purchase", "RateLimited", "Return", "ReturnPolicy", "Schedule",
    "ServerError", "Trace", "TraceEntry", "TraceView", "TransportError", "Unauthorized",
    "ValidationFailed", "receiver",
]  # fmt: skip
