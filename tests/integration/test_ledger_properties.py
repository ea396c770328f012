"""Property 4 under random histories: hypothesis drives sales, failed deliveries, returns,
deposits, payouts, adjustments, replays, conflicting replays, the clock and period closes
against the real ledger, and after every step checks that every entry balances, the trial
balance is zero, every balance equals the sum of its postings (and the model's), and
reconciliation finds no anomaly. A model predicts each refusal (funds, closed period) on its
own, so a wrong bound or a lost replay fails the run."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import defaultdict
from typing import Any

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from exchange import ledger
from exchange.auth.parties import PartyIn, PartyKind, create_party
from exchange.ledger import accounts
from exchange.store.db import Database
from exchange.store.tables import (
    account_balances,
    buyer_accounts,
    journal_entries,
    ledger_accounts,
    ledger_periods,
    postings,
)
from tests.conftest import run

EXAMPLES = 50
STEPS = 12
CURRENCY = "USD"
CREDIT_LIMITS_MINOR = (0, 2_000)  # one prepaid-only buyer, one with credit
START = dt.datetime(2024, 1, 15, tzinfo=dt.timezone.utc)
amounts = st.integers(1, 3_000)
picks = st.integers(0, 1_000)  # an index into whatever list the rule draws from


def _parties(backend) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    async def work(conn):
        made = {}
        for kind in (PartyKind.BUYER, PartyKind.SUPPLIER):
            made[kind] = [
                (await create_party(conn, PartyIn(kind=kind, name=f"{kind.value} {i}"))).id
                for i in range(2)
            ]
        return made[PartyKind.BUYER], made[PartyKind.SUPPLIER]

    return run(backend, work)


class Sale(msgspec.Struct):
    entry: ledger.Entry
    buyer: uuid.UUID
    supplier: uuid.UUID
    price: int
    payout: int
    state: str = "delivered"  # delivered, failed (reversed), returned


def machine(
    backend, buyers: list[uuid.UUID], suppliers: list[uuid.UUID]
) -> type[RuleBasedStateMachine]:
    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.db = Database(backend)
            self.clock = START
            self.net: dict[str, int] = defaultdict(int)  # the model: debits - credits per account
            self.limits = dict(zip(buyers, CREDIT_LIMITS_MINOR, strict=True))
            self.sales: list[Sale] = []
            self.posted: list[ledger.Entry] = []
            self.closed: set[str] = set()
            self.periods: set[str] = set()
            self._db(self._reset)

        def teardown(self) -> None:
            self.loop.run_until_complete(self.db.dispose())
            self.loop.close()

        # -- plumbing ------------------------------------------------------------------------------

        def _db(self, work: Any) -> Any:
            async def main() -> Any:
                async with self.db.write() as conn:
                    return await work(conn)

            return self.loop.run_until_complete(main())

        async def _reset(self, conn) -> None:
            for table in (
                postings,
                account_balances,
                ledger_accounts,
                ledger_periods,
                buyer_accounts,
            ):
                await conn.execute(table.delete())
            await conn.execute(
                journal_entries.delete().where(journal_entries.c.reverses_id.is_not(None))
            )
            await conn.execute(journal_entries.delete())
            for buyer, limit in self.limits.items():
                await conn.execute(
                    buyer_accounts.insert().values(
                        buyer_id=buyer,
                        balance_minor=0,
                        credit_limit_minor=limit,
                        margin=None,
                        penalty_bps=0,
                        last_won_at=None,
                        updated_at=START,
                    )
                )

        def _post(self, entry: ledger.Entry) -> ledger.Posted | ledger.LedgerError:
            try:
                result = self._db(lambda conn: ledger.post_entry(conn, entry, now=self.clock))
            except ledger.LedgerError as exc:
                return exc
            assert not result.replayed
            for p in entry.postings:
                self.net[p.account] += p.amount_minor
            self.posted.append(entry)
            self.periods.add(result.entry.period)
            return result

        def _spendable(self, buyer: uuid.UUID) -> int:
            return self.limits[buyer] - self.net[accounts.buyer(buyer)]

        def _live(self) -> list[Sale]:
            return [s for s in self.sales if s.state == "delivered"]

        # -- money ---------------------------------------------------------------------------------

        @rule(buyer=picks, amount=amounts)
        def deposit(self, buyer: int, amount: int) -> None:
            who = buyers[buyer % len(buyers)]
            assert isinstance(
                self._post(ledger.deposit_entry(uuid.uuid4(), who, amount, CURRENCY)), ledger.Posted
            )

        @rule(buyer=picks, supplier=picks, price=amounts, share=st.integers(0, 100))
        def sale(self, buyer: int, supplier: int, price: int, share: int) -> None:
            b, s = buyers[buyer % len(buyers)], suppliers[supplier % len(suppliers)]
            payout = price * share // 100
            fits = self._spendable(b) >= price
            entry = ledger.sale_entry(uuid.uuid4(), uuid.uuid4(), b, s, price, payout, CURRENCY)
            result = self._post(entry)
            if fits:
                assert isinstance(result, ledger.Posted), result
                self.sales.append(Sale(entry, b, s, price, payout))
            else:
                assert isinstance(result, ledger.InsufficientFunds), result
                assert result.available_minor == self._spendable(b)

        @precondition(lambda self: self._live())
        @rule(pick=picks)
        def delivery_fails(self, pick: int) -> None:
            sale = self._live()[pick % len(self._live())]
            assert isinstance(self._post(ledger.reversal_entry(sale.entry)), ledger.Posted)
            sale.state = "failed"

        @precondition(lambda self: self._live())
        @rule(pick=picks, claw_back=st.booleans())
        def buyer_returns(self, pick: int, claw_back: bool) -> None:
            sale = self._live()[pick % len(self._live())]
            entry = ledger.return_entry(
                sale.entry.sale_id,
                sale.entry.lead_id,
                sale.buyer,
                sale.supplier,
                sale.price,
                sale.payout,
                CURRENCY,
                claw_back_payout=claw_back,
            )
            assert isinstance(self._post(entry), ledger.Posted)
            sale.state = "returned"

        @rule(supplier=picks, amount=amounts)
        def payout(self, supplier: int, amount: int) -> None:
            who = suppliers[supplier % len(suppliers)]
            fits = self.net[accounts.supplier(who)] + amount <= 0  # never more than it is owed
            result = self._post(ledger.payout_entry(uuid.uuid4(), who, amount, CURRENCY))
            assert isinstance(result, ledger.Posted if fits else ledger.InsufficientFunds), result

        @rule(debit=picks, credit=picks, amount=amounts)
        def adjustment(self, debit: int, credit: int, amount: int) -> None:
            codes = [
                *(accounts.buyer(b) for b in buyers),
                *(accounts.supplier(s) for s in suppliers),
                accounts.revenue(CURRENCY),
                accounts.cash(CURRENCY),
            ]
            a, b = codes[debit % len(codes)], codes[credit % len(codes)]
            if a == b:
                return
            legs = [ledger.Posting(a, amount, CURRENCY), ledger.Posting(b, -amount, CURRENCY)]
            entry = ledger.adjustment_entry(uuid.uuid4(), legs, memo="correction")
            assert isinstance(
                self._post(entry), ledger.Posted
            )  # corrections are never refused for funds

        # -- replays, the clock and periods --------------------------------------------------------

        @precondition(lambda self: self.posted)
        @rule(pick=picks)
        def replay(self, pick: int) -> None:
            entry = self.posted[pick % len(self.posted)]
            again = self._db(lambda conn: ledger.post_entry(conn, entry, now=self.clock))
            assert again.replayed and again.entry.id == entry.id

        @precondition(lambda self: self.posted)
        @rule(pick=picks)
        def conflicting_replay(self, pick: int) -> None:
            entry = self.posted[pick % len(self.posted)]
            bigger = tuple(
                msgspec.structs.replace(p, amount_minor=p.amount_minor * 2) for p in entry.postings
            )
            try:
                self._db(
                    lambda conn: ledger.post_entry(
                        conn, msgspec.structs.replace(entry, postings=bigger), now=self.clock
                    )
                )
            except ledger.EntryConflict:
                return
            raise AssertionError("an id reused for other money was accepted")

        @rule(days=st.integers(1, 40))
        def time_passes(self, days: int) -> None:
            self.clock += dt.timedelta(days=days)

        @precondition(
            lambda self: any(p < ledger.period_of(self.clock) for p in self.periods - self.closed)
        )
        @rule()
        def close_oldest_open_period(self) -> None:
            period = min(p for p in self.periods - self.closed if p < ledger.period_of(self.clock))
            assert self._db(lambda conn: ledger.close_period(conn, period, now=self.clock)).closed
            self.closed.add(period)

        @precondition(lambda self: self.periods)
        @rule(pick=picks, amount=amounts)
        def backdated_correction(self, pick: int, amount: int) -> None:
            period = sorted(self.periods)[pick % len(self.periods)]
            legs = [
                ledger.Posting(accounts.cash(CURRENCY), amount, CURRENCY),
                ledger.Posting(accounts.revenue(CURRENCY), -amount, CURRENCY),
            ]
            result = self._post(
                ledger.adjustment_entry(uuid.uuid4(), legs, memo="late", period=period)
            )
            assert isinstance(
                result, ledger.PeriodClosed if period in self.closed else ledger.Posted
            ), result

        # -- what must always hold -----------------------------------------------------------------

        @invariant()
        def books_are_sound(self) -> None:
            delivered = [s.entry.sale_id for s in self.sales if s.state != "failed"]

            async def check(conn) -> tuple[Any, ...]:
                report = await ledger.reconcile(conn, delivered=delivered)
                trial = await ledger.trial_balance(conn)
                stored = {code: await ledger.balance(conn, code) for code in sorted(self.net)}
                return report, trial, stored

            report, trial, stored = self._db(check)
            assert report.ok, report.anomalies  # balanced entries, no drift, each sale charged once
            assert trial.balanced and all(t.difference_minor == 0 for t in trial.totals)
            for code, net in self.net.items():
                kind = accounts.parse(code).kind
                assert stored[code] == ledger.normal_balance(kind, net), code
                if kind is accounts.AccountKind.BUYER:  # no sale ever took a buyer past its credit
                    assert -stored[code] <= self.limits[
                        accounts.parse(code).party_id
                    ] or self._adjusted(code)

        def _adjusted(self, code: str) -> bool:
            # A finance adjustment (or a reversed deposit) may push a buyer past its limit: the
            # bound holds for sales, not for corrections.
            return any(
                e.kind is ledger.EntryKind.ADJUSTMENT and any(p.account == code for p in e.postings)
                for e in self.posted
            )

    return LedgerMachine


def test_random_histories_keep_the_books_sound(backend):
    buyers, suppliers = _parties(backend)
    run_state_machine_as_test(
        machine(backend, buyers, suppliers),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
