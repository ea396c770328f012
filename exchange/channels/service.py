"""Each channel's intake: decode its payload, check who sent it, map it, take the lead."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import uuid

import msgspec

from exchange.auction.context import Context
from exchange.channels import batches, payloads
from exchange.channels.intake import Taken, idempotency_key, lead_in, take
from exchange.channels.messages import BatchView, RowReport
from exchange.channels.meta import FetchFailed, LeadFetcher
from exchange.channels.store import Source, insert_batch, secret_matches
from exchange.errors import ApiError, FieldProblem

log = logging.getLogger(__name__)

CONSENT_URL_MAX_CHARS = 2000
# A CSV row refused by the supplier's rate limit waits and tries again, this often at most.
RATE_LIMIT_RETRIES = 5
RATE_LIMIT_WAIT_MAX_S = 2.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def request_consent(ip: str | None, user_agent: str | None, referer: str | None) -> dict[str, str]:
    """What a browser's form post proves of itself: its address, agent and page. Only values the
    lead's validation would accept, so a proxy's odd header never costs the lead."""
    consent = {}
    try:
        if ip:
            consent["ip_address"] = str(ipaddress.ip_address(ip))
    except ValueError:
        pass
    if user_agent:
        consent["user_agent"] = user_agent[:1000]
    if (
        referer
        and referer.startswith(("https://", "http://"))
        and len(referer) <= CONSENT_URL_MAX_CHARS
    ):
        consent["landing_page_url"] = referer
    return consent


class Honeypot(Exception):
    """A bot filled the form's hidden field: answered as a success, nothing stored."""


async def form(ctx: Context, source: Source, body: bytes, consent: dict[str, str]) -> Taken:
    items = payloads.form_items(body)
    trap = source.settings.honeypot_field
    if trap and any(item.key == trap and item.value for item in items):
        raise Honeypot()
    lead, paths = lead_in(source, items, path_of=lambda key: f"form.{key}", consent=consent)
    return await take(ctx, source, lead, paths, body=body)


async def google_ads(ctx: Context, source: Source, body: bytes) -> Taken:
    lead = payloads.google_lead(body)
    if not lead.google_key:
        raise ApiError(
            401,
            "unauthorized",
            "missing google_key",
            fields=[FieldProblem("google_key", "required")],
        )
    if not secret_matches(source, lead.google_key):
        raise ApiError(
            403,
            "forbidden",
            "google_key does not match this source's key",
            fields=[FieldProblem("google_key", "does not match")],
        )
    items = payloads.google_items(lead)
    mapped, paths = lead_in(
        source, items, path_of=lambda key: f"user_column_data[{key}]", test=lead.is_test
    )
    # Google resends a lead it got no 200 for: its lead_id makes the resend a replay.
    return await take(
        ctx,
        source,
        mapped,
        paths,
        body=lead.lead_id.encode(),
        key=idempotency_key("google_ads", lead.lead_id),
    )


class MetaResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    leadgen_id: str
    status: str  # accepted, duplicate (already taken), rejected, retry (the fetch failed)
    lead_id: uuid.UUID | None = None
    code: str | None = None
    fields: list[FieldProblem] | None = None


async def meta(ctx: Context, source: Source, body: bytes, fetcher: LeadFetcher) -> list[MetaResult]:
    """Every lead a notification tells of, each its own lead. The leadgen id is the idempotency
    key, so Meta's retries (and a notification sent twice) never make a second lead."""
    results = []
    for change in payloads.meta_leadgens(body):
        leadgen_id = change.leadgen_id
        try:
            fetched = await fetcher.fetch(leadgen_id)
            items = payloads.meta_items(fetched)
            lead, paths = lead_in(source, items, path_of=lambda key: f"field_data[{key}]")
            taken = await take(
                ctx,
                source,
                lead,
                paths,
                body=f"meta:{leadgen_id}".encode(),
                key=idempotency_key("meta", leadgen_id),
            )
        except FetchFailed as exc:
            log.warning("meta lead %s not fetched: %s", leadgen_id, exc)
            results.append(MetaResult(leadgen_id=leadgen_id, status="retry", code="fetch_failed"))
        except ApiError as exc:
            status = "duplicate" if exc.body.code == "duplicate" else "rejected"
            results.append(
                MetaResult(
                    leadgen_id=leadgen_id, status=status, code=exc.body.code, fields=exc.body.fields
                )
            )
        else:
            status = "duplicate" if taken.replayed else "accepted"
            results.append(MetaResult(leadgen_id=leadgen_id, status=status, lead_id=taken.lead_id))
    return results


async def _take_row(
    ctx: Context,
    source: Source,
    row: payloads.CsvRow,
    *,
    key: str | None = None,
    body: bytes | None = None,
) -> RowReport:
    """One CSV row through the direct post. A worker's rows carry an idempotency ``key`` (the
    batch and line) and their raw ``body``: taken in again, a row answers its first lead."""
    if row.extra:
        return RowReport(
            row=row.line,
            status="rejected",
            code="malformed_row",
            message="more values than columns",
        )
    lead, paths = lead_in(source, row.items, path_of=lambda key: key)
    for attempt in range(RATE_LIMIT_RETRIES + 1):
        try:
            taken = await take(
                ctx, source, lead, paths, body=body or msgspec.json.encode(lead), key=key
            )
        except ApiError as exc:
            # Rate limited, or (a replayed row) its first run is still selling it: wait.
            waits = exc.status == 429 or exc.body.code == "post_in_progress"
            if waits and attempt < RATE_LIMIT_RETRIES:
                wait = (exc.body.details or {}).get("retry_after_s", 0.1)
                await asyncio.sleep(min(max(float(wait), 0.01), RATE_LIMIT_WAIT_MAX_S))
                continue
            status = "duplicate" if exc.body.code == "duplicate" else "rejected"
            return RowReport(
                row=row.line,
                status=status,
                code=exc.body.code,
                message=str(exc),
                fields=exc.body.fields,
            )
        return RowReport(
            row=row.line, status="accepted", lead_id=taken.lead_id, lead_status=taken.lead_status
        )
    raise AssertionError("unreachable")  # pragma: no cover


async def csv_batch(ctx: Context, source: Source, body: bytes, name: str | None) -> BatchView:
    """Each row through the same path, on its own: one row's failure never touches another.
    A small file here and now (status done); a large one by a worker (status processing)."""
    rows = payloads.csv_rows(body)  # a malformed file is refused whole, before any row
    if len(rows) > batches.CSV_INLINE_ROWS_MAX:
        return await batches.start(ctx, source, rows, name)
    report = [await _take_row(ctx, source, row) for row in rows]
    async with ctx.db.write() as conn:
        return await insert_batch(conn, source, "csv", name, report, _now())


async def inbound_email(ctx: Context, source: Source, body: bytes) -> BatchView:
    mail = payloads.mail(body)
    lead, paths = lead_in(source, mail.items, path_of=lambda key: f"body.{key}", sender=mail.sender)
    taken = await take(ctx, source, lead, paths, body=body)
    report = [
        RowReport(row=1, status="accepted", lead_id=taken.lead_id, lead_status=taken.lead_status)
    ]
    async with ctx.db.write() as conn:
        return await insert_batch(conn, source, "email", mail.subject, report, _now())


async def take_in_batch(ctx: Context, batch_id: uuid.UUID) -> bool:
    """A large CSV batch's next chunk (the ``take_in_batch`` actor); True: more to come."""
    return await batches.take_in(ctx, batch_id, _take_row)
