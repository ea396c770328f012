"""Walking the ranked bids of a lead, in the supplier's request and later in a worker.

In the request, each step starts a sale and makes the first delivery attempt. A buyer that
accepts or rejects is settled at once; a buyer that could not be reached keeps the sale
(``delivering``) and the walk counts it as sold for now, so the supplier gets its answer.
The walk is stored on the lead; the ``deliver_sale`` actor retries such deliveries, and when
one finally fails (rejected, or out of retries) it reopens that step and walks on from there:
to the next bid that still covers the promise, or, with none left, to ``unsold``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from typing import Any

import msgspec
import sqlalchemy as sa

from exchange import caps as cap_store
from exchange import metrics, reasons
from exchange.auction import selling
from exchange.auction.bidding import _endpoints
from exchange.auction.context import LEAD_SOLD, LEAD_UNSOLD, Context
from exchange.auction.fallback import (
    Attempt,
    Done,
    PostAction,
    PostOutcome,
    WalkState,
    end,
    next_post,
    record,
)
from exchange.auction.market import VerticalMarket
from exchange.auction.messages import TraceEntry
from exchange.delivery.config import TIMEOUT_MS_MAX
from exchange.store.tables import leads, sales

log = logging.getLogger(__name__)


class Memo(msgspec.Struct, kw_only=True):
    """What a worker needs to take the walk over (stored as ``leads.walk``)."""

    ping_id: uuid.UUID
    supplier_id: uuid.UUID
    currency: str
    max_sells: int
    holds: list[cap_store.Hold]  # capacity held per campaign (from the ping or the sale)
    held: list[str]  # campaigns whose capacity the ping held and no sale has used yet
    state: WalkState | None = None
    sales: dict[str, uuid.UUID] = {}  # campaign id -> sale id
    pending: dict[str, str] = {}  # sale id -> ISO time its next attempt is due


class InlineLead(msgspec.Struct, frozen=True, kw_only=True):
    """The lead as the supplier's request stored it, so the request's first delivery attempts
    post it from memory instead of reading it back (a worker's walk passes none)."""

    vertical: str
    fields: dict[str, Any]
    pii: dict[str, Any]
    consent: dict[str, Any] | None
    source: str | None
    test: bool


def holds_of(memo: Memo, campaign_id: str) -> list[cap_store.Hold]:
    return [h for h in memo.holds if h.campaign_id == campaign_id]


# A walk starts no post once this long has passed, so that its last post (at most the longest
# post timeout) ends well before the sweeper takes a lead still ``posting`` for one whose
# process died (``lead_stuck_after_s``): the sweeper and a live walk never settle one lead twice.
WALK_SLACK_S = 30
_clock = time.monotonic


def walk_budget_s(lead_stuck_after_s: int) -> float:
    return max(0.0, lead_stuck_after_s - TIMEOUT_MS_MAX / 1000 - WALK_SLACK_S)


async def run(
    ctx: Context,
    market: VerticalMarket,
    memo: Memo,
    lead_id: uuid.UUID,
    overrides: dict[str, TraceEntry],
    now: dt.datetime,
    inline: InlineLead | None = None,
) -> Done:
    """``inline``: the walk runs in the supplier's request, which holds the stored lead."""
    assert memo.state is not None
    deadline = _clock() + walk_budget_s(ctx.settings.lead_stuck_after_s)
    while True:
        action = next_post(memo.state)
        if isinstance(action, Done):
            return action
        if _clock() >= deadline:
            log.warning("walk out of time: no more posts", extra={"lead_id": str(lead_id)})
            return end(memo.state)
        outcome = await _step(ctx, market, memo, action, lead_id, overrides, now, inline)
        memo.state = record(memo.state, action.candidate.campaign_id, outcome)


async def _step(
    ctx: Context,
    market: VerticalMarket,
    memo: Memo,
    action: PostAction,
    lead_id: uuid.UUID,
    overrides: dict[str, TraceEntry],
    now: dt.datetime,
    inline: InlineLead | None = None,
) -> PostOutcome:
    candidate = action.candidate
    cid = candidate.campaign_id
    entry = TraceEntry(
        campaign_id=cid, buyer_id=candidate.buyer_id, reason=None,
        bid_minor=candidate.bid.amount_minor, payout_minor=action.promised_payout_minor,
    )  # fmt: skip
    overrides[cid] = entry
    campaign = market.rules.get(cid)
    if campaign is None:
        entry.reason, entry.details["error"] = reasons.POST_ERROR, "campaign removed since the ping"
        return PostOutcome.ERROR
    endpoints = _endpoints(market, cid)
    # In the request the first attempt follows the commit at once: the delivery is written
    # with it leased, and the attempt takes the lead from memory (no transaction to claim it).
    lease = dt.timedelta(milliseconds=ctx.settings.delivery_lease_ms) if inline is not None else None
    async with ctx.db.write() as conn:
        started = await selling.start_sale(
            conn, campaign=campaign, has_endpoint=endpoints is not None, lead_id=lead_id,
            supplier_id=memo.supplier_id, price_minor=candidate.bid.amount_minor,
            payout_minor=action.promised_payout_minor, currency=memo.currency,
            held=cid in memo.held, max_sells=memo.max_sells, now=now,
            first_attempt_lease=lease,
        )  # fmt: skip
    if isinstance(started, selling.Refused):
        entry.reason = started.reason
        entry.details.update(started.details)
        return PostOutcome.ERROR
    sale, new_holds = started
    memo.holds.extend(new_holds)
    memo.held = [c for c in memo.held if c != cid]
    memo.sales[cid] = sale.sale_id
    if not sale.needs_delivery:
        entry.reason = reasons.SOLD
        return PostOutcome.ACCEPTED
    first = None
    if inline is not None and sale.first is not None:
        facts = selling.SaleFacts(
            lead_id=lead_id, campaign_id=uuid.UUID(cid), buyer_id=uuid.UUID(campaign.buyer_id),
            ping_id=memo.ping_id, vertical=inline.vertical, fields=inline.fields, pii=inline.pii,
            consent=inline.consent, source=inline.source, test=inline.test,
            endpoints=endpoints, created_at=sale.first.created_at,
        )  # fmt: skip
        first = (sale.first, facts)
    result = await selling.deliver(ctx, sale.sale_id, holds=holds_of(memo, cid), first=first)
    entry.latency_ms = result.latency_ms
    if result.detail:
        entry.details["answer"] = result.detail[:200]
    if result.outcome == "accepted":
        entry.reason = reasons.SOLD
        return PostOutcome.ACCEPTED
    if result.outcome == "rejected":
        entry.reason = reasons.POST_REJECTED
        return PostOutcome.REJECTED
    if result.outcome == "retry":
        # Sold for now: the buyer could not be reached, a worker retries the delivery.
        entry.reason = reasons.SOLD
        entry.details["delivery"] = "pending"
        assert result.retry_at is not None
        memo.pending[str(sale.sale_id)] = result.retry_at.isoformat()
        return PostOutcome.ACCEPTED
    entry.reason = reasons.POST_ERROR
    return PostOutcome.ERROR


def schedule_delivery(sale_id: str, at: dt.datetime) -> None:
    """Ask a worker for the delivery's next attempt at ``at``. A message lost here (or in the
    broker) loses nothing: the outbox row is the truth and the sweeper re-sends it."""
    from exchange.worker import actors

    delay_ms = max(0, int((at - dt.datetime.now(dt.timezone.utc)).total_seconds() * 1000))
    try:
        actors.deliver_sale.send_with_options(args=(sale_id,), delay=delay_ms)
    except Exception:
        log.warning("could not enqueue a delivery; the sweeper will", exc_info=True)


async def enqueue_retries(memo: Memo) -> None:
    """Hand deliveries left pending to the workers."""
    for sale_id, due in memo.pending.items():
        schedule_delivery(sale_id, dt.datetime.fromisoformat(due))


async def after_delivery(ctx: Context, sale_id: uuid.UUID) -> selling.Attempted:
    """One attempt of a delivery left pending, and what follows from it (the worker's job)."""
    async with ctx.db.read() as conn:
        row = (
            await conn.execute(
                sa.select(sales.c.lead_id, sales.c.campaign_id, leads.c.walk)
                .join(leads, leads.c.id == sales.c.lead_id)
                .where(sales.c.id == sale_id)
            )
        ).first()
    if row is None:
        return selling.Attempted(outcome="done")
    memo = msgspec.convert(row.walk, Memo) if row.walk else None
    holds = holds_of(memo, str(row.campaign_id)) if memo else []
    result = await selling.deliver(ctx, sale_id, holds=holds)
    if result.outcome in ("rejected", "failed") and memo is not None:
        outcome = PostOutcome.REJECTED if result.outcome == "rejected" else PostOutcome.ERROR
        await _walk_on(ctx, row.lead_id, str(row.campaign_id), outcome)
    elif result.outcome == "accepted" and memo is not None:
        await _forget_pending(ctx, row.lead_id, sale_id)
    return result


async def _forget_pending(ctx: Context, lead_id: uuid.UUID, sale_id: uuid.UUID) -> None:
    async with ctx.db.write() as conn:
        walk = (await conn.execute(sa.select(leads.c.walk).where(leads.c.id == lead_id))).scalar_one()
        if walk is None:
            return
        memo = msgspec.convert(walk, Memo)
        memo.pending.pop(str(sale_id), None)
        await conn.execute(
            leads.update().where(leads.c.id == lead_id).values(walk=msgspec.to_builtins(memo) if memo.pending else None)
        )


def _reopen(state: WalkState, campaign_id: str, outcome: PostOutcome) -> WalkState:
    """Turn a step counted as sold (delivery pending) into the outcome it finally had."""
    attempts = []
    promises = list(state.open_promises_minor)
    for a in state.attempts:
        if a.campaign_id == campaign_id and a.outcome is PostOutcome.ACCEPTED:
            attempts.append(Attempt(campaign_id=campaign_id, outcome=outcome, promised_payout_minor=a.promised_payout_minor))
            promises.append(a.promised_payout_minor)
        else:
            attempts.append(a)
    return msgspec.structs.replace(
        state, attempts=tuple(attempts), open_promises_minor=tuple(sorted(promises, reverse=True))
    )


async def _walk_on(ctx: Context, lead_id: uuid.UUID, campaign_id: str, outcome: PostOutcome) -> None:
    """A pending delivery failed for good: walk on from that step, in the worker."""
    from exchange.store.tables import verticals

    async with ctx.db.read() as conn:
        row = (
            await conn.execute(
                sa.select(leads.c.walk, verticals.c.slug)
                .join(verticals, verticals.c.id == leads.c.vertical_id)
                .where(leads.c.id == lead_id)
            )
        ).first()
    if row is None or row.walk is None:
        return
    memo = msgspec.convert(row.walk, Memo)
    if memo.state is None:
        return
    sale_id = memo.sales.get(campaign_id)
    if sale_id is not None:
        memo.pending.pop(str(sale_id), None)
    memo.state = _reopen(memo.state, campaign_id, outcome)
    market = await ctx.market.get(row.slug)
    assert market is not None
    tried = set(memo.sales)  # campaigns that had a sale before: not new sales of this walk
    done = await run(ctx, market, memo, lead_id, {}, dt.datetime.now(dt.timezone.utc))
    async with ctx.db.write() as conn:
        sold_campaigns = {s.campaign_id for s in done.sales}
        leftover = [h for h in memo.holds if h.campaign_id in set(memo.held) and h.campaign_id not in sold_campaigns]
        await cap_store.release(conn, leftover)
        memo.held = [c for c in memo.held if c in sold_campaigns]
        status = LEAD_SOLD if done.sales else LEAD_UNSOLD
        await conn.execute(
            leads.update()
            .where(leads.c.id == lead_id)
            .values(status=status, walk=msgspec.to_builtins(memo) if memo.pending else None)
        )
    metrics.LEADS.labels(row.slug, "resumed", status).inc()
    new_sales = sum(1 for s in done.sales if s.campaign_id not in tried)
    if new_sales:
        metrics.SALES.labels(row.slug, "resumed").inc(new_sales)
    await enqueue_retries(memo)
    if status == LEAD_UNSOLD:
        from exchange.teams import routing as team_routing  # teams import the auction

        await team_routing.hand_over(ctx.db, [lead_id])
    log.info("walk moved on after a failed delivery", extra={"lead_id": str(lead_id), "status": status})


async def settle_stuck_leads(ctx: Context, *, older_than: dt.timedelta, limit: int = 200) -> int:
    """Leads left in ``posting`` by a process that died mid-walk reach a terminal state.

    The walk stores nothing until it ends, so a lead still ``posting`` long after its post began
    lost its walk: it is ``sold`` if a sale of it stands (delivered, or still being delivered by
    the outbox), otherwise ``unsold``, and whatever its ping still held is given back."""
    from exchange.auction.context import LEAD_POSTING, PING_POSTED
    from exchange.store.tables import cap_holds, pings

    cutoff = dt.datetime.now(dt.timezone.utc) - older_than
    settled = 0
    unsold: list[uuid.UUID] = []
    async with ctx.db.write() as conn:
        stuck = (
            await conn.execute(
                sa.select(leads.c.id, leads.c.ping_id)
                .where(leads.c.status == LEAD_POSTING, leads.c.created_at < cutoff)
                .order_by(leads.c.id)
                .limit(limit)
            )
        ).all()
        for lead_id, ping_id in stuck:
            standing = (
                await conn.execute(
                    sa.select(sa.func.count()).where(
                        sales.c.lead_id == lead_id, sales.c.status.in_(["delivered", "delivering"])
                    )
                )
            ).scalar_one()
            status = LEAD_SOLD if standing else LEAD_UNSOLD
            done = await conn.execute(
                leads.update().where(leads.c.id == lead_id, leads.c.status == LEAD_POSTING).values(status=status)
            )
            if done.rowcount != 1:
                continue
            settled += 1
            if status == LEAD_UNSOLD:
                unsold.append(lead_id)
            if ping_id is not None:
                # Capacity held for campaigns that did not buy goes back.
                bought = {
                    str(c) for c in (
                        await conn.execute(sa.select(sales.c.campaign_id).where(
                            sales.c.lead_id == lead_id, sales.c.status.in_(["delivered", "delivering"])))
                    ).scalars()
                }  # fmt: skip
                rows = await conn.execute(sa.select(cap_holds).where(cap_holds.c.ping_id == ping_id))
                leftover = [
                    cap_store.Hold(str(r.campaign_id), r.window_key, r.spend_minor)
                    for r in rows
                    if str(r.campaign_id) not in bought
                ]
                await cap_store.release(conn, leftover)
                await conn.execute(cap_holds.delete().where(cap_holds.c.ping_id == ping_id))
                await conn.execute(pings.update().where(pings.c.id == ping_id).values(status=PING_POSTED))
            log.warning("settled a lead left mid-walk", extra={"lead_id": str(lead_id), "status": status})
    if unsold:
        from exchange.teams import routing as team_routing  # teams import the auction

        await team_routing.hand_over(ctx.db, unsold)
    return settled
