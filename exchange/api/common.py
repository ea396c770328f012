"""Helpers shared by the controllers: the database, settings, paging."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Request

from exchange.errors import ApiError, FieldProblem, forbidden
from exchange.settings import Settings
from exchange.store.db import Database


def db_of(request: Request) -> Database:
    return request.app.state.db


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def page_limit(settings: Settings, limit: int | None) -> int:
    if limit is None:
        return settings.page_size_default
    if not 1 <= limit <= settings.page_size_max:
        raise ApiError(
            422,
            "validation_failed",
            "page size out of range",
            fields=[FieldProblem("query.limit", f"between 1 and {settings.page_size_max}")],
        )
    return limit


class Page(msgspec.Struct):
    """A page of items, oldest first; pass ``next_after`` as ``after`` for the next page."""

    items: list
    next_after: uuid.UUID | None = None


def forget_market(request: Request, slug: str | None = None) -> None:
    """Drop this process's cached campaigns and terms of a vertical (all, without a slug) after
    a write, so the next lead sees it at once; other processes catch up within their TTL."""
    auction = getattr(request.app.state, "auction", None)
    if auction is not None:
        auction.market.invalidate(slug)


def forget_supplier_terms(request: Request, supplier_id: uuid.UUID) -> None:
    auction = getattr(request.app.state, "auction", None)
    if auction is not None:
        auction.market.invalidate_terms(supplier_id)


def own_supplier(principal: Any, supplier_id: uuid.UUID | None, what: str) -> uuid.UUID | None:
    """The supplier a listing is for: an operator's choice (None: every supplier), a supplier's
    own id (asking for another supplier's is 403)."""
    if principal.is_operator:
        return supplier_id
    if supplier_id is not None and supplier_id != principal.party_id:
        raise forbidden(f"a supplier sees only its own {what}")
    return principal.party_id
