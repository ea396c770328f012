"""Parties (everyone who holds a key) and their keys, in the database."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import time
import uuid
import weakref
import zoneinfo
from typing import Annotated

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.auth import keys
from exchange.errors import ApiError, FieldProblem, not_found
from exchange.ids import new_id
from exchange.store.tables import api_keys, parties


class PartyKind(str, enum.Enum):
    OPERATOR = "operator"  # runs the exchange: verticals, parties, margins
    SUPPLIER = "supplier"  # sends leads
    BUYER = "buyer"  # an external advertiser
    TEAM = "team"  # an internal sales team: buys like a buyer, distributes to agents
    AGENT = "agent"  # a member of a team
    FINANCE = "finance"  # reads and reconciles the ledger


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: resolved from the API key on every request."""

    party_id: uuid.UUID
    kind: PartyKind
    key_id: uuid.UUID
    name: str

    @property
    def is_operator(self) -> bool:
        return self.kind is PartyKind.OPERATOR


class PartyIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    kind: PartyKind
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    timezone: Annotated[str, msgspec.Meta(max_length=64)] = "UTC"
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] = "USD"
    team_id: uuid.UUID | None = None  # required for agents


class PartyPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    timezone: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    active: bool | None = None


class Party(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    kind: PartyKind
    name: str
    timezone: str
    currency: str
    team_id: uuid.UUID | None
    active: bool
    created_at: dt.datetime


class KeyIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] = "default"


class KeyInfo(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    party_id: uuid.UUID
    prefix: str
    name: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None


class NewKey(msgspec.Struct, kw_only=True):
    """Returned once, at creation: the only time the secret is ever shown."""

    id: uuid.UUID
    party_id: uuid.UUID
    prefix: str
    name: str
    created_at: dt.datetime
    key: str


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def check_timezone(name: str, path: str) -> None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ApiError(
            422,
            "validation_failed",
            "unknown time zone",
            fields=[FieldProblem(path, f"{name!r} is not an IANA time zone")],
        ) from None


def _party(row: sa.Row) -> Party:
    return Party(
        id=row.id,
        kind=PartyKind(row.kind),
        name=row.name,
        timezone=row.timezone,
        currency=row.currency,
        team_id=row.parent_id,
        active=row.active,
        created_at=row.created_at,
    )


async def create_party(conn: AsyncConnection, data: PartyIn) -> Party:
    check_timezone(data.timezone, "timezone")
    if data.kind is PartyKind.AGENT:
        team = await get_party(conn, data.team_id) if data.team_id else None
        if team is None or team.kind is not PartyKind.TEAM:
            raise ApiError(
                422,
                "validation_failed",
                "an agent belongs to a team",
                fields=[FieldProblem("team_id", "must name an existing team")],
            )
    elif data.team_id is not None:
        raise ApiError(
            422,
            "validation_failed",
            "only agents belong to a team",
            fields=[FieldProblem("team_id", "only agents take a team_id")],
        )
    now = utcnow()
    party_id = new_id()
    await conn.execute(
        parties.insert().values(
            id=party_id,
            kind=data.kind.value,
            name=data.name,
            timezone=data.timezone,
            currency=data.currency,
            parent_id=data.team_id,
            active=True,
            created_at=now,
            updated_at=now,
        )
    )
    return Party(
        id=party_id,
        kind=data.kind,
        name=data.name,
        timezone=data.timezone,
        currency=data.currency,
        team_id=data.team_id,
        active=True,
        created_at=now,
    )


async def get_party(conn: AsyncConnection, party_id: uuid.UUID) -> Party | None:
    row = (await conn.execute(sa.select(parties).where(parties.c.id == party_id))).first()
    return _party(row) if row else None


async def update_party(conn: AsyncConnection, party_id: uuid.UUID, patch: PartyPatch) -> Party:
    forget_principals()
    values: dict[str, object] = {}
    if patch.name is not None:
        values["name"] = patch.name
    if patch.timezone is not None:
        check_timezone(patch.timezone, "timezone")
        values["timezone"] = patch.timezone
    if patch.active is not None:
        values["active"] = patch.active
    if values:
        values["updated_at"] = utcnow()
        result = await conn.execute(
            parties.update().where(parties.c.id == party_id).values(**values)
        )
        if result.rowcount == 0:
            raise not_found("party")
    party = await get_party(conn, party_id)
    if party is None:
        raise not_found("party")
    return party


async def list_parties(
    conn: AsyncConnection, *, kind: PartyKind | None, limit: int, after: uuid.UUID | None
) -> list[Party]:
    query = sa.select(parties).order_by(parties.c.id).limit(limit)
    if kind is not None:
        query = query.where(parties.c.kind == kind.value)
    if after is not None:
        query = query.where(parties.c.id > after)
    return [_party(row) for row in await conn.execute(query)]


async def issue_key(conn: AsyncConnection, party_id: uuid.UUID, name: str) -> NewKey:
    full, prefix, secret_hash = keys.generate()
    key_id = new_id()
    now = utcnow()
    await conn.execute(
        api_keys.insert().values(
            id=key_id,
            party_id=party_id,
            prefix=prefix,
            secret_hash=secret_hash,
            name=name,
            created_at=now,
            revoked_at=None,
        )
    )
    return NewKey(id=key_id, party_id=party_id, prefix=prefix, name=name, created_at=now, key=full)


def _key(row: sa.Row) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        party_id=row.party_id,
        prefix=row.prefix,
        name=row.name,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


async def list_keys(conn: AsyncConnection, party_id: uuid.UUID) -> list[KeyInfo]:
    query = sa.select(api_keys).where(api_keys.c.party_id == party_id).order_by(api_keys.c.id)
    return [_key(row) for row in await conn.execute(query)]


async def get_key(conn: AsyncConnection, key_id: uuid.UUID) -> KeyInfo | None:
    row = (await conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id))).first()
    return _key(row) if row else None


async def revoke_key(conn: AsyncConnection, key_id: uuid.UUID) -> KeyInfo:
    forget_principals()
    await conn.execute(
        api_keys.update()
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    info = await get_key(conn, key_id)
    if info is None:
        raise not_found("key")
    return info


# An accepted key's principal, for the cache's TTL (EXCHANGE_KEY_CACHE_TTL_MS): a busy
# supplier's key is looked up once per few seconds, not on every request. A key revoked (or a
# party deactivated) through this process is dropped at once; through another process it still
# works here for at most the TTL.
KEY_CACHE_MAX = 10_000
_caches: weakref.WeakSet[KeyCache] = weakref.WeakSet()


class KeyCache:
    """One app's cache of accepted keys, by a hash of the key (never the key in clear)."""

    def __init__(self, ttl_ms: int) -> None:
        self._ttl_s = ttl_ms / 1000
        self._entries: dict[str, tuple[float, Principal]] = {}
        _caches.add(self)

    def get(self, raw_key: str) -> Principal | None:
        if self._ttl_s <= 0:
            return None
        hit = self._entries.get(_cache_key(raw_key))
        if hit is None or time.monotonic() - hit[0] >= self._ttl_s:
            return None
        return hit[1]

    def put(self, raw_key: str, principal: Principal) -> None:
        if self._ttl_s <= 0:
            return
        if len(self._entries) >= KEY_CACHE_MAX:  # a bound, not an LRU: rare, and cheap to refill
            self._entries.clear()
        self._entries[_cache_key(raw_key)] = (time.monotonic(), principal)

    def clear(self) -> None:
        self._entries.clear()


def forget_principals() -> None:
    """Drop every cached key in this process (after a revocation or a party change)."""
    for cache in list(_caches):
        cache.clear()


def _cache_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()  # the cache never holds a key in clear


async def authenticate(conn: AsyncConnection, raw_key: str) -> Principal | None:
    """The principal for a key, or None for an unknown, revoked or inactive one."""
    parsed = keys.parse(raw_key)
    if parsed is None:
        return None
    query = (
        sa.select(
            api_keys.c.id,
            api_keys.c.secret_hash,
            api_keys.c.revoked_at,
            parties.c.id.label("party_id"),
            parties.c.kind,
            parties.c.name,
            parties.c.active,
        )
        .join(parties, parties.c.id == api_keys.c.party_id)
        .where(api_keys.c.prefix == parsed.prefix)
    )
    row = (await conn.execute(query)).first()
    if row is None or not keys.matches(parsed.secret, row.secret_hash):
        return None
    if row.revoked_at is not None or not row.active:
        return None
    return Principal(party_id=row.party_id, kind=PartyKind(row.kind), key_id=row.id, name=row.name)
