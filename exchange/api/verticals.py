"""Verticals: operators define them; every key may read them (suppliers need the fields)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody

from exchange.api.common import db_of, forget_market, settings_of
from exchange.auth.middleware import allow
from exchange.errors import ApiError, FieldProblem, not_found, validation_error
from exchange.intake import service as intake
from exchange.intake import verticals
from exchange.intake.fields import VerticalSpec
from exchange.intake.messages import LeadIn
from exchange.intake.validate import Stage, validate_lead
from exchange.intake.verticals import Vertical, VerticalPatch
from exchange.scoring import store as scoring_store
from exchange.scoring.history import SourceHistory
from exchange.scoring.rules import LeadScore, ScoringConfig, score, validate_config


class ScoringExplainIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A lead to score without storing anything; ``config`` tries one before it is stored."""

    fields: dict[Annotated[str, msgspec.Meta(max_length=256)], Any]
    source: str | None = None
    config: ScoringConfig | None = None


class VerticalController(Controller):
    path = "/v1/verticals"
    tags = ["verticals"]

    @post(guards=[allow()], summary="Create a vertical")
    async def create(self, request: Request, data: JSONBody[VerticalSpec]) -> Vertical:
        async with db_of(request).write() as conn:
            return await verticals.create(
                conn, data, fields_max=settings_of(request).vertical_fields_max
            )

    @get(summary="List verticals")
    async def list(self, request: Request) -> list[Vertical]:
        async with db_of(request).read() as conn:
            return await verticals.list_all(conn)

    @get("/{slug:str}", summary="One vertical with its fields")
    async def show(self, request: Request, slug: FromPath[str]) -> Vertical:
        async with db_of(request).read() as conn:
            vertical = await verticals.get(conn, slug)
        if vertical is None:
            raise not_found("vertical")
        return vertical

    @put("/{slug:str}", guards=[allow()], summary="Replace a vertical's definition (version + 1)")
    async def replace(self, request: Request, slug: FromPath[str], data: JSONBody[VerticalSpec]) -> Vertical:
        async with db_of(request).write() as conn:
            vertical = await verticals.replace(
                conn, slug, data, fields_max=settings_of(request).vertical_fields_max
            )
        forget_market(request, slug)  # the auction caches its margin and mode
        return vertical

    @patch("/{slug:str}", guards=[allow()], summary="Activate or deactivate a vertical")
    async def update(self, request: Request, slug: FromPath[str], data: JSONBody[VerticalPatch]) -> Vertical:
        async with db_of(request).write() as conn:
            vertical = await verticals.get(conn, slug)
            if vertical is None:
                raise not_found("vertical")
            if data.active is not None:
                vertical = await verticals.set_active(conn, slug, data.active)
        forget_market(request, slug)
        return vertical

    @get("/{slug:str}/scoring", guards=[allow()], summary="How a vertical scores its leads")
    async def scoring(self, request: Request, slug: FromPath[str]) -> ScoringConfig:
        async with db_of(request).read() as conn:
            config = await scoring_store.get_config(conn, slug)
        if config is None:
            raise ApiError(404, "not_found", f"vertical {slug!r} has no scoring config")
        return config

    @put(
        "/{slug:str}/scoring",
        guards=[allow()],
        summary="Set how a vertical scores its leads",
        description=(
            "Rules (field, op, value, points), the base score, priority bands and the weight of "
            "the learned source history. Checked against the vertical's fields: every problem is "
            "reported with its path (422) and nothing is stored. Leads accepted from then on are "
            "scored; campaigns can filter on `score_range` and `priority_in`."
        ),
    )
    async def set_scoring(
        self, request: Request, slug: FromPath[str], data: JSONBody[ScoringConfig]
    ) -> ScoringConfig:
        async with db_of(request).write() as conn:
            await scoring_store.put_config(conn, slug, data)
        forget_market(request, slug)  # the auction's snapshot holds the config
        return data

    @delete("/{slug:str}/scoring", guards=[allow()], summary="Stop scoring a vertical's leads")
    async def remove_scoring(self, request: Request, slug: FromPath[str]) -> None:
        async with db_of(request).write() as conn:
            await scoring_store.put_config(conn, slug, None)
        forget_market(request, slug)

    @post(
        "/{slug:str}/scoring/explain",
        guards=[allow()],
        status_code=200,
        summary="LeadScore a lead without storing anything (dry run)",
    )
    async def explain_scoring(
        self, request: Request, slug: FromPath[str], data: JSONBody[ScoringExplainIn]
    ) -> LeadScore:
        async with db_of(request).read() as conn:
            vertical = await verticals.get(conn, slug)
            if vertical is None:
                raise not_found("vertical")
            config = data.config or await scoring_store.get_config(conn, slug)
        if config is None:
            raise ApiError(
                422, "validation_failed", "this vertical has no scoring config: send one",
                fields=[FieldProblem("config", "required: the vertical scores nothing yet")],
            )  # fmt: skip
        if data.config is not None:
            problems = validate_config(data.config, vertical.fields, path="config")
            if problems:
                raise validation_error([FieldProblem(p, r) for p, r in problems])
        # Any subset of the fields: nothing is required here, values are normalised as at intake.
        specs = [
            msgspec.structs.replace(f, required_on_ping=False, required_on_post=False)
            for f in vertical.fields
        ]
        lead_in = LeadIn(vertical=slug, fields=data.fields, source=data.source, test=True)
        result = validate_lead(specs, lead_in, Stage.POST, intake.limits_of(settings_of(request)))
        if isinstance(result, list):
            raise validation_error(result)
        source_counts, vertical_counts = await _history(request).counts(vertical.id, data.source)
        return score(config, result.fields, source_counts, vertical_counts)


def _history(request: Request) -> SourceHistory:
    auction = getattr(request.app.state, "auction", None)
    if auction is not None:
        return auction.market.history
    return SourceHistory(db_of(request), 0)
