"""One path for every adapter: the mapped lead goes through the native API's direct post.

So validation, dedupe, scoring, the auction, delivery and team routing are exactly those of
``POST /v1/leads``; an error is the same error, its field paths renamed to the source's keys.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable

import msgspec

from exchange.auction import service as auction
from exchange.auction.context import Context
from exchange.auth.parties import PartyKind, Principal
from exchange.channels import mapping as mappings
from exchange.channels.mapping import Item
from exchange.channels.store import Source
from exchange.errors import ApiError
from exchange.intake.messages import Consent, SourcedLeadIn, SubIds

# Idempotency keys are bounded (settings.idempotency_key_max_chars, 255 by default); a longer
# platform id is hashed into one that fits.
IDEMPOTENCY_KEY_KEEP_CHARS = 120


class Taken(msgspec.Struct, kw_only=True):
    status_code: int
    lead_id: uuid.UUID
    lead_status: str  # sold, unsold
    body: bytes  # the native API's answer (PostOut)
    replayed: bool


def supplier_of(source: Source) -> Principal:
    """The source acts as its supplier (the URL token or shared key stood in for its API key)."""
    return Principal(
        party_id=source.supplier_id,
        kind=PartyKind.SUPPLIER,
        key_id=uuid.UUID(int=0),
        name=source.name,
    )


def idempotency_key(channel: str, platform_id: str) -> str:
    if len(platform_id) > IDEMPOTENCY_KEY_KEEP_CHARS or not platform_id.isprintable():
        platform_id = hashlib.sha256(platform_id.encode()).hexdigest()
    return f"{channel}:{platform_id}"


def lead_in(
    source: Source,
    items: list[Item],
    *,
    path_of: Callable[[str], str],
    consent: dict[str, str] | None = None,
    sender: str | None = None,
    test: bool = False,
) -> tuple[SourcedLeadIn, dict[str, str]]:
    """The native ``LeadIn`` (with channel and source) and how to name its fields in errors."""
    mapped = mappings.apply(source.mapping, items, path_of=path_of, sender=sender)
    given = {**(consent or {}), **mapped.consent}  # what the payload says wins over the request's
    lead = SourcedLeadIn(
        vertical=source.vertical,
        fields=mapped.fields,
        source=source.source,
        sub_ids=SubIds(**mapped.sub_ids) if mapped.sub_ids else None,
        consent=Consent(**given) if given else None,
        test=test,
        channel=source.channel.value,
        intake_source_id=source.id,
    )
    return lead, mapped.paths


async def take(
    ctx: Context,
    source: Source,
    lead: SourcedLeadIn,
    paths: dict[str, str],
    *,
    body: bytes,
    key: str | None = None,
) -> Taken:
    """Sell (or keep unsold) one lead through the direct post; raise ``ApiError`` as it does,
    with the failing fields named as the source names them. On an error nothing is stored."""
    try:
        accepted = await auction.direct_post(
            ctx, supplier_of(source), lead, body=body, idempotency_key=key
        )
    except ApiError as exc:
        exc.body.fields = mappings.rename(exc.body.fields, paths)
        raise
    out = msgspec.json.decode(accepted.body)
    if accepted.status_code >= 400:  # a replayed error answer
        raise ApiError(accepted.status_code, out["error"]["code"], out["error"]["message"])
    return Taken(
        status_code=accepted.status_code,
        lead_id=uuid.UUID(out["lead_id"]),
        lead_status=out["status"],
        body=accepted.body,
        replayed=accepted.replayed,
    )
