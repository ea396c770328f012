"""Parties and their API keys."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from exchange.api.common import Page, db_of, page_limit, settings_of
from exchange.auth.middleware import allow
from exchange.auth.parties import (
    KeyIn,
    KeyInfo,
    NewKey,
    Party,
    PartyIn,
    PartyKind,
    PartyPatch,
    Principal,
    create_party,
    get_key,
    get_party,
    issue_key,
    list_keys,
    list_parties,
    revoke_key,
    update_party,
)
from exchange.errors import forbidden, not_found


class MeController(Controller):
    path = "/v1/me"
    tags = ["keys"]

    @get(summary="The party this key belongs to")
    async def me(self, request: Request) -> Party:
        principal: Principal = request.user
        async with db_of(request).read() as conn:
            party = await get_party(conn, principal.party_id)
        if party is None:
            raise not_found("party")
        return party


class PartyController(Controller):
    """Operators manage everyone who holds a key."""

    path = "/v1/parties"
    tags = ["parties"]
    guards = [allow()]

    @post(summary="Create a party (supplier, buyer, team, agent, finance, operator)")
    async def create(self, request: Request, data: JSONBody[PartyIn]) -> Party:
        async with db_of(request).write() as conn:
            return await create_party(conn, data)

    @get(summary="List parties")
    async def list(
        self,
        request: Request,
        kind: FromQuery[PartyKind | None] = None,
        limit: FromQuery[int | None] = None,
        after: FromQuery[uuid.UUID | None] = None,
    ) -> Page:
        size = page_limit(settings_of(request), limit)
        async with db_of(request).read() as conn:
            items = await list_parties(conn, kind=kind, limit=size, after=after)
        return Page(items=items, next_after=items[-1].id if len(items) == size else None)

    @get("/{party_id:uuid}", summary="One party")
    async def show(self, request: Request, party_id: FromPath[uuid.UUID]) -> Party:
        async with db_of(request).read() as conn:
            party = await get_party(conn, party_id)
        if party is None:
            raise not_found("party")
        return party

    @patch("/{party_id:uuid}", summary="Rename, move time zone, or (de)activate a party")
    async def update(self, request: Request, party_id: FromPath[uuid.UUID], data: JSONBody[PartyPatch]) -> Party:
        async with db_of(request).write() as conn:
            return await update_party(conn, party_id, data)

    @post("/{party_id:uuid}/keys", summary="Issue a key for a party (the secret is shown once)")
    async def issue(self, request: Request, party_id: FromPath[uuid.UUID], data: JSONBody[KeyIn]) -> NewKey:
        async with db_of(request).write() as conn:
            if await get_party(conn, party_id) is None:
                raise not_found("party")
            return await issue_key(conn, party_id, data.name)

    @get("/{party_id:uuid}/keys", summary="A party's keys (prefixes only, never secrets)")
    async def keys(self, request: Request, party_id: FromPath[uuid.UUID]) -> list[KeyInfo]:
        async with db_of(request).read() as conn:
            if await get_party(conn, party_id) is None:
                raise not_found("party")
            return await list_keys(conn, party_id)


class KeyController(Controller):
    """Every party manages its own keys: rotate by issuing a new one, then revoking the old."""

    path = "/v1/keys"
    tags = ["keys"]

    @get(summary="My keys")
    async def mine(self, request: Request) -> list[KeyInfo]:
        principal: Principal = request.user
        async with db_of(request).read() as conn:
            return await list_keys(conn, principal.party_id)

    @post(summary="Issue another key for my party (the secret is shown once)")
    async def issue(self, request: Request, data: JSONBody[KeyIn]) -> NewKey:
        principal: Principal = request.user
        async with db_of(request).write() as conn:
            return await issue_key(conn, principal.party_id, data.name)

    @delete("/{key_id:uuid}", status_code=200, summary="Revoke a key")
    async def revoke(self, request: Request, key_id: FromPath[uuid.UUID]) -> KeyInfo:
        principal: Principal = request.user
        async with db_of(request).write() as conn:
            info = await get_key(conn, key_id)
            if info is None:
                raise not_found("key")
            if info.party_id != principal.party_id and not principal.is_operator:
                raise forbidden("this key belongs to another party")
            return await revoke_key(conn, key_id)
