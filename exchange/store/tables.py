"""The schema, as SQLAlchemy Core tables.

Core, not the ORM: the hot paths issue a handful of statements per lead and we want to see
each one. Migrations under ``migrations/versions`` create exactly this schema; a test compares
the two on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa

from exchange.store.types import JSONType, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Parties: everyone who holds a key. `kind` is one of exchange.auth.PartyKind.
parties = sa.Table(
    "parties",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    # An agent's team; null for everyone else.
    sa.Column("parent_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "kind", "created_at"),
)

# API keys: only a SHA-256 of the secret is kept. The prefix finds the row in one index probe.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("party_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Index(None, "party_id"),
)

verticals = sa.Table(
    "verticals",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("slug", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("dedupe_window_days", sa.Integer, nullable=False),
    sa.Column("fields", JSONType, nullable=False),
    # Bumped on every change; each lead records the version it was validated against.
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # The exchange's default margin for this vertical (exchange.auction.MarginRule) and how
    # its auction runs (free_pick or tiers); suppliers may override both.
    sa.Column("margin", JSONType, nullable=True),
    sa.Column("auction_mode", sa.String(16), nullable=False, server_default="free_pick"),
    # How its leads are scored at intake (exchange.scoring.ScoringConfig); null: not scored.
    sa.Column("scoring", JSONType, nullable=True),
)

leads = sa.Table(
    "leads",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("vertical_id", sa.Uuid, sa.ForeignKey("verticals.id"), nullable=False),
    sa.Column("vertical_version", sa.Integer, nullable=False),
    sa.Column("supplier_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("test", sa.Boolean, nullable=False),
    sa.Column("source", sa.String(1000), nullable=True),
    sa.Column("sub_ids", JSONType, nullable=True),
    # Non-PII fields only: these may be shown to bidders. PII lives in lead_pii.
    sa.Column("fields", JSONType, nullable=False),
    sa.Column("consent", JSONType, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("ping_id", sa.Uuid, nullable=True, unique=True),  # one lead per ping, ever
    sa.Column("sold_count", sa.Integer, nullable=False, server_default="0"),
    # The post walk as it stands (exchange.auction.fallback.WalkState and what it held), so a
    # delivery that fails later can move on to the next bid from a worker.
    sa.Column("walk", JSONType, nullable=True),
    # The lead's score (0-100) and priority band, computed at intake (exchange.scoring);
    # null when its vertical scores nothing.
    sa.Column("score", sa.Integer, nullable=True),
    sa.Column("priority", sa.String(16), nullable=True),
    # How it arrived (exchange.channels): null for the native ping/post API, else form,
    # google_ads, meta, csv, email; and the intake source that took it in.
    sa.Column("channel", sa.String(16), nullable=True),
    sa.Column("intake_source_id", sa.Uuid, nullable=True),
    sa.Index(None, "supplier_id", "created_at"),
    sa.Index(None, "vertical_id", "created_at"),
    sa.Index(None, "status", "created_at"),
    sa.Index(None, "created_at"),  # reports and the operators' flow, across suppliers
)

# PII apart from the lead, so it can be access-checked, redacted and purged on its own.
lead_pii = sa.Table(
    "lead_pii",
    metadata,
    sa.Column("lead_id", sa.Uuid, sa.ForeignKey("leads.id"), primary_key=True),
    sa.Column("pii", JSONType, nullable=False),
)

# Duplicate detection: one row per (vertical, keyed hash of a phone or email). A single
# guarded upsert claims the key, so two concurrent posts of one person cannot both pass.
dedupe_keys = sa.Table(
    "dedupe_keys",
    metadata,
    sa.Column("vertical_id", sa.Uuid, sa.ForeignKey("verticals.id"), primary_key=True),
    sa.Column("key_hash", sa.String(64), primary_key=True),
    sa.Column("lead_id", sa.Uuid, nullable=False),
    sa.Column("accepted_at", UTCDateTime, nullable=False),
)

# Idempotency: the first answer to (party, key), replayed for the same request.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("party_id", sa.Uuid, sa.ForeignKey("parties.id"), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("response", sa.LargeBinary, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index(None, "created_at"),
)


# --- The auction -----------------------------------------------------------------------------

# An advertiser's buy order. Rules (filters, schedule, caps) are JSON in the shapes of
# exchange.matching; what the index and the auction sort by has columns of its own.
campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("buyer_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("vertical_id", sa.Uuid, sa.ForeignKey("verticals.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("tier", sa.Integer, nullable=False),
    sa.Column("price_mode", sa.String(8), nullable=False),
    sa.Column("fixed_price_minor", sa.BigInteger, nullable=True),
    sa.Column("floor_minor", sa.BigInteger, nullable=False),
    sa.Column("max_sells", sa.Integer, nullable=False),
    sa.Column("filters", JSONType, nullable=False),
    sa.Column("schedule", JSONType, nullable=True),
    sa.Column("caps", JSONType, nullable=False),
    # Where and how to ping and post (exchange.delivery.BuyerEndpoints); null: fixed price,
    # delivered by the exchange's own outbox only.
    sa.Column("endpoints", JSONType, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Returns policy (exchange.returns): days after delivery a lead may be returned (0: never),
    # the reasons a buyer may give, and the most of a month's purchases that may be returned.
    sa.Column("return_window_days", sa.Integer, nullable=False, server_default="0"),
    sa.Column("return_reasons", JSONType, nullable=False, server_default="[]"),
    sa.Column("max_return_rate_bps", sa.Integer, nullable=False, server_default="0"),  # 0: no limit
    # A team's campaign ranked by its measured conversion (exchange.auction.conversion).
    sa.Column("rank_by_conversion", sa.Boolean, nullable=False, server_default=sa.false()),
    # Its fairness floor: the least conversion weight, in % of neutral (exchange.auction.conversion).
    sa.Column("conversion_floor_pct", sa.Integer, nullable=False, server_default="50"),
    # exchange.calls.CallTerms: set, the campaign buys calls (and only calls); null, leads.
    sa.Column("call", JSONType, nullable=True),
    sa.Index(None, "vertical_id", "active"),
    sa.Index(None, "buyer_id"),
)

# Money terms of a buyer. Balance and credit are here until the ledger owns them; one function
# (exchange.auction.funds) reads them, so the ledger can take over without touching callers.
buyer_accounts = sa.Table(
    "buyer_accounts",
    metadata,
    sa.Column("buyer_id", sa.Uuid, sa.ForeignKey("parties.id"), primary_key=True),
    sa.Column("balance_minor", sa.BigInteger, nullable=False),
    sa.Column("credit_limit_minor", sa.BigInteger, nullable=False),
    sa.Column("margin", JSONType, nullable=True),  # overrides the vertical's margin
    sa.Column("penalty_bps", sa.Integer, nullable=False),
    sa.Column("last_won_at", UTCDateTime, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

supplier_terms = sa.Table(
    "supplier_terms",
    metadata,
    sa.Column("supplier_id", sa.Uuid, sa.ForeignKey("parties.id"), primary_key=True),
    sa.Column("margin", JSONType, nullable=True),  # overrides buyer and vertical margins
    sa.Column("min_payout_minor", sa.BigInteger, nullable=False),
    sa.Column("auction_mode", sa.String(16), nullable=True),  # null: the vertical's mode
    sa.Column("pings_per_second", sa.Integer, nullable=False),  # 0: unlimited
    sa.Column("ping_burst", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # On an approved return: claw_back (the supplier gives its payout back) or absorb (the
    # exchange bears it); with hold_days > 0, claw back only within that many days of the sale.
    sa.Column("return_payout", sa.String(16), nullable=False, server_default="claw_back"),
    sa.Column("hold_days", sa.Integer, nullable=False, server_default="0"),
)

# One row per (campaign, cap window): leads and spend held or sold in that window. A single
# guarded UPDATE moves it, so no window ever exceeds its cap, whatever the concurrency.
cap_counters = sa.Table(
    "cap_counters",
    metadata,
    sa.Column("campaign_id", sa.Uuid, sa.ForeignKey("campaigns.id"), primary_key=True),
    sa.Column("window_key", sa.String(64), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("spend_minor", sa.BigInteger, nullable=False),
)

# A ping: the non-PII fields, the offer made, and until when it holds.
pings = sa.Table(
    "pings",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("supplier_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("vertical_id", sa.Uuid, sa.ForeignKey("verticals.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open, posted, expired, unmatched
    sa.Column("test", sa.Boolean, nullable=False),
    sa.Column("fields", JSONType, nullable=False),
    sa.Column("offer", JSONType, nullable=True),  # ranked candidates and promised payouts
    sa.Column("payout_minor", sa.BigInteger, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("lead_id", sa.Uuid, nullable=True),
    sa.Index(None, "status", "expires_at"),
)

# Capacity a ping holds in cap windows, released when it expires unposted.
cap_holds = sa.Table(
    "cap_holds",
    metadata,
    sa.Column("ping_id", sa.Uuid, sa.ForeignKey("pings.id"), primary_key=True),
    sa.Column("campaign_id", sa.Uuid, sa.ForeignKey("campaigns.id"), primary_key=True),
    sa.Column("window_key", sa.String(64), primary_key=True),
    sa.Column("spend_minor", sa.BigInteger, nullable=False),
)

# A sale: one row per (lead, buyer). The unique key is the property "never twice to a buyer".
sales = sa.Table(
    "sales",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("lead_id", sa.Uuid, sa.ForeignKey("leads.id"), nullable=False),
    sa.Column("campaign_id", sa.Uuid, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("buyer_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("supplier_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("price_minor", sa.BigInteger, nullable=False),
    sa.Column("payout_minor", sa.BigInteger, nullable=False),
    sa.Column("margin_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("reference", sa.String(200), nullable=True),  # the buyer's own id for the lead
    sa.Column("created_at", UTCDateTime, nullable=False),
    # delivering: sold, the buyer has not said yes yet; delivered: accepted (and charged);
    # rejected / failed: the buyer said no, or could not be reached: no charge;
    # returned: delivered and charged, then returned (the refund is a `return` ledger entry).
    sa.Column("status", sa.String(16), nullable=False, server_default="delivered"),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("lead_id", "buyer_id"),
    sa.Index(None, "buyer_id", "created_at"),
    sa.Index(None, "campaign_id", "created_at"),
    # Money in flight per buyer is read by every auction: only the few sales still being
    # delivered are indexed, so the read stays small however long the buyer's history.
    sa.Index(
        "ix_sales_in_flight", "buyer_id",
        postgresql_where=sa.text("status = 'delivering'"), sqlite_where=sa.text("status = 'delivering'"),
    ),  # fmt: skip
)

# Why each campaign did or did not get a lead: one compact row per ping or lead and stage.
traces = sa.Table(
    "traces",
    metadata,
    sa.Column("subject_id", sa.Uuid, primary_key=True),  # the ping id, or the lead id
    sa.Column("stage", sa.String(8), primary_key=True),  # ping, post
    sa.Column("decisions", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)


# --- The ledger (exchange.ledger) --------------------------------------------------------------

# One row per account: `buyer:<party id>`, `supplier:<party id>`, `exchange:revenue:<CCY>`,
# `exchange:cash:<CCY>`. An account holds one currency, set when it is first posted to.
ledger_accounts = sa.Table(
    "ledger_accounts",
    metadata,
    sa.Column("code", sa.String(80), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # exchange.ledger.AccountKind
    sa.Column("party_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index(None, "party_id"),
)

# Append-only: a journal entry is never updated or deleted; corrections are new entries.
# The id is the idempotency key; request_hash (SHA-256 of the canonical postings) tells a
# replay from a reuse of the id with other contents.
journal_entries = sa.Table(
    "journal_entries",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # exchange.ledger.EntryKind
    sa.Column("lead_id", sa.Uuid, nullable=True),
    sa.Column("sale_id", sa.Uuid, nullable=True),
    # A reversal names the entry it undoes; unique, so nothing is reversed twice.
    sa.Column("reverses_id", sa.Uuid, sa.ForeignKey("journal_entries.id"), nullable=True, unique=True),
    sa.Column("memo", sa.String(500), nullable=False),
    sa.Column("period", sa.String(7), nullable=False),  # 'YYYY-MM', UTC
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.Uuid, sa.ForeignKey("parties.id"), nullable=True),  # null: the system
    sa.Index(None, "lead_id"),
    sa.Index(None, "sale_id"),
    sa.Index(None, "period", "created_at"),
)

# The legs of an entry: signed minor units, debit positive, credit negative; they sum to zero
# per currency within each entry.
postings = sa.Table(
    "postings",
    metadata,
    sa.Column("entry_id", sa.Uuid, sa.ForeignKey("journal_entries.id"), primary_key=True),
    sa.Column("line", sa.Integer, primary_key=True),
    sa.Column("account_code", sa.String(80), sa.ForeignKey("ledger_accounts.code"), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Index(None, "account_code", "entry_id"),
)

# The running sum of each party account's postings (debits minus credits), moved by a guarded
# UPDATE in the transaction that inserts the postings: the funds check and the lock in one.
# The exchange's own accounts have no row here (see exchange.ledger.accounts).
account_balances = sa.Table(
    "account_balances",
    metadata,
    sa.Column("account_code", sa.String(80), sa.ForeignKey("ledger_accounts.code"), primary_key=True),
    sa.Column("balance_minor", sa.BigInteger, nullable=False),
)

# Accounting periods (UTC months). A row appears with the first entry of its month; a closed
# period takes no new entries.
ledger_periods = sa.Table(
    "ledger_periods",
    metadata,
    sa.Column("period", sa.String(7), primary_key=True),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("closed_by", sa.Uuid, sa.ForeignKey("parties.id"), nullable=True),
)


# --- Delivery (exchange.delivery.outbox) -------------------------------------------------------

# The outbox: one row per sale, written in the sale's transaction. The sale id is the delivery
# id the buyer sees (X-Exchange-Delivery-Id), so its own de-duplication works across retries.
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("sale_id", sa.Uuid, sa.ForeignKey("sales.id"), primary_key=True),
    sa.Column("lead_id", sa.Uuid, sa.ForeignKey("leads.id"), nullable=False),
    sa.Column("campaign_id", sa.Uuid, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("buyer_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending, delivered, rejected, failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("leased_until", UTCDateTime, nullable=True),  # an attempt is running until then
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "status", "next_attempt_at"),
)

# Every attempt, for the buyer's support desk and ours: no PII (answers are redacted).
delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("sale_id", sa.Uuid, sa.ForeignKey("deliveries.sale_id"), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("http_status", sa.Integer, nullable=True),
    sa.Column("outcome", sa.String(16), nullable=False),  # accepted, rejected, error
    sa.Column("detail", sa.String(500), nullable=False),
)


# --- Returns (exchange.returns) ----------------------------------------------------------------

# A buyer's request to return a lead it bought, and finance's decision. One per sale (unique):
# a sale is returned at most once, and a denial is final.
returns = sa.Table(
    "returns",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("sale_id", sa.Uuid, sa.ForeignKey("sales.id"), nullable=False, unique=True),
    sa.Column("lead_id", sa.Uuid, sa.ForeignKey("leads.id"), nullable=False),
    sa.Column("buyer_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("supplier_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("campaign_id", sa.Uuid, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),  # one of the campaign's reasons
    sa.Column("note", sa.String(1000), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # requested, approved, denied
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("decided_at", UTCDateTime, nullable=True),
    sa.Column("decided_by", sa.Uuid, sa.ForeignKey("parties.id"), nullable=True),
    sa.Column("decision_note", sa.String(1000), nullable=True),
    # Approved only: whether the supplier's payout was clawed back, and the ledger entry.
    sa.Column("claw_back", sa.Boolean, nullable=True),
    sa.Column("entry_id", sa.Uuid, sa.ForeignKey("journal_entries.id"), nullable=True),
    sa.Index(None, "status", "requested_at"),
    sa.Index(None, "buyer_id", "requested_at"),
    sa.Index(None, "campaign_id", "buyer_id"),
)


# --- Internal teams (exchange.teams.service) ---------------------------------------------------

# An agent's routing profile and its counters. The counters are the round-robin standing and the
# caps' usage; every assignment bumps them with a compare-and-set on what it read, so two
# workers never both spend the same standing or the last unit of a cap.
agent_profiles = sa.Table(
    "agent_profiles",
    metadata,
    sa.Column("agent_id", sa.Uuid, sa.ForeignKey("parties.id"), primary_key=True),
    sa.Column("timezone", sa.String(64), nullable=False),  # IANA; hours and the daily cap's day
    sa.Column("working_hours", JSONType, nullable=True),  # exchange.matching.Schedule; null: any
    sa.Column("skills", JSONType, nullable=False),  # exchange.teams.Skills
    sa.Column("weight", sa.Integer, nullable=False),
    sa.Column("daily_cap", sa.Integer, nullable=True),
    sa.Column("concurrent_cap", sa.Integer, nullable=True),
    sa.Column("manual_status", sa.String(16), nullable=False),  # available, away
    sa.Column("last_heartbeat_at", UTCDateTime, nullable=True),
    sa.Column("heartbeat_ttl_s", sa.Integer, nullable=True),  # null: presence not tracked
    sa.Column("served_today", sa.Integer, nullable=False),
    sa.Column("served_on", sa.Date, nullable=True),  # the agent's local day served_today counts
    sa.Column("open_leads", sa.Integer, nullable=False),
    # Round-robin count in the window of served_on (the local day; stale days read as 0).
    sa.Column("served_in_window", sa.Integer, nullable=False),
    sa.Column("last_assigned_at", UTCDateTime, nullable=True),
    # Seniority for score tiers: 1 is the most senior (high-score leads go to tier 1 first).
    sa.Column("tier", sa.Integer, nullable=False, server_default="1"),
    # Where the agent is told of offers and assignments (exchange.notifications); null: not by
    # email. Its own contact, not a lead's PII.
    sa.Column("email", sa.String(320), nullable=True),
    # The E.164 number or SIP address the team's calls ring for this agent (exchange.calls);
    # null: the agent takes no calls.
    sa.Column("call_destination", sa.String(200), nullable=True),
)

# How a team distributes its leads (exchange.teams strategies and their limits).
team_configs = sa.Table(
    "team_configs",
    metadata,
    sa.Column("team_id", sa.Uuid, sa.ForeignKey("parties.id"), primary_key=True),
    sa.Column("strategy", sa.String(16), nullable=False),  # round_robin, sequential, parallel
    sa.Column("offer_timeout_s", sa.Integer, nullable=False),
    sa.Column("max_rounds", sa.Integer, nullable=False),
    sa.Column("parallel_k", sa.Integer, nullable=True),  # null: every eligible agent
    sa.Column("fallback", JSONType, nullable=True),  # exchange.teams.FallbackPolicy; null: queue
    # Which lead field carries each skill requirement ({"state": "state"}); null: none. Also
    # holds the team's sla_working_hours flag under "_sla_working_hours" (exchange.teams.store).
    sa.Column("skill_fields", JSONType, nullable=True),
    sa.Column("queue_max_age_s", sa.Integer, nullable=False),
    sa.Column("sla_minutes", sa.Integer, nullable=True),  # null: no first-contact SLA
    sa.Column("max_reassigns", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Smarter routing (exchange.teams.TeamRouting): time zone, hybrid strategy rules, score
    # tiers, fairness floor, account ownership window; null: the plain strategy above.
    sa.Column("routing", JSONType, nullable=True),
)

# Which team gets a vertical's unsold leads: a source-specific route wins over the vertical's
# catch-all (source null). Null sources are not unique in SQL, so the service upserts by hand.
team_routes = sa.Table(
    "team_routes",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("vertical_id", sa.Uuid, sa.ForeignKey("verticals.id"), nullable=False),
    sa.Column("source", sa.String(1000), nullable=True),
    sa.Column("team_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # The channel it takes (form, call, ...); null: every channel.
    sa.Column("channel", sa.String(16), nullable=True),
    sa.UniqueConstraint("vertical_id", "source", "channel"),
)

# Every offer made to an agent; status follows exchange.teams.OfferStatus and only ever leaves
# ``pending`` through a guarded UPDATE (``WHERE status = 'pending'``).
offers = sa.Table(
    "offers",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("lead_id", sa.Uuid, sa.ForeignKey("leads.id"), nullable=False),
    sa.Column("team_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("agent_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),  # sequential, parallel
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("decided_at", UTCDateTime, nullable=True),
    sa.Index(None, "lead_id"),
    sa.Index(None, "agent_id", "status"),
    sa.Index(None, "status", "expires_at"),
)

# Who holds a lead routed to a team. One row per lead; every change is one UPDATE guarded by
# ``version`` (or by ``status`` for a claim), so exactly one agent owns a lead at a time.
lead_owners = sa.Table(
    "lead_owners",
    metadata,
    sa.Column("lead_id", sa.Uuid, sa.ForeignKey("leads.id"), primary_key=True),
    sa.Column("team_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("agent_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # queued, offered, owned, fallback
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("candidates", JSONType, nullable=True),  # sequential: agent ids in priority order
    sa.Column("past_owners", JSONType, nullable=False),  # agent ids that owned it before (SLA)
    sa.Column("reason", sa.String(64), nullable=True),  # why it is queued or fell back
    sa.Column("queued_at", UTCDateTime, nullable=False),
    sa.Column("owned_since", UTCDateTime, nullable=True),
    sa.Column("first_contact_at", UTCDateTime, nullable=True),
    sa.Column("reassign_count", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # The lead segment the owner's conversion counts in (exchange.teams.performance), and why
    # the routing chose as it did (strategy, estimates): the trace of the choice.
    sa.Column("segment", sa.String(200), nullable=True),
    sa.Column("decision", JSONType, nullable=True),
    # Account routing: the keyed hashes of the lead's phone, email and company domain
    # ([[kind, hash], ...]), remembered as the owner's accounts when an agent takes the lead.
    sa.Column("account_keys", JSONType, nullable=True),
    sa.Index(None, "team_id", "status", "queued_at"),
    sa.Index(None, "agent_id", "status"),
)


# --- Outcomes and what routing learns from them (exchange.outcomes) -----------------------------

# What happened to a lead after it was sold or assigned, as its agent or buyer reported it.
# Append-only; (lead, reporter, kind) is the idempotency key: a repeated report is the first.
lead_outcomes = sa.Table(
    "lead_outcomes",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("lead_id", sa.Uuid, sa.ForeignKey("leads.id"), nullable=False),
    sa.Column("party_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    # contacted, qualified, appointment, won, lost, bad_lead
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("value_minor", sa.BigInteger, nullable=True),  # won: the deal's value
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("reason", sa.String(200), nullable=True),  # lost / bad_lead: why
    sa.Column("channel", sa.String(16), nullable=False),  # api, postback
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("lead_id", "party_id", "kind"),
    sa.Index(None, "party_id", "recorded_at"),
)

# Conversion counts that routing and scoring learn from: per subject (``agent:<id>``,
# ``team:<id>``, ``source:<vertical id>:<source>``, ``campaign:<id>``) and lead segment, how
# many leads reached a final outcome (trials) and how many were won (successes).
conversion_stats = sa.Table(
    "conversion_stats",
    metadata,
    sa.Column("subject", sa.String(200), primary_key=True),
    sa.Column("segment", sa.String(200), primary_key=True),
    sa.Column("trials", sa.Integer, nullable=False),
    sa.Column("successes", sa.Integer, nullable=False),
    sa.Column("value_minor", sa.BigInteger, nullable=False),  # won value summed
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Who owns a person or company: keyed hashes (exchange.intake dedupe keying) of a lead's phone,
# email and company email domain, pointing at the agent (and team) that last owned such a lead.
# Account-based routing sends a returning person or company to that owner first.
account_owners = sa.Table(
    "account_owners",
    metadata,
    sa.Column("key_hash", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(8), nullable=False),  # phone, email, domain
    sa.Column("team_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("agent_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("lead_id", sa.Uuid, sa.ForeignKey("leads.id"), nullable=False),
    sa.Column("owned_at", UTCDateTime, nullable=False),
)


# --- Channels in (exchange.channels) ------------------------------------------------------------

# A supplier's intake source other than the native API: an HTML form, an ad platform's lead
# webhook, CSV uploads or an inbound mailbox, each with the operator-editable mapping from the
# source's payload to the vertical's fields. ``token`` is the unguessable id in the source's URL
# (public for a form embedded in a page); ``secret_hash`` the SHA-256 of the shared key the
# platform sends (Google Ads' ``google_key``, Meta's verify token), when it sends one.
intake_sources = sa.Table(
    "intake_sources",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("supplier_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("vertical_id", sa.Uuid, sa.ForeignKey("verticals.id"), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),  # form, google_ads, meta, csv, email
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("source", sa.String(1000), nullable=True),  # the leads' ``source`` (routing, reports)
    sa.Column("mapping", JSONType, nullable=False),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(64), nullable=True),
    sa.Column("settings", JSONType, nullable=True),  # per channel: redirect URLs, app secret...
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "supplier_id"),
)

# One CSV upload or inbound email taken through a source, with its per-row report.
intake_batches = sa.Table(
    "intake_batches",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("source_id", sa.Uuid, sa.ForeignKey("intake_sources.id"), nullable=False),
    sa.Column("supplier_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # csv, email
    sa.Column("name", sa.String(300), nullable=True),  # the file's name or the mail's subject
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("accepted", sa.Integer, nullable=False),
    sa.Column("rejected", sa.Integer, nullable=False),
    sa.Column("report", JSONType, nullable=False),  # per row: status, lead id, errors
    sa.Column("received_at", UTCDateTime, nullable=False),
    # A large CSV is taken in by a worker: processing (rows still in pending_rows) then done.
    sa.Column("status", sa.String(16), nullable=False, server_default="done"),
    sa.Column("pending_rows", JSONType, nullable=True),  # the rows not yet taken in
    sa.Column("processed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", UTCDateTime, nullable=True),  # when it last moved
    sa.Index(None, "supplier_id", "received_at"),
    sa.Index(None, "status", "updated_at"),
)

# --- Channels out: notifications (exchange.notifications) ---------------------------------------

# A team's notification rules: which events reach whom (the agent, managers by rule), through
# which channels (email, webhook), with which templates.
team_notifications = sa.Table(
    "team_notifications",
    metadata,
    sa.Column("team_id", sa.Uuid, sa.ForeignKey("parties.id"), primary_key=True),
    sa.Column("config", JSONType, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Every notification to send, an outbox: written with the offer or assignment it tells of, sent
# by a Dramatiq actor with retries; ``key`` (event, lead, recipient, channel) is its
# idempotency key, so an event told twice is sent once.
notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("key", sa.String(300), nullable=False, unique=True),
    sa.Column("team_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("lead_id", sa.Uuid, sa.ForeignKey("leads.id"), nullable=True),
    sa.Column("party_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=True),  # the agent told
    sa.Column("event", sa.String(16), nullable=False),  # offered, assigned, reassigned
    sa.Column("channel", sa.String(16), nullable=False),  # email, webhook
    sa.Column("address", sa.String(1000), nullable=False),  # email address or URL
    sa.Column("payload", JSONType, nullable=False),  # the rendered message
    sa.Column("status", sa.String(16), nullable=False),  # pending, sent, failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "team_id", "created_at"),
    sa.Index(None, "lead_id"),  # was this lead told already (the unowned sweep)
)

# --- Channels out: CRM sync (exchange.crm) ------------------------------------------------------

# Where a team's (or a buyer's) leads are pushed: a generic webhook or a HubSpot- or
# Salesforce-format endpoint, with its credentials and field map.
crm_connections = sa.Table(
    "crm_connections",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("party_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # webhook, hubspot, salesforce
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("config", JSONType, nullable=False),  # URL, field map, events (no secrets)
    sa.Column("secret", sa.String(500), nullable=True),  # token or signing secret; never shown
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "party_id"),
)

# One push of one lead event to one connection: the per-lead sync status, an outbox sent with
# retries. ``external_id`` is the CRM's record id once created, so later events update it.
crm_syncs = sa.Table(
    "crm_syncs",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("connection_id", sa.Uuid, sa.ForeignKey("crm_connections.id"), nullable=False),
    sa.Column("lead_id", sa.Uuid, sa.ForeignKey("leads.id"), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),  # sold, assigned, outcome:<kind>
    sa.Column("status", sa.String(16), nullable=False),  # pending, synced, failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("external_id", sa.String(200), nullable=True),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("connection_id", "lead_id", "event"),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "lead_id"),
)

# --- Calls (exchange.calls) ---------------------------------------------------------------------

# One row per call pinged, from its bid to its end. ``status`` (exchange.calls.states):
# rejected (no bid), offered (the caller may connect until ``expires_at``), connected (the
# caller arrived; ``answered_at`` once a destination picked up), then completed (it lasted the
# minimum: billed when it has a price), short (it did not: not billed), missed (nobody
# answered), expired (never connected in time) or unreported (its end never came within the
# longest call). ``holds`` is the capacity it holds (cap windows and the concurrent line): the
# line goes back when the call ends, the windows too unless it was billed.
calls = sa.Table(
    "calls",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),  # also its ping's id: one trace for both
    sa.Column("supplier_id", sa.Uuid, sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("vertical_id", sa.Uuid, sa.ForeignKey("verticals.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("test", sa.Boolean, nullable=False),
    sa.Column("campaign_id", sa.Uuid, nullable=True),  # the winning campaign; null: a team route
    sa.Column("buyer_id", sa.Uuid, nullable=True),  # the buyer (or team) it sells to
    sa.Column("team_id", sa.Uuid, nullable=True),  # set when a team's agents take it
    sa.Column("price_minor", sa.BigInteger, nullable=False),
    sa.Column("payout_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("min_duration_s", sa.Integer, nullable=False),
    sa.Column("ring", sa.String(16), nullable=False),  # single, sequential, simultaneous
    sa.Column("ring_timeout_s", sa.Integer, nullable=True),  # sequential: per destination
    sa.Column("destinations", JSONType, nullable=False),  # [{"address", "agent_id"?}]
    sa.Column("holds", JSONType, nullable=False),  # [exchange.caps.Hold]
    sa.Column("fields", JSONType, nullable=False),  # the ping's non-PII fields
    sa.Column("meta", JSONType, nullable=True),  # source, sub ids
    sa.Column("answered_by", sa.String(200), nullable=True),  # the destination that answered
    sa.Column("agent_id", sa.Uuid, nullable=True),  # the agent who answered, for team calls
    sa.Column("lead_id", sa.Uuid, sa.ForeignKey("leads.id"), nullable=True, unique=True),
    sa.Column("sale_id", sa.Uuid, nullable=True),
    sa.Column("reason", sa.String(64), nullable=True),  # why it was not billed
    sa.Column("duration_s", sa.Integer, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("connected_at", UTCDateTime, nullable=True),  # the caller arrived
    sa.Column("answered_at", UTCDateTime, nullable=True),  # a destination picked up
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Index(None, "status", "expires_at"),
    sa.Index(None, "supplier_id", "created_at"),
    sa.Index(None, "campaign_id", "status"),
)
