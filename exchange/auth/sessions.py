"""Console sessions: a browser signed in with an API key holds a signed cookie, never the key.

The cookie is ``<key id>.<expires, unix s>.<nonce>.<signature>``: an HMAC-SHA256, under a key
derived from the settings' ``secret_key``, of the three fields before it. Nothing in it is
secret (the key id is not a credential), and nothing in it can be changed without the
signature failing. Each request resolves the key id to its principal again, so a revoked key
or a deactivated party ends its sessions (within the key cache's TTL in other processes).

Requests authenticated by the cookie that change state must also carry ``X-CSRF-Token``: a
second HMAC of the session token, which the console's pages embed for their own scripts. A
page on another site can make the browser send the cookie (SameSite=Strict already stops
that in current browsers) but can never read the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.auth.parties import PartyKind, Principal
from exchange.store.tables import api_keys, parties

COOKIE_NAME = "lx_console"
CSRF_HEADER = "X-CSRF-Token"
SESSION_TTL_S = 8 * 3600  # one working day; then the browser signs in again
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_MAX_CHARS = 200  # a real one is ~110


def _signing_key(secret_key: str, purpose: str) -> bytes:
    # Domain separation: the same secret also keys dedupe hashes and request signatures.
    return hashlib.sha256(f"console-{purpose}:{secret_key}".encode()).digest()


def _mac(secret_key: str, purpose: str, text: str) -> str:
    digest = hmac.new(_signing_key(secret_key, purpose), text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(secret_key: str, key_id: uuid.UUID, now_s: float | None = None) -> tuple[str, int]:
    """A session token for the key ``key_id`` and its lifetime in seconds."""
    expires = int((time.time() if now_s is None else now_s) + SESSION_TTL_S)
    body = f"{key_id.hex}.{expires}.{secrets.token_urlsafe(9)}"
    return f"{body}.{_mac(secret_key, 'session', body)}", SESSION_TTL_S


def verify(secret_key: str, token: str, now_s: float | None = None) -> uuid.UUID | None:
    """The key id of a well-signed, unexpired token; None for anything else."""
    if not token or len(token) > TOKEN_MAX_CHARS:
        return None
    body, _, signature = token.rpartition(".")
    parts = body.split(".")
    if len(parts) != 3 or not hmac.compare_digest(signature, _mac(secret_key, "session", body)):
        return None
    key_hex, expires, _nonce = parts
    try:
        key_id, expires_at = uuid.UUID(hex=key_hex), int(expires)
    except ValueError:
        return None
    if expires_at <= (time.time() if now_s is None else now_s):
        return None
    return key_id


def csrf_token(secret_key: str, token: str) -> str:
    """The token a page sends back in ``X-CSRF-Token`` with the session ``token``."""
    return _mac(secret_key, "csrf", token)


def csrf_ok(secret_key: str, token: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(sent, csrf_token(secret_key, token))


async def principal_of_key(conn: AsyncConnection, key_id: uuid.UUID) -> Principal | None:
    """The principal of a key by its id, or None when it is revoked or its party inactive."""
    row = (
        await conn.execute(
            sa.select(api_keys.c.id, api_keys.c.revoked_at, parties.c.id.label("party_id"),
                      parties.c.kind, parties.c.name, parties.c.active)
            .join(parties, parties.c.id == api_keys.c.party_id)
            .where(api_keys.c.id == key_id)
        )
    ).first()  # fmt: skip
    if row is None or row.revoked_at is not None or not row.active:
        return None
    return Principal(party_id=row.party_id, kind=PartyKind(row.kind), key_id=row.id, name=row.name)
