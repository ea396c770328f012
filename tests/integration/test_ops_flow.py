"""GET /v1/ops/flow on SQLite and PostgreSQL: leads sold through the real flow (direct posts to
a fixed-price campaign) counted per UTC minute with their revenue, the window's edges, team
queues and outboxes, pings per buyer from the collectors, bounds and scoping."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from exchange import metrics
from exchange.auth.parties import PartyKind
from exchange.ids import new_id
from exchange.reports import flow
from exchange.store.tables import campaigns, lead_owners, leads, notifications
from tests.conftest import decode, run
from tests.integration.test_intake_api import solar_lead
from tests.market import add_campaign, fund

PRICE = 3000  # the buyer's fixed price, in cents


def _direct(exchange, supplier, n: int, status: str, **extra: Any) -> str:
    fields = solar_lead(phone=f"212-555-04{n:02d}", email=f"flow{n}@example.com")["fields"]
    r = exchange.client.post("/v1/leads", json=solar_lead() | {"fields": fields, **extra}, headers=supplier.headers)
    assert r.status_code == 201 and decode(r)["status"] == status, r.text
    return decode(r)["lead_id"]


def _move(settings, lead_id: str, when: dt.datetime) -> None:
    run(settings, lambda c: c.execute(leads.update().where(leads.c.id == uuid.UUID(lead_id)).values(created_at=when)))


def _flow(exchange, status: int = 200, headers=None, **params: Any) -> Any:
    r = exchange.client.get("/v1/ops/flow", params=params, headers=headers or exchange.operator.headers)
    assert r.status_code == status, r.text
    return decode(r)


def _minute(when: dt.datetime) -> str:
    return when.replace(second=0, microsecond=0).isoformat().replace("+00:00", "Z")


@pytest.fixture
def private_collectors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fresh ping collectors: other tests' pings in this process do not show."""
    registry = CollectorRegistry()
    monkeypatch.setattr(metrics, "PINGS", Counter("exchange_pings", "", ["buyer", "outcome"], registry=registry))
    monkeypatch.setattr(metrics, "PING_TIMEOUTS", Counter("exchange_ping_timeouts", "", ["buyer"], registry=registry))
    latency = Histogram("exchange_ping_latency_seconds", "", ["buyer"], registry=registry,
                        buckets=metrics.BUYER_LATENCY_BUCKETS)  # fmt: skip
    monkeypatch.setattr(metrics, "PING_LATENCY", latency)


def test_the_flow_counts_each_minute_s_leads_sales_and_revenue(exchange, private_collectors):
    exchange.seed_verticals()
    supplier_name = "Sunny Leads"
    supplier = exchange.new_party(PartyKind.SUPPLIER, supplier_name)
    buyer = exchange.new_party(PartyKind.BUYER, "Acme Solar")
    team = exchange.new_party(PartyKind.TEAM, "Night desk")
    fund(exchange.settings, buyer.id, 100_000)
    add_campaign(exchange.settings, buyer.id, fixed_price_minor=PRICE)
    now = dt.datetime.now(dt.UTC)

    sold_now = _direct(exchange, supplier, 1, "sold")
    sold_earlier = _direct(exchange, supplier, 2, "sold")
    too_old = _direct(exchange, supplier, 3, "sold")
    run(exchange.settings, lambda c: c.execute(campaigns.update().values(active=False)))
    unsold = _direct(exchange, supplier, 4, "unsold")
    _direct(exchange, supplier, 5, "unsold", test=True)  # test leads never count
    earlier = now - dt.timedelta(minutes=3)
    _move(exchange.settings, sold_earlier, earlier)
    _move(exchange.settings, too_old, now - dt.timedelta(minutes=90))
    out = _flow(exchange, minutes=60)
    assert out["minutes"] == 60 and len(out["buckets"]) == 60
    firsts = [dt.datetime.fromisoformat(b["minute"]) for b in out["buckets"]]
    assert all(b - a == dt.timedelta(minutes=1) for a, b in zip(firsts, firsts[1:], strict=False))
    assert out["from"] == out["buckets"][0]["minute"]
    assert out["totals"] == {
        "received": 3, "sold": 2, "unsold": 1, "other": 0, "sold_rate_bps": 6666,
        "by_currency": [{"currency": "USD", "sales": 2, "revenue_minor": 2 * PRICE, "average_price_minor": PRICE}],
    }  # fmt: skip
    by_minute = {b["minute"]: b for b in out["buckets"]}
    assert by_minute[_minute(earlier)] == {
        "minute": _minute(earlier), "received": 1, "sold": 1, "unsold": 0, "sales": 1,
        "revenue_minor": {"USD": PRICE},
    }  # fmt: skip
    assert sum(b["received"] for b in out["buckets"]) == 3

    recent = out["recent"]  # newest first, test leads too, whenever they arrived
    assert [r["lead_id"] for r in recent[1:]] == [unsold, too_old, sold_earlier, sold_now]
    assert recent[0]["test"] is True and recent[1]["test"] is False
    assert {(r["supplier"], r["vertical"], r["channel"]) for r in recent} == {(supplier_name, "solar", "api")}
    assert [r["status"] for r in recent[1:]] == ["unsold", "sold", "sold", "sold"]

    wider = _flow(exchange, minutes=120)
    assert len(wider["buckets"]) == 120
    assert (wider["totals"]["received"], wider["totals"]["sold"]) == (4, 3)
    assert wider["totals"]["by_currency"][0]["revenue_minor"] == 3 * PRICE
    assert _flow(exchange, minutes=1)["totals"]["received"] <= 3  # only this minute's

    # Queues: a lead waiting in a team's queue, a notification still to send.
    queued_at = now - dt.timedelta(minutes=7)

    async def waiting(conn):
        await conn.execute(lead_owners.insert().values(
            lead_id=uuid.UUID(unsold), team_id=team.id, agent_id=None, status="queued", version=1,
            candidates=None, past_owners=[], reason="nobody_eligible", queued_at=queued_at,
            owned_since=None, first_contact_at=None, reassign_count=0, updated_at=queued_at,
        ))  # fmt: skip
        await conn.execute(notifications.insert().values(
            id=uuid.uuid4(), key="flow-test", team_id=team.id, lead_id=uuid.UUID(unsold), party_id=None,
            event="offered", channel="email", address="desk@example.com", payload={}, status="pending",
            attempts=0, next_attempt_at=now, created_at=queued_at,
        ))  # fmt: skip

    run(exchange.settings, waiting)
    out = _flow(exchange)
    assert out["minutes"] == 60  # the default
    assert out["teams"] == [{"team_id": str(team.id), "name": "Night desk", "queued": 1, "offered": 0,
                             "oldest_queued_at": queued_at.isoformat().replace("+00:00", "Z")}]  # fmt: skip
    boxes = {b["name"]: b for b in out["outboxes"]}
    assert boxes["notifications"]["pending"] == 1
    assert dt.datetime.fromisoformat(boxes["notifications"]["oldest_at"]) == queued_at
    assert boxes["deliveries"] == {"name": "deliveries", "pending": 0, "oldest_at": None}
    assert [q["queue"] for q in out["broker"]] == list(metrics.queue_names())

    # Pings: from this process's collectors, named after their parties.
    for latency_ms in (40, 60, 80):
        metrics.ping_answered(str(buyer.id), "bid", latency_ms)
    metrics.ping_answered(str(buyer.id), "timeout", 1000)
    metrics.ping_answered(str(buyer.id), "error", None)
    metrics.ping_answered("sim-buyer", "rejected", 5)
    out = _flow(exchange)
    assert out["buyers"] == [
        {"buyer_id": str(buyer.id), "name": "Acme Solar", "pings": 5, "bids": 3, "rejected": 0,
         "errors": 1, "timeouts": 1, "latency_avg_ms": 295, "latency_p95_ms": 1000},
        {"buyer_id": "sim-buyer", "name": None, "pings": 1, "bids": 0, "rejected": 1, "errors": 0,
         "timeouts": 0, "latency_avg_ms": 5, "latency_p95_ms": 5},
    ]  # fmt: skip


def test_the_window_is_bounded_and_operators_only(exchange):
    for bad in (0, 1441, -5):
        error = _flow(exchange, 422, minutes=bad)["error"]
        assert error["fields"] == [{"path": "query.minutes", "reason": "between 1 and 1440"}]
    assert len(_flow(exchange, minutes=1440)["buckets"]) == 1440
    for kind in (PartyKind.SUPPLIER, PartyKind.BUYER, PartyKind.FINANCE, PartyKind.AGENT):
        if kind is PartyKind.AGENT:
            team = exchange.new_party(PartyKind.TEAM)
            party = exchange.new_party(kind, team_id=team.id)
        else:
            party = exchange.new_party(kind)
        _flow(exchange, 403, headers=party.headers)


def test_ping_stats_list_the_most_pinged_buyers_first_and_at_most_fifty():
    registry = CollectorRegistry()
    answers = Counter("pings", "", ["buyer", "outcome"], registry=registry)
    latency = Histogram("lat", "", ["buyer"], registry=registry, buckets=(0.01, 0.1, 1.0))
    for i in range(flow.BUYERS_MAX + 5):
        answers.labels(f"b{i:02d}", "bid").inc(i + 1)
    for seconds in [0.005] * 18 + [0.05, 5.0]:  # the 95th of 20 is the 19th: in the 0.1 bucket
        latency.labels("b54").observe(seconds)
    rows = flow.ping_stats(latency, answers)
    assert len(rows) == flow.BUYERS_MAX
    assert [r.buyer_id for r in rows[:2]] == ["b54", "b53"]
    assert (rows[0].pings, rows[0].latency_p95_ms, rows[0].latency_avg_ms) == (55, 100, 257)
    assert rows[1].latency_avg_ms is None and rows[1].latency_p95_ms is None
    for seconds in [5.0] * 2:  # now the 95th of 22 (the 21st) is past the last finite bucket
        latency.labels("b54").observe(seconds)
    assert flow.ping_stats(latency, answers)[0].latency_p95_ms is None


def test_the_id_floor_orders_before_every_id_made_from_its_instant_on():
    before = new_id()
    at = dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=5)
    while dt.datetime.now(dt.UTC) < at:
        pass
    after = new_id()
    assert before < flow.id_floor(at) <= after
    assert str(flow.id_floor(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))) == "019b76da-a800-7000-8000-000000000000"
