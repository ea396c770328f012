"""Campaigns: a buyer (or team) manages its own; operators manage everyone's."""

from __future__ import annotations

import uuid

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from exchange import campaigns
from exchange.api.common import db_of, forget_market, page_limit, settings_of
from exchange.auth.middleware import allow
from exchange.auth.parties import PartyKind, Principal
from exchange.campaigns import Campaign, CampaignIn
from exchange.errors import FieldProblem, forbidden, not_found, validation_error


class CampaignPage(msgspec.Struct, kw_only=True):
    """A page of campaigns, oldest first; pass ``next_after`` as ``after`` for the next page."""

    items: list[Campaign]
    next_after: uuid.UUID | None = None


def _owner(principal: Principal, buyer_id: uuid.UUID | None) -> uuid.UUID:
    """Whose campaign is being created: an operator names the buyer; a buyer is itself."""
    if principal.is_operator:
        if buyer_id is None:
            problem = FieldProblem("buyer_id", "an operator names the buyer the campaign is for")
            raise validation_error([problem])
        return buyer_id
    if buyer_id is not None and buyer_id != principal.party_id:
        raise forbidden("a key creates campaigns for its own party only")
    return principal.party_id


def _visible(principal: Principal, campaign: Campaign | None) -> Campaign:
    if campaign is None:
        raise not_found("campaign")
    if campaign.buyer_id != principal.party_id and not principal.is_operator:
        raise forbidden("this campaign belongs to another buyer")
    return campaign


class CampaignController(Controller):
    path = "/v1/campaigns"
    tags = ["campaigns"]
    guards = [allow(PartyKind.BUYER, PartyKind.TEAM)]

    @post(summary="Create a campaign (operators pass buyer_id)")
    async def create(self, request: Request, data: JSONBody[CampaignIn]) -> Campaign:
        buyer_id = _owner(request.user, data.buyer_id)
        async with db_of(request).write() as conn:
            campaign = await campaigns.create(conn, buyer_id, data)
        forget_market(request, campaign.vertical)
        return campaign

    @get(summary="List campaigns (a buyer sees its own)")
    async def list(
        self,
        request: Request,
        buyer_id: FromQuery[uuid.UUID | None] = None,
        vertical: FromQuery[str | None] = None,
        limit: FromQuery[int | None] = None,
        after: FromQuery[uuid.UUID | None] = None,
    ) -> CampaignPage:
        principal: Principal = request.user
        if not principal.is_operator:
            if buyer_id is not None and buyer_id != principal.party_id:
                raise forbidden("a key lists its own party's campaigns only")
            buyer_id = principal.party_id
        size = page_limit(settings_of(request), limit)
        async with db_of(request).read() as conn:
            items = await campaigns.list_campaigns(
                conn, buyer_id=buyer_id, vertical=vertical, limit=size, after=after
            )
        return CampaignPage(items=items, next_after=items[-1].id if len(items) == size else None)

    @get("/{campaign_id:uuid}", summary="One campaign (endpoint secrets redacted)")
    async def show(self, request: Request, campaign_id: FromPath[uuid.UUID]) -> Campaign:
        async with db_of(request).read() as conn:
            return _visible(request.user, await campaigns.get(conn, campaign_id))

    @put("/{campaign_id:uuid}", summary="Replace a campaign's definition (version + 1)")
    async def replace(
        self, request: Request, campaign_id: FromPath[uuid.UUID], data: JSONBody[CampaignIn]
    ) -> Campaign:
        async with db_of(request).write() as conn:
            _visible(request.user, await campaigns.get(conn, campaign_id))
            campaign = await campaigns.replace(conn, campaign_id, data)
        forget_market(request, campaign.vertical)
        return campaign

    @post("/{campaign_id:uuid}/pause", status_code=200, summary="Stop taking leads")
    async def pause(self, request: Request, campaign_id: FromPath[uuid.UUID]) -> Campaign:
        return await self._set_active(request, campaign_id, False)

    @post("/{campaign_id:uuid}/resume", status_code=200, summary="Take leads again")
    async def resume(self, request: Request, campaign_id: FromPath[uuid.UUID]) -> Campaign:
        return await self._set_active(request, campaign_id, True)

    async def _set_active(self, request: Request, campaign_id: uuid.UUID, active: bool) -> Campaign:
        async with db_of(request).write() as conn:
            _visible(request.user, await campaigns.get(conn, campaign_id))
            campaign = await campaigns.set_active(conn, campaign_id, active)
        forget_market(request, campaign.vertical)
        return campaign
