"""Authentication on every request, and guards that scope a route to kinds of party."""

from __future__ import annotations

from collections.abc import Callable

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from exchange.auth import sessions
from exchange.auth.parties import (
    PartyKind,
    Principal,
    authenticate,
)
from exchange.errors import ApiError, forbidden

API_KEY_HEADER = "X-API-Key"
PUBLIC_PATHS = {"/health", "/schema", "/metrics"}


def key_from(connection: ASGIConnection) -> str | None:
    header = connection.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return connection.headers.get(API_KEY_HEADER.lower()) or None


async def session_principal(connection: ASGIConnection, token: str) -> Principal | None:
    """The principal of a console session cookie (``exchange.auth.sessions``): None when its
    signature is wrong, it expired, or its key was revoked or its party deactivated."""
    key_id = sessions.verify(connection.app.state.settings.secret_key, token)
    if key_id is None:
        return None
    cache, cache_key = connection.app.state.key_cache, f"session:{key_id}"
    principal = cache.get(cache_key)
    if principal is None:
        async with connection.app.state.db.read() as conn:
            principal = await sessions.principal_of_key(conn, key_id)
        if principal is None:
            return None
        cache.put(cache_key, principal)
    return principal


async def _by_session(connection: ASGIConnection, token: str) -> AuthenticationResult:
    """A request from the console's own scripts: the session cookie, and for anything but a
    read the CSRF token the page was given (API-key requests never need one)."""
    principal = await session_principal(connection, token)
    if principal is None:
        raise NotAuthorizedException("the console session expired or was revoked: sign in again")
    method = connection.scope.get("method", "GET")
    sent = connection.headers.get(sessions.CSRF_HEADER)
    secret = connection.app.state.settings.secret_key
    if method not in sessions.SAFE_METHODS and not sessions.csrf_ok(secret, token, sent):
        message = f"a console request that changes state needs {sessions.CSRF_HEADER}"
        raise ApiError(403, "csrf_failed", message)
    return AuthenticationResult(user=principal, auth=principal.key_id)


class ApiKeyMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        raw = key_from(connection)
        if raw is None and (token := connection.cookies.get(sessions.COOKIE_NAME)):
            return await _by_session(connection, token)
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
