"""Internal teams: operators configure teams, agent profiles and routes; agents keep presence,
answer offers and work the leads they own (and see nothing else)."""

from __future__ import annotations

import datetime as dt
import uuid

from litestar import Controller, Request, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from exchange.api.common import Page, db_of, page_limit, settings_of
from exchange.auth.middleware import allow
from exchange.auth.parties import PartyKind
from exchange.teams import service, sweeper
from exchange.teams.agents import ManualStatus
from exchange.teams.messages import (
    CloseIn,
    Ownership,
    Profile,
    ProfileIn,
    Route,
    RouteIn,
    RoutingAudit,
    StatusIn,
    TeamConfig,
    TeamConfigIn,
)
from exchange.teams.offers import OfferStatus


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _drain_if_present(request: Request, profile: Profile, now: dt.datetime) -> Profile:
    """An agent that is online and available drains its team's queue at once (bounded,
    ``sweeper.PRESENCE_DRAIN``), not only at the next sweep; the profile then read again."""
    if not (profile.online and profile.manual_status is ManualStatus.AVAILABLE):
        return profile
    db = db_of(request)
    await sweeper.drain_team(db, profile.team_id, now)
    async with db.read() as conn:
        return await service.get_profile(conn, profile.agent_id, now)


class TeamConfigController(Controller):
    path = "/v1/teams"
    tags = ["teams"]
    guards = [allow()]  # operators only

    @put("/{team_id:uuid}/config", summary="Set a team's strategy, timeouts, fallback and SLA")
    async def set_config(
        self, request: Request, team_id: FromPath[uuid.UUID], data: JSONBody[TeamConfigIn]
    ) -> TeamConfig:
        async with db_of(request).write() as conn:
            return await service.set_config(conn, team_id, data, _now())


class TeamRouteController(Controller):
    path = "/v1/team-routes"
    tags = ["teams"]
    guards = [allow()]

    @put(
        summary="Send a vertical's unsold leads (optionally from one source, one channel) to a team",
        description=(
            "The most specific route takes a lead: one naming its source before one for every "
            "source, then one naming its channel (`api`, `form`, `google_ads`, `meta`, `csv`, "
            "`email`, `call`) before one for every channel. Putting a route again for the same "
            "(vertical, source, channel) changes its team."
        ),
    )
    async def set_route(self, request: Request, data: JSONBody[RouteIn]) -> Route:
        async with db_of(request).write() as conn:
            return await service.set_route(conn, data, _now())

    @get(summary="Team routes, in id order")
    async def list_routes(
        self,
        request: Request,
        vertical: FromQuery[str | None] = None,
        team_id: FromQuery[uuid.UUID | None] = None,
        limit: FromQuery[int | None] = None,
        after: FromQuery[uuid.UUID | None] = None,
    ) -> Page:
        size = page_limit(settings_of(request), limit)
        async with db_of(request).read() as conn:
            items = await service.list_routes(
                conn, vertical=vertical, team_id=team_id, limit=size, after=after
            )
        return Page(items=items, next_after=items[-1].id if len(items) == size else None)


class AgentController(Controller):
    path = "/v1/agents"
    tags = ["agents"]

    @put(
        "/{agent_id:uuid}/profile",
        guards=[allow()],
        summary="Set an agent's time zone, hours, skills, weight and caps (operators)",
    )
    async def set_profile(
        self, request: Request, agent_id: FromPath[uuid.UUID], data: JSONBody[ProfileIn]
    ) -> Profile:
        async with db_of(request).write() as conn:
            return await service.set_profile(conn, agent_id, data, _now())

    @get("/{agent_id:uuid}/profile", guards=[allow()], summary="An agent's profile (operators)")
    async def profile(self, request: Request, agent_id: FromPath[uuid.UUID]) -> Profile:
        async with db_of(request).read() as conn:
            return await service.get_profile(conn, agent_id, _now())

    @post(
        "/me/heartbeat",
        status_code=200,
        guards=[allow(PartyKind.AGENT)],
        summary="I am online (until the heartbeat's time-to-live runs out)",
    )
    async def heartbeat(self, request: Request) -> Profile:
        now = _now()
        async with db_of(request).write() as conn:
            profile = await service.heartbeat(conn, request.user, now)
        return await _drain_if_present(request, profile, now)

    @put("/me/status", guards=[allow(PartyKind.AGENT)], summary="Manual status: available or away")
    async def set_status(self, request: Request, data: JSONBody[StatusIn]) -> Profile:
        now = _now()
        async with db_of(request).write() as conn:
            profile = await service.set_status(conn, request.user, data.status, now)
        return await _drain_if_present(request, profile, now)

    @get("/me/offers", guards=[allow(PartyKind.AGENT)], summary="My offers, oldest first")
    async def offers(
        self,
        request: Request,
        status: FromQuery[OfferStatus | None] = None,
        limit: FromQuery[int | None] = None,
    ) -> Page:
        size = page_limit(settings_of(request), limit)
        async with db_of(request).read() as conn:
            return Page(items=await service.my_offers(conn, request.user, status, size))

    @get("/me/leads", guards=[allow(PartyKind.AGENT)], summary="Leads I own, with their PII")
    async def leads(self, request: Request, limit: FromQuery[int | None] = None) -> Page:
        size = page_limit(settings_of(request), limit)
        async with db_of(request).read() as conn:
            return Page(items=await service.my_leads(conn, request.user, size))


class OfferController(Controller):
    path = "/v1/offers"
    tags = ["agents"]
    guards = [allow(PartyKind.AGENT)]

    @post(
        "/{offer_id:uuid}/accept",
        status_code=200,
        summary="Accept a sequential offer (409 once it expired or routing moved on)",
    )
    async def accept(self, request: Request, offer_id: FromPath[uuid.UUID]) -> Ownership:
        return await service.take_offer(db_of(request), request.user, offer_id)

    @post(
        "/{offer_id:uuid}/claim",
        status_code=200,
        summary="Claim a parallel offer: the first claim wins; a late one gets 409 and the state",
    )
    async def claim(self, request: Request, offer_id: FromPath[uuid.UUID]) -> Ownership:
        return await service.take_offer(db_of(request), request.user, offer_id)

    @post("/{offer_id:uuid}/decline", status_code=200, summary="Decline an offer")
    async def decline(self, request: Request, offer_id: FromPath[uuid.UUID]) -> Ownership:
        return await service.decline_offer(db_of(request), request.user, offer_id)


class OwnedLeadController(Controller):
    path = "/v1/leads/{lead_id:uuid}"
    tags = ["agents"]

    @post(
        "/contacted",
        status_code=200,
        guards=[allow(PartyKind.AGENT)],
        summary="First contact made with a lead I own (stops the SLA clock)",
    )
    async def contacted(self, request: Request, lead_id: FromPath[uuid.UUID]) -> Ownership:
        async with db_of(request).write() as conn:
            return await service.contacted(conn, request.user, lead_id, _now())

    @post(
        "/close",
        status_code=200,
        guards=[allow(PartyKind.AGENT)],
        summary="Close a lead I own with an outcome (frees my concurrent cap; idempotent)",
    )
    async def close(
        self, request: Request, lead_id: FromPath[uuid.UUID], data: JSONBody[CloseIn]
    ) -> Ownership:
        async with db_of(request).write() as conn:
            return await service.close_lead(conn, request.user, lead_id, data, _now())

    @get(
        "/routing",
        guards=[allow()],
        summary="Where a routed lead stands, its offers and the agents excluded now (operators)",
    )
    async def routing(self, request: Request, lead_id: FromPath[uuid.UUID]) -> RoutingAudit:
        async with db_of(request).read() as conn:
            return await service.routing_audit(conn, lead_id, _now())
