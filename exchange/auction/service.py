"""Running the auction: ping, post, direct post, explain (split by step into context, bidding,
pinging, posting and direct).

The decisions are the pure functions of ``exchange.matching`` and ``exchange.auction``; this
module feeds them what they need (campaigns from the market cache, usage and funds from the
database, bids from the buyers) and writes down what happened, in as few round trips as it can:

ping         read usage + buyer states + supplier terms (one read transaction)
             fan out to live-bid buyers (concurrently, under a deadline)
             rank; one write transaction: hold caps for the offered bids, store the ping + trace
post         one write transaction: claim the ping, store the lead, its PII and duplicate keys
             then per buyer in the walk: charge + hold, post to the buyer, sale or refund
             one write transaction: final status, release what is left, trace, answer
"""

from exchange.auction.context import (
    LEAD_SOLD,
    LEAD_UNSOLD,
    PING_EXPIRED,
    PING_OPEN,
    PING_POSTED,
    PING_UNMATCHED,
    Context,
    SupplierTerms,
    signing_secret,
)
from exchange.auction.direct import Explanation, direct_post, excluded_entries, explain, traces_of
from exchange.auction.messages import TraceEntry
from exchange.auction.pinging import expire_ping, expire_pings, ping
from exchange.auction.posting import post

__all__ = ["TraceEntry", "Context", "SupplierTerms", "signing_secret", "PING_OPEN", "PING_POSTED", "PING_EXPIRED", "PING_UNMATCHED", "LEAD_SOLD", "LEAD_UNSOLD", "ping", "expire_ping", "expire_pings", "post", "direct_post", "explain", "traces_of", "excluded_entries", "Explanation"]
