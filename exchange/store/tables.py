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
    sa.Index(None, "supplier_id", "created_at"),
    sa.Index(None, "vertical_id", "created_at"),
    sa.Index(None, "status", "created_at"),
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
