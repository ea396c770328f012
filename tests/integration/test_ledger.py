"""The ledger on SQLite and PostgreSQL: idempotent posting, conflicts, closed periods, funds
bounds under concurrency, reports, reconciliation, the finance API and its scoping, the CLI."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import threading
import uuid
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from exchange import ledger
from exchange.auth.parties import PartyIn, PartyKind, create_party
from exchange.ids import new_id
from exchange.intake.verticals import seed as seed_verticals
from exchange.ledger.reconcile import (
    BALANCE_DRIFT,
    CHARGE_WITHOUT_DELIVERY,
    DELIVERY_WITHOUT_CHARGE,
    UNBALANCED_ENTRY,
)
from exchange.store.db import Database
from exchange.store.tables import (
    account_balances,
    journal_entries,
    leads,
    postings,
    sales,
    verticals,
)
from tests.conftest import decode, run
from tests.market import add_campaign, fund

PAST = "2020-01"  # long over: it may be closed


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_party(settings, kind: PartyKind, currency: str = "USD") -> uuid.UUID:
    async def work(conn):
        return (await create_party(conn, PartyIn(kind=kind, name=kind.value, currency=currency))).id

    return run(settings, work)


def post(settings, entry: ledger.Entry, **kw: Any) -> ledger.Posted:
    return run(settings, lambda conn: ledger.post_entry(conn, entry, now=now(), **kw))


def read(settings, fn, *args: Any, **kw: Any) -> Any:
    return run(settings, lambda conn: fn(conn, *args, **kw))


def count(settings, table: sa.Table) -> int:
    return run(
        settings, lambda c: c.execute(sa.select(sa.func.count()).select_from(table))
    ).scalar_one()


@pytest.fixture
def market(backend):
    """A buyer and a supplier with accounts in USD."""
    return backend, new_party(backend, PartyKind.BUYER), new_party(backend, PartyKind.SUPPLIER)


def sale(buyer, supplier, price=1_000, payout=800, sale_id=None, lead_id=None) -> ledger.Entry:
    return ledger.sale_entry(
        sale_id or new_id(), lead_id or new_id(), buyer, supplier, price, payout, "USD"
    )


# --- posting -------------------------------------------------------------------------------------


def test_a_replayed_entry_posts_once(market):
    settings, buyer, supplier = market
    post(settings, ledger.deposit_entry(new_id(), buyer, 5_000, "USD"))
    charge = sale(buyer, supplier)
    first = post(settings, charge)
    # Given the delivery is retried and posts the same sale again (another memo, same money)
    again = post(settings, msgspec.structs.replace(charge, memo="retry 2"))
    assert (first.replayed, again.replayed) == (False, True)
    assert again.entry.id == first.entry.id and again.entry.memo == first.entry.memo
    assert count(settings, journal_entries) == 2 and count(settings, postings) == 5
    assert read(settings, ledger.balance, f"buyer:{buyer}") == 4_000  # charged once
    assert read(settings, ledger.balance, f"supplier:{supplier}") == 800
    assert read(settings, ledger.balance, "exchange:revenue:USD") == 200
    assert read(settings, ledger.balance, "exchange:cash:USD") == 5_000


def test_an_id_reused_for_other_money_is_a_conflict(market):
    settings, buyer, supplier = market
    post(settings, ledger.deposit_entry(new_id(), buyer, 5_000, "USD"))
    charge = sale(buyer, supplier)
    post(settings, charge)
    other = ledger.sale_entry(charge.sale_id, charge.lead_id, buyer, supplier, 1_500, 800, "USD")
    with pytest.raises(ledger.EntryConflict) as caught:
        post(settings, other)
    assert caught.value.body.code == "entry_conflict"
    assert read(settings, ledger.balance, f"buyer:{buyer}") == 4_000


def test_a_closed_period_takes_no_entries_but_replays_still_answer(market):
    settings, buyer, _ = market
    old = msgspec.structs.replace(ledger.deposit_entry(new_id(), buyer, 700, "USD"), period=PAST)
    assert post(settings, old).entry.period == PAST
    closed = read(settings, ledger.close_period, PAST, now=now())
    assert (
        closed.closed
        and read(settings, ledger.close_period, PAST, now=now()).closed_at == closed.closed_at
    )
    late = msgspec.structs.replace(ledger.deposit_entry(new_id(), buyer, 50, "USD"), period=PAST)
    with pytest.raises(ledger.PeriodClosed):
        post(settings, late)
    assert post(settings, old).replayed  # the entry is there; a retry is told so
    # The correction goes into an open period (this month).
    fix = ledger.adjustment_entry(
        new_id(),
        [
            ledger.Posting(f"buyer:{buyer}", 50, "USD"),
            ledger.Posting("exchange:cash:USD", -50, "USD"),
        ],
        memo="deposit was 650, not 700",
    )
    assert post(settings, fix).entry.period == ledger.period_of(now())
    with pytest.raises(ledger.LedgerError) as caught:
        read(settings, ledger.close_period, ledger.period_of(now()), now=now())
    assert caught.value.body.code == "period_not_over"
    future = msgspec.structs.replace(fix, id=new_id(), period="2999-01")
    with pytest.raises(ledger.InvalidEntry):
        post(settings, future)


def test_a_buyer_cannot_go_below_minus_its_credit_limit(market):
    settings, buyer, supplier = market
    fund(settings, buyer, 0, credit_minor=500)  # the operator's terms: 500 of credit
    post(settings, ledger.deposit_entry(new_id(), buyer, 1_000, "USD"))
    post(settings, sale(buyer, supplier, price=1_200, payout=1_000))  # down to -200

    async def refused_then_cheaper(conn):
        with pytest.raises(ledger.InsufficientFunds) as caught:
            await ledger.post_entry(conn, sale(buyer, supplier, price=400, payout=300), now=now())
        assert caught.value.body.code == ledger.INSUFFICIENT_BALANCE
        assert (caught.value.amount_minor, caught.value.available_minor) == (400, 300)
        # The same transaction goes on, as the auction's does when it tries the next bid.
        return await ledger.post_entry(
            conn, sale(buyer, supplier, price=300, payout=200), now=now()
        )

    assert not run(settings, refused_then_cheaper).replayed
    assert read(settings, ledger.balance, f"buyer:{buyer}") == -500
    assert read(settings, ledger.spendable, buyer) == 0
    assert count(settings, journal_entries) == 3  # the refused sale left nothing behind
    # A caller holding the terms already may pass them; here: more credit, one more sale.
    post(settings, sale(buyer, supplier, price=100, payout=50), credit_limits_minor={buyer: 600})
    assert read(settings, ledger.balance, f"buyer:{buyer}") == -600


def test_a_supplier_is_paid_at_most_what_it_is_owed(market):
    settings, buyer, supplier = market
    post(settings, ledger.deposit_entry(new_id(), buyer, 1_000, "USD"))
    charge = sale(buyer, supplier, price=1_000, payout=800)
    post(settings, charge)
    with pytest.raises(ledger.InsufficientFunds):
        post(settings, ledger.payout_entry(new_id(), supplier, 801, "USD"))
    post(settings, ledger.payout_entry(new_id(), supplier, 800, "USD"))
    # A return after the payout claws it back anyway: the supplier now owes 800.
    back = ledger.return_entry(
        charge.sale_id, charge.lead_id, buyer, supplier, 1_000, 800, "USD", claw_back_payout=True
    )
    post(settings, back)
    assert read(settings, ledger.balance, f"supplier:{supplier}") == -800
    assert read(settings, ledger.balance, f"buyer:{buyer}") == 1_000


def test_accounts_belong_to_parties_of_the_right_kind_and_currency(market):
    settings, buyer, supplier = market
    with pytest.raises(ledger.InvalidEntry) as caught:
        post(
            settings, ledger.deposit_entry(new_id(), supplier, 100, "USD")
        )  # a supplier is no buyer
    assert [f.path for f in caught.value.body.fields] == ["postings[1].account"]
    with pytest.raises(ledger.InvalidEntry) as caught:
        post(settings, ledger.deposit_entry(new_id(), buyer, 100, "EUR"))
    assert [f.path for f in caught.value.body.fields] == ["postings[1].currency"]
    assert count(settings, journal_entries) == 0


def test_a_reversal_undoes_once(market):
    settings, buyer, supplier = market
    post(settings, ledger.deposit_entry(new_id(), buyer, 1_000, "USD"))
    charge = sale(buyer, supplier)
    post(settings, charge)
    undo = read(settings, ledger.reverse_entry, charge.id, now=now(), memo="delivery failed")
    assert undo.entry.reverses_id == charge.id
    assert read(settings, ledger.reverse_entry, charge.id, now=now()).replayed
    with pytest.raises(ledger.InvalidEntry):
        read(settings, ledger.reverse_entry, undo.entry.id, now=now())
    assert read(settings, ledger.balance, f"buyer:{buyer}") == 1_000
    assert [e.kind for e in read(settings, ledger.lead_ledger, charge.lead_id)] == [
        ledger.EntryKind.SALE,
        ledger.EntryKind.REVERSAL,
    ]


# --- concurrency ---------------------------------------------------------------------------------

THREADS = 12


def _in_threads(settings, jobs: list) -> list[Any]:
    """Each job(conn) in its own thread, loop, pool and transaction, all released at once."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def worker(i: int) -> None:
        async def main() -> Any:
            db = Database(settings)
            try:
                await db.ping()
                barrier.wait()
                async with db.write() as conn:
                    return await jobs[i](conn)
            except ledger.LedgerError as exc:
                return exc
            finally:
                await db.dispose()

        results[i] = asyncio.run(main())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_concurrent_charges_never_take_a_buyer_below_its_credit(market):
    settings, buyer, supplier = market
    fund(settings, buyer, 0, credit_minor=500)
    post(settings, ledger.deposit_entry(new_id(), buyer, 1_000, "USD"))
    price = 300  # 1 000 + 500 of credit: exactly five sales fit

    def job(_: int):
        return lambda conn: ledger.post_entry(
            conn, sale(buyer, supplier, price=price, payout=200), now=now()
        )

    results = _in_threads(settings, [job(i) for i in range(THREADS)])
    posted = [r for r in results if isinstance(r, ledger.Posted)]
    refused = [r for r in results if isinstance(r, ledger.InsufficientFunds)]
    assert (len(posted), len(refused)) == (5, THREADS - 5), results
    assert read(settings, ledger.balance, f"buyer:{buyer}") == -500
    assert read(settings, ledger.trial_balance).balanced
    assert read(settings, ledger.reconcile, delivered=[p.entry.sale_id for p in posted]).ok


def test_concurrent_replays_of_one_entry_post_it_once(market):
    settings, buyer, supplier = market
    post(settings, ledger.deposit_entry(new_id(), buyer, 10_000, "USD"))
    charge = sale(buyer, supplier)
    results = _in_threads(
        settings, [lambda conn: ledger.post_entry(conn, charge, now=now())] * THREADS
    )
    assert sorted(r.replayed for r in results) == [False] + [True] * (THREADS - 1), results
    assert read(settings, ledger.balance, f"buyer:{buyer}") == 9_000


# --- reports -------------------------------------------------------------------------------------


def test_balances_trial_balance_and_statement(market):
    settings, buyer, supplier = market
    old = msgspec.structs.replace(
        ledger.deposit_entry(new_id(), buyer, 2_000, "USD", memo="=wire in"), period=PAST
    )
    post(settings, old)
    charge = sale(buyer, supplier, price=1_500, payout=1_000)
    post(settings, charge)
    month = ledger.period_of(now())

    [mine] = read(settings, ledger.balances, party_id=buyer, period=month)
    assert (mine.opening_minor, mine.debits_minor, mine.credits_minor, mine.closing_minor) == (
        2_000,
        1_500,
        0,
        500,
    )
    assert mine.normal_side is ledger.Side.CREDIT
    [then] = read(settings, ledger.balances, party_id=buyer, period=PAST)
    assert (then.opening_minor, then.credits_minor, then.closing_minor) == (0, 2_000, 2_000)
    everything = {b.account: b.closing_minor for b in read(settings, ledger.balances)}
    assert everything == {
        f"buyer:{buyer}": 500,
        f"supplier:{supplier}": 1_000,
        "exchange:revenue:USD": 500,
        "exchange:cash:USD": 2_000,
    }

    trial = read(settings, ledger.trial_balance)
    assert trial.balanced and trial.totals[0].debits_minor == trial.totals[0].credits_minor == 2_000
    assert [t.difference_minor for t in read(settings, ledger.trial_balance, PAST).totals] == [0]

    rows = list(csv.DictReader(io.StringIO(read(settings, ledger.statement_csv, buyer, month))))
    assert [r["kind"] for r in rows] == ["opening", "sale", "closing"]
    assert [r["balance_minor"] for r in rows] == ["2000", "500", "500"]
    assert rows[1]["debit_minor"] == "1500" and rows[1]["sale_id"] == str(charge.sale_id)
    past_rows = list(csv.DictReader(io.StringIO(read(settings, ledger.statement_csv, buyer, PAST))))
    assert past_rows[1]["memo"] == "'=wire in"  # no formula runs in finance's spreadsheet


# --- reconciliation against the sales table ------------------------------------------------------


def _sale_row(settings, buyer, supplier, price=1_000, payout=800) -> tuple[uuid.UUID, uuid.UUID]:
    """A delivered sale as the auction records it (a lead, a campaign, a sales row)."""
    campaign_id = uuid.UUID(add_campaign(settings, buyer))
    lead_id, sale_id = new_id(), new_id()

    async def work(conn):
        vertical_id = (
            await conn.execute(sa.select(verticals.c.id).where(verticals.c.slug == "solar"))
        ).scalar_one()
        await conn.execute(
            leads.insert().values(
                id=lead_id,
                vertical_id=vertical_id,
                vertical_version=1,
                supplier_id=supplier,
                status="sold",
                test=False,
                fields={},
                created_at=now(),
            )
        )
        await conn.execute(
            sales.insert().values(
                id=sale_id,
                lead_id=lead_id,
                campaign_id=campaign_id,
                buyer_id=buyer,
                supplier_id=supplier,
                price_minor=price,
                payout_minor=payout,
                margin_minor=price - payout,
                currency="USD",
                created_at=now(),
            )
        )

    run(settings, work)
    return sale_id, lead_id


def test_reconciliation_pairs_sales_and_lists_every_anomaly(market):
    settings, buyer, supplier = market
    run(settings, lambda conn: seed_verticals(conn, fields_max=200))
    post(settings, ledger.deposit_entry(new_id(), buyer, 100_000, "USD"))
    paired, lead = _sale_row(settings, buyer, supplier)
    post(settings, sale(buyer, supplier, sale_id=paired, lead_id=lead))
    assert read(settings, ledger.reconcile).ok
    assert read(settings, ledger.reconcile, ledger.period_of(now())).sales_checked == 1

    never_charged, _ = _sale_row(settings, buyer, supplier)
    stray = sale(buyer, supplier)  # a charge with no sale behind it
    post(settings, stray)

    async def tamper(conn):
        await conn.execute(
            account_balances.update()
            .where(account_balances.c.account_code == f"supplier:{supplier}")
            .values(balance_minor=account_balances.c.balance_minor - 1)
        )
        await conn.execute(
            postings.update()
            .where(postings.c.entry_id == stray.id, postings.c.line == 0)
            .values(amount_minor=999)
        )

    run(settings, tamper)
    report = read(settings, ledger.reconcile)
    found = {(a.code, a.sale_id or a.entry_id or a.account) for a in report.anomalies}
    assert found == {
        (DELIVERY_WITHOUT_CHARGE, never_charged),
        (CHARGE_WITHOUT_DELIVERY, stray.sale_id),
        (UNBALANCED_ENTRY, stray.id),
        (BALANCE_DRIFT, f"supplier:{supplier}"),
        (BALANCE_DRIFT, f"buyer:{buyer}"),  # the tampered posting no longer sums to its balance
    }
    assert not report.ok


# --- the finance API -----------------------------------------------------------------------------


@pytest.fixture
def finance(exchange):
    return (
        exchange,
        exchange.new_party(PartyKind.FINANCE, "Finance"),
        exchange.new_party(PartyKind.BUYER, "Buyer"),
        exchange.new_party(PartyKind.SUPPLIER, "Supplier"),
    )


def test_finance_records_deposits_idempotently_and_reads_the_books(finance):
    exchange, fin, buyer, supplier = finance
    client = exchange.client
    key = str(uuid.uuid4())
    body = {"buyer_id": str(buyer.id), "amount_minor": 5_000, "memo": "wire 42", "id": key}
    r = client.post("/v1/ledger/deposits", json=body, headers=fin.headers)
    assert r.status_code == 201, r.text
    assert decode(r)["entry"]["id"] == key and decode(r)["replayed"] is False
    r = client.post("/v1/ledger/deposits", json=body, headers=fin.headers)
    assert (r.status_code, decode(r)["replayed"]) == (200, True)
    r = client.post(
        "/v1/ledger/deposits", json={**body, "amount_minor": 6_000}, headers=fin.headers
    )
    assert (r.status_code, decode(r)["error"]["code"]) == (409, "entry_conflict")
    r = client.post(
        "/v1/ledger/deposits",
        json={**body, "buyer_id": str(supplier.id), "id": None},
        headers=fin.headers,
    )
    assert (r.status_code, decode(r)["error"]["fields"][0]["path"]) == (422, "buyer_id")

    charge = sale(buyer.id, supplier.id, price=2_000, payout=1_500)
    post(exchange.settings, charge)
    entries = decode(client.get(f"/v1/ledger/leads/{charge.lead_id}", headers=fin.headers))
    assert [(p["account"], p["amount_minor"]) for p in entries[0]["postings"]] == [
        (f"buyer:{buyer.id}", 2_000),
        (f"supplier:{supplier.id}", -1_500),
        ("exchange:revenue:USD", -500),
    ]
    balances = decode(
        client.get("/v1/ledger/balances", params={"party_id": str(buyer.id)}, headers=fin.headers)
    )
    assert [b["closing_minor"] for b in balances] == [3_000]
    trial = decode(client.get("/v1/ledger/trial-balance", headers=fin.headers))
    assert trial["balanced"] and trial["totals"][0]["difference_minor"] == 0
    month = ledger.period_of(now())
    r = client.get(
        f"/v1/ledger/statements/{buyer.id}.csv", params={"period": month}, headers=fin.headers
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert [row["kind"] for row in csv.DictReader(io.StringIO(r.text))] == [
        "opening",
        "deposit",
        "sale",
        "closing",
    ]
    assert (
        client.get(
            f"/v1/ledger/statements/{buyer.id}.txt", params={"period": month}, headers=fin.headers
        ).status_code
        == 404
    )
    r = client.get(
        f"/v1/ledger/statements/{buyer.id}.csv", params={"period": "2025-13"}, headers=fin.headers
    )
    assert (r.status_code, decode(r)["error"]["fields"][0]["path"]) == (422, "query.period")
    recon = decode(
        client.get("/v1/ledger/reconciliation", params={"period": month}, headers=fin.headers)
    )
    # No sales row behind this charge (the auction was not involved): finance sees it.
    assert [a["code"] for a in recon["anomalies"]] == [CHARGE_WITHOUT_DELIVERY] and not recon["ok"]


def test_adjustments_payouts_reversals_and_period_close(finance):
    exchange, fin, buyer, supplier = finance
    client = exchange.client
    unbalanced = {
        "postings": [
            {"account": f"buyer:{buyer.id}", "amount_minor": -100, "currency": "USD"},
            {"account": "exchange:cash:USD", "amount_minor": 90, "currency": "USD"},
        ],
        "memo": "goodwill",
    }
    r = client.post("/v1/ledger/adjustments", json=unbalanced, headers=fin.headers)
    assert (r.status_code, [f["path"] for f in decode(r)["error"]["fields"]]) == (422, ["postings"])
    goodwill = {
        **unbalanced,
        "postings": [
            unbalanced["postings"][0],
            {"account": "exchange:revenue:USD", "amount_minor": 100, "currency": "USD"},
        ],
    }
    r = client.post("/v1/ledger/adjustments", json=goodwill, headers=fin.headers)
    assert r.status_code == 201, r.text
    entry_id = decode(r)["entry"]["id"]
    r = client.post(
        "/v1/ledger/payouts",
        json={"supplier_id": str(supplier.id), "amount_minor": 1},
        headers=fin.headers,
    )
    assert (r.status_code, decode(r)["error"]["code"]) == (409, "insufficient_balance")
    r = client.post(
        f"/v1/ledger/entries/{entry_id}/reverse", json={"memo": "wrong buyer"}, headers=fin.headers
    )
    assert r.status_code == 201 and decode(r)["entry"]["reverses_id"] == entry_id
    assert client.get(f"/v1/ledger/entries/{entry_id}", headers=fin.headers).status_code == 200

    r = client.post(f"/v1/ledger/periods/{PAST}/close", headers=fin.headers)
    assert r.status_code == 200 and decode(r)["closed"] is True
    r = client.post(
        "/v1/ledger/adjustments", json={**goodwill, "period": PAST}, headers=fin.headers
    )
    assert (r.status_code, decode(r)["error"]["code"]) == (409, "period_closed")
    r = client.post(f"/v1/ledger/periods/{ledger.period_of(now())}/close", headers=fin.headers)
    assert (r.status_code, decode(r)["error"]["code"]) == (409, "period_not_over")
    assert client.post("/v1/ledger/periods/2020-1/close", headers=fin.headers).status_code == 422
    assert [p["period"] for p in decode(client.get("/v1/ledger/periods", headers=fin.headers))] == [
        PAST,
        ledger.period_of(now()),
    ]
    # Operators are admitted everywhere finance is.
    assert (
        client.get("/v1/ledger/trial-balance", headers=exchange.operator.headers).status_code == 200
    )


def test_each_party_reads_only_its_own_account(finance):
    exchange, fin, buyer, supplier = finance
    client = exchange.client
    other = exchange.new_party(PartyKind.BUYER, "Other buyer")
    post(exchange.settings, ledger.deposit_entry(new_id(), buyer.id, 900, "USD"))
    post(exchange.settings, ledger.deposit_entry(new_id(), other.id, 50, "USD"))
    post(exchange.settings, sale(buyer.id, supplier.id, price=900, payout=600))
    month = ledger.period_of(now())

    mine = decode(client.get("/v1/ledger/me/balance", headers=buyer.headers))
    assert [(b["account"], b["closing_minor"]) for b in mine] == [(f"buyer:{buyer.id}", 0)]
    theirs = decode(client.get("/v1/ledger/me/balance", headers=supplier.headers))
    assert [(b["account"], b["closing_minor"]) for b in theirs] == [
        (f"supplier:{supplier.id}", 600)
    ]
    r = client.get(
        "/v1/ledger/me/statement.csv", params={"period": month}, headers=supplier.headers
    )
    assert r.status_code == 200 and str(buyer.id) not in r.text and "600" in r.text

    for path in (
        "/v1/ledger/balances",
        f"/v1/ledger/statements/{other.id}.csv?period={month}",
        "/v1/ledger/trial-balance",
        "/v1/ledger/reconciliation",
    ):
        r = client.get(path, headers=buyer.headers)
        assert (r.status_code, decode(r)["error"]["code"]) == (403, "forbidden"), path
    r = client.post(
        "/v1/ledger/deposits",
        json={"buyer_id": str(buyer.id), "amount_minor": 10**6},
        headers=buyer.headers,
    )
    assert r.status_code == 403
    assert (
        client.get("/v1/ledger/me/balance", headers=fin.headers).status_code == 403
    )  # finance has no account


# --- the CLI -------------------------------------------------------------------------------------


def test_cli_trial_balance_reconcile_statement_and_close(tmp_path):
    from exchange.settings import load_settings
    from exchange.store import migrate
    from tests.integration.test_cli import cli

    settings = load_settings(
        env={}, database_url=f"sqlite:///{tmp_path}/cli.db", secret_key="s", var_dir=str(tmp_path)
    )
    migrate.upgrade(settings)
    buyer, supplier = new_party(settings, PartyKind.BUYER), new_party(settings, PartyKind.SUPPLIER)
    post(settings, ledger.deposit_entry(new_id(), buyer, 1_000, "USD"))
    month = ledger.period_of(now())

    trial = cli(settings, "ledger", "trial-balance")
    assert trial.returncode == 0 and "balanced" in trial.stdout, trial.stderr
    assert cli(settings, "ledger", "reconcile", "--period", month).returncode == 0
    out = tmp_path / "statement.csv"
    assert (
        cli(
            settings,
            "ledger",
            "statement",
            "--party",
            str(buyer),
            "--period",
            month,
            "--out",
            str(out),
        ).returncode
        == 0
    )
    assert [r["kind"] for r in csv.DictReader(out.open())] == ["opening", "deposit", "closing"]
    assert cli(settings, "ledger", "close-period", PAST).returncode == 0
    assert cli(settings, "ledger", "close-period", month).returncode == 1  # not over yet

    post(settings, sale(buyer, supplier))  # charged, never delivered
    rec = cli(settings, "ledger", "reconcile")
    assert rec.returncode == 1 and CHARGE_WITHOUT_DELIVERY in rec.stdout
