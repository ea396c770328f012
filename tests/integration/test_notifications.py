"""Notifications end to end, on SQLite and PostgreSQL: a team with email and webhook
notifications routes a lead (an offer, then its acceptance); a real local SMTP server (aiosmtpd)
receives the rendered mail, a local webhook that fails at first gets the signed payload after
retries, one that always fails ends ``failed`` (visible through the API), the same event is never
sent twice, and the agent's Server-Sent Events stream hears of the assignment."""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import threading
import time
import uuid
from email import message_from_bytes
from typing import Any

import msgspec
import pytest
from aiosmtpd.controller import Controller

from exchange.delivery import signing
from exchange.notifications import outbox, sender, stream, unowned
from exchange.store.tables import notifications
from tests.conftest import decode
from tests.integration.test_teams import Team, call

SECRET = "webhook-secret-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """An aiosmtpd handler keeping every mail it gets."""

    def __init__(self) -> None:
        self.mails: list[Any] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd API)
        mail = message_from_bytes(envelope.content)
        self.mails.append((envelope.rcpt_tos, mail))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


class Hook:
    """A local webhook server that answers 500 to its first ``fail_first`` requests."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.received: list[tuple[dict[str, str], bytes]] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append((dict(self.headers), body))
                ok = len(hook.received) > hook.fail_first
                self.send_response(200 if ok else 500)
                self.end_headers()
                self.wfile.write(b"ok" if ok else b"try later")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks():
    made: list[Hook] = []

    def make(fail_first: int) -> Hook:
        made.append(Hook(fail_first))
        return made[-1]

    yield make
    for h in made:
        h.close()


@pytest.fixture
def team(exchange) -> Team:
    return Team(exchange)


def configure(team: Team, **config: Any) -> dict:
    r = team.client.put(f"/v1/teams/{team.team.id}/notifications/config", json=config, headers=team.op)
    assert r.status_code == 200, r.text
    return decode(r)


def rows(settings) -> list[Any]:
    async def work(db):
        import sqlalchemy as sa

        async with db.read() as conn:
            return list(await conn.execute(sa.select(notifications).order_by(notifications.c.created_at)))

    return call(settings, work)


def sweep(settings, now: dt.datetime) -> int:
    return call(settings, lambda db: sender.sweep(db, settings, now))


TEMPLATES = {
    "offered": {"email": {"subject": "New lead $lead_id for $agent_name",
                          "body": "Vertical $vertical, priority [$priority]. Take it: $link"}},
    "assigned": {"email": {"subject": "Yours: $lead_id", "body": "$agent_name of $team_name owns it"}},
}  # fmt: skip


def test_offer_and_assignment_mail_and_webhook_with_retries(team, smtp, hooks):
    controller, inbox = smtp
    hook = hooks(fail_first=2)
    settings = msgspec.structs.replace(
        team.exchange.settings, smtp_host="127.0.0.1", smtp_port=controller.port,
        smtp_from="leads@exchange.test",
    )  # fmt: skip
    team.configure(strategy="sequential", offer_timeout_s=60)
    agent = team.agent(email="ana@agents.test")
    shown = configure(
        team, agent={"events": ["offered", "assigned"], "channels": ["email", "webhook"]},
        managers=[{"email": "boss@agents.test", "events": ["assigned"]},
                  {"email": "vip@agents.test", "events": ["assigned"], "min_score": 80}],
        webhook={"url": hook.url, "secret": SECRET}, templates=TEMPLATES,
    )  # fmt: skip
    assert shown["webhook"] == {"url": hook.url}  # the secret is never shown back

    lead_id = team.post_lead()
    assert team.route(lead_id).status == "offered"
    [offer] = team.offers(agent)
    r = team.client.post(f"/v1/offers/{offer['id']}/accept", headers=agent.headers)
    assert r.status_code == 200, r.text

    made = rows(settings)
    got = sorted((r.event, r.channel, r.address) for r in made)
    assert got == sorted([
        ("offered", "email", "ana@agents.test"), ("offered", "webhook", hook.url),
        ("assigned", "email", "ana@agents.test"), ("assigned", "webhook", hook.url),
        ("assigned", "email", "boss@agents.test"),  # the unscored lead is below vip's min_score
    ])  # fmt: skip
    assert {r.status for r in made} == {"pending"}

    now = dt.datetime.now(dt.UTC)
    sweep(settings, now)
    mails = {(tuple(to), m["Subject"]): m for to, m in inbox.mails}
    assert len(inbox.mails) == 3
    offered_mail = mails[(("ana@agents.test",), f"New lead {lead_id} for {_name(team, agent)}")]
    assert offered_mail["From"] == "leads@exchange.test"
    assert "Vertical solar, priority [" in offered_mail.get_payload()
    assert "Take it: /v1/agents/me/offers" in offered_mail.get_payload()
    assert (("boss@agents.test",), f"Yours: {lead_id}") in mails
    assert all("Ana" not in m.get_payload() and "555" not in m.get_payload() for _, m in inbox.mails)

    # The webhook failed its first two requests: retried with backoff, then delivered.
    by_id = {r.id: r for r in rows(settings)}
    hooked = [r for r in by_id.values() if r.channel == "webhook"]
    assert all(r.status == "pending" and r.attempts == 1 and r.last_error for r in hooked)
    assert "500" in hooked[0].last_error
    sweep(settings, now + dt.timedelta(hours=1))
    sweep(settings, now + dt.timedelta(hours=2))
    final = {r.id: r for r in rows(settings)}
    assert {r.status for r in final.values()} == {"sent"}
    assert len(inbox.mails) == 3  # mails were not sent again by later sweeps
    assert len(hook.received) == 4  # two failures, then one success for each of two events
    for headers, body in hook.received:
        assert signing.verify(SECRET, headers[signing.TIMESTAMP_HEADER], body,
                              headers[signing.SIGNATURE_HEADER], int(time.time()))  # fmt: skip
    payloads = [msgspec.json.decode(b) for _, b in hook.received[-2:]]
    assert {p["event"] for p in payloads} == {"offered", "assigned"}
    assert all(p["lead_id"] == str(lead_id) and p["agent_id"] == str(agent.id) for p in payloads)
    # The same notification keeps its delivery id across retries (the receiver de-duplicates).
    ids = [h[signing.DELIVERY_ID_HEADER] for h, _ in hook.received]
    assert len(set(ids)) == 2


def _name(team: Team, agent) -> str:
    r = team.client.get(f"/v1/parties/{agent.id}", headers=team.op)
    return decode(r)["name"]


def test_a_webhook_that_always_fails_ends_failed_and_visible(team, hooks):
    hook = hooks(fail_first=10_000)
    settings = team.exchange.settings
    team.configure(strategy="round_robin")
    team.agent()
    configure(team, agent={"events": ["assigned"], "channels": ["webhook"]},
              webhook={"url": hook.url, "secret": SECRET})  # fmt: skip
    team.route(team.post_lead())
    now = dt.datetime.now(dt.UTC)
    for attempt in range(sender.MAX_ATTEMPTS + 2):
        sweep(settings, now + dt.timedelta(hours=attempt))
    assert len(hook.received) == sender.MAX_ATTEMPTS  # bounded: no attempt after the last
    r = team.client.get(f"/v1/teams/{team.team.id}/notifications", params={"status": "failed"},
                        headers=team.op)  # fmt: skip
    assert r.status_code == 200, r.text
    [failed] = decode(r)["items"]
    assert failed["attempts"] == sender.MAX_ATTEMPTS and "500" in failed["last_error"]
    assert decode(team.client.get(f"/v1/teams/{team.team.id}/notifications",
                                  params={"status": "pending"}, headers=team.op))["items"] == []  # fmt: skip
    agent_key = team.agent()
    r = team.client.get(f"/v1/teams/{team.team.id}/notifications", headers=agent_key.headers)
    assert r.status_code == 403


def test_the_same_event_is_sent_once(team, smtp):
    controller, inbox = smtp
    settings = msgspec.structs.replace(team.exchange.settings, smtp_host="127.0.0.1",
                                       smtp_port=controller.port)  # fmt: skip
    team.configure(strategy="round_robin")
    agent = team.agent(email="ana@agents.test")
    configure(team, agent={"events": ["assigned"], "channels": ["email"]})
    lead_id = team.route(team.post_lead()).lead_id
    team_id = team.team.id

    async def tell_again(db):  # the same assignment told again (a replayed step)
        async with db.write() as conn:
            await outbox.owned(conn, lead_id, team_id, agent.id, dt.datetime.now(dt.UTC))

    call(settings, tell_again)
    assert len(rows(settings)) == 1
    now = dt.datetime.now(dt.UTC)
    [row] = rows(settings)
    for _ in range(2):  # a duplicated message, then the sweeper
        call(settings, lambda db: sender.send(db, settings, [str(row.id)]))
        sweep(settings, now)
    assert len(inbox.mails) == 1
    assert rows(settings)[0].status == "sent"


def test_templates_with_unknown_placeholders_are_refused(team):
    r = team.client.put(
        f"/v1/teams/{team.team.id}/notifications/config", headers=team.op,
        json={"templates": {"assigned": {"email": {"subject": "Hi $first_name", "body": "ok $lead_id"}}}},
    )  # fmt: skip
    assert r.status_code == 422, r.text
    out = decode(r)
    assert "templates.assigned.email.subject" in r.text and "first_name" in r.text, out
    r = team.client.get(f"/v1/teams/{team.team.id}/notifications/config", headers=team.op)
    assert r.status_code == 404  # nothing stored
    r = team.client.put(f"/v1/agents/{team.agent().id}/profile", json={"email": "not-an-address"},
                        headers=team.op)  # fmt: skip
    assert r.status_code in (400, 422), r.text


def test_the_agent_stream_hears_its_assignment(team):
    team.configure(strategy="round_robin")
    agent = team.agent()
    lead_id = team.post_lead()

    def route_once_subscribed() -> None:
        deadline = time.monotonic() + 5
        while not stream.BROADCASTER.subscribers(str(agent.id)) and time.monotonic() < deadline:
            time.sleep(0.02)
        team.route(lead_id)

    router = threading.Thread(target=route_once_subscribed)
    router.start()
    r = team.client.get("/v1/agents/me/stream", params={"seconds": 2}, headers=agent.headers)
    router.join()
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    text = r.text
    assert "event: ready" in text
    assert "event: assigned" in text and str(lead_id) in text, text
    r = team.client.get("/v1/agents/me/stream", params={"seconds": 0}, headers=agent.headers)
    assert r.status_code == 422
    assert stream.BROADCASTER.subscribers(str(agent.id)) == 0  # unsubscribed


def test_the_worker_sends_what_routing_enqueued_after_commit(team, smtp):
    """No sweep: the commit enqueues ``send_notifications``, the in-process worker sends it."""
    import dramatiq

    from exchange.worker.actors import NOTIFICATIONS_QUEUE
    from exchange.worker.broker import setup_broker

    controller, inbox = smtp
    settings = msgspec.structs.replace(team.exchange.settings, smtp_host="127.0.0.1",
                                       smtp_port=controller.port)  # fmt: skip
    broker = setup_broker(settings)  # the same in-memory broker, the worker's settings now these
    broker.flush_all()
    team.configure(strategy="round_robin")
    team.agent(email="ana@agents.test")
    configure(team, agent={"events": ["assigned"], "channels": ["email"]})
    lead_id = team.route(team.post_lead()).lead_id
    [row] = rows(settings)
    sent = [dramatiq.Message.decode(raw) for raw in broker.queues[NOTIFICATIONS_QUEUE].queue]
    assert [(m.actor_name, list(m.args)) for m in sent] == [("send_notifications", [[str(row.id)]])]
    worker = dramatiq.Worker(broker, worker_threads=1)
    worker.start()
    try:
        broker.join(NOTIFICATIONS_QUEUE, timeout=20_000)
        worker.join()
    finally:
        worker.stop()
    assert [m["Subject"] for _, m in inbox.mails] == [f"Lead {lead_id} assigned (solar)"]
    assert rows(settings)[0].status == "sent"


def test_the_stream_crosses_processes_through_redis(backend, redis_url):
    """With Redis, an event published by any process reaches the agent's connection."""
    from exchange.app import create_app
    from exchange.auth.parties import PartyKind
    from exchange.worker.broker import reset_broker
    from tests.conftest import Exchange

    reset_broker()
    settings = msgspec.structs.replace(backend, redis_url=redis_url)
    app = create_app(settings, in_process_worker=False)
    try:
        from litestar.testing import TestClient

        with TestClient(app) as client:
            ex = Exchange(settings, client)
            team_party = ex.new_party(PartyKind.TEAM)
            agent = ex.new_party(PartyKind.AGENT, team_id=team_party.id)

            def publish_soon() -> None:
                time.sleep(0.5)  # the connection subscribes (and registers) first
                stream._live.clear()  # this process's view of who is connected: read afresh
                stream.publish(redis_url, str(uuid.uuid4()), "offered", {"lead_id": "nobody"})
                stream.publish(redis_url, str(agent.id), "offered", {"lead_id": "L-1"})

            publisher = threading.Thread(target=publish_soon)
            publisher.start()
            r = client.get("/v1/agents/me/stream", params={"seconds": 2}, headers=agent.headers)
            publisher.join()
    finally:
        reset_broker()
    assert r.status_code == 200, r.text
    assert "event: offered" in r.text and "L-1" in r.text, r.text


def test_a_claim_tells_the_winner_and_every_rescinded_agent(team, monkeypatch):
    team.configure(strategy="parallel", offer_timeout_s=300)
    winner, loser, other = team.agent(), team.agent(), team.agent()
    lead_id = team.post_lead()
    assert team.route(lead_id).status == "offered"
    told: list[tuple[str, str, str]] = []
    monkeypatch.setattr(
        outbox.stream, "publish",
        lambda _redis, agent_id, event, data: told.append((str(agent_id), event, data["lead_id"])),
    )  # fmt: skip
    offer = team.offers(winner)[0]
    r = team.client.post(f"/v1/offers/{offer['id']}/claim", headers=winner.headers)
    assert r.status_code == 200, r.text
    assert sorted(told) == sorted([
        (str(winner.id), "assigned", str(lead_id)),
        (str(loser.id), "rescinded", str(lead_id)),
        (str(other.id), "rescinded", str(lead_id)),
    ])  # fmt: skip


def test_an_sla_reassignment_tells_the_new_owner_reassigned(team):
    team.configure(strategy="round_robin", sla_minutes=10, max_reassigns=1)
    team.agent(email="a@agents.test"), team.agent(email="b@agents.test")
    configure(team, agent={"events": ["assigned", "reassigned"], "channels": ["email"]})
    lead_id = team.post_lead()
    first = team.route(lead_id).agent_id
    assert team.sweep(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=11)).reassigned == 1
    second = uuid.UUID(team.routing(lead_id)["agent_id"])
    assert [(r.event, r.party_id) for r in rows(team.exchange.settings)] == [
        ("assigned", first), ("reassigned", second),
    ]  # fmt: skip


def unowned_sweep(settings, now: dt.datetime) -> int:
    return call(settings, lambda db: unowned.sweep(db, now))


def test_a_lead_nobody_owns_in_time_is_told_to_its_managers_once(team, smtp, hooks):
    controller, inbox = smtp
    hook = hooks(fail_first=0)
    settings = msgspec.structs.replace(team.exchange.settings, smtp_host="127.0.0.1",
                                       smtp_port=controller.port)  # fmt: skip
    team.configure(strategy="round_robin")  # and no agent: the lead waits in the queue
    shown = configure(
        team, agent=None, unowned_minutes=10, webhook={"url": hook.url, "secret": SECRET},
        managers=[{"email": "floor@agents.test", "events": ["unowned"], "channels": ["email", "webhook"]},
                  {"email": "vip@agents.test", "events": ["unowned"], "min_score": 80},
                  {"email": "other@agents.test", "events": ["assigned"]}],
        templates={"unowned": {"email": {"subject": "Nobody has $lead_id", "body": "Routed $routed_at: $link"}}},
    )  # fmt: skip
    assert shown["unowned_minutes"] == 10
    lead_id = team.post_lead()
    assert team.route(lead_id).status == "queued"
    now = dt.datetime.now(dt.UTC)
    assert unowned_sweep(settings, now + dt.timedelta(minutes=9)) == 0  # not yet
    assert rows(settings) == []
    assert unowned_sweep(settings, now + dt.timedelta(minutes=11)) == 1
    assert unowned_sweep(settings, now + dt.timedelta(minutes=12)) == 0  # told once
    made = rows(settings)
    assert sorted((r.event, r.channel, r.address, r.party_id) for r in made) == [
        ("unowned", "email", "floor@agents.test", None), ("unowned", "webhook", hook.url, None),
    ]  # fmt: skip  (the unscored lead is below vip's min_score; "other" hears of assignments)

    sweep(settings, now + dt.timedelta(minutes=11))
    [(to, mail)] = inbox.mails
    assert to == ["floor@agents.test"] and mail["Subject"] == f"Nobody has {lead_id}"
    text = mail.get_payload(decode=True).decode()
    assert f"/v1/leads/{lead_id}/routing" in text and "Routed 20" in text
    [(_, body)] = hook.received
    payload = msgspec.json.decode(body)
    assert (payload["event"], payload["agent_id"], payload["recipient"], payload["recipient_email"]) == (
        "unowned", None, "manager", "floor@agents.test",
    )  # fmt: skip
    assert payload["subject"] == f"Lead {lead_id} has no owner (solar)"  # the default text
    assert {r.status for r in rows(settings)} == {"sent"}


def test_an_owned_lead_is_not_told_and_one_only_offered_is(team):
    settings = team.exchange.settings
    team.configure(strategy="parallel", offer_timeout_s=3600)
    agent = team.agent()
    configure(team, agent=None, unowned_minutes=10,
              managers=[{"email": "floor@agents.test", "events": ["unowned"]}])  # fmt: skip
    taken, offered = team.post_lead(), team.post_lead()
    assert team.route(taken).status == "offered" and team.route(offered).status == "offered"
    [offer] = [o for o in team.offers(agent) if o["lead_id"] == str(taken)]
    r = team.client.post(f"/v1/offers/{offer['id']}/claim", headers=agent.headers)
    assert r.status_code == 200, r.text
    assert unowned_sweep(settings, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=11)) == 1
    assert [(r.event, r.lead_id) for r in rows(settings)] == [("unowned", offered)]


def test_an_unowned_rule_needs_the_teams_minutes(team):
    r = team.client.put(f"/v1/teams/{team.team.id}/notifications/config", headers=team.op,
                        json={"managers": [{"email": "floor@agents.test", "events": ["unowned"]}]})  # fmt: skip
    assert r.status_code == 422, r.text
    assert [f["path"] for f in decode(r)["error"]["fields"]] == ["managers[0].events"]
    r = team.client.put(f"/v1/teams/{team.team.id}/notifications/config", headers=team.op,
                        json={"agent": {"events": ["unowned"]}})  # fmt: skip
    assert r.status_code in (400, 422), r.text  # agents are never told of it
