"""CRM connections and a lead's sync status, for the API. Per-party scoping: a team or buyer
key sees and changes only its own connections; operators any. A secret is stored, never shown
back (``has_secret``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from urllib.parse import urlsplit

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.auth.parties import PartyKind, Principal
from exchange.crm import outbox
from exchange.crm.messages import (
    EVENT_NAMES,
    CrmConfig,
    CrmConnection,
    CrmConnectionIn,
    CrmConnectionPatch,
    CrmKind,
    CrmSync,
    LeadCrmSyncs,
)
from exchange.errors import FieldProblem, forbidden, not_found, validation_error
from exchange.ids import new_id
from exchange.store.tables import crm_connections, crm_syncs, lead_owners, parties, sales

OWNER_KINDS = (PartyKind.TEAM, PartyKind.BUYER)
TOKEN_KINDS = (CrmKind.HUBSPOT, CrmKind.SALESFORCE)


def _connection(row: Any) -> CrmConnection:
    return CrmConnection(
        id=row.id, party_id=row.party_id, kind=CrmKind(row.kind), name=row.name,
        config=msgspec.convert(row.config, CrmConfig), has_secret=bool(row.secret),
        active=row.active, created_at=row.created_at, updated_at=row.updated_at,
    )  # fmt: skip


def check_config(
    kind: CrmKind, config: CrmConfig, secret: str | None, path: str = "body"
) -> list[FieldProblem]:
    problems = []
    url = urlsplit(config.url)
    if url.scheme not in ("http", "https") or not url.hostname:
        problems.append(FieldProblem(f"{path}.config.url", "an absolute http(s) URL"))
    for i, event in enumerate(config.events):
        if event not in EVENT_NAMES:
            problems.append(
                FieldProblem(
                    f"{path}.config.events[{i}]", f"one of {', '.join(sorted(EVENT_NAMES))}"
                )
            )
    if kind in TOKEN_KINDS and not secret:
        problems.append(
            FieldProblem(f"{path}.secret", f"required for {kind.value}: the access token")
        )
    return problems


async def _owner(
    conn: AsyncConnection, principal: Principal, party_id: uuid.UUID | None
) -> uuid.UUID:
    if not principal.is_operator:
        if party_id is not None and party_id != principal.party_id:
            raise forbidden("a key makes connections for its own party only")
        return principal.party_id
    if party_id is None:
        raise validation_error([FieldProblem("body.party_id", "required for an operator key")])
    kind = (await conn.execute(sa.select(parties.c.kind).where(parties.c.id == party_id))).scalar()
    if kind not in {k.value for k in OWNER_KINDS}:
        raise validation_error([FieldProblem("body.party_id", "a team or a buyer")])
    return party_id


async def create(
    conn: AsyncConnection, principal: Principal, data: CrmConnectionIn, now: dt.datetime
) -> CrmConnection:
    config = data.config
    problems = check_config(data.kind, config, data.secret)
    if problems:
        raise validation_error(problems)
    party_id = await _owner(conn, principal, data.party_id)
    values = dict(
        id=new_id(), party_id=party_id, kind=data.kind.value, name=data.name,
        config=msgspec.to_builtins(config), secret=data.secret, active=True,
        created_at=now, updated_at=now,
    )  # fmt: skip
    await conn.execute(crm_connections.insert().values(**values))
    outbox.forget_connected()
    return await get(conn, principal, values["id"])


async def _row(conn: AsyncConnection, principal: Principal, connection_id: uuid.UUID) -> Any:
    row = (
        await conn.execute(sa.select(crm_connections).where(crm_connections.c.id == connection_id))
    ).first()
    if row is None or not (principal.is_operator or row.party_id == principal.party_id):
        raise not_found("CRM connection")  # another party's: as if it did not exist
    return row


async def get(conn: AsyncConnection, principal: Principal, connection_id: uuid.UUID) -> CrmConnection:
    return _connection(await _row(conn, principal, connection_id))


async def list_connections(
    conn: AsyncConnection, principal: Principal, party_id: uuid.UUID | None
) -> list[CrmConnection]:
    query = sa.select(crm_connections).order_by(crm_connections.c.created_at, crm_connections.c.id)
    if not principal.is_operator:
        query = query.where(crm_connections.c.party_id == principal.party_id)
    elif party_id is not None:
        query = query.where(crm_connections.c.party_id == party_id)
    return [_connection(row) for row in await conn.execute(query)]


async def update(
    conn: AsyncConnection,
    principal: Principal,
    connection_id: uuid.UUID,
    patch: CrmConnectionPatch,
    now: dt.datetime,
) -> CrmConnection:
    row = await _row(conn, principal, connection_id)
    kind = CrmKind(row.kind)
    config = patch.config or msgspec.convert(row.config, CrmConfig)
    secret = patch.secret if patch.secret is not None else row.secret
    problems = check_config(kind, config, secret)
    if problems:
        raise validation_error(problems)
    values: dict[str, Any] = {
        "updated_at": now,
        "config": msgspec.to_builtins(config),
        "secret": secret,
    }
    if patch.name is not None:
        values["name"] = patch.name
    if patch.active is not None:
        values["active"] = patch.active
    await conn.execute(
        crm_connections.update().where(crm_connections.c.id == connection_id).values(**values)
    )
    outbox.forget_connected()
    return await get(conn, principal, connection_id)


async def deactivate(
    conn: AsyncConnection, principal: Principal, connection_id: uuid.UUID, now: dt.datetime
) -> CrmConnection:
    """Stop pushing (rows still pending end ``failed``); the history stays readable."""
    await _row(conn, principal, connection_id)
    await conn.execute(
        crm_connections.update()
        .where(crm_connections.c.id == connection_id)
        .values(active=False, updated_at=now)
    )
    outbox.forget_connected()
    return await get(conn, principal, connection_id)


async def _may_see_lead(conn: AsyncConnection, principal: Principal, lead_id: uuid.UUID) -> bool:
    if principal.is_operator:
        return True
    bought = await conn.execute(
        sa.select(sales.c.id)
        .where(sales.c.lead_id == lead_id, sales.c.buyer_id == principal.party_id)
        .limit(1)
    )
    if bought.first() is not None:
        return True
    owned = await conn.execute(
        sa.select(lead_owners.c.lead_id).where(
            lead_owners.c.lead_id == lead_id, lead_owners.c.team_id == principal.party_id
        )
    )
    return owned.first() is not None


async def lead_syncs(conn: AsyncConnection, principal: Principal, lead_id: uuid.UUID) -> LeadCrmSyncs:
    """A lead's pushes: operators see all; its buyer or owning team its own connections'."""
    if not await _may_see_lead(conn, principal, lead_id):
        raise not_found("lead")
    query = (
        sa.select(
            crm_syncs, crm_connections.c.name, crm_connections.c.kind, crm_connections.c.party_id
        )
        .select_from(
            crm_syncs.join(crm_connections, crm_connections.c.id == crm_syncs.c.connection_id)
        )
        .where(crm_syncs.c.lead_id == lead_id)
        .order_by(crm_syncs.c.created_at, crm_syncs.c.id)
    )
    if not principal.is_operator:
        query = query.where(crm_connections.c.party_id == principal.party_id)
    items = [
        CrmSync(
            id=r.id,
            connection_id=r.connection_id,
            connection_name=r.name,
            kind=CrmKind(r.kind),
            party_id=r.party_id,
            event=r.event,
            status=r.status,
            attempts=r.attempts,
            last_error=r.last_error,
            external_id=r.external_id,
            next_attempt_at=r.next_attempt_at,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )  # fmt: skip
        for r in await conn.execute(query)
    ]
    return LeadCrmSyncs(lead_id=lead_id, items=items)
