"""Intake adapters: sources (operators and suppliers configure them), and the endpoints that
forms, Google Ads, Meta, CSV uploads and mail providers post to. The public endpoints carry no
API key: the source's unguessable URL token (and, for the ad platforms, their shared key or
signature) stands in for it."""

from __future__ import annotations

import datetime as dt
import urllib.parse
import uuid

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from exchange.api.common import Page, db_of, own_supplier, page_limit, settings_of
from exchange.auth.middleware import allow
from exchange.auth.parties import PartyKind, Principal
from exchange.channels import payloads, service, store
from exchange.channels.messages import BatchView, Channel, SourceIn, SourcePatch, SourceView
from exchange.channels.meta import SIGNATURE_HEADER, graph_fetcher, signature_ok
from exchange.errors import ApiError, FieldProblem, forbidden, not_found

PUBLIC = {"exclude_from_auth": True}
CSV_TYPES = ("text/csv", "text/plain", "application/csv")
EMAIL_TYPES = ("message/rfc822", "text/plain", "application/octet-stream")
# A batch's report is read a page at a time (a 10,000-row file's report is megabytes).
REPORT_PAGE_MAX = 1000


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _require_type(request: Request, allowed: tuple[str, ...]) -> None:
    if _media_type(request) not in allowed:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the body as {' or '.join(allowed)}",
            fields=[FieldProblem("headers.Content-Type", f"one of {', '.join(allowed)}")],
        )


async def _own_source(request: Request, source_id: uuid.UUID) -> store.Source:
    principal: Principal = request.user
    async with db_of(request).read() as conn:
        source = await store.get(conn, source_id)
    if source is None:
        raise not_found("intake source")
    if not principal.is_operator and source.supplier_id != principal.party_id:
        raise forbidden("this source belongs to another supplier")
    return source


async def _by_token(request: Request, token: str, channel: Channel) -> store.Source:
    async with db_of(request).read() as conn:
        return await store.by_token(conn, token, channel)


class IntakeSourceController(Controller):
    path = "/v1/intake-sources"
    tags = ["intake sources"]

    @post(
        guards=[allow(PartyKind.SUPPLIER)],
        summary="Add an intake source (form, ad platform, CSV, email)",
    )
    async def create(self, request: Request, data: JSONBody[SourceIn]) -> SourceView:
        principal: Principal = request.user
        supplier_id = data.supplier_id
        if not principal.is_operator:
            if supplier_id is not None and supplier_id != principal.party_id:
                raise forbidden("a supplier adds sources for itself only")
            supplier_id = principal.party_id
        elif supplier_id is None:
            raise ApiError(
                422,
                "validation_failed",
                "name the supplier",
                fields=[FieldProblem("supplier_id", "required for an operator")],
            )
        async with db_of(request).write() as conn:
            return await store.create(conn, supplier_id, data, _now())

    @get(guards=[allow(PartyKind.SUPPLIER)], summary="Intake sources (a supplier sees its own)")
    async def list_sources(
        self,
        request: Request,
        limit: FromQuery[int | None] = None,
        after: FromQuery[uuid.UUID | None] = None,
        supplier_id: FromQuery[uuid.UUID | None] = None,
    ) -> Page:
        size = page_limit(settings_of(request), limit)
        supplier_id = own_supplier(request.user, supplier_id, "sources")
        async with db_of(request).read() as conn:
            items = await store.list_sources(conn, supplier_id=supplier_id, limit=size, after=after)
        return Page(items=items, next_after=items[-1].id if len(items) == size else None)

    @get("/{source_id:uuid}", guards=[allow(PartyKind.SUPPLIER)], summary="One intake source")
    async def show(self, request: Request, source_id: FromPath[uuid.UUID]) -> SourceView:
        return store.view(await _own_source(request, source_id))

    @put(
        "/{source_id:uuid}",
        guards=[allow(PartyKind.SUPPLIER)],
        summary="Change a source's mapping, settings, key",
    )
    async def change(
        self, request: Request, source_id: FromPath[uuid.UUID], data: JSONBody[SourcePatch]
    ) -> SourceView:
        source = await _own_source(request, source_id)
        async with db_of(request).write() as conn:
            return await store.update(conn, source, data, _now())

    @post(
        "/{source_id:uuid}/csv",
        guards=[allow(PartyKind.SUPPLIER)],
        request_max_body_size=payloads.CSV_MAX_BYTES,
        summary="Upload a CSV batch: each row a lead, with a per-row report (a large file: 202, "
        "then poll the batch)",
    )
    async def upload_csv(
        self, request: Request, source_id: FromPath[uuid.UUID], name: FromQuery[str | None] = None
    ) -> Response[BatchView]:
        source = await _own_source(request, source_id)
        if source.channel is not Channel.CSV or not source.active:
            raise ApiError(
                409, "wrong_source", "this source does not take CSV uploads (or is inactive)"
            )
        _require_type(request, CSV_TYPES)
        body = await request.body()
        batch = await service.csv_batch(request.app.state.auction, source, body, name)
        if batch.status == "processing":  # a worker takes it in: poll its path
            return Response(content=batch, status_code=202, headers={"Location": batch.path})
        return Response(content=batch, status_code=201)


class IntakeBatchController(Controller):
    path = "/v1/intake-batches"
    tags = ["intake sources"]

    @get(
        "/{batch_id:uuid}",
        guards=[allow(PartyKind.SUPPLIER)],
        summary="A CSV batch's or email's progress and report (a page of it: ?after=<line>)",
    )
    async def show(
        self,
        request: Request,
        batch_id: FromPath[uuid.UUID],
        after: FromQuery[int | None] = None,
        limit: FromQuery[int | None] = None,
    ) -> BatchView:
        principal: Principal = request.user
        if limit is not None and not 1 <= limit <= REPORT_PAGE_MAX:
            raise ApiError(
                422,
                "validation_failed",
                "report page size out of range",
                fields=[FieldProblem("query.limit", f"between 1 and {REPORT_PAGE_MAX}")],
            )
        async with db_of(request).read() as conn:
            batch = await store.get_batch(
                conn, batch_id, after=after, limit=limit or REPORT_PAGE_MAX
            )
        if batch is None:
            raise not_found("intake batch")
        if not principal.is_operator and batch.supplier_id != principal.party_id:
            raise forbidden("this batch belongs to another supplier")
        return batch


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _see_other(url: str) -> Response:
    return Response(
        content=b"", status_code=303, headers={"Location": url}, media_type="text/plain"
    )


class FormController(Controller):
    path = "/v1/forms"
    tags = ["intake adapters"]

    @post(
        "/{token:str}",
        opt=PUBLIC,
        request_max_body_size=payloads.FORM_MAX_BYTES,
        summary="An HTML form post (urlencoded); 303 back to the source's success or error page",
    )
    async def submit(self, request: Request, token: FromPath[str]) -> Response:
        source = await _by_token(request, token, Channel.FORM)
        settings = source.settings
        redirect = not _wants_json(request)
        try:
            _require_type(request, ("application/x-www-form-urlencoded",))
            consent = service.request_consent(
                request.client.host if request.client else None,
                request.headers.get("user-agent"),
                request.headers.get("referer"),
            )
            taken = await service.form(
                request.app.state.auction, source, await request.body(), consent
            )
        except service.Honeypot:
            if redirect and settings.success_url:
                return _see_other(settings.success_url)
            return Response(content={"status": "accepted"}, status_code=202)
        except ApiError as exc:
            if not (redirect and settings.error_url):
                raise
            names = ",".join(p.path.removeprefix("form.") for p in exc.body.fields or [])
            return _see_other(
                _with_query(settings.error_url, {"error": exc.body.code, "fields": names})
            )
        if redirect and settings.success_url:
            return _see_other(_with_query(settings.success_url, {"lead_id": str(taken.lead_id)}))
        return Response(content=taken.body, status_code=201, media_type="application/json")


class GoogleAdsWebhookController(Controller):
    path = "/v1/webhooks/google-ads"
    tags = ["intake adapters"]

    @post(
        "/{token:str}",
        opt=PUBLIC,
        request_max_body_size=payloads.WEBHOOK_MAX_BYTES,
        summary="Google Ads lead form webhook; google_key must match the source's key",
    )
    async def receive(self, request: Request, token: FromPath[str]) -> Response:
        source = await _by_token(request, token, Channel.GOOGLE_ADS)
        taken = await service.google_ads(request.app.state.auction, source, await request.body())
        # Google wants a 200 for a lead it may stop resending.
        return Response(content=taken.body, status_code=200, media_type="application/json")


class MetaWebhookController(Controller):
    path = "/v1/webhooks/meta"
    tags = ["intake adapters"]

    @get("/{token:str}", opt=PUBLIC, summary="Meta's verification handshake (echoes hub.challenge)")
    async def verify(self, request: Request, token: FromPath[str]) -> Response:
        source = await _by_token(request, token, Channel.META)
        query = request.query_params
        if query.get("hub.mode") != "subscribe":
            raise ApiError(
                400,
                "bad_request",
                "hub.mode must be subscribe",
                fields=[FieldProblem("query.hub.mode", "subscribe")],
            )
        if not store.secret_matches(source, query.get("hub.verify_token")):
            raise forbidden("hub.verify_token does not match this source's verify token")
        challenge = query.get("hub.challenge") or ""
        return Response(content=challenge[:1000], status_code=200, media_type="text/plain")

    @post(
        "/{token:str}",
        opt=PUBLIC,
        request_max_body_size=payloads.WEBHOOK_MAX_BYTES,
        summary="Meta leadgen change notification (signed with X-Hub-Signature-256)",
    )
    async def receive(self, request: Request, token: FromPath[str]) -> Response:
        source = await _by_token(request, token, Channel.META)
        body = await request.body()
        header = request.headers.get(SIGNATURE_HEADER.lower())
        if not header:
            raise ApiError(401, "unauthorized", f"missing {SIGNATURE_HEADER}")
        if not signature_ok(source.settings.app_secret, body, header):
            raise forbidden(f"{SIGNATURE_HEADER} does not match the body")
        factory = getattr(request.app.state, "meta_lead_fetcher", None) or graph_fetcher
        results = await service.meta(request.app.state.auction, source, body, factory(source))
        # Meta retries a notification it got no 200 for: ask for that only when a lead could
        # not be fetched (the leadgen ids make the retry's taken leads replays).
        retry = any(r.status == "retry" for r in results)
        return Response(
            content={"leads": msgspec.to_builtins(results)}, status_code=502 if retry else 200
        )


class InboundEmailController(Controller):
    path = "/v1/inbound-email"
    tags = ["intake adapters"]

    @post(
        "/{token:str}",
        opt=PUBLIC,
        request_max_body_size=payloads.EMAIL_MAX_BYTES,
        summary="An inbound email (raw RFC 822) parsed to a lead",
    )
    async def receive(self, request: Request, token: FromPath[str]) -> Response[BatchView]:
        source = await _by_token(request, token, Channel.EMAIL)
        _require_type(request, EMAIL_TYPES)
        batch = await service.inbound_email(request.app.state.auction, source, await request.body())
        return Response(content=batch, status_code=201)


CHANNEL_ROUTES = [
    IntakeSourceController,
    IntakeBatchController,
    FormController,
    GoogleAdsWebhookController,
    MetaWebhookController,
    InboundEmailController,
]
