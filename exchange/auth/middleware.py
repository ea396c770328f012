"""Authentication on every request, and guards that scope a route to kinds of party."""

from __future__ import annotations

from collections.abc import Callable

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from exchange.auth.parties import (
    PartyKind,
    Principal,
    authenticate,
)
from exchange.errors import forbidden

API_KEY_HEADER = "X-API-Key"
PUBLIC_PATHS = {"/health", "/schema", "/metrics"}


def key_from(connection: ASGIConnection) -> str | None:
    header = connection.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return connection.headers.get(API_KEY_HEADER.lower()) or None


class ApiKeyMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        raw = key_from(connection)
        if raw is None:
            raise NotAuthorizedException(
                f"missing API key: send 'Authorization: Bearer <key>' or '{API_KEY_HEADER}: <key>'"
            )
        cache = connection.app.state.key_cache
        principal = cache.get(raw)
        if principal is None:
            db = connection.app.state.db
            async with db.read() as conn:
                principal = await authenticate(conn, raw)
            if principal is None:
                raise NotAuthorizedException("unknown, revoked or inactive API key")
            cache.put(raw, principal)
        return AuthenticationResult(user=principal, auth=principal.key_id)


Guard = Callable[[ASGIConnection, BaseRouteHandler], None]


def allow(*kinds: PartyKind) -> Guard:
    """A guard that admits only keys of these kinds (operators are always admitted)."""
    allowed = frozenset(kinds) | {PartyKind.OPERATOR}

    # async: litestar runs a sync guard in its thread pool, a thread hop per request
    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        principal: Principal = connection.user
        if principal.kind not in allowed:
            names = ", ".join(sorted(k.value for k in allowed))
            raise forbidden(f"this route is for: {names}; your key is a {principal.kind.value} key")

    return guard
