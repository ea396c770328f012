"""Money terms: operators set buyer accounts and supplier terms; each party reads its own."""

from __future__ import annotations

import uuid

import msgspec
from litestar import Controller, Request, get, put
from litestar.params import FromPath, JSONBody

from exchange.api.common import db_of, forget_market, forget_supplier_terms, settings_of
from exchange.auction.context import signing_secret as auction_signing_secret
from exchange.auth.middleware import allow
from exchange.auth.parties import PartyKind, Principal
from exchange.campaigns import (
    BuyerAccount,
    BuyerAccountIn,
    SupplierTerms,
    SupplierTermsIn,
    get_account,
    get_terms,
    upsert_account,
    upsert_terms,
)
from exchange.delivery.signing import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    SIGNATURE_TOLERANCE_S,
    TIMESTAMP_HEADER,
)


class BuyerAccountController(Controller):
    path = "/v1/buyers/{buyer_id:uuid}/account"
    tags = ["terms"]
    guards = [allow()]

    @get(summary="A buyer's (or team's) account; defaults when never set")
    async def show(self, request: Request, buyer_id: FromPath[uuid.UUID]) -> BuyerAccount:
        async with db_of(request).read() as conn:
            return await get_account(conn, buyer_id)

    @put(summary="Set a buyer's balance, credit limit, margin override and bid penalty")
    async def update(
        self, request: Request, buyer_id: FromPath[uuid.UUID], data: JSONBody[BuyerAccountIn]
    ) -> BuyerAccount:
        async with db_of(request).write() as conn:
            account = await upsert_account(conn, buyer_id, data)
        forget_market(request)  # every vertical's cache holds the terms of its buyers
        return account


class MyAccountController(Controller):
    path = "/v1/account"
    tags = ["terms"]
    guards = [allow(PartyKind.BUYER, PartyKind.TEAM)]

    @get(summary="My account (buyers and teams)")
    async def show(self, request: Request) -> BuyerAccount:
        principal: Principal = request.user
        async with db_of(request).read() as conn:
            return await get_account(conn, principal.party_id)

    @get(
        "/signing-secret",
        summary="The secret that signs the exchange's requests to my endpoints",
        description=(
            "Verify `X-Exchange-Signature` (`v1=` + hex HMAC-SHA256 of `<X-Exchange-Timestamp>.` "
            "followed by the raw body) with it, and refuse timestamps older than five minutes. "
            "Shown only to the buyer itself, over its own key."
        ),
    )
    async def signing_secret(self, request: Request) -> SigningSecret:
        principal: Principal = request.user
        secret = auction_signing_secret(settings_of(request), str(principal.party_id))
        return SigningSecret(secret=secret)


class SigningSecret(msgspec.Struct, kw_only=True):
    secret: str
    algorithm: str = "HMAC-SHA256"
    signature_header: str = SIGNATURE_HEADER
    timestamp_header: str = TIMESTAMP_HEADER
    delivery_id_header: str = DELIVERY_ID_HEADER
    tolerance_s: int = SIGNATURE_TOLERANCE_S


class SupplierTermsController(Controller):
    path = "/v1/suppliers/{supplier_id:uuid}/terms"
    tags = ["terms"]
    guards = [allow()]

    @get(summary="A supplier's terms; defaults when never set")
    async def show(self, request: Request, supplier_id: FromPath[uuid.UUID]) -> SupplierTerms:
        async with db_of(request).read() as conn:
            return await get_terms(conn, supplier_id)

    @put(summary="Set a supplier's margin override, minimum payout, auction mode, ping rate and return terms")
    async def update(
        self, request: Request, supplier_id: FromPath[uuid.UUID], data: JSONBody[SupplierTermsIn]
    ) -> SupplierTerms:
        async with db_of(request).write() as conn:
            terms = await upsert_terms(conn, supplier_id, data)
        forget_supplier_terms(request, supplier_id)
        return terms


class MyTermsController(Controller):
    path = "/v1/terms"
    tags = ["terms"]
    guards = [allow(PartyKind.SUPPLIER)]

    @get(summary="My terms (suppliers)")
    async def show(self, request: Request) -> SupplierTerms:
        principal: Principal = request.user
        async with db_of(request).read() as conn:
            return await get_terms(conn, principal.party_id)
