"""CRM connections (a team or buyer pushes its sold and assigned leads, and their outcomes, to
its CRM) and a lead's sync status. Operators manage any party's; a team or buyer key its own."""

from __future__ import annotations

import datetime as dt
import uuid

from litestar import Controller, Request, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from exchange.api.common import db_of
from exchange.auth.middleware import allow
from exchange.auth.parties import PartyKind
from exchange.crm import service
from exchange.crm.messages import (
    CrmConnection,
    CrmConnectionIn,
    CrmConnectionPatch,
    CrmConnections,
    LeadCrmSyncs,
)

OWNERS = (PartyKind.TEAM, PartyKind.BUYER)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CrmConnectionController(Controller):
    path = "/v1/crm-connections"
    tags = ["crm"]
    guards = [allow(*OWNERS)]

    @post(
        summary="Connect a CRM: a signed webhook, HubSpot (contacts) or Salesforce (Lead)",
        description=(
            "`config.url`: the webhook's URL, `https://api.hubapi.com`, or the Salesforce "
            "instance URL. `secret`: the access token (HubSpot private app, Salesforce OAuth) "
            "or the webhook's signing secret; never shown back. `config.events`: sold, "
            "assigned, outcome:* or outcome:<kind>. Operators name the `party_id`."
        ),
    )
    async def create(self, request: Request, data: JSONBody[CrmConnectionIn]) -> CrmConnection:
        async with db_of(request).write() as conn:
            return await service.create(conn, request.user, data, _now())

    @get(summary="My CRM connections (operators: all, or one party's)")
    async def list_connections(
        self, request: Request, party_id: FromQuery[uuid.UUID | None] = None
    ) -> CrmConnections:
        async with db_of(request).read() as conn:
            return CrmConnections(items=await service.list_connections(conn, request.user, party_id))

    @get("/{connection_id:uuid}", summary="One CRM connection")
    async def get_connection(
        self, request: Request, connection_id: FromPath[uuid.UUID]
    ) -> CrmConnection:
        async with db_of(request).read() as conn:
            return await service.get(conn, request.user, connection_id)

    @put(
        "/{connection_id:uuid}",
        summary="Change a connection (fields left out stay as they are; a secret only replaced)",
    )
    async def update(
        self, request: Request, connection_id: FromPath[uuid.UUID], data: JSONBody[CrmConnectionPatch]
    ) -> CrmConnection:
        async with db_of(request).write() as conn:
            return await service.update(conn, request.user, connection_id, data, _now())

    @delete("/{connection_id:uuid}", status_code=200, summary="Deactivate a connection")
    async def deactivate(self, request: Request, connection_id: FromPath[uuid.UUID]) -> CrmConnection:
        async with db_of(request).write() as conn:
            return await service.deactivate(conn, request.user, connection_id, _now())


class LeadCrmController(Controller):
    path = "/v1/leads/{lead_id:uuid}/crm"
    tags = ["crm"]
    guards = [allow(*OWNERS)]

    @get(summary="A lead's CRM sync status: each push, its attempts, error and CRM record id")
    async def status(self, request: Request, lead_id: FromPath[uuid.UUID]) -> LeadCrmSyncs:
        async with db_of(request).read() as conn:
            return await service.lead_syncs(conn, request.user, lead_id)
