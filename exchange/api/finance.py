"""The ledger over HTTP: finance (and operators) read and reconcile the books, record money
received and paid, correct with new entries and close periods; buyers and suppliers read their
own balance and statement."""

from __future__ import annotations

import datetime as dt
import uuid

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from exchange import ledger
from exchange.api.common import db_of
from exchange.auth.middleware import allow
from exchange.auth.parties import PartyKind, Principal, get_party
from exchange.errors import ApiError, FieldProblem, not_found
from exchange.ids import new_id
from exchange.ledger.messages import AdjustmentIn, DepositIn, PayoutIn, ReversalIn

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
CSV_SUFFIX = ".csv"
BUYER_KINDS = frozenset({PartyKind.BUYER, PartyKind.TEAM})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _period(value: str | None, *, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if value is None or not ledger.is_period(value):
        raise ApiError(
            422,
            "validation_failed",
            "the period is a UTC month",
            fields=[FieldProblem("query.period", "YYYY-MM, e.g. 2025-01")],
        )
    return value


def _posted(result: ledger.Posted) -> Response[ledger.Posted]:
    # 201 for an entry posted now, 200 for a replay of one posted before (nothing moved).
    return Response(result, status_code=200 if result.replayed else 201)


def _csv(text: str, filename: str) -> Response[str]:
    return Response(
        text,
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _party_of(request: Request, party_id: uuid.UUID, kinds: frozenset[PartyKind], path: str):  # type: ignore[no-untyped-def]
    async with db_of(request).read() as conn:
        party = await get_party(conn, party_id)
    if party is None or party.kind not in kinds:
        names = " or ".join(sorted(k.value for k in kinds))
        raise ApiError(
            422,
            "validation_failed",
            f"no {names} with this id",
            fields=[FieldProblem(path, f"must name a {names}")],
        )
    return party


class LedgerController(Controller):
    path = "/v1/ledger"
    tags = ["ledger"]
    guards = [allow(PartyKind.FINANCE)]

    @get("/leads/{lead_id:uuid}", summary="Every entry about a lead, oldest first")
    async def lead(
        self, request: Request, lead_id: FromPath[uuid.UUID]
    ) -> list[ledger.LedgerEntry]:
        async with db_of(request).read() as conn:
            return await ledger.lead_ledger(conn, lead_id)

    @get("/entries/{entry_id:uuid}", summary="One entry and its postings")
    async def entry(self, request: Request, entry_id: FromPath[uuid.UUID]) -> ledger.LedgerEntry:
        async with db_of(request).read() as conn:
            found = await ledger.get_entry(conn, entry_id)
        if found is None:
            raise not_found("entry")
        return found

    @post(
        "/entries/{entry_id:uuid}/reverse", summary="Undo an entry with its exact opposite (once)"
    )
    async def reverse(
        self, request: Request, entry_id: FromPath[uuid.UUID], data: JSONBody[ReversalIn]
    ) -> Response[ledger.Posted]:
        principal: Principal = request.user
        async with db_of(request).write() as conn:
            return _posted(
                await ledger.reverse_entry(
                    conn, entry_id, now=_now(), by=principal.party_id, memo=data.memo
                )
            )

    @get("/balances", summary="Accounts over a period: opening, debits, credits, closing")
    async def balances(
        self,
        request: Request,
        party_id: FromQuery[uuid.UUID | None] = None,
        period: FromQuery[str | None] = None,
    ) -> list[ledger.AccountBalance]:
        async with db_of(request).read() as conn:
            return await ledger.balances(conn, party_id=party_id, period=_period(period))

    @get("/trial-balance", summary="Balances at the end of a period; debits equal credits")
    async def trial_balance(
        self, request: Request, period: FromQuery[str | None] = None
    ) -> ledger.TrialBalance:
        async with db_of(request).read() as conn:
            return await ledger.trial_balance(conn, _period(period))

    @get(
        "/statements/{name:str}",
        summary="A party's statement for a period, as CSV: /statements/<party id>.csv",
        media_type=CSV_MEDIA_TYPE,
    )
    async def statement(
        self, request: Request, name: FromPath[str], period: FromQuery[str]
    ) -> Response[str]:
        try:
            party_id = (
                uuid.UUID(name.removesuffix(CSV_SUFFIX)) if name.endswith(CSV_SUFFIX) else None
            )
        except ValueError:
            party_id = None
        if party_id is None:
            raise not_found("statement")
        month = _period(period, required=True)
        assert month is not None
        async with db_of(request).read() as conn:
            if await get_party(conn, party_id) is None:
                raise not_found("party")
            text = await ledger.statement_csv(conn, party_id, month)
        return _csv(text, f"statement-{party_id}-{month}.csv")

    @get("/periods", summary="Periods seen so far and whether each is closed")
    async def periods(self, request: Request) -> list[ledger.PeriodInfo]:
        async with db_of(request).read() as conn:
            return await ledger.list_periods(conn)

    @post(
        "/periods/{period:str}/close",
        status_code=200,
        summary="Close a finished month: it takes no more entries",
    )
    async def close(self, request: Request, period: FromPath[str]) -> ledger.PeriodInfo:
        principal: Principal = request.user
        if not ledger.is_period(period):
            raise ApiError(
                422,
                "validation_failed",
                "the period is a UTC month",
                fields=[FieldProblem("path.period", "YYYY-MM")],
            )
        async with db_of(request).write() as conn:
            return await ledger.close_period(conn, period, now=_now(), by=principal.party_id)

    @get(
        "/reconciliation",
        summary="Pair every delivered sale with one charge and payout; list anomalies",
    )
    async def reconciliation(
        self, request: Request, period: FromQuery[str | None] = None
    ) -> ledger.Reconciliation:
        async with db_of(request).read() as conn:
            return await ledger.reconcile(conn, _period(period))

    @post("/deposits", summary="Record money received from a buyer; `id` makes it idempotent")
    async def deposit(self, request: Request, data: JSONBody[DepositIn]) -> Response[ledger.Posted]:
        principal: Principal = request.user
        party = await _party_of(request, data.buyer_id, BUYER_KINDS, "buyer_id")
        entry = ledger.deposit_entry(
            data.id or new_id(), data.buyer_id, data.amount_minor, party.currency, memo=data.memo
        )
        async with db_of(request).write() as conn:
            return _posted(await ledger.post_entry(conn, entry, now=_now(), by=principal.party_id))

    @post("/payouts", summary="Record money paid to a supplier (at most what it is owed)")
    async def payout(self, request: Request, data: JSONBody[PayoutIn]) -> Response[ledger.Posted]:
        principal: Principal = request.user
        party = await _party_of(
            request, data.supplier_id, frozenset({PartyKind.SUPPLIER}), "supplier_id"
        )
        entry = ledger.payout_entry(
            data.id or new_id(), data.supplier_id, data.amount_minor, party.currency, memo=data.memo
        )
        async with db_of(request).write() as conn:
            return _posted(await ledger.post_entry(conn, entry, now=_now(), by=principal.party_id))

    @post("/adjustments", summary="A balanced correction between any accounts, with a reason")
    async def adjustment(
        self, request: Request, data: JSONBody[AdjustmentIn]
    ) -> Response[ledger.Posted]:
        principal: Principal = request.user
        entry = ledger.adjustment_entry(
            data.id or new_id(),
            [ledger.Posting(p.account, p.amount_minor, p.currency) for p in data.postings],
            memo=data.memo,
            lead_id=data.lead_id,
            sale_id=data.sale_id,
            period=data.period,
        )
        async with db_of(request).write() as conn:
            return _posted(await ledger.post_entry(conn, entry, now=_now(), by=principal.party_id))


class MyLedgerController(Controller):
    """A buyer, team or supplier reads its own account; nobody else's."""

    path = "/v1/ledger/me"
    tags = ["ledger"]
    guards = [allow(PartyKind.BUYER, PartyKind.TEAM, PartyKind.SUPPLIER)]

    @get(
        "/balance",
        summary="My account: opening, debits, credits, closing (over a period, or all time)",
    )
    async def balance(
        self, request: Request, period: FromQuery[str | None] = None
    ) -> list[ledger.AccountBalance]:
        principal: Principal = request.user
        async with db_of(request).read() as conn:
            return await ledger.balances(conn, party_id=principal.party_id, period=_period(period))

    @get("/statement.csv", summary="My statement for a period, as CSV", media_type=CSV_MEDIA_TYPE)
    async def statement(self, request: Request, period: FromQuery[str]) -> Response[str]:
        principal: Principal = request.user
        month = _period(period, required=True)
        assert month is not None
        async with db_of(request).read() as conn:
            text = await ledger.statement_csv(conn, principal.party_id, month)
        return _csv(text, f"statement-{month}.csv")
