"""Outcome feedback: a lead's agent or buyer reports what happened to it (over its key, or a
signed postback URL with no key) and reads its reports back; operators read every report."""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post, route
from litestar.params import FromPath, JSONBody

from exchange.api.common import db_of, settings_of
from exchange.auth.middleware import allow
from exchange.auth.parties import PartyKind, Principal, get_party
from exchange.delivery import signing
from exchange.errors import ApiError, FieldProblem, forbidden, validation_error
from exchange.outcomes import postback, service
from exchange.outcomes.messages import (
    Outcome,
    OutcomeChannel,
    OutcomeIn,
    Outcomes,
    PostbackInfo,
)

REPORTERS = (PartyKind.AGENT, PartyKind.BUYER, PartyKind.TEAM)
# A postback has no key: the principal it acts as is the signing party's, with no key id.
POSTBACK_KEY_ID = uuid.UUID(int=0)
_MSGSPEC_PATH = re.compile(r"^(?P<reason>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?$", re.S)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _answer(outcome: Outcome, new: bool) -> Response[Outcome]:
    """201 for a new report, 200 with the stored one for a repeat."""
    return Response(outcome, status_code=201 if new else 200)


class OutcomeController(Controller):
    path = "/v1/leads/{lead_id:uuid}/outcomes"
    tags = ["outcomes"]
    guards = [allow(*REPORTERS)]

    @post(
        summary="Report what happened to a lead I own or bought (idempotent per kind)",
        description=(
            "`kind`: contacted, qualified, appointment, won (with `value_minor` in the "
            "vertical's currency), lost or bad_lead (with a `reason`). The first report of a "
            "kind is stored (201); a repeat answers it (200). An agent's `contacted` also "
            "records first contact (the SLA stops). A lead you neither own(ed) nor bought: 404."
        ),
    )
    async def report(
        self, request: Request, lead_id: FromPath[uuid.UUID], data: JSONBody[OutcomeIn]
    ) -> Response[Outcome]:
        async with db_of(request).write() as conn:
            outcome, new = await service.report(conn, request.user, lead_id, data, _now())
        return _answer(outcome, new)

    @get(summary="Reports on a lead: mine (operators: all), with first response time")
    async def list_outcomes(self, request: Request, lead_id: FromPath[uuid.UUID]) -> Outcomes:
        async with db_of(request).read() as conn:
            return await service.list_outcomes(conn, request.user, lead_id)


class PostbackInfoController(Controller):
    path = "/v1/outcomes/postback"
    tags = ["outcomes"]
    guards = [allow(*REPORTERS)]

    @get(
        summary="My postback secret and URL template, to report outcomes without a key",
        description=(
            "Sign `GET|POST /v1/postbacks/outcome?...&ts=<unix s>&sig=v1=<hex>`: the signature "
            "is HMAC-SHA256 over `<ts>.` and the query's other parameters sorted by name and "
            "percent-encoded (docs/outcomes.md; `buyers_sdk.postback_url` builds it)."
        ),
    )
    async def show(self, request: Request) -> PostbackInfo:
        principal: Principal = request.user
        if principal.is_operator:
            raise forbidden("operators report no outcomes: use an agent's or a buyer's key")
        party = str(principal.party_id)
        base = str(request.base_url).rstrip("/")
        template = (
            f"{base}{postback.POSTBACK_PATH}?kind={{kind}}&lead_id={{lead_id}}&party_id={party}"
            "&ts={ts}&sig={sig}"
        )
        return PostbackInfo(
            party_id=principal.party_id,
            secret=postback.secret_for(settings_of(request).secret_key, party),
            url_template=template,
            methods=["GET", "POST"],
            algorithm="HMAC-SHA256",
            tolerance_s=signing.SIGNATURE_TOLERANCE_S,
        )


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message)


def _query_problem(exc: msgspec.ValidationError) -> FieldProblem:
    match = _MSGSPEC_PATH.match(str(exc))
    reason, path = (match.group("reason"), match.group("path")) if match else (str(exc), "")
    missing = re.match(r"^Object missing required field `([^`]+)`$", reason)
    if missing:
        path, reason = missing.group(1), "required"
    return FieldProblem(f"query.{path}" if path else "query", reason)


def _report_of(params: dict[str, str]) -> OutcomeIn:
    """The report a postback's parameters carry (empty ones are absent)."""
    fields: dict[str, Any] = {
        k: v for k, v in params.items() if v != "" and k in OutcomeIn.__struct_fields__
    }
    try:
        return msgspec.convert(fields, OutcomeIn, strict=False)
    except msgspec.ValidationError as exc:
        raise validation_error([_query_problem(exc)]) from exc


def _uuid_param(params: dict[str, str], name: str) -> uuid.UUID:
    try:
        return uuid.UUID(params[name])
    except KeyError:
        raise validation_error([FieldProblem(f"query.{name}", "required")]) from None
    except ValueError:
        raise validation_error([FieldProblem(f"query.{name}", "not a uuid")]) from None


@route(
    postback.POSTBACK_PATH,
    http_method=["GET", "POST"],
    status_code=200,
    tags=["outcomes"],
    summary="A signed postback: report an outcome with no API key (201 new, 200 a repeat)",
    description=(
        "Query: `lead_id`, `party_id`, `kind`, optional `value_minor`, `currency`, `reason`, "
        "`occurred_at`, then `ts` (unix seconds) and `sig` (`v1=<hex>`). A missing, stale "
        "(more than 300 s off) or wrong signature, or an unknown party: 401; a party that "
        "neither owns nor bought the lead: 403. Nothing is stored on a refusal."
    ),
    security=[],
)
async def outcome_postback(request: Request) -> Response[Outcome]:
    now = _now()
    try:
        raw = request.scope.get("query_string", b"").decode("utf-8")
        params = postback.parse_query(raw)
    except UnicodeDecodeError:
        raise validation_error([FieldProblem("query", "not UTF-8")]) from None
    except postback.BadQuery as exc:
        raise validation_error([FieldProblem(exc.path, exc.reason)]) from None
    party_id = _uuid_param(params, "party_id")
    secret = postback.secret_for(settings_of(request).secret_key, str(party_id))
    refused = postback.check(secret, params, int(time.time()))
    if refused == postback.SIGNATURE_MISSING:
        raise _unauthorized(refused, "sign the postback: ts=<unix seconds>&sig=v1=<hex>")
    if refused == postback.SIGNATURE_STALE:
        raise _unauthorized(
            refused, f"ts is more than {signing.SIGNATURE_TOLERANCE_S} s from the exchange's clock"
        )
    if refused is not None:
        raise _unauthorized(refused, "the signature does not match these parameters")
    lead_id = _uuid_param(params, "lead_id")
    data = _report_of(params)
    async with db_of(request).write() as conn:
        party = await get_party(conn, party_id)
        if party is None or not party.active or party.kind not in REPORTERS:
            raise _unauthorized("unknown_party", "no active agent or buyer with this party_id")
        principal = Principal(
            party_id=party.id, kind=party.kind, key_id=POSTBACK_KEY_ID, name=party.name
        )
        try:
            outcome, new = await service.report(
                conn, principal, lead_id, data, now, channel=OutcomeChannel.POSTBACK
            )
        except ApiError as exc:
            if exc.status != 404:
                raise
            raise ApiError(
                403, "not_a_reporter",
                "this party neither owns nor bought that lead (or there is no such lead)",
            ) from None  # fmt: skip
    return _answer(outcome, new)
