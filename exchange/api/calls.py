"""Calls: suppliers (and their telephony) ping, connect, answer and end calls; suppliers, the
buyers and teams that took them, and operators read them (docs/calls.md)."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from exchange.api.auction import auction_of
from exchange.api.common import page_limit, settings_of
from exchange.auth.middleware import allow
from exchange.auth.parties import PartyKind, Principal
from exchange.calls import service
from exchange.calls.messages import (
    AnswerIn,
    CallOffer,
    CallPage,
    CallPingIn,
    CallView,
    ConnectIn,
    EndIn,
)


class CallController(Controller):
    path = "/v1/calls"
    tags = ["calls"]

    @post(
        guards=[allow(PartyKind.SUPPLIER)],
        status_code=200,
        summary="Call ping: where does this call go? (no PII)",
        description=(
            "Runs the auction among the campaigns that buy calls. Accepted: the destinations to "
            "ring (a number or SIP address; a team's agents in its order), the payout once the "
            "call lasts `min_duration_s`, and `expires_at`, before which the caller must connect."
        ),
    )
    async def ping(self, request: Request, data: JSONBody[CallPingIn]) -> CallOffer:
        return await service.ping(auction_of(request), request.user, data)

    @post(
        "/{call_id:uuid}/connect",
        guards=[allow(PartyKind.SUPPLIER)],
        status_code=200,
        summary="The caller arrived: its number makes the call's lead",
        description="Inside the call's expiry; after it, 409 `call_expired` and nothing is stored.",
    )
    async def connect(self, request: Request, call_id: FromPath[uuid.UUID], data: JSONBody[ConnectIn]) -> CallView:
        return await service.connect(auction_of(request), request.user, call_id, data)

    @post(
        "/{call_id:uuid}/answer",
        guards=[allow(PartyKind.SUPPLIER)],
        status_code=200,
        summary="Which destination picked up (a team's call: its agent owns the lead)",
    )
    async def answer(self, request: Request, call_id: FromPath[uuid.UUID], data: JSONBody[AnswerIn]) -> CallView:
        return await service.answer(auction_of(request), request.user, call_id, data)

    @post(
        "/{call_id:uuid}/end",
        guards=[allow(PartyKind.SUPPLIER)],
        status_code=200,
        summary="The call ended: billed only from the campaign's minimum duration on",
    )
    async def end(self, request: Request, call_id: FromPath[uuid.UUID], data: JSONBody[EndIn]) -> CallView:
        return await service.end(auction_of(request), request.user, call_id, data)

    @get(
        "/{call_id:uuid}",
        guards=[allow(PartyKind.SUPPLIER, PartyKind.BUYER, PartyKind.TEAM)],
        summary="One call",
    )
    async def one(self, request: Request, call_id: FromPath[uuid.UUID]) -> CallView:
        return await service.get(auction_of(request), request.user, call_id)

    @get(
        guards=[allow(PartyKind.SUPPLIER, PartyKind.BUYER, PartyKind.TEAM)],
        summary="Calls, oldest first (a supplier's own; a buyer's or team's own)",
    )
    async def list_calls(
        self,
        request: Request,
        status: FromQuery[str | None] = None,
        after: FromQuery[uuid.UUID | None] = None,
        limit: FromQuery[int | None] = None,
    ) -> CallPage:
        principal: Principal = request.user
        size = page_limit(settings_of(request), limit)
        items, next_after = await service.list_calls(
            auction_of(request), principal, status=status, after=after, limit=size
        )
        return CallPage(items=items, next_after=next_after)
