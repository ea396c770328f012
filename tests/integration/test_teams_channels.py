"""Team routes by channel, on SQLite and PostgreSQL: a form lead and an API lead of the same
vertical and source go to different teams; the source outranks the channel, each outranks its
catch-all; routes are put once per (vertical, source, channel), nulls included, and listed;
a lead of a channel no route takes is left to nobody, by the router and the sweeper alike."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from exchange.auth.parties import PartyKind
from exchange.teams import sweeper
from tests.conftest import decode
from tests.integration.test_channels import FORM, FORM_MAPPING, add_source
from tests.integration.test_intake_api import row_counts, solar_lead
from tests.integration.test_teams import Team, call


@pytest.fixture
def team(exchange) -> Team:
    return Team(exchange)  # its team takes every solar lead without a more specific route


def put_route(team: Team, team_id: uuid.UUID, **route) -> dict:
    body = {"vertical": "solar", "team_id": str(team_id), **route}
    r = team.client.put("/v1/team-routes", json=body, headers=team.op)
    assert r.status_code == 200, r.text
    return decode(r)


def api_lead(team: Team, n: int, source: str) -> uuid.UUID:
    body = solar_lead(phone=f"212-555-02{n:02d}", email=f"api{n}@example.com") | {"source": source}
    r = team.client.post("/v1/leads", json=body, headers=team.supplier.headers)
    assert r.status_code == 201 and decode(r)["status"] == "unsold", r.text
    return uuid.UUID(decode(r)["lead_id"])


def form_lead(team: Team, path: str, n: int) -> uuid.UUID:
    form = dict(FORM, phone=f"(646) 555-02{n:02d}", email=f"form{n}@example.com")
    r = team.client.post(path, data=form, headers={"Accept": "application/json"})
    assert r.status_code == 201 and decode(r)["status"] == "unsold", r.text
    return uuid.UUID(decode(r)["lead_id"])


def test_the_same_source_goes_to_a_team_per_channel_and_the_catch_all_takes_the_rest(team):
    form_team = team.exchange.new_party(PartyKind.TEAM)
    api_team = team.exchange.new_party(PartyKind.TEAM)
    shared = add_source(team, "form", FORM_MAPPING, source="spring-promo")
    other = add_source(team, "form", FORM_MAPPING, source="other-page")
    by_form = put_route(team, form_team.id, source="spring-promo", channel="form")
    by_api = put_route(team, api_team.id, source="spring-promo", channel="api")
    assert (by_form["channel"], by_api["channel"]) == ("form", "api")

    assert team.route(form_lead(team, shared["path"], 1)).team_id == form_team.id
    assert team.route(api_lead(team, 1, "spring-promo")).team_id == api_team.id
    # The rest: another source, by either channel, goes to the vertical's catch-all.
    assert team.route(api_lead(team, 2, "elsewhere")).team_id == team.team.id
    assert team.route(form_lead(team, other["path"], 2)).team_id == team.team.id


def test_the_source_outranks_the_channel_and_each_its_catch_all(team):
    by_source, by_channel = team.exchange.new_party(PartyKind.TEAM), team.exchange.new_party(PartyKind.TEAM)
    both = team.exchange.new_party(PartyKind.TEAM)
    shared = add_source(team, "form", FORM_MAPPING, source="spring-promo")
    other = add_source(team, "form", FORM_MAPPING, source="other-page")
    put_route(team, by_source.id, source="spring-promo")  # any channel
    put_route(team, by_channel.id, channel="form")  # any source
    # A form lead of the promo: the source's route, though another names its channel.
    assert team.route(form_lead(team, shared["path"], 1)).team_id == by_source.id
    # A form lead of another source: the channel's route before the catch-all.
    assert team.route(form_lead(team, other["path"], 2)).team_id == by_channel.id
    # An API lead of the promo: the source's route (any channel); of another source: the catch-all.
    assert team.route(api_lead(team, 1, "spring-promo")).team_id == by_source.id
    assert team.route(api_lead(team, 2, "elsewhere")).team_id == team.team.id
    # Source and channel both named beats the source alone.
    put_route(team, both.id, source="spring-promo", channel="form")
    assert team.route(form_lead(team, shared["path"], 3)).team_id == both.id


def test_routes_are_put_once_per_vertical_source_and_channel_and_listed(team):
    [catch_all] = decode(team.client.get("/v1/team-routes", headers=team.op))["items"]
    assert (catch_all["source"], catch_all["channel"]) == (None, None)
    other = team.exchange.new_party(PartyKind.TEAM)
    # Null matches null: putting the catch-all again changes its team, it adds no second one.
    again = put_route(team, other.id)
    assert again["id"] == catch_all["id"] and again["team_id"] == str(other.id)
    form_any = put_route(team, team.team.id, channel="form")
    form_google = put_route(team, team.team.id, source="google", channel="form")
    google_any = put_route(team, team.team.id, source="google")
    assert len({catch_all["id"], form_any["id"], form_google["id"], google_any["id"]}) == 4
    assert put_route(team, other.id, source="google", channel="form")["id"] == form_google["id"]

    listed = decode(team.client.get("/v1/team-routes", headers=team.op))["items"]
    assert {(r["source"], r["channel"], r["team_id"]) for r in listed} == {
        (None, None, str(other.id)), (None, "form", str(team.team.id)),
        ("google", "form", str(other.id)), ("google", None, str(team.team.id)),
    }  # fmt: skip
    assert all(r["vertical"] == "solar" and r["updated_at"] for r in listed)
    mine = decode(team.client.get("/v1/team-routes", params={"team_id": str(other.id)}, headers=team.op))
    assert {r["id"] for r in mine["items"]} == {catch_all["id"], form_google["id"]}
    page = decode(team.client.get("/v1/team-routes", params={"limit": 3}, headers=team.op))
    rest = team.client.get("/v1/team-routes", params={"after": page["next_after"]}, headers=team.op)
    assert len(page["items"]) == 3 and len(decode(rest)["items"]) == 1

    before = row_counts(team.exchange.settings)
    body = {"vertical": "solar", "team_id": str(other.id), "channel": "fax"}
    r = team.client.put("/v1/team-routes", json=body, headers=team.op)
    assert r.status_code == 422, r.text
    [problem] = decode(r)["error"]["fields"]
    assert problem == {"path": "channel", "reason": "Invalid enum value 'fax'"}
    assert row_counts(team.exchange.settings) == before
    # Operators only.
    assert team.client.get("/v1/team-routes", headers=team.supplier.headers).status_code == 403
    r = team.client.put("/v1/team-routes", json=dict(body, channel="form"), headers=team.supplier.headers)
    assert r.status_code == 403


def test_a_lead_of_a_channel_no_route_takes_is_left_alone_by_the_sweeper(exchange):
    """Only a form route for the vertical: API leads match no route. The sweeper must not pick
    them as "missed" at every pass (they would fill its batch and starve the form lead)."""
    team = Team.__new__(Team)  # no catch-all route this time
    team.exchange, team.client, team.op = exchange, exchange.client, exchange.operator.headers
    exchange.seed_verticals()
    team.supplier = exchange.new_party(PartyKind.SUPPLIER)
    team.team = exchange.new_party(PartyKind.TEAM)
    put_route(team, team.team.id, channel="form")
    source = add_source(team, "form", FORM_MAPPING)
    stray = [api_lead(team, n, "google") for n in range(2)]
    wanted = form_lead(team, source["path"], 1)
    assert team.route(stray[0]) is None  # nobody takes an API lead

    now = dt.datetime.now(dt.UTC)
    call(exchange.settings, lambda db: sweeper.sweep(db, now, batch=len(stray)))
    assert team.routing(wanted)["team_id"] == str(team.team.id)
    for lead_id in stray:
        r = team.client.get(f"/v1/leads/{lead_id}/routing", headers=team.op)
        assert r.status_code == 404


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_routes_put_at_once_by_two_processes_make_one_row(team):
    """NULLs do not collide in the unique index: without the vertical's row lock two writers of
    one catch-all route (no source, no channel) could both insert it."""
    import asyncio
    import threading

    import sqlalchemy as sa

    from exchange.store.db import Database
    from exchange.store.tables import team_routes
    from exchange.teams import service
    from exchange.teams.messages import RouteIn
    from tests.conftest import run

    other = team.exchange.new_party(PartyKind.TEAM)
    settings = team.exchange.settings
    rounds, writers = 5, 4
    for n in range(rounds):
        barrier = threading.Barrier(writers)
        source = f"race-{n}"

        def write(i: int) -> None:
            async def main() -> None:
                db = Database(settings)
                try:
                    await db.ping()
                    async with db.write() as conn:
                        barrier.wait()
                        data = RouteIn(vertical="solar", team_id=other.id if i % 2 else team.team.id, source=source)
                        await service.set_route(conn, data, dt.datetime.now(dt.UTC))
                finally:
                    await db.dispose()

            asyncio.run(main())

        threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)

        async def count(conn, source=source):
            query = sa.select(sa.func.count()).select_from(team_routes).where(
                team_routes.c.source == source, team_routes.c.channel.is_(None)
            )
            return (await conn.execute(query)).scalar_one()

        assert run(settings, count) == 1
