"""Accepting a lead: validate, claim its duplicate keys, store it, remember the answer.

Everything a lead writes happens in one transaction, so an error at any step leaves nothing
behind: no lead, no PII, no duplicate key, no idempotency record.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import uuid
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.channels.names import channel_is, channel_name
from exchange.errors import ApiError, FieldProblem
from exchange.intake import verticals
from exchange.intake.messages import Consent, LeadIn, LeadView, SourcedLeadIn, SubIds
from exchange.intake.validate import Limits, ValidLead
from exchange.settings import Settings
from exchange.store.db import insert_for
from exchange.store.tables import dedupe_keys, lead_pii, leads
from exchange.store.tables import verticals as verticals_table

IDEMPOTENCY_REPLAY_HEADER = "Idempotent-Replayed"

def enc_hook(obj: object) -> object:
    # datetime subclasses (freezegun's FakeDatetime in tests) are not native to msgspec.
    if isinstance(obj, dt.datetime):
        return obj.isoformat()
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")


_encode = msgspec.json.Encoder(enc_hook=enc_hook).encode


class Accepted(msgspec.Struct, frozen=True):
    status_code: int
    body: bytes
    replayed: bool


class Duplicate(Exception):
    def __init__(self, path: str) -> None:
        self.path = path


class KeyTaken(Exception):
    """Another request with the same idempotency key committed first."""


def limits_of(settings: Settings) -> Limits:
    return Limits(
        text_max_chars=settings.text_max_chars,
        consent_text_max_chars=settings.consent_text_max_chars,
        url_max_chars=settings.url_max_chars,
        max_fields_per_lead=settings.max_fields_per_lead,
    )


def dedupe_hash(secret: str, kind: str, value: str) -> str:
    """A keyed hash: the table never holds a phone or email an attacker could reverse."""
    return hmac.new(secret.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def request_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def duplicate_error(vertical: verticals.Vertical, path: str) -> ApiError:
    return ApiError(
        409,
        "duplicate",
        f"a lead with this {path.split('.')[-1]} was accepted in this vertical "
        f"within the last {vertical.dedupe_window_days} days",
        fields=[FieldProblem(path, "duplicate")],
    )


async def claim_duplicates(
    conn: AsyncConnection,
    settings: Settings,
    vertical: verticals.Vertical,
    lead: ValidLead,
    lead_id: uuid.UUID,
    now: dt.datetime,
    *,
    test: bool,
) -> None:
    """Claim the lead's phone and email in the vertical's window, or raise ``Duplicate``.

    Test leads exercise the pipe without consuming a person's duplicate window."""
    if vertical.dedupe_window_days <= 0 or test:
        return
    window = dt.timedelta(days=vertical.dedupe_window_days)
    for path, kind, value in _dedupe_values(vertical, lead):
        key = dedupe_hash(settings.secret_key, kind, value)
        if not await _claim_dedupe_key(conn, vertical.id, key, lead_id, now, window):
            raise Duplicate(path)


async def find_duplicate(
    conn: AsyncConnection,
    settings: Settings,
    vertical: verticals.Vertical,
    lead: ValidLead,
    now: dt.datetime,
    *,
    test: bool,
) -> str | None:
    """Read-only look-ahead of ``claim_duplicates``: the path of a duplicate field, if any.
    Not authoritative (a twin may commit after it), only a way to skip pointless work."""
    if vertical.dedupe_window_days <= 0 or test:
        return None
    cutoff = now - dt.timedelta(days=vertical.dedupe_window_days)
    for path, kind, value in _dedupe_values(vertical, lead):
        key = dedupe_hash(settings.secret_key, kind, value)
        row = (
            await conn.execute(
                sa.select(dedupe_keys.c.accepted_at).where(
                    dedupe_keys.c.vertical_id == vertical.id, dedupe_keys.c.key_hash == key
                )
            )
        ).first()
        if row is not None and row.accepted_at > cutoff:
            return path
    return None


def check_idempotency_key(key: str, settings: Settings) -> None:
    if not key or len(key) > settings.idempotency_key_max_chars or not key.isprintable():
        raise ApiError(
            422,
            "validation_failed",
            "bad Idempotency-Key header",
            fields=[
                FieldProblem(
                    "headers.Idempotency-Key",
                    f"1 to {settings.idempotency_key_max_chars} printable characters",
                )
            ],
        )


async def _claim_dedupe_key(
    conn: AsyncConnection,
    vertical_id: uuid.UUID,
    key_hash: str,
    lead_id: uuid.UUID,
    now: dt.datetime,
    window: dt.timedelta,
) -> bool:
    """Claim the key unless a lead took it within the window. One atomic statement.

    On PostgreSQL a concurrent claimant blocks on the row until the first commits, then sees
    its fresh timestamp and loses; on SQLite the write lock serialises them outright.
    """
    params = {"vertical_id": vertical_id, "key_hash": key_hash, "lead_id": lead_id, "accepted_at": now,
              "stale_before": now - window}  # fmt: skip
    return (await conn.execute(_dedupe_claim(conn.dialect.name), params)).first() is not None


@functools.cache
def _dedupe_claim(dialect_name: str) -> Any:
    """Built once per dialect, values bound at execution: compiled once, not per lead."""
    stmt = insert_for(dialect_name, dedupe_keys)
    return stmt.on_conflict_do_update(
        index_elements=[dedupe_keys.c.vertical_id, dedupe_keys.c.key_hash],
        set_={"lead_id": stmt.excluded.lead_id, "accepted_at": stmt.excluded.accepted_at},
        where=dedupe_keys.c.accepted_at <= sa.bindparam("stale_before"),
    ).returning(dedupe_keys.c.lead_id)


async def insert_lead(
    conn: AsyncConnection,
    *,
    lead_id: uuid.UUID,
    vertical: verticals.Vertical,
    supplier_id: uuid.UUID,
    lead_in: LeadIn,
    lead: ValidLead,
    status: str,
    ping_id: uuid.UUID | None,
    now: dt.datetime,
    score: int | None = None,
    priority: str | None = None,
) -> None:
    """The lead row (non-PII fields only) and, apart, its PII. ``score``/``priority``: what
    exchange.scoring made of it (None: its vertical scores nothing). A lead from an intake
    adapter records its channel and source; the native API's leads leave them null."""
    sourced = isinstance(lead_in, SourcedLeadIn)
    await conn.execute(
        leads.insert(),  # constant statements with the values apart: compiled once, not per lead
        dict(
            id=lead_id,
            vertical_id=vertical.id,
            vertical_version=vertical.version,
            supplier_id=supplier_id,
            status=status,
            test=lead_in.test,
            source=lead_in.source,
            sub_ids=msgspec.to_builtins(lead_in.sub_ids) if lead_in.sub_ids else None,
            fields=lead.fields,
            consent=msgspec.to_builtins(lead.consent) if lead.consent else None,
            created_at=now,
            ping_id=ping_id,
            sold_count=0,
            score=score,
            priority=priority,
            channel=lead_in.channel if sourced else None,
            intake_source_id=lead_in.intake_source_id if sourced else None,
        )
    )
    if lead.pii:
        await conn.execute(lead_pii.insert(), {"lead_id": lead_id, "pii": lead.pii})


def _dedupe_values(vertical: verticals.Vertical, lead: ValidLead) -> list[tuple[str, str, str]]:
    values = []
    if lead.phone is not None:
        values.append((_path_of(vertical, lead.phone, lead), "phone", lead.phone))
    if lead.email is not None:
        values.append((_path_of(vertical, lead.email, lead), "email", lead.email))
    return values


def _path_of(vertical: verticals.Vertical, value: str, lead: ValidLead) -> str:
    for spec in vertical.fields:
        if lead.pii.get(spec.name, lead.fields.get(spec.name)) == value:
            return f"fields.{spec.name}"
    return "fields"


async def get_lead(conn: AsyncConnection, lead_id: uuid.UUID, *, with_pii: bool) -> LeadView | None:
    query = (
        sa.select(leads, verticals_table.c.slug)
        .join(verticals_table, verticals_table.c.id == leads.c.vertical_id)
        .where(leads.c.id == lead_id)
    )
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    pii = None
    if with_pii:
        pii_row = (
            await conn.execute(sa.select(lead_pii.c.pii).where(lead_pii.c.lead_id == lead_id))
        ).first()
        pii = pii_row.pii if pii_row else {}
    return _view(row, pii)


async def list_leads(
    conn: AsyncConnection,
    *,
    supplier_id: uuid.UUID | None,
    limit: int,
    after: uuid.UUID | None,
    channel: str | None = None,
) -> list[LeadView]:
    query = (
        sa.select(leads, verticals_table.c.slug)
        .join(verticals_table, verticals_table.c.id == leads.c.vertical_id)
        .order_by(leads.c.id)
        .limit(limit)
    )
    if supplier_id is not None:
        query = query.where(leads.c.supplier_id == supplier_id)
    if after is not None:
        query = query.where(leads.c.id > after)
    if channel is not None:
        query = query.where(channel_is(leads.c.channel, channel))
    return [_view(row, None) for row in await conn.execute(query)]


def _view(row: sa.Row, pii: dict | None) -> LeadView:
    return LeadView(
        lead_id=row.id,
        status=row.status,
        vertical=row.slug,
        supplier_id=row.supplier_id,
        created_at=row.created_at,
        fields=row.fields,
        channel=channel_name(row.channel),
        pii=pii,
        source=row.source,
        sub_ids=msgspec.convert(row.sub_ids, SubIds) if row.sub_ids else None,
        consent=msgspec.convert(row.consent, Consent) if row.consent else None,
        test=row.test,
        score=row.score,
        priority=row.priority,
    )
