"""Returns in the database: a buyer files, finance approves or denies, the ledger refunds.

Filing checks, in order: the sale is the buyer's, delivered and not returned before; its
campaign takes returns, with this reason, and the window is still open; and one more return
keeps the month's returns under the campaign's rate. The sale and campaign rows are locked for
the check, so two filings cannot both squeeze under the rate.

Approving posts the ledger's ``return`` entry (its id derived from the sale: one refund per
sale, ever) and marks the sale ``returned``, in the caller's transaction: the decision and the
money commit together or not at all. Deciding again the same way answers with the decision
already taken; the opposite decision is refused.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange import ledger
from exchange.auth.parties import PartyKind, Principal
from exchange.campaigns.terms import DEFAULT_HOLD_DAYS, ReturnPayout
from exchange.errors import ApiError, FieldProblem, forbidden, not_found, validation_error
from exchange.ids import new_id
from exchange.ledger.reconcile import CHARGED_STATUSES, SALE_DELIVERED, SALE_RETURNED
from exchange.returns import rules
from exchange.returns.messages import (
    PiiState,
    Purchase,
    PurchaseDetail,
    Return,
    ReturnIn,
    ReturnStatus,
)
from exchange.store.tables import (
    campaigns,
    journal_entries,
    lead_pii,
    leads,
    returns,
    sales,
    supplier_terms,
    verticals,
)
from exchange.store.types import UTCDateTime

# Stable error codes (409 unless said otherwise).
RETURN_EXISTS = "return_exists"  # the sale has a return already (requested, approved or denied)
NOT_DELIVERED = "not_delivered"  # the sale was never delivered and charged
RETURNS_NOT_ACCEPTED = "returns_not_accepted"  # the campaign's window is 0 days
WINDOW_CLOSED = "return_window_closed"
RATE_EXCEEDED = "return_rate_exceeded"
ALREADY_DECIDED = "return_decided"  # approving a denied return, or denying an approved one
NOT_CHARGED = "not_charged"  # no standing charge to refund (it was reversed)

OPEN_STATUSES = (ReturnStatus.REQUESTED.value, ReturnStatus.APPROVED.value)


def _conflict(code: str, message: str, **details: Any) -> ApiError:
    return ApiError(409, code, message, details=details or None)


def _sold_at(row: Any) -> dt.datetime:
    # Sales recorded before delivery times were kept have none: they were delivered on sale.
    return row.delivered_at or row.created_at


_bought_at = sa.func.coalesce(sales.c.delivered_at, sales.c.created_at, type_=UTCDateTime)


# --- filing --------------------------------------------------------------------------------------


async def _sale_to_return(conn: AsyncConnection, principal: Principal, data: ReturnIn) -> Any:
    """The sale named by ``sale_id`` or ``lead_id``, with its campaign's policy, locked."""
    if (data.sale_id is None) == (data.lead_id is None):
        raise validation_error([FieldProblem("sale_id", "give the sale_id or the lead_id, one")])
    query = (
        sa.select(
            sales,
            campaigns.c.return_window_days,
            campaigns.c.return_reasons,
            campaigns.c.max_return_rate_bps,
        )
        .join(campaigns, campaigns.c.id == sales.c.campaign_id)
        .with_for_update(of=[sales, campaigns])  # the campaign row serialises its rate checks
    )
    if data.sale_id is not None:
        query = query.where(sales.c.id == data.sale_id)
    else:
        query = query.where(sales.c.lead_id == data.lead_id)
        if not principal.is_operator:
            query = query.where(sales.c.buyer_id == principal.party_id)
    found = (await conn.execute(query)).all()
    if not found:
        raise not_found("purchase")
    if len(found) > 1:  # a shared lead, named by an operator: which buyer's sale?
        problem = FieldProblem("lead_id", "the lead was sold to several buyers: give the sale_id")
        raise validation_error([problem])
    row = found[0]
    if not principal.is_operator and row.buyer_id != principal.party_id:
        raise forbidden("this sale belongs to another buyer")
    return row


async def _month_counts(
    conn: AsyncConnection, buyer_id: uuid.UUID, campaign_id: uuid.UUID, period: str
) -> tuple[int, int]:
    """(purchases, open returns of them) of a buyer on a campaign, for leads bought in the
    UTC month ``period``."""
    since, until = ledger.period_start(period), ledger.period_end(period)
    bought = (
        sales.c.buyer_id == buyer_id,
        sales.c.campaign_id == campaign_id,
        sales.c.status.in_(CHARGED_STATUSES),
        _bought_at >= since,
        _bought_at < until,
    )
    purchases = (await conn.execute(sa.select(sa.func.count()).where(*bought))).scalar_one()
    open_returns = (
        await conn.execute(
            sa.select(sa.func.count())
            .select_from(returns.join(sales, sales.c.id == returns.c.sale_id))
            .where(*bought, returns.c.status.in_(OPEN_STATUSES))
        )
    ).scalar_one()
    return int(purchases), int(open_returns)


def _check_policy(sale: Any, reason: str, now: dt.datetime) -> None:
    """The campaign's policy, as it stands now: it takes returns, for this reason, still."""
    if sale.return_window_days == 0:
        raise _conflict(RETURNS_NOT_ACCEPTED, "the campaign that bought this lead takes no returns")
    reasons = list(sale.return_reasons or [])
    if reason not in reasons:
        problem = FieldProblem("reason", f"not one of the campaign's reasons: {', '.join(reasons)}")
        raise validation_error([problem])
    sold_at = _sold_at(sale)
    if not rules.within_window(sold_at, sale.return_window_days, now):
        closed_at = rules.window_closes_at(sold_at, sale.return_window_days)
        assert closed_at is not None  # the window is open for some days
        raise _conflict(
            WINDOW_CLOSED,
            f"the {sale.return_window_days}-day return window closed at {closed_at.isoformat()}",
            delivered_at=sold_at.isoformat(),
            closed_at=closed_at.isoformat(),
        )


async def _check_rate(conn: AsyncConnection, sale: Any) -> None:
    if not sale.max_return_rate_bps:
        return
    period = ledger.period_of(_sold_at(sale))
    purchases, open_returns = await _month_counts(conn, sale.buyer_id, sale.campaign_id, period)
    if not rules.rate_allows(open_returns, purchases, sale.max_return_rate_bps):
        raise _conflict(
            RATE_EXCEEDED,
            f"one more return would exceed {sale.max_return_rate_bps} bps of the "
            f"{purchases} leads bought on this campaign in {period}",
            period=period,
            purchases=purchases,
            open_returns=open_returns,
            max_rate_bps=sale.max_return_rate_bps,
        )


async def file_return(
    conn: AsyncConnection, principal: Principal, data: ReturnIn, *, now: dt.datetime
) -> Return:
    """File a return of a lead the caller bought (operators: any buyer's), for finance."""
    sale = await _sale_to_return(conn, principal, data)
    existing = (
        await conn.execute(sa.select(returns.c.id).where(returns.c.sale_id == sale.id))
    ).scalar()
    if existing is not None or sale.status == SALE_RETURNED:
        details = {"return_id": str(existing)} if existing is not None else {}
        raise _conflict(RETURN_EXISTS, "this sale has a return already", **details)
    if sale.status != SALE_DELIVERED:
        raise _conflict(NOT_DELIVERED, f"only a delivered lead is returned; it is {sale.status}")
    _check_policy(sale, data.reason, now)
    await _check_rate(conn, sale)
    return_id = new_id()
    await conn.execute(
        returns.insert().values(
            id=return_id, sale_id=sale.id, lead_id=sale.lead_id, buyer_id=sale.buyer_id,
            supplier_id=sale.supplier_id, campaign_id=sale.campaign_id, reason=data.reason,
            note=data.note, status=ReturnStatus.REQUESTED.value, requested_at=now,
        )
    )  # fmt: skip
    filed = await get_return(conn, return_id)
    assert filed is not None
    return filed


# --- deciding ------------------------------------------------------------------------------------


async def _check_charged(conn: AsyncConnection, sale_id: uuid.UUID) -> None:
    charge_id = ledger.entry_id(ledger.EntryKind.SALE.value, sale_id)
    charged = (
        await conn.execute(sa.select(journal_entries.c.id).where(journal_entries.c.id == charge_id))
    ).scalar()
    reversed_by = (
        await conn.execute(
            sa.select(journal_entries.c.id).where(journal_entries.c.reverses_id == charge_id)
        )
    ).scalar()
    if charged is None or reversed_by is not None:
        raise _conflict(NOT_CHARGED, "no standing charge for this sale: nothing to refund")


async def _payout_terms(conn: AsyncConnection, supplier_id: uuid.UUID) -> tuple[ReturnPayout, int]:
    query = sa.select(supplier_terms.c.return_payout, supplier_terms.c.hold_days).where(
        supplier_terms.c.supplier_id == supplier_id
    )
    row = (await conn.execute(query)).first()
    if row is None:  # never set: the defaults of SupplierTermsIn
        return ReturnPayout.CLAW_BACK, DEFAULT_HOLD_DAYS
    return ReturnPayout(row.return_payout), row.hold_days


async def _refund(
    conn: AsyncConnection, request: Any, by: uuid.UUID | None, now: dt.datetime
) -> dict[str, Any]:
    """Post the return entry and mark the sale returned; the columns that record it."""
    sale = (
        await conn.execute(sa.select(sales).where(sales.c.id == request.sale_id).with_for_update())
    ).one()
    if sale.status != SALE_DELIVERED:
        raise _conflict(NOT_DELIVERED, f"only a delivered sale is refunded; it is {sale.status}")
    await _check_charged(conn, sale.id)
    policy, hold_days = await _payout_terms(conn, sale.supplier_id)
    claw_back = rules.claws_back(policy, hold_days, _sold_at(sale), now)
    entry = ledger.return_entry(
        sale.id, sale.lead_id, sale.buyer_id, sale.supplier_id, int(sale.price_minor),
        int(sale.payout_minor), sale.currency, claw_back_payout=claw_back,
        memo=f"return {request.id} of sale {sale.id}: {request.reason}",
    )  # fmt: skip
    posted = await ledger.post_entry(conn, entry, now=now, by=by)
    await conn.execute(
        sales.update()
        .where(sales.c.id == sale.id, sales.c.status == SALE_DELIVERED)
        .values(status=SALE_RETURNED)
    )
    return {"claw_back": claw_back, "entry_id": posted.entry.id}


async def decide(
    conn: AsyncConnection,
    return_id: uuid.UUID,
    *,
    approve: bool,
    by: uuid.UUID | None,
    note: str | None,
    now: dt.datetime,
) -> Return:
    """Approve (refund) or deny a requested return, once; the same decision again is a no-op."""
    query = sa.select(returns.c.status).where(returns.c.id == return_id).with_for_update()
    status = (await conn.execute(query)).scalar()
    if status is None:
        raise not_found("return")
    wanted = ReturnStatus.APPROVED if approve else ReturnStatus.DENIED
    if status != ReturnStatus.REQUESTED.value:
        if status != wanted.value:
            raise _conflict(ALREADY_DECIDED, f"this return was {status} already", status=status)
    else:
        values: dict[str, Any] = {
            "status": wanted.value, "decided_at": now, "decided_by": by, "decision_note": note,
        }  # fmt: skip
        if approve:
            request = (
                await conn.execute(sa.select(returns).where(returns.c.id == return_id))
            ).one()
            values |= await _refund(conn, request, by, now)
        await conn.execute(returns.update().where(returns.c.id == return_id).values(**values))
    decided = await get_return(conn, return_id)
    assert decided is not None
    return decided


# --- reading -------------------------------------------------------------------------------------


def _select() -> sa.Select:
    return sa.select(returns, sales.c.price_minor, sales.c.payout_minor, sales.c.currency).join(
        sales, sales.c.id == returns.c.sale_id
    )


def _return(row: Any) -> Return:
    return Return(
        id=row.id, sale_id=row.sale_id, lead_id=row.lead_id, buyer_id=row.buyer_id,
        supplier_id=row.supplier_id, campaign_id=row.campaign_id,
        price_minor=int(row.price_minor), payout_minor=int(row.payout_minor),
        currency=row.currency, reason=row.reason, note=row.note,
        status=ReturnStatus(row.status), requested_at=row.requested_at,
        decided_at=row.decided_at, decided_by=row.decided_by, decision_note=row.decision_note,
        claw_back=row.claw_back, entry_id=row.entry_id,
    )  # fmt: skip


async def get_return(conn: AsyncConnection, return_id: uuid.UUID) -> Return | None:
    row = (await conn.execute(_select().where(returns.c.id == return_id))).first()
    return _return(row) if row else None


async def list_returns(
    conn: AsyncConnection,
    *,
    buyer_id: uuid.UUID | None = None,
    status: ReturnStatus | None = None,
    limit: int,
    after: uuid.UUID | None = None,
) -> list[Return]:
    """Returns oldest first (ids are time-ordered), optionally of one buyer or status."""
    query = _select().order_by(returns.c.id).limit(limit)
    if buyer_id is not None:
        query = query.where(returns.c.buyer_id == buyer_id)
    if status is not None:
        query = query.where(returns.c.status == status.value)
    if after is not None:
        query = query.where(returns.c.id > after)
    return [_return(row) for row in await conn.execute(query)]


async def list_purchases(
    conn: AsyncConnection,
    *,
    buyer_id: uuid.UUID | None,
    limit: int,
    after: uuid.UUID | None = None,
) -> list[Purchase]:
    """Leads bought and charged (delivered or returned), oldest sale first, with their return."""
    query = (
        sa.select(
            sales.c.id,
            sales.c.lead_id,
            sales.c.campaign_id,
            sales.c.price_minor,
            sales.c.currency,
            sales.c.status,
            sales.c.delivered_at,
            sales.c.created_at,
            campaigns.c.return_window_days,
            returns.c.id.label("return_id"),
            returns.c.status.label("return_status"),
        )
        .select_from(
            sales.join(campaigns, campaigns.c.id == sales.c.campaign_id).outerjoin(
                returns, returns.c.sale_id == sales.c.id
            )
        )
        .where(sales.c.status.in_(CHARGED_STATUSES))
        .order_by(sales.c.id)
        .limit(limit)
    )
    if buyer_id is not None:
        query = query.where(sales.c.buyer_id == buyer_id)
    if after is not None:
        query = query.where(sales.c.id > after)
    return [
        Purchase(
            sale_id=row.id,
            lead_id=row.lead_id,
            campaign_id=row.campaign_id,
            price_minor=int(row.price_minor),
            currency=row.currency,
            delivered_at=_sold_at(row),
            status=row.status,
            returnable_until=rules.window_closes_at(_sold_at(row), row.return_window_days),
            return_id=row.return_id,
            return_status=ReturnStatus(row.return_status) if row.return_status else None,
        )
        for row in await conn.execute(query)
    ]


async def get_purchase(
    conn: AsyncConnection, principal: Principal, sale_id: uuid.UUID
) -> PurchaseDetail:
    """One sale read back by its buyer (finance and operators: any), with the lead's fields.

    Only a charged sale (delivered, or delivered then returned) is a purchase: one still being
    delivered, or rejected or failed, is ``409 not_delivered``. Another buyer's sale is ``404``,
    as if it did not exist. The PII is there while the lead's ``lead_pii`` row is; finance keys
    never see it (``pii: withheld``).
    """
    row = (
        await conn.execute(
            sa.select(
                sales.c.id, sales.c.lead_id, sales.c.buyer_id, sales.c.campaign_id,
                sales.c.price_minor, sales.c.currency, sales.c.status, sales.c.reference,
                sales.c.delivered_at, sales.c.created_at, campaigns.c.return_window_days,
                verticals.c.slug, leads.c.fields, leads.c.consent,
                lead_pii.c.pii, lead_pii.c.lead_id.label("pii_lead_id"),
                returns.c.id.label("return_id"), returns.c.status.label("return_status"),
            )
            .select_from(
                sales.join(campaigns, campaigns.c.id == sales.c.campaign_id)
                .join(leads, leads.c.id == sales.c.lead_id)
                .join(verticals, verticals.c.id == leads.c.vertical_id)
                .outerjoin(lead_pii, lead_pii.c.lead_id == sales.c.lead_id)
                .outerjoin(returns, returns.c.sale_id == sales.c.id)
            )
            .where(sales.c.id == sale_id)
        )
    ).first()  # fmt: skip
    sees_all = principal.is_operator or principal.kind == PartyKind.FINANCE
    if row is None or (not sees_all and row.buyer_id != principal.party_id):
        raise not_found("purchase")
    if row.status not in CHARGED_STATUSES:
        raise _conflict(
            NOT_DELIVERED,
            f"this sale is {row.status}: only a delivered lead is a purchase",
            status=row.status,
        )
    if principal.kind == PartyKind.FINANCE:
        pii, fields = PiiState.WITHHELD, dict(row.fields)
    elif row.pii_lead_id is None:
        pii, fields = PiiState.PURGED, dict(row.fields)
    else:
        pii, fields = PiiState.INCLUDED, {**row.fields, **(row.pii or {})}
    sold_at = _sold_at(row)
    return PurchaseDetail(
        sale_id=row.id, lead_id=row.lead_id, buyer_id=row.buyer_id, campaign_id=row.campaign_id,
        vertical=row.slug, price_minor=int(row.price_minor), currency=row.currency,
        delivered_at=sold_at, status=row.status,
        returnable_until=rules.window_closes_at(sold_at, row.return_window_days),
        return_id=row.return_id,
        return_status=ReturnStatus(row.return_status) if row.return_status else None,
        reference=row.reference, fields=fields, consent=row.consent,
        pii=pii, pii_purged=pii is PiiState.PURGED,
    )  # fmt: skip
