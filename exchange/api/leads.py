"""Suppliers post leads and read back their own."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody

from exchange.api.common import Page, db_of, own_supplier, page_limit, settings_of
from exchange.auction import service as auction
from exchange.auction.messages import PostOut
from exchange.auth.middleware import allow
from exchange.auth.parties import PartyKind, Principal
from exchange.channels.names import LeadChannel
from exchange.errors import forbidden, not_found
from exchange.intake import service
from exchange.intake.messages import LeadIn, LeadView


class LeadController(Controller):
    path = "/v1/leads"
    tags = ["leads"]

    @post(
        guards=[allow(PartyKind.SUPPLIER)],
        summary="Direct post: send a whole lead in one call and sell it",
        description=(
            "Validates the lead against its vertical, normalises it, rejects duplicates, runs "
            "the auction (pinging live-bid buyers) and posts to the winner, falling back to the "
            "next bid only while it still covers the payout. Send an `Idempotency-Key` header "
            "to make retries safe: the same key and body return the first answer (with "
            "`Idempotent-Replayed: true`)."
        ),
        responses={},
    )
    async def post_lead(
        self,
        request: Request,
        data: JSONBody[LeadIn],
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key")] = None,
    ) -> Response[PostOut]:
        principal: Principal = request.user
        body = await request.body()
        accepted = await auction.direct_post(
            request.app.state.auction, principal, data, body=body, idempotency_key=idempotency_key
        )
        headers = {service.IDEMPOTENCY_REPLAY_HEADER: "true"} if accepted.replayed else {}
        return Response(
            content=accepted.body,
            status_code=accepted.status_code,
            media_type="application/json",
            headers=headers,
        )

    @get(
        guards=[allow(PartyKind.SUPPLIER)],
        summary="My leads, oldest first",
        description=(
            "Each shows its `channel` (`api` for the native API). Filter with `channel` (`api`, "
            "`form`, `google_ads`, `meta`, `csv`, `email`, `call`)."
        ),
    )
    async def list_leads(
        self,
        request: Request,
        limit: FromQuery[int | None] = None,
        after: FromQuery[uuid.UUID | None] = None,
        supplier_id: FromQuery[uuid.UUID | None] = None,
        channel: FromQuery[LeadChannel | None] = None,
    ) -> Page:
        principal: Principal = request.user
        size = page_limit(settings_of(request), limit)
        supplier_id = own_supplier(principal, supplier_id, "leads")
        async with db_of(request).read() as conn:
            items = await service.list_leads(
                conn, supplier_id=supplier_id, limit=size, after=after,
                channel=channel.value if channel is not None else None,
            )  # fmt: skip
        if not principal.is_operator:
            items = [_without_score(item) for item in items]
        return Page(items=items, next_after=items[-1].lead_id if len(items) == size else None)

    @get("/{lead_id:uuid}", guards=[allow(PartyKind.SUPPLIER)], summary="One lead")
    async def show(self, request: Request, lead_id: FromPath[uuid.UUID], include_pii: FromQuery[bool] = False) -> LeadView:
        principal: Principal = request.user
        # PII is for the buyer who bought the lead; operators may ask for it explicitly.
        with_pii = include_pii and principal.is_operator
        async with db_of(request).read() as conn:
            lead = await service.get_lead(conn, lead_id, with_pii=with_pii)
        if lead is None:
            raise not_found("lead")
        if not principal.is_operator and lead.supplier_id != principal.party_id:
            raise forbidden("this lead belongs to another supplier")
        return lead if principal.is_operator else _without_score(lead)


def _without_score(lead: LeadView) -> LeadView:
    """How the exchange rates a lead (and so its source) is for operators, not the supplier."""
    return msgspec.structs.replace(lead, score=None, priority=None)
