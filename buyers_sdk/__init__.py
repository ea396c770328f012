"""The lead exchange's SDK for advertisers (buyers).

- ``ExchangeClient`` / ``AsyncExchangeClient``: campaigns, account, purchases, traces, returns,
  ledger statements, outcome reports and CRM connections over the exchange's HTTP API, with typed answers and
  errors.
- ``postback_url``: a signed URL that reports an outcome with no API key.
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
    AgeRange,
    Auth,
    BandedMargin,
    BasicAuth,
    BearerAuth,
    BooleanIs,
    BuyerAccount,
    BuyerEndpoints,
    CallDestination,
    CallTerms,
    CallView,
    Campaign,
    CampaignIn,
    Cap,
    CrmConfig,
    CrmConnection,
    CrmConnectionIn,
    CrmConnectionPatch,
    CrmConnections,
    CrmSync,
    EndpointConfig,
    EnumIn,
    EnumNotIn,
    Expression,
    FieldMap,
    FieldProblem,
    FieldSpec,
    Filter,
    FirstResponse,
    FixedMargin,
    FixedPayout,
    HeaderAuth,
    Interval,
    KeyInfo,
    LeadCrmSyncs,
    Margin,
    NewKey,
    NoAuth,
    NumberRange,
    Outcome,
    OutcomeIn,
    Outcomes,
    Page,
    Party,
    PercentMargin,
    PostbackInfo,
    PriceBand,
    Purchase,
    PurchaseDetail,
    ResponseRules,
    Return,
    ReturnPolicy,
    RevenueShare,
    Schedule,
    SigningSecret,
    StatesIn,
    StatesNotIn,
    Trace,
    TraceEntry,
    TraceView,
    Vertical,
    ZipIn,
    ZipPrefix,
    ZipRadius,
)
from buyers_sdk.postback import postback_url

__version__ = "0.1.0"

__all__ = [
    "AccountBalance", "AgeRange", "ApiError", "AsyncExchangeClient", "Auth", "BadRequest",
    "BandedMargin", "BasicAuth", "BearerAuth", "BooleanIs", "BuyerAccount", "BuyerEndpoints",
    "CallView", "CallDestination", "CallTerms", "Campaign", "CampaignIn", "Cap", "Conflict", "CrmConnection", "CrmConnectionIn", "CrmConnectionPatch",
    "CrmConnections", "CrmConfig", "EndpointConfig", "EnumIn", "EnumNotIn",
    "ExchangeClient", "ExchangeError", "Expression", "FieldMap", "FieldProblem", "FieldSpec",
    "Filter", "FirstResponse", "FixedMargin", "FixedPayout", "Forbidden", "HeaderAuth", "Interval", "KeyInfo", "LeadCrmSyncs",
    "Margin", "NewKey", "NoAuth", "NotFound", "NumberRange", "Outcome", "OutcomeIn", "Outcomes", "Page", "Party", "PercentMargin",
    "PostbackInfo", "PriceBand", "Purchase", "PurchaseDetail", "RateLimited", "ResponseRules", "Return", "ReturnPolicy",
    "RevenueShare", "Schedule", "ServerError", "SigningSecret", "StatesIn", "StatesNotIn", "CrmSync",
    "Trace", "TraceEntry", "TraceView", "TransportError", "Unauthorized", "ValidationFailed",
    "Vertical", "ZipIn", "ZipPrefix", "ZipRadius", "postback_url", "receiver",
]  # fmt: skip
