"""What advertisers buy and on what money terms: campaigns, buyer accounts, supplier terms.

Wire structs and the functions that store them; the HTTP controllers are in ``exchange.api``.
"""

from exchange.campaigns.service import (
    BUYER_KINDS,
    MONEY_MAX_MINOR,
    Campaign,
    CampaignIn,
    ReturnPolicy,
    create,
    get,
    list_campaigns,
    policy_of,
    replace,
    rules_of,
    set_active,
)
from exchange.campaigns.terms import (
    DEFAULT_MIN_PAYOUT_MINOR,
    DEFAULT_PING_BURST,
    DEFAULT_PINGS_PER_SECOND,
    BuyerAccount,
    BuyerAccountIn,
    ReturnPayout,
    SupplierTerms,
    SupplierTermsIn,
    get_account,
    get_terms,
    upsert_account,
    upsert_terms,
)

__all__ = [
    "BUYER_KINDS", "DEFAULT_MIN_PAYOUT_MINOR", "DEFAULT_PINGS_PER_SECOND", "DEFAULT_PING_BURST",
    "MONEY_MAX_MINOR",
    "BuyerAccount", "BuyerAccountIn", "Campaign", "CampaignIn", "ReturnPayout", "ReturnPolicy",
    "SupplierTerms", "SupplierTermsIn",
    "create", "get", "get_account", "get_terms", "list_campaigns", "policy_of", "replace",
    "rules_of", "set_active", "upsert_account", "upsert_terms",
]  # fmt: skip
