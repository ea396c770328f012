"""Selling a lead to one buyer: start the sale, deliver it, settle the money.

start    one transaction: lock the buyer's money and check it, hold cap capacity, count the
         sale on the lead, write the sale (``delivering``) and its outbox row. In the
         supplier's request the row is written with its first attempt already leased.
deliver  take the delivery's next attempt (leased), post the lead to the buyer, log the attempt.
         The first attempt in the request has its lease from ``start`` and the sale's facts
         from memory, so it goes straight to the buyer; retries claim and read them.
settle   accepted: the sale is ``delivered`` and charged (one balanced ledger entry, its id the
         sale's, so a replay never charges twice); rejected or out of retries: nothing is
         charged, the capacity and the lead's sale count go back, and the walk moves on.

The first attempt runs inside the supplier's post; a transport error leaves the delivery
pending for the Dramatiq actor (and the sweeper, if a message is lost) to retry with backoff.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange import caps as cap_store
from exchange import crm, metrics, reasons
from exchange.auction import funds
from exchange.auction.context import Context, signing_secret
from exchange.auction.fallback import PostOutcome
from exchange.delivery import outbox
from exchange.ids import new_id
from exchange.ledger import accounts as ledger_accounts
from exchange.ledger import post_entry, sale_entry
from exchange.matching import CampaignRules
from exchange.matching.caps import breach_details
from exchange.store.tables import campaigns, lead_pii, leads, sales, verticals

log = logging.getLogger(__name__)

SALE_DELIVERING = "delivering"
SALE_DELIVERED = "delivered"


class Started(msgspec.Struct, frozen=True, kw_only=True):
    sale_id: uuid.UUID
    needs_delivery: bool  # False: no endpoint, the exchange delivers it itself (already settled)
    first: outbox.Claim | None = None  # the first attempt, leased at the start for the caller


class Refused(msgspec.Struct, frozen=True, kw_only=True):
    reason: str
    details: dict[str, Any] = {}


class Attempted(msgspec.Struct, frozen=True, kw_only=True):
    outcome: str  # accepted, rejected, failed (out of retries), retry, busy (another attempt), done
    reason: str | None = None
    latency_ms: int | None = None
    detail: str | None = None
    retry_at: dt.datetime | None = None


# Built once, values bound at execution: SQLAlchemy compiles each once instead of per sale.
_COUNT_SALE = (
    leads.update()
    .where(leads.c.id == sa.bindparam("_id"), leads.c.sold_count < sa.bindparam("_max"))
    .values(sold_count=leads.c.sold_count + 1)
)
_DELIVERED = (
    sales.update()
    .where(sales.c.id == sa.bindparam("_id"), sales.c.status == SALE_DELIVERING)
    .returning(sales.c.lead_id, sales.c.buyer_id, sales.c.supplier_id, sales.c.price_minor,
               sales.c.payout_minor, sales.c.currency)
)  # fmt: skip


async def start_sale(
    conn: AsyncConnection,
    *,
    campaign: CampaignRules,
    has_endpoint: bool,
    lead_id: uuid.UUID,
    supplier_id: uuid.UUID,
    price_minor: int,
    payout_minor: int,
    currency: str,
    held: bool,
    max_sells: int,
    now: dt.datetime,
    first_attempt_lease: dt.timedelta | None = None,
    delivered: bool = False,
) -> tuple[Started, list[cap_store.Hold]] | Refused:
    """Call inside a write transaction; on Refused the caller rolls back nothing it needs.
    ``first_attempt_lease``: the caller makes the first delivery attempt right after the
    commit; the delivery is written with that attempt taken, leased for this long.
    ``delivered``: the buyer already has what it pays for (a call it took and kept long
    enough): it is charged whatever its money says now, like an accepted delivery."""
    if not delivered and not await funds.lock_and_check(conn, campaign.buyer_id, price_minor):
        return Refused(reason=reasons.INSUFFICIENT_BALANCE, details={"price_minor": price_minor})
    new_holds: list[cap_store.Hold] = []
    if not held:
        reserved = await cap_store.reserve(
            conn, campaign.campaign_id, campaign.caps, campaign.timezone, price_minor, now
        )
        if not isinstance(reserved, list):
            return Refused(reason=reserved.reason, details=breach_details(reserved))
        new_holds = reserved
    bumped = await conn.execute(_COUNT_SALE, {"_id": lead_id, "_max": max_sells})
    if bumped.rowcount != 1:  # pragma: no cover - the walk never over-sells
        raise RuntimeError("lead already sold as often as it may be")
    sale_id = new_id()
    await conn.execute(
        sales.insert(),  # constant statements with the values apart: compiled once, not per sale
        dict(
            id=sale_id, lead_id=lead_id, campaign_id=uuid.UUID(campaign.campaign_id),
            buyer_id=uuid.UUID(campaign.buyer_id), supplier_id=supplier_id,
            price_minor=price_minor, payout_minor=payout_minor,
            margin_minor=price_minor - payout_minor, currency=currency, reference=None,
            created_at=now, status=SALE_DELIVERING, delivered_at=None,
        )
    )  # fmt: skip
    first: outbox.Claim | None = None
    if has_endpoint:
        leased_until = (
            None
            if first_attempt_lease is None
            else dt.datetime.now(dt.timezone.utc) + first_attempt_lease
        )
        first = await outbox.create(
            conn, sale_id=sale_id, lead_id=lead_id, campaign_id=uuid.UUID(campaign.campaign_id),
            buyer_id=uuid.UUID(campaign.buyer_id), now=now, leased_until=leased_until,
        )  # fmt: skip
    else:  # nothing to post: the buyer takes its leads from the API, so it is delivered now
        await settle_accepted(conn, sale_id, reference=None, now=now, outboxed=False)
    return Started(sale_id=sale_id, needs_delivery=has_endpoint, first=first), new_holds


async def settle_accepted(
    conn: AsyncConnection,
    sale_id: uuid.UUID,
    *,
    reference: str | None,
    now: dt.datetime,
    outboxed: bool = True,
) -> bool:
    """Mark the sale delivered and charge it, once. False if it was settled already.
    ``outboxed``: False for a sale without a delivery row (nothing to post)."""
    row = (
        await conn.execute(_DELIVERED, {"_id": sale_id, "status": SALE_DELIVERED, "delivered_at": now, "reference": reference})
    ).first()
    if row is None:
        return False
    if outboxed:
        await outbox.finish(conn, sale_id, outbox.DELIVERED, now)
    entry = sale_entry(
        sale_id, row.lead_id, row.buyer_id, row.supplier_id, row.price_minor, row.payout_minor, row.currency
    )
    # The lead is delivered and accepted: the charge is booked even if credit was cut since
    # the sale began (refusing would make the books lie; the sale began within the buyer's money).
    await post_entry(conn, entry, now=now, allow_overdraft_for={ledger_accounts.buyer(row.buyer_id)})
    await funds.mark_won(conn, str(row.buyer_id), now)
    metrics.sale_charged(row.currency, row.price_minor, row.payout_minor)
    await crm.record(conn, row.buyer_id, row.lead_id, crm.SOLD, now)  # to its CRM, after commit
    return True


async def settle_undone(
    conn: AsyncConnection,
    sale_id: uuid.UUID,
    *,
    status: str,
    holds: list[cap_store.Hold],
    now: dt.datetime,
    error: str | None = None,
) -> bool:
    """The buyer said no (or never answered): no charge; capacity and the sale count go back."""
    row = (
        await conn.execute(
            sales.update()
            .where(sales.c.id == sale_id, sales.c.status == SALE_DELIVERING)
            .values(status=status)
            .returning(sales.c.lead_id)
        )
    ).first()
    if row is None:
        return False
    await outbox.finish(conn, sale_id, status, now, error)
    await cap_store.release(conn, holds)
    await conn.execute(
        leads.update().where(leads.c.id == row.lead_id).values(sold_count=leads.c.sold_count - 1)
    )
    return True


class SaleFacts(msgspec.Struct, kw_only=True):
    """What a delivery attempt posts: the sale, its lead as stored, the campaign's endpoints."""

    lead_id: uuid.UUID
    campaign_id: uuid.UUID
    buyer_id: uuid.UUID
    ping_id: uuid.UUID | None
    vertical: str
    fields: dict[str, Any]
    pii: dict[str, Any]
    consent: dict[str, Any] | None
    source: str | None
    test: bool
    endpoints: Any
    created_at: dt.datetime


async def _facts(conn: AsyncConnection, sale_id: uuid.UUID) -> SaleFacts | None:
    row = (
        await conn.execute(
            sa.select(
                sales.c.lead_id, sales.c.campaign_id, sales.c.buyer_id, leads.c.ping_id,
                verticals.c.slug, leads.c.fields, leads.c.consent, leads.c.source, leads.c.test,
                campaigns.c.endpoints, sales.c.created_at, lead_pii.c.pii,
            )
            .select_from(
                sales.join(leads, leads.c.id == sales.c.lead_id)
                .join(verticals, verticals.c.id == leads.c.vertical_id)
                .join(campaigns, campaigns.c.id == sales.c.campaign_id)
                .outerjoin(lead_pii, lead_pii.c.lead_id == sales.c.lead_id)
            )
            .where(sales.c.id == sale_id)
        )
    ).first()  # fmt: skip
    if row is None:
        return None
    return SaleFacts(
        lead_id=row.lead_id, campaign_id=row.campaign_id, buyer_id=row.buyer_id, ping_id=row.ping_id,
        vertical=row.slug, fields=row.fields, pii=row.pii or {}, consent=row.consent,
        source=row.source, test=row.test, endpoints=row.endpoints, created_at=row.created_at,
    )  # fmt: skip


async def deliver(
    ctx: Context,
    sale_id: uuid.UUID,
    *,
    holds: list[cap_store.Hold],
    first: tuple[outbox.Claim, SaleFacts] | None = None,
) -> Attempted:
    """One delivery attempt: claim it, post the lead, settle or schedule the retry.
    ``first``: the attempt ``start_sale`` already leased, and the sale's facts from memory."""
    buyer: list[str] = []  # _deliver puts the sale's buyer here once it knows it
    attempted = await _deliver(ctx, sale_id, holds, buyer, first)
    if buyer and attempted.outcome != "busy":
        metrics.delivery_attempted(buyer[0], attempted.outcome, attempted.latency_ms)
    return attempted


async def _deliver(
    ctx: Context,
    sale_id: uuid.UUID,
    holds: list[cap_store.Hold],
    buyer: list[str],
    first: tuple[outbox.Claim, SaleFacts] | None,
) -> Attempted:
    from exchange import delivery

    settings = ctx.settings
    now = dt.datetime.now(dt.timezone.utc)
    lease = dt.timedelta(milliseconds=settings.delivery_lease_ms)
    if first is not None:
        claim, facts = first
    else:
        async with ctx.db.write() as conn:
            claimed = await outbox.claim(conn, sale_id, now, lease)
            if claimed is None:
                return Attempted(outcome="busy")
            claim, found = claimed, await _facts(conn, sale_id)
        assert found is not None
        facts = found
    buyer.append(str(facts.buyer_id))
    endpoints = facts.endpoints  # from memory: already converted (the market's); from the database: JSON
    if endpoints and not isinstance(endpoints, delivery.BuyerEndpoints):
        endpoints = msgspec.convert(endpoints, delivery.BuyerEndpoints)
    endpoints = endpoints or None
    verdict = None
    http_status = None
    detail = ""
    if endpoints is None or ctx.http is None:
        detail = "no post endpoint" if endpoints is None else "no HTTP client"
    else:
        payload = delivery.LeadPayload(
            lead_id=str(facts.lead_id), ping_id=str(facts.ping_id) if facts.ping_id else None,
            vertical=facts.vertical, fields=facts.fields, pii=facts.pii, consent=facts.consent,
            source=facts.source, test=facts.test,
        )  # fmt: skip
        try:
            request = delivery.build_request(
                endpoints.post, "post", payload, secret=signing_secret(settings, str(facts.buyer_id)),
                now_s=int(now.timestamp()), delivery_id=str(sale_id),
            )  # fmt: skip
        except delivery.MappingError as exc:
            request, detail = None, str(exc)
        if request is not None:
            exchange_ = await delivery.send(ctx.http, request, endpoints.post.timeout_for("post"))
            http_status = exchange_.status
            verdict = delivery.classify_post(endpoints.post, exchange_)
            detail = verdict.detail or ""
    done = dt.datetime.now(dt.timezone.utc)
    outcome = verdict.outcome if verdict else PostOutcome.ERROR
    async with ctx.db.write() as conn:
        await outbox.log_attempt(
            conn, claim, started_at=now, latency_ms=verdict.latency_ms if verdict else 0,
            http_status=http_status, outcome=outcome.value, detail=detail,
        )  # fmt: skip
        if outcome is PostOutcome.ACCEPTED:
            await settle_accepted(conn, sale_id, reference=verdict.reference if verdict else None, now=done)
            return Attempted(outcome="accepted", latency_ms=verdict.latency_ms if verdict else None)
        if outcome is PostOutcome.REJECTED:
            await settle_undone(conn, sale_id, status=outbox.REJECTED, holds=holds, now=done, error=detail)
            return Attempted(outcome="rejected", reason=reasons.POST_REJECTED, detail=detail,
                             latency_ms=verdict.latency_ms if verdict else None)  # fmt: skip
        age = done - claim.created_at
        exhausted = (
            claim.attempt >= settings.delivery_max_attempts
            or age >= dt.timedelta(seconds=settings.delivery_max_age_s)
            or verdict is None  # an unmappable lead or no endpoint: retrying cannot help
        )
        if exhausted:
            await settle_undone(conn, sale_id, status=outbox.FAILED, holds=holds, now=done, error=detail)
            return Attempted(outcome="failed", reason=reasons.POST_ERROR, detail=detail)
        wait_ms = outbox.backoff_ms(
            claim.attempt, min_ms=settings.delivery_backoff_min_ms, max_ms=settings.delivery_backoff_max_ms
        )
        retry_at = done + dt.timedelta(milliseconds=wait_ms)
        await outbox.retry_later(conn, sale_id, at=retry_at, error=detail, now=done)
    return Attempted(outcome="retry", reason=reasons.POST_ERROR, detail=detail, retry_at=retry_at,
                     latency_ms=verdict.latency_ms if verdict else None)  # fmt: skip
