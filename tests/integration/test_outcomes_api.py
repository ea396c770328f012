"""Outcome feedback end to end, on SQLite and PostgreSQL: a buyer reports on a lead it bought
and an agent on a lead it owns, over the API and signed postbacks; reports are idempotent per
kind, bad input and strangers store nothing (Properties 7 and 8), closing a lead records its
outcome, first response time is measured, and conversion_stats counts each reporter's first
final outcome once."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from buyers_sdk import postback_url
from exchange.auth.parties import PartyKind
from exchange.outcomes import postback, stats
from exchange.store.tables import conversion_stats, lead_outcomes, lead_owners, leads, sales
from tests.conftest import decode, run
from tests.integration.test_intake_api import solar_lead
from tests.integration.test_returns import make_campaign
from tests.integration.test_teams import Team
from tests.market import fund


def rows(settings, table) -> list[Any]:
    async def work(conn):
        return list(await conn.execute(sa.select(table)))

    return run(settings, work)


def read_stats(settings, subjects, segments=("*",)) -> dict:
    return run(settings, lambda conn: stats.read(conn, subjects, segments))


def error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    return decode(response)["error"]


class Shop:
    """A buyer with a campaign, another buyer, a supplier; sells leads now (not frozen)."""

    def __init__(self, exchange) -> None:
        self.exchange = exchange
        self.client = exchange.client
        exchange.seed_verticals()
        self.buyer = exchange.new_party(PartyKind.BUYER, "Buyer")
        self.other = exchange.new_party(PartyKind.BUYER, "Other")
        self.supplier = exchange.new_party(PartyKind.SUPPLIER, "Supplier")
        fund(exchange.settings, self.buyer.id, 100_000)
        self.campaign_id = make_campaign(exchange, self.buyer)
        self.sold = 0

    def sell(self) -> str:
        self.sold += 1
        n = self.sold
        lead = solar_lead(phone=f"(415) 555-{3100 + n}", email=f"out{n}-{uuid.uuid4().hex[:6]}@example.com")
        r = self.client.post("/v1/leads", json=lead, headers=self.supplier.headers)
        assert r.status_code == 201 and decode(r)["status"] == "sold", r.text
        return decode(r)["lead_id"]

    def report(self, party, lead_id, **body):
        return self.client.post(f"/v1/leads/{lead_id}/outcomes", json=body, headers=party.headers)

    def outcomes(self, party, lead_id):
        return self.client.get(f"/v1/leads/{lead_id}/outcomes", headers=party.headers)

    def vertical_id(self, lead_id) -> uuid.UUID:
        async def work(conn):
            found = await conn.execute(sa.select(leads.c.vertical_id).where(leads.c.id == uuid.UUID(lead_id)))
            return found.scalar_one()

        return run(self.exchange.settings, work)


@pytest.fixture
def shop(exchange) -> Shop:
    return Shop(exchange)


def first_responses(reporter: str) -> float:
    """How many first response times the histogram has recorded for ``reporter``."""
    return REGISTRY.get_sample_value("exchange_first_response_seconds_count", {"reporter": reporter}) or 0


def test_a_buyer_reports_on_a_lead_it_bought(shop):
    lead_id = shop.sell()
    timed = first_responses("buyer")
    contacted_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    r = shop.report(shop.buyer, lead_id, kind="contacted", occurred_at=contacted_at.isoformat())
    assert r.status_code == 201, r.text
    first = decode(r)
    assert (first["kind"], first["channel"], first["party_id"]) == ("contacted", "api", str(shop.buyer.id))
    again = shop.report(shop.buyer, lead_id, kind="contacted")  # a retry: the first answer
    assert again.status_code == 200 and decode(again) == first
    assert first_responses("buyer") == timed + 1  # the first contact only

    r = shop.report(shop.buyer, lead_id, kind="won", value_minor=125_000)
    assert r.status_code == 201, r.text
    won = decode(r)
    assert (won["value_minor"], won["currency"], won["reason"]) == (125_000, "USD", None)
    # A later final outcome is stored, but the lead's conversion was decided by the first.
    r = shop.report(shop.buyer, lead_id, kind="lost", reason="changed their mind")
    assert r.status_code == 201 and decode(r)["reason"] == "changed their mind"

    listed = decode(shop.outcomes(shop.buyer, lead_id))
    assert [o["kind"] for o in listed["items"]] == ["contacted", "won", "lost"]

    [sale] = rows(shop.exchange.settings, sales)
    expected_ms = max(0, int((contacted_at - sale.created_at).total_seconds() * 1000))
    assert listed["first_response_ms"] == expected_ms
    assert listed["responses"] == [
        {"party_id": str(shop.buyer.id), "reporter": "buyer", "first_response_ms": expected_ms}
    ]

    source = stats.source_subject(shop.vertical_id(lead_id), "google")
    campaign = stats.campaign_subject(shop.campaign_id)
    counted = read_stats(shop.exchange.settings, [source, campaign])
    assert counted == {
        (source, "*"): stats.Counts(1, 1, 125_000),
        (campaign, "*"): stats.Counts(1, 1, 125_000),
    }


def test_strangers_cannot_report_or_read_and_cannot_tell_the_lead_exists(shop):
    lead_id = shop.sell()
    assert shop.report(shop.buyer, lead_id, kind="won").status_code == 201
    missing = str(uuid.uuid4())
    for party, lead in ((shop.other, lead_id), (shop.other, missing), (shop.buyer, missing)):
        assert error(shop.report(party, lead, kind="lost"), 404)["code"] == "not_found"
        assert error(shop.outcomes(party, lead), 404)["code"] == "not_found"
    # Same answer for a lead that exists and one that does not: nothing to tell them apart.
    assert shop.report(shop.other, lead_id, kind="lost").json() | {"error": {}} == (
        shop.report(shop.other, missing, kind="lost").json() | {"error": {}}
    )
    assert error(shop.report(shop.supplier, lead_id, kind="won"), 403)["code"] == "forbidden"
    assert error(shop.outcomes(shop.supplier, lead_id), 403)["code"] == "forbidden"
    operator = shop.exchange.operator
    assert error(shop.report(operator, lead_id, kind="won"), 403)["code"] == "forbidden"
    seen = decode(shop.outcomes(operator, lead_id))  # operators read every report
    assert [(o["kind"], o["party_id"]) for o in seen["items"]] == [("won", str(shop.buyer.id))]
    assert error(shop.outcomes(operator, missing), 404)["code"] == "not_found"
    assert [o.party_id for o in rows(shop.exchange.settings, lead_outcomes)] == [shop.buyer.id]


BAD_REPORTS = [
    ({"kind": "sold"}, "kind"),
    ({"kind": "lost", "value_minor": 100}, "value_minor"),
    ({"kind": "won", "reason": "great"}, "reason"),
    ({"kind": "won", "value_minor": 100, "currency": "EUR"}, "currency"),
    ({"kind": "won", "value_minor": -1}, "value_minor"),
    ({"kind": "won", "value_minor": 10**12 + 1}, "value_minor"),
    ({"kind": "lost", "reason": "x" * 201}, "reason"),
    ({"kind": "contacted", "occurred_at": "2020-01-01T00:00:00Z"}, "occurred_at"),
    ({"kind": "contacted", "occurred_at": "2099-01-01T00:00:00Z"}, "occurred_at"),
    ({"kind": "contacted", "occurred_at": "2026-11-24T10:00:00"}, "occurred_at"),
    ({"kind": "won", "colour": "red"}, "colour"),
]


def test_bad_input_names_the_field_and_stores_nothing(shop):
    lead_id = shop.sell()
    for body, path in BAD_REPORTS:
        err = error(shop.report(shop.buyer, lead_id, **body), 422)
        assert err["code"] == "validation_failed"
        # An unknown field is named in the reason (the app's decoder reports it at the body).
        assert any(path in (f["path"], f["reason"]) or f"`{path}`" in f["reason"] for f in err["fields"]), (body, err)
    assert rows(shop.exchange.settings, lead_outcomes) == []
    assert rows(shop.exchange.settings, conversion_stats) == []


# --- agents -----------------------------------------------------------------------------------


@pytest.fixture
def team(exchange) -> Team:
    return Team(exchange)


def _set_owner(settings, lead_id, **values) -> None:
    async def work(conn):
        await conn.execute(lead_owners.update().where(lead_owners.c.lead_id == lead_id).values(**values))

    run(settings, work)


def test_an_agent_reports_contact_and_closing_records_the_outcome(team):
    team.configure(strategy="round_robin")
    agent, other = team.agent(), team.agent(heartbeat_ttl_s=90)  # other never heartbeats
    lead_id = team.post_lead()
    assert team.route(lead_id).agent_id == agent.id
    _set_owner(team.exchange.settings, lead_id, segment="solar:high")
    timed = first_responses("agent")
    client, url = team.client, f"/v1/leads/{lead_id}/outcomes"

    assert error(client.post(url, json={"kind": "contacted"}, headers=other.headers), 404)["code"] == "not_found"
    r = client.post(url, json={"kind": "contacted"}, headers=agent.headers)
    assert r.status_code == 201, r.text
    routing = team.routing(lead_id)
    assert routing["first_contact_at"] is not None  # the SLA stopped, as POST .../contacted does
    # The old endpoint agrees: contact is recorded once.
    assert client.post(f"/v1/leads/{lead_id}/contacted", headers=agent.headers).status_code == 200
    assert [o.kind for o in rows(team.exchange.settings, lead_outcomes)] == ["contacted"]
    assert first_responses("agent") == timed + 1

    r = client.post(f"/v1/leads/{lead_id}/close", json={"outcome": "won"}, headers=agent.headers)
    assert r.status_code == 200, r.text
    listed = decode(client.get(url, headers=agent.headers))
    assert [(o["kind"], o["channel"]) for o in listed["items"]] == [("contacted", "api"), ("won", "api")]
    owned_since = dt.datetime.fromisoformat(routing["owned_since"])
    first_contact = dt.datetime.fromisoformat(routing["first_contact_at"])
    assert listed["first_response_ms"] == int((first_contact - owned_since).total_seconds() * 1000)
    # A closed lead is still its agent's to report on; the first final outcome already counted.
    assert client.post(url, json={"kind": "lost", "reason": "cancelled"}, headers=agent.headers).status_code == 201
    assert client.post(url, json={"kind": "won"}, headers=agent.headers).status_code == 200

    vertical_id = rows(team.exchange.settings, leads)[0].vertical_id
    subjects = [
        stats.agent_subject(agent.id), stats.team_subject(team.team.id),
        stats.source_subject(vertical_id, "google"),
    ]  # fmt: skip
    counted = read_stats(team.exchange.settings, subjects, ["*", "solar:high"])
    one = stats.Counts(1, 1, 0)
    assert counted == {
        (subjects[0], "*"): one, (subjects[0], "solar:high"): one,
        (subjects[1], "*"): one, (subjects[1], "solar:high"): one,
        (subjects[2], "*"): one,
    }  # fmt: skip


def test_closing_as_other_records_nothing_and_a_past_owner_may_report(team):
    team.configure(strategy="round_robin")
    agent = team.agent()
    first, second = team.post_lead(), team.post_lead()
    assert team.route(first).agent_id == agent.id and team.route(second).agent_id == agent.id
    r = team.client.post(f"/v1/leads/{first}/close", json={"outcome": "other"}, headers=agent.headers)
    assert r.status_code == 200, r.text
    assert rows(team.exchange.settings, lead_outcomes) == []

    # Reassigned away by the SLA: the agent is a past owner and still reports what it did.
    _set_owner(team.exchange.settings, second, status="queued", agent_id=None, past_owners=[str(agent.id)])
    r = team.client.post(f"/v1/leads/{second}/outcomes", json={"kind": "bad_lead", "reason": "fake name"}, headers=agent.headers)
    assert r.status_code == 201, r.text
    vertical_id = rows(team.exchange.settings, leads)[0].vertical_id
    counted = read_stats(team.exchange.settings, [stats.agent_subject(agent.id), stats.source_subject(vertical_id, "google")])
    assert set(counted.values()) == {stats.Counts(1, 0, 0)}  # a trial, no success
    listed = decode(team.client.get(f"/v1/leads/{second}/outcomes", headers=agent.headers))
    assert listed["first_response_ms"] is None and listed["responses"] == []


# --- signed postbacks -------------------------------------------------------------------------


def _postback(shop, party_id, lead_id, kind, *, secret=None, method="GET", **extra):
    secret = secret or postback.secret_for(shop.exchange.settings.secret_key, str(party_id))
    url = postback_url("http://testserver", secret, lead_id, party_id, kind, **extra)
    path = url.removeprefix("http://testserver")
    return shop.client.request(method, path), path


def test_postback_info_gives_the_partys_own_secret(shop):
    r = shop.client.get("/v1/outcomes/postback", headers=shop.buyer.headers)
    assert r.status_code == 200, r.text
    info = decode(r)
    assert info["secret"] == postback.secret_for(shop.exchange.settings.secret_key, str(shop.buyer.id))
    assert info["url_template"].endswith(
        f"/v1/postbacks/outcome?kind={{kind}}&lead_id={{lead_id}}&party_id={shop.buyer.id}&ts={{ts}}&sig={{sig}}"
    )
    assert info["tolerance_s"] == 300 and info["methods"] == ["GET", "POST"]
    other = decode(shop.client.get("/v1/outcomes/postback", headers=shop.other.headers))
    assert other["secret"] != info["secret"]
    assert shop.client.get("/v1/outcomes/postback", headers=shop.supplier.headers).status_code == 403


def test_signed_postbacks_report_and_bad_signatures_store_nothing(shop):
    lead_id, buyer = shop.sell(), shop.buyer.id
    r, path = _postback(shop, buyer, lead_id, "won", value_minor=90_000)
    assert r.status_code == 201, r.text
    won = decode(r)
    assert (won["kind"], won["channel"], won["value_minor"]) == ("won", "postback", 90_000)
    replay = shop.client.get(path)  # the same URL again: idempotent, the stored report
    assert replay.status_code == 200 and decode(replay) == won
    assert shop.client.post(path).status_code == 200  # POST takes the same URL

    tampered = path.replace("value_minor=90000", "value_minor=99000")
    assert error(shop.client.get(tampered), 401)["code"] == "signature_invalid"
    wrong = postback.secret_for(shop.exchange.settings.secret_key, str(shop.other.id))
    r, _ = _postback(shop, buyer, lead_id, "lost", secret=wrong)
    assert error(r, 401)["code"] == "signature_invalid"
    r, _ = _postback(shop, buyer, lead_id, "lost", ts=int(time.time()) - 301)
    assert error(r, 401)["code"] == "signature_stale"
    unsigned = path.split("&sig=")[0]
    assert error(shop.client.get(unsigned), 401)["code"] == "signature_missing"
    stranger = uuid.uuid4()  # signed with what would be its secret, but no such party
    r, _ = _postback(shop, stranger, lead_id, "lost")
    assert error(r, 401)["code"] == "unknown_party"
    r, _ = _postback(shop, shop.other.id, lead_id, "lost")  # a real buyer, not this lead's
    assert error(r, 403)["code"] == "not_a_reporter"
    r, _ = _postback(shop, buyer, lead_id, "lost", value_minor=5)  # signed, but bad input
    err = error(r, 422)
    assert [f["path"] for f in err["fields"]] == ["value_minor"]
    r, _ = _postback(shop, buyer, lead_id, "promoted")
    assert [f["path"] for f in error(r, 422)["fields"]] == ["query.kind"]
    bad_query = shop.client.get(f"/v1/postbacks/outcome?kind=won&kind=lost&party_id={buyer}")
    assert [f["path"] for f in error(bad_query, 422)["fields"]] == ["query.kind"]

    stored = rows(shop.exchange.settings, lead_outcomes)
    assert [(o.kind, o.channel) for o in stored] == [("won", "postback")]
    campaign = stats.campaign_subject(shop.campaign_id)
    assert read_stats(shop.exchange.settings, [campaign]) == {(campaign, "*"): stats.Counts(1, 1, 90_000)}


def test_final_reports_sent_at_once_count_the_lead_once(shop):
    """Eight requests at once, each a final outcome (some the same kind): one row per kind,
    and one trial for the buyer's campaign, on SQLite's single writer and PostgreSQL's locks."""
    import asyncio
    import threading

    from exchange.auth.parties import Principal
    from exchange.outcomes import service
    from exchange.outcomes.messages import OutcomeIn, OutcomeKind
    from exchange.store.db import Database

    lead_id = uuid.UUID(shop.sell())
    kinds = [OutcomeKind.WON, OutcomeKind.LOST, OutcomeKind.BAD_LEAD, OutcomeKind.WON] * 2
    principal = Principal(party_id=shop.buyer.id, kind=PartyKind.BUYER, key_id=shop.buyer.key_id, name="b")
    barrier = threading.Barrier(len(kinds))
    answers: list[Any] = [None] * len(kinds)

    def worker(i: int) -> None:
        async def main() -> Any:
            db = Database(shop.exchange.settings)
            try:
                await db.ping()
                barrier.wait()
                async with db.write() as conn:
                    now = dt.datetime.now(dt.UTC)
                    return await service.report(conn, principal, lead_id, OutcomeIn(kind=kinds[i]), now)
            finally:
                await db.dispose()

        answers[i] = asyncio.run(main())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(kinds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a is not None for a in answers)
    assert sorted(o.kind for o in rows(shop.exchange.settings, lead_outcomes)) == ["bad_lead", "lost", "won"]
    assert sum(new for _, new in answers) == 3
    campaign = stats.campaign_subject(shop.campaign_id)
    [counted] = read_stats(shop.exchange.settings, [campaign]).values()
    assert counted.trials == 1


def test_an_agents_postback_records_first_contact(team):
    team.configure(strategy="round_robin")
    agent = team.agent()
    lead_id = team.post_lead()
    assert team.route(lead_id).agent_id == agent.id
    info = decode(team.client.get("/v1/outcomes/postback", headers=agent.headers))
    assert info["party_id"] == str(agent.id)
    url = postback_url("http://testserver", info["secret"], lead_id, agent.id, "contacted")
    r = team.client.get(url.removeprefix("http://testserver"))
    assert r.status_code == 201 and decode(r)["channel"] == "postback", r.text
    assert team.routing(lead_id)["first_contact_at"] is not None  # the SLA stopped
    assert error(team.client.get("/v1/outcomes/postback", headers=team.op), 403)["code"] == "forbidden"
