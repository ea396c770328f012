"""Returns: a buyer (or team) files and reads its own; finance (and operators) read them all
and approve or deny. Purchases: a buyer's leads bought and charged, with their return."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from exchange import returns
from exchange.api.common import db_of, page_limit, settings_of
from exchange.auth.middleware import allow
from exchange.auth.parties import PartyKind, Principal
from exchange.errors import forbidden, not_found
from exchange.returns import (
    DecisionIn,
    Purchase,
    PurchaseDetail,
    Return,
    ReturnIn,
    ReturnStatus,
)

BUYERS = (PartyKind.BUYER, PartyKind.TEAM)
SEES_ALL = frozenset({PartyKind.FINANCE, PartyKind.OPERATOR})


class ReturnPage(msgspec.Struct, kw_only=True):
    """A page of returns, oldest first; pass ``next_after`` as ``after`` for the next page."""

    items: list[Return]
    next_after: uuid.UUID | None = None


class PurchasePage(msgspec.Struct, kw_only=True):
    """A page of purchases, oldest first; pass ``next_after`` as ``after`` for the next page."""

    items: list[Purchase]
    next_after: uuid.UUID | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _whose(principal: Principal, buyer_id: uuid.UUID | None) -> uuid.UUID | None:
    """The buyer whose items a key may list: finance and operators any (or all), a buyer itself."""
    if principal.kind in SEES_ALL:
        return buyer_id
    if buyer_id is not None and buyer_id != principal.party_id:
        raise forbidden("a key lists its own party's returns and purchases only")
    return principal.party_id


class ReturnController(Controller):
    path = "/v1/returns"
    tags = ["returns"]

    @post(guards=[allow(*BUYERS)], summary="Return a lead you bought (by sale_id or lead_id)")
    async def file(self, request: Request, data: JSONBody[ReturnIn]) -> Return:
        async with db_of(request).write() as conn:
            return await returns.file_return(conn, request.user, data, now=_now())

    @get(
        guards=[allow(*BUYERS, PartyKind.FINANCE)],
        summary="Returns, oldest first (a buyer sees its own); filter by status",
    )
    async def list(
        self,
        request: Request,
        status: FromQuery[ReturnStatus | None] = None,
        buyer_id: FromQuery[uuid.UUID | None] = None,
        limit: FromQuery[int | None] = None,
        after: FromQuery[uuid.UUID | None] = None,
    ) -> ReturnPage:
        whose = _whose(request.user, buyer_id)
        size = page_limit(settings_of(request), limit)
        async with db_of(request).read() as conn:
            items = await returns.list_returns(
                conn, buyer_id=whose, status=status, limit=size, after=after
            )
        return ReturnPage(items=items, next_after=items[-1].id if len(items) == size else None)

    @get("/{return_id:uuid}", guards=[allow(*BUYERS, PartyKind.FINANCE)], summary="One return")
    async def show(self, request: Request, return_id: FromPath[uuid.UUID]) -> Return:
        principal: Principal = request.user
        async with db_of(request).read() as conn:
            found = await returns.get_return(conn, return_id)
        if found is None:
            raise not_found("return")
        if principal.kind not in SEES_ALL and found.buyer_id != principal.party_id:
            raise forbidden("this return belongs to another buyer")
        return found

    @post(
        "/{return_id:uuid}/approve",
        status_code=200,
        guards=[allow(PartyKind.FINANCE)],
        summary="Approve: refund the buyer in the ledger (once; again returns the same result)",
    )
    async def approve(
        self,
        request: Request,
        return_id: FromPath[uuid.UUID],
        data: JSONBody[DecisionIn | None] = None,
    ) -> Return:
        return await self._decide(request, return_id, True, data)

    @post(
        "/{return_id:uuid}/deny",
        status_code=200,
        guards=[allow(PartyKind.FINANCE)],
        summary="Deny: record the decision; nothing moves",
    )
    async def deny(
        self,
        request: Request,
        return_id: FromPath[uuid.UUID],
        data: JSONBody[DecisionIn | None] = None,
    ) -> Return:
        return await self._decide(request, return_id, False, data)

    async def _decide(
        self, request: Request, return_id: uuid.UUID, approve: bool, data: DecisionIn | None
    ) -> Return:
        principal: Principal = request.user
        async with db_of(request).write() as conn:
            return await returns.decide(
                conn,
                return_id,
                approve=approve,
                by=principal.party_id,
                note=data.note if data else None,
                now=_now(),
            )


class PurchaseController(Controller):
    path = "/v1/purchases"
    tags = ["returns"]
    guards = [allow(*BUYERS, PartyKind.FINANCE)]

    @get(summary="Leads bought and charged, oldest first, with their return (a buyer: its own)")
    async def list(
        self,
        request: Request,
        buyer_id: FromQuery[uuid.UUID | None] = None,
        limit: FromQuery[int | None] = None,
        after: FromQuery[uuid.UUID | None] = None,
    ) -> PurchasePage:
        whose = _whose(request.user, buyer_id)
        size = page_limit(settings_of(request), limit)
        async with db_of(request).read() as conn:
            items = await returns.list_purchases(conn, buyer_id=whose, limit=size, after=after)
        next_after = items[-1].sale_id if len(items) == size else None
        return PurchasePage(items=items, next_after=next_after)

    @get(
        "/{sale_id:uuid}",
        summary="One purchase with the lead's fields, PII included (a buyer: its own)",
        description=(
            "A lead you bought and were charged for (delivered, or returned), with every field "
            "as it was posted to you, PII included, and its consent. Another buyer's sale is "
            "404; a sale still being delivered, rejected or failed is 409 not_delivered. Once "
            "the lead's PII was purged (EXCHANGE_PII_RETENTION_DAYS), `pii` is `purged`, "
            "`pii_purged` true and `fields` holds the non-PII fields only. Finance keys get "
            "the purchase without the PII (`pii`: `withheld`)."
        ),
    )
    async def show(self, request: Request, sale_id: FromPath[uuid.UUID]) -> PurchaseDetail:
        async with db_of(request).read() as conn:
            return await returns.get_purchase(conn, request.user, sale_id)
