"""Verticals: operators define them; every key may read them (suppliers need the fields)."""

from __future__ import annotations

from litestar import Controller, Request, get, patch, post, put
from litestar.params import FromPath, JSONBody

from exchange.api.common import db_of, forget_market, settings_of
from exchange.auth.middleware import allow
from exchange.errors import not_found
from exchange.intake import verticals
from exchange.intake.fields import VerticalSpec
from exchange.intake.verticals import Vertical, VerticalPatch


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
