"""Meta lead ads: the notification's signature, and fetching a lead's fields from the Graph API.

A leadgen notification carries only ids; the answers live on Meta's side. ``LeadFetcher`` is
the seam: the real one calls the Graph API, tests hand in recorded responses."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Protocol

import aiohttp
import msgspec

from exchange.channels.store import Source

SIGNATURE_HEADER = "X-Hub-Signature-256"
GRAPH_URL = "https://graph.facebook.com"
GRAPH_TIMEOUT_S = 5.0  # Meta retries the webhook on a slow answer: a fetch may not hang it
GRAPH_MAX_BYTES = 256 * 1024


class FetchFailed(Exception):
    """The platform did not give the lead (down, slow, refused): Meta should retry."""


class LeadFetcher(Protocol):
    async def fetch(self, leadgen_id: str) -> dict[str, Any]:
        """The lead as ``GET /{leadgen_id}`` answers: ``{"id", "created_time", "field_data":
        [{"name", "values": [...]}]}``. Raises ``FetchFailed``."""
        ...


def signature_ok(app_secret: str | None, body: bytes, header: str | None) -> bool:
    """``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>``."""
    if not app_secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


class GraphLeadFetcher:
    """Reads a lead from the Graph API with the page's access token, under a timeout."""

    def __init__(self, access_token: str, api_version: str, base_url: str = GRAPH_URL) -> None:
        self.access_token = access_token
        self.api_version = api_version
        self.base_url = base_url

    async def fetch(self, leadgen_id: str) -> dict[str, Any]:
        if not self.access_token:
            raise FetchFailed("the source has no settings.page_access_token")
        url = f"{self.base_url}/{self.api_version}/{leadgen_id}"
        params = {
            "access_token": self.access_token,
            "fields": "id,created_time,field_data,is_organic",
        }
        timeout = aiohttp.ClientTimeout(total=GRAPH_TIMEOUT_S)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.get(url, params=params) as response:
                    raw = await response.content.read(GRAPH_MAX_BYTES + 1)
                    if response.status != 200 or len(raw) > GRAPH_MAX_BYTES:
                        raise FetchFailed(f"Graph API answered {response.status}")
                    body = msgspec.json.decode(raw)
        except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError) as exc:
            raise FetchFailed(f"Graph API: {type(exc).__name__}") from None
        if not isinstance(body, dict):
            raise FetchFailed("Graph API answered something other than an object")
        return body


def graph_fetcher(source: Source) -> LeadFetcher:
    """The real fetcher of a source (its page token and Graph API version)."""
    return GraphLeadFetcher(
        source.settings.page_access_token or "", source.settings.graph_api_version
    )
