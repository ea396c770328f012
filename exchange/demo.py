"""Demo data and simulated supplier traffic, so `make run` shows the exchange working at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import random
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.intake.fields import FieldFormat, FieldSpec
from exchange.settings import Settings

log = logging.getLogger("exchange.demo")

DEMO_SUPPLIER_NAME = "Demo supplier"
DEMO_KEY_FILE = "demo_supplier_key"
TRAFFIC_START_DELAY_S = 2.0
TRAFFIC_TIMEOUT_S = 10.0
CALL_SHARE = 0.2  # of the demo's solar traffic: phone calls (docs/calls.md)
CALLS_AT_ONCE_MAX = 5  # demo calls in progress at once; more are not placed
CALL_TALK_MAX_S = 8.0  # a demo call's end is reported within this (its reported length is made up)
CALL_MEAN_DURATION_S = 150  # reported durations: about half past a 90 s minimum
DEMO_ZIPS = [
    ("10001", "NY"), ("11201", "NY"), ("94103", "CA"), ("90012", "CA"), ("73301", "TX"),
    ("77002", "TX"), ("33101", "FL"), ("60601", "IL"), ("85004", "AZ"), ("98101", "WA"),
    ("80202", "CO"), ("30303", "GA"), ("02108", "MA"), ("19103", "PA"), ("97201", "OR"),
]  # fmt: skip
FIRST_NAMES = ["Ana", "Ben", "Chloe", "Dev", "Elena", "Femi", "Grace", "Hiro", "Ines", "Jamal"]
LAST_NAMES = ["Garcia", "Smith", "Nguyen", "Okafor", "Kim", "Rossi", "Patel", "Cohen", "Silva"]
FREE_MAIL = ["gmail.com", "yahoo.com", "outlook.com", "icloud.com", "aol.com"]
COMPANY_WORDS = ["acme", "northwind", "bluepeak", "redrock", "silverline", "oakridge", "brightpath"]
COMPANY_KINDS = ["roofing", "dental", "logistics", "bakery", "realty", "motors"]
COMPANY_EMAIL_SHARE = 0.15
# Exchange numbers in NANP's 2xx-9xx ranges that phonenumbers accepts as valid.
AREA_CODES = ["212", "415", "512", "305", "312", "602", "206", "303", "404", "617"]


async def ensure_demo_supplier(conn: AsyncConnection, settings: Settings) -> str | None:
    """The demo supplier and its key (kept under var/ so every `make run` can print it)."""
    from exchange.auth.parties import PartyIn, PartyKind, create_party, issue_key
    from exchange.store.tables import parties

    key_path = Path(settings.var_dir) / DEMO_KEY_FILE
    row = (
        await conn.execute(
            sa.select(parties.c.id).where(
                parties.c.kind == PartyKind.SUPPLIER.value, parties.c.name == DEMO_SUPPLIER_NAME
            )
        )
    ).first()
    if row is not None and key_path.exists():
        return key_path.read_text().strip()
    party_id = row.id if row else (
        await create_party(conn, PartyIn(kind=PartyKind.SUPPLIER, name=DEMO_SUPPLIER_NAME))
    ).id
    key = await issue_key(conn, party_id, "demo")
    key_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.key + "\n")
    return key.key


def fake_value(spec: FieldSpec, rng: random.Random, zip_state: tuple[str, str]) -> Any:
    fmt = spec.format
    if fmt is FieldFormat.ZIP:
        return zip_state[0]
    if fmt is FieldFormat.STATE:
        return zip_state[1]
    if fmt is FieldFormat.PHONE:
        return f"({rng.choice(AREA_CODES)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}"
    if fmt is FieldFormat.EMAIL:
        # Mostly free mail; now and then a small company's domain, which the demo team's
        # account routing sends back to whoever owned that company's last lead.
        if rng.random() < COMPANY_EMAIL_SHARE:
            return f"demo.{rng.getrandbits(40):x}@{rng.choice(COMPANY_WORDS)}-{rng.choice(COMPANY_KINDS)}.com"
        return f"demo.{rng.getrandbits(40):x}@{rng.choice(FREE_MAIL)}"
    if fmt is FieldFormat.DATE:
        start = dt.date(1950, 1, 1)
        return (start + dt.timedelta(days=rng.randint(0, 365 * 50))).isoformat()
    if fmt is FieldFormat.ENUM:
        return rng.choice(spec.choices or [""])
    if fmt is FieldFormat.BOOLEAN:
        return rng.random() < 0.7
    if fmt in (FieldFormat.INTEGER, FieldFormat.MONEY):
        low = spec.minimum if spec.minimum is not None else 0
        high = spec.maximum if spec.maximum is not None else 1000
        value = rng.randint(low, min(high, low + 500 if fmt is FieldFormat.INTEGER else low + 50_000))
        return value if fmt is FieldFormat.INTEGER else f"{value // 100}.{value % 100:02d}"
    if spec.name == "first_name":
        return rng.choice(FIRST_NAMES)
    if spec.name == "last_name":
        return rng.choice(LAST_NAMES)
    return f"{spec.label or spec.name} {rng.randint(1, 99)}"


def fake_lead(vertical_slug: str, fields: list[FieldSpec], rng: random.Random) -> dict[str, Any]:
    zip_state = rng.choice(DEMO_ZIPS)
    values = {
        spec.name: fake_value(spec, rng, zip_state)
        for spec in fields
        if spec.required_on_post or rng.random() < 0.6
    }
    return {
        "vertical": vertical_slug,
        "fields": values,
        "source": rng.choice(["google", "facebook", "tiktok", "native"]),
        "sub_ids": {"sub1": f"camp-{rng.randint(1, 9)}"},
        "consent": {
            "tcpa_text": "By clicking Submit I agree to be contacted by up to 4 partners...",
            "ip_address": f"203.0.113.{rng.randint(1, 254)}",
            "user_agent": "Mozilla/5.0 (demo)",
            "landing_page_url": "https://quotes.example.com/start",
        },
    }


def _log_answer(how: str, status: int, body: dict[str, Any]) -> None:
    if status in (200, 201) and body.get("status") == "sold":
        log.info("demo lead sold (%s): supplier earns $%.2f", how, body["payout_minor"] / 100,
                 extra={"lead_id": body["lead_id"], "vertical": body["vertical"]})  # fmt: skip
    elif status in (200, 201):
        log.info("demo lead unsold (%s)", how, extra={"reasons": ",".join(body.get("reasons", []))})
    else:
        log.info("demo lead refused (%s)", how, extra={"status": status, "code": body["error"]["code"]})


async def _ping_then_post(http: aiohttp.ClientSession, lead: dict[str, Any], fields: list[FieldSpec]) -> None:
    pii = {spec.name for spec in fields if spec.pii}
    ping = {
        "vertical": lead["vertical"],
        "fields": {k: v for k, v in lead["fields"].items() if k not in pii},
        "source": lead["source"],
        "sub_ids": lead["sub_ids"],
    }
    async with http.post("/v1/pings", json=ping) as resp:
        offer = await resp.json()
    if resp.status != 200 or offer["status"] != "accepted":
        log.info("demo ping got no bid", extra={"reasons": ",".join(offer.get("reasons", []))})
        return
    log.info("demo ping offered $%.2f", offer["payout_minor"] / 100)
    post = {"ping_id": offer["ping_id"], "fields": lead["fields"], "consent": lead["consent"]}
    async with http.post("/v1/posts", json=post) as resp:
        _log_answer("ping + post", resp.status, await resp.json())


async def _call(http: aiohttp.ClientSession, lead: dict[str, Any], fields: list[FieldSpec], rng: random.Random) -> None:
    """A demo phone call: pinged, connected with the lead's phone as the caller, ended a few
    seconds later with a made-up duration (some too short to bill)."""
    pii = {spec.name for spec in fields if spec.pii}
    ping = {"vertical": lead["vertical"], "source": "demo-calls",
            "fields": {k: v for k, v in lead["fields"].items() if k not in pii}}  # fmt: skip
    async with http.post("/v1/calls", json=ping) as resp:
        offer = await resp.json()
    if resp.status != 200 or offer["status"] != "accepted":
        log.info("demo call found nobody", extra={"reasons": ",".join(offer.get("reasons", []))})
        return
    caller = next((lead["fields"][s.name] for s in fields if s.format is FieldFormat.PHONE and s.name in lead["fields"]), None)
    async with http.post(f"/v1/calls/{offer['call_id']}/connect", json={"caller": caller or "+14155550100"}) as resp:
        if resp.status != 200:
            log.info("demo call not connected", extra={"status": resp.status})
            return
    await asyncio.sleep(rng.uniform(1.0, CALL_TALK_MAX_S))
    duration = int(rng.expovariate(1 / CALL_MEAN_DURATION_S))
    answered = offer["destinations"][0]["address"]
    async with http.post(f"/v1/calls/{offer['call_id']}/end", json={"duration_s": duration, "answered_by": answered}) as resp:
        ended = await resp.json()
    log.info("demo call ended %s after %d s", ended.get("status"), duration,
             extra={"call_id": offer["call_id"], "billed": bool(ended.get("sale_id"))})  # fmt: skip


async def traffic(settings: Settings, base_url: str, key: str) -> None:
    """Post a fake lead every few seconds, forever (until the app stops); some solar leads
    arrive as phone calls."""
    rng = random.Random()
    interval_s = 60.0 / max(settings.demo_leads_per_minute, 1)
    headers = {"Authorization": f"Bearer {key}"}
    await asyncio.sleep(TRAFFIC_START_DELAY_S)
    timeout = aiohttp.ClientTimeout(total=TRAFFIC_TIMEOUT_S)
    async with aiohttp.ClientSession(base_url, headers=headers, timeout=timeout) as http:
        verticals: list[tuple[str, list[FieldSpec]]] = []
        calls: set[asyncio.Task[None]] = set()
        while True:
            try:
                if not verticals:
                    async with http.get("/v1/verticals") as resp:
                        data = await resp.read()
                        items = msgspec.json.decode(data)
                        verticals = [
                            (v["slug"], msgspec.convert(v["fields"], list[FieldSpec]))
                            for v in items
                            if v["active"]
                        ]
                slug, fields = rng.choice(verticals)
                lead = fake_lead(slug, fields, rng)
                if slug == "solar" and rng.random() < CALL_SHARE:
                    if len(calls) < CALLS_AT_ONCE_MAX:
                        task = asyncio.create_task(_call(http, lead, fields, rng))
                        calls.add(task)  # held until done: a task nobody holds may be collected
                        task.add_done_callback(calls.discard)
                elif rng.random() < 0.5:
                    await _ping_then_post(http, lead, fields)
                else:
                    async with http.post("/v1/leads", json=lead) as resp:
                        _log_answer("direct post", resp.status, await resp.json())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the demo must never take the exchange down
                log.warning("demo traffic error: %s", exc)
            await asyncio.sleep(rng.expovariate(1 / interval_s))


# --- the demo market: buyers, campaigns and simulated buyer servers -------------------------

DEMO_BUYERS: list[dict[str, Any]] = [
    {
        "name": "SunPower Direct", "sim": "sunpower",
        "behaviour": {"bid_min_minor": 2500, "bid_max_minor": 6000, "latency_ms": 40, "pass_rate": 0.1},
        "campaigns": [{"name": "Solar, west and south", "vertical": "solar", "price_mode": "live",
                       "floor_minor": 2000, "filters": [{"kind": "states_in", "field": "state",
                       "states": ["CA", "AZ", "TX", "FL", "NV", "CO"]}]}],
    },
    {
        "name": "Bright Solar Co", "sim": None,
        "campaigns": [{"name": "Solar homeowners, fixed", "vertical": "solar", "price_mode": "fixed",
                       "fixed_price_minor": 3500, "caps": [{"window": "day", "max_count": 200}],
                       "filters": [{"kind": "boolean_is", "field": "homeowner", "value": True}]}],
    },
    {
        "name": "Budget Solar", "sim": "budget",
        "behaviour": {"bid_min_minor": 1000, "bid_max_minor": 3000, "latency_ms": 250,
                      "pass_rate": 0.2, "post_reject_rate": 0.15},
        "campaigns": [{"name": "Solar anywhere", "vertical": "solar", "price_mode": "live"}],
    },
    {
        "name": "Coverage Now", "sim": "coverage",
        "behaviour": {"bid_min_minor": 1500, "bid_max_minor": 4500, "latency_ms": 60, "timeout_rate": 0.05,
                      "error_rate": 0.03},
        "campaigns": [{"name": "Auto, insured drivers", "vertical": "auto_insurance", "price_mode": "live",
                       "filters": [{"kind": "boolean_is", "field": "currently_insured", "value": True}]}],
    },
    {
        "name": "Safe Drivers Insurance", "sim": None,
        "campaigns": [{"name": "Auto, everyone", "vertical": "auto_insurance", "price_mode": "fixed",
                       # A tight cap: past it, auto leads go unsold to the demo team.
                       "fixed_price_minor": 2200, "caps": [{"window": "hour", "max_count": 10}]}],
    },
    {
        "name": "Solar Call Center", "sim": None,
        # Phone calls (docs/calls.md): two lines; a call busy past them goes to the demo team.
        "campaigns": [{"name": "Solar calls, west", "vertical": "solar", "price_mode": "fixed",
                       "fixed_price_minor": 4500, "caps": [{"window": "concurrent", "max_count": 2}],
                       "filters": [{"kind": "states_in", "field": "state",
                                    "states": ["CA", "AZ", "TX", "NV", "CO", "WA", "OR"]}],
                       "call": {"destination": "+14155550100", "min_duration_s": 90}}],
    },
]  # fmt: skip
DEMO_BALANCE_MINOR = 10_000_000  # $100,000 each: the demo should run a long time before money runs out


def demo_behaviours() -> dict[str, Any]:
    from exchange.simulator import Behaviour

    return {b["sim"]: msgspec.convert(b["behaviour"], Behaviour) for b in DEMO_BUYERS if b["sim"]}


async def ensure_demo_market(conn: AsyncConnection, simulator_url: str) -> int:
    """Create the demo buyers and campaigns once; point live campaigns at the simulator.

    Returns how many campaigns were created."""
    from exchange.auth.parties import PartyIn, PartyKind, create_party
    from exchange.campaigns import service as campaigns
    from exchange.campaigns.terms import BuyerAccountIn, upsert_account
    from exchange.ledger import deposit_entry, entry_id, post_entry
    from exchange.simulator import endpoints
    from exchange.store.tables import campaigns as campaigns_table
    from exchange.store.tables import parties

    created = 0
    for buyer in DEMO_BUYERS:
        row = (
            await conn.execute(
                sa.select(parties.c.id).where(parties.c.kind == "buyer", parties.c.name == buyer["name"])
            )
        ).first()
        if row is None:
            party = await create_party(conn, PartyIn(kind=PartyKind.BUYER, name=buyer["name"], timezone="America/New_York"))
            buyer_id = party.id
            await upsert_account(conn, buyer_id, BuyerAccountIn(credit_limit_minor=0))
            deposit = deposit_entry(
                entry_id("demo-deposit", buyer_id), buyer_id, DEMO_BALANCE_MINOR, "USD", memo="demo deposit"
            )
            await post_entry(conn, deposit, now=dt.datetime.now(dt.timezone.utc))
            for spec in buyer["campaigns"]:
                data = dict(spec)
                if buyer["sim"]:
                    data["endpoints"] = endpoints(simulator_url, buyer["sim"], live=data["price_mode"] == "live")
                await campaigns.create(conn, buyer_id, msgspec.convert(data, campaigns.CampaignIn))
                created += 1
        elif buyer["sim"]:
            # The simulator listens on a new port each run: follow it.
            for campaign in await conn.execute(
                sa.select(campaigns_table.c.id, campaigns_table.c.price_mode).where(campaigns_table.c.buyer_id == row.id)
            ):
                await conn.execute(
                    campaigns_table.update()
                    .where(campaigns_table.c.id == campaign.id)
                    .values(endpoints=endpoints(simulator_url, buyer["sim"], live=campaign.price_mode == "live"))
                )
    return created


# --- `exchange demo`: a finite simulated run with a summary ---------------------------------


class DemoSummary(msgspec.Struct, kw_only=True):
    leads: int = 0
    sold: int = 0
    unsold: int = 0
    refused: int = 0
    revenue_minor: int = 0
    payout_minor: int = 0
    reasons: dict[str, int] = {}
    books_balance: bool = False  # the trial balance is zero
    reconciled: bool = False  # every delivered sale has exactly one charge and payout


async def run_demo(settings: Settings, leads: int, progress: Any = None) -> DemoSummary:
    """Seed a fresh database, start simulated buyers, post ``leads`` leads through the API and
    count what happened."""
    import msgspec as _msgspec
    from litestar.testing import AsyncTestClient

    from exchange.app import create_app
    from exchange.intake import verticals
    from exchange.simulator import BuyerServer
    from exchange.store import migrate
    from exchange.store.db import Database
    from exchange.store.tables import sales

    await asyncio.to_thread(migrate.upgrade, settings)
    rng = random.Random(7)
    summary = DemoSummary(reasons={})
    with BuyerServer(demo_behaviours(), seed=7) as simulator:
        db = Database(settings)
        try:
            async with db.write() as conn:
                await verticals.seed(conn, fields_max=settings.vertical_fields_max)
                await ensure_demo_market(conn, simulator.base_url)
                key = await ensure_demo_supplier(conn, settings)
            async with db.read() as conn:
                specs = [(v.slug, v.fields) for v in await verticals.list_all(conn)]
        finally:
            await db.dispose()
        app = create_app(settings, in_process_worker=False)
        headers = {"Authorization": f"Bearer {key}"}
        async with AsyncTestClient(app) as client:
            for i in range(leads):
                slug, fields = rng.choice(specs)
                r = await client.post("/v1/leads", json=fake_lead(slug, fields, rng), headers=headers)
                body = _msgspec.json.decode(r.content)
                summary.leads += 1
                if r.status_code != 201:
                    summary.refused += 1
                    code = body["error"]["code"]
                    summary.reasons[code] = summary.reasons.get(code, 0) + 1
                elif body["status"] == "sold":
                    summary.sold += 1
                    summary.payout_minor += body["payout_minor"]
                else:
                    summary.unsold += 1
                    for reason in body["reasons"]:
                        summary.reasons[reason] = summary.reasons.get(reason, 0) + 1
                if progress is not None:
                    progress(i + 1)
    db = Database(settings)
    try:
        async with db.read() as conn:
            summary.revenue_minor = int(
                (
                    await conn.execute(
                        sa.select(sa.func.coalesce(sa.func.sum(sales.c.price_minor), 0)).where(
                            sales.c.status == "delivered"
                        )
                    )
                ).scalar_one()
            )
            from exchange.ledger import reconcile, trial_balance

            trial = await trial_balance(conn)
            summary.books_balance = trial.balanced
            summary.reconciled = (await reconcile(conn)).ok
    finally:
        await db.dispose()
    return summary


# --- the demo team: leads nobody bought, routed by what agents' outcomes teach ----------------

DEMO_TEAM_NAME = "Demo inside sales"
# (name, tier, hidden chance to win a lead): the demo's agents report outcomes drawn from these,
# and the team's predictive routing has to find out who is good from those reports alone.
DEMO_AGENTS: list[tuple[str, int, float]] = [
    ("Avery", 1, 0.40), ("Blake", 1, 0.25), ("Casey", 2, 0.15), ("Drew", 2, 0.10),
    ("Emery", 2, 0.05),
]  # fmt: skip
DEMO_TEAM_CONFIG: dict[str, Any] = {
    "strategy": "predictive",
    "routing": {
        "timezone": "America/New_York",
        # Cold leads are shared out evenly; the rest go where they are likeliest to be won.
        "rules": [{"strategy": "round_robin", "max_score": 40}],
        "score_tiers": [{"min_score": 80, "tiers": [1]}],
        "fairness_floor_pct": 50,
        "account_window_days": 30,
    },
}
DEMO_SCORING: dict[str, dict[str, Any]] = {
    "solar": {
        "base": 40,
        "rules": [
            {"field": "homeowner", "op": "eq", "value": True, "points": 20, "label": "homeowner"},
            {"field": "monthly_electric_bill", "op": "gte", "value": 15000, "points": 15,
             "label": "bill $150+"},
            {"field": "roof_shade", "op": "eq", "value": "mostly_shaded", "points": -20,
             "label": "shaded roof"},
            {"field": "purchase_timeframe", "op": "eq", "value": "immediately", "points": 10,
             "label": "buying now"},
        ],
    },
}  # fmt: skip
AGENT_TICK_S = 5.0  # how often the demo agents look at their leads
AGENT_WORK_S = 20.0  # a demo agent closes a lead this long (about) after first contact
DEMO_WON_VALUE_MINOR = (50_000, 500_000)  # a won deal's value range, $500 to $5,000


async def ensure_demo_team(conn: AsyncConnection) -> bool:
    """The demo team, its agents (profiles, no presence tracking), its route for every vertical
    and its smarter routing, and a scoring config for the solar vertical. True if created."""
    from exchange.auth.parties import PartyIn, PartyKind, create_party
    from exchange.intake import verticals
    from exchange.scoring import ScoringConfig
    from exchange.scoring.store import put_config
    from exchange.store.tables import parties
    from exchange.teams import service as teams
    from exchange.teams.messages import ProfileIn, RouteIn, TeamConfigIn

    found = (
        await conn.execute(
            sa.select(parties.c.id).where(
                parties.c.kind == PartyKind.TEAM.value, parties.c.name == DEMO_TEAM_NAME
            )
        )
    ).first()
    if found is not None:
        return False
    now = dt.datetime.now(dt.timezone.utc)
    team = await create_party(
        conn, PartyIn(kind=PartyKind.TEAM, name=DEMO_TEAM_NAME, timezone="America/New_York")
    )
    await teams.set_config(conn, team.id, msgspec.convert(DEMO_TEAM_CONFIG, TeamConfigIn), now)
    for name, tier, _rate in DEMO_AGENTS:
        agent = await create_party(
            conn, PartyIn(kind=PartyKind.AGENT, name=name, team_id=team.id,
                          timezone="America/New_York"),
        )  # fmt: skip
        profile = ProfileIn(
            timezone="America/New_York", tier=tier, heartbeat_ttl_s=None,
            call_destination=f"sip:{name.split()[0].lower()}@demo-pbx.example.com",
        )  # fmt: skip
        await teams.set_profile(conn, agent.id, profile, now)
    for vertical in await verticals.list_all(conn):
        await teams.set_route(conn, RouteIn(vertical=vertical.slug, team_id=team.id), now)
    for slug, config in DEMO_SCORING.items():
        await put_config(conn, slug, msgspec.convert(config, ScoringConfig))
    return True


DEMO_CONSOLE_KEYS_FILE = "demo_console_keys.json"
DEMO_CONSOLE_BUYER = "Bright Solar Co"  # a demo buyer whose fixed-price campaign buys all day


async def ensure_demo_console_keys(conn: AsyncConnection, settings: Settings) -> dict[str, str]:
    """A key for each console page of the demo (operator, finance, an advertiser, the demo
    supplier, an agent of the demo team), made once and kept under var/ (0600) so `make run` can say how to sign in.
    Demo keys for a local demo: a real deployment issues its own (docs/keys.md)."""
    from exchange.auth.parties import PartyIn, PartyKind, create_party, issue_key
    from exchange.store.tables import parties

    path = Path(settings.var_dir) / DEMO_CONSOLE_KEYS_FILE
    if path.exists():
        kept = msgspec.json.decode(path.read_bytes())
        if isinstance(kept, dict) and all(isinstance(v, str) for v in kept.values()):
            return kept

    async def party(kind: PartyKind, name: str) -> Any:
        row = (
            await conn.execute(sa.select(parties.c.id).where(parties.c.kind == kind.value, parties.c.name == name))
        ).first()
        return row.id if row else (await create_party(conn, PartyIn(kind=kind, name=name))).id

    wanted = {
        "operator": await party(PartyKind.OPERATOR, "Demo operator"),
        "finance": await party(PartyKind.FINANCE, "Demo finance"),
        "buyer": await party(PartyKind.BUYER, DEMO_CONSOLE_BUYER),
        "supplier": await party(PartyKind.SUPPLIER, DEMO_SUPPLIER_NAME),  # the demo traffic's
    }
    agent = (
        await conn.execute(
            sa.select(parties.c.id).where(parties.c.kind == PartyKind.AGENT.value, parties.c.name == DEMO_AGENTS[0][0])
        )
    ).first()
    if agent is not None:
        wanted["agent"] = agent.id
    keys = {kind: (await issue_key(conn, party_id, "demo console")).key for kind, party_id in wanted.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(msgspec.json.format(msgspec.json.encode(keys)) + b"\n")
    return keys


async def agents_at_work(settings: Settings) -> None:
    """The demo team's agents, forever: each makes first contact with the leads it owns, then
    closes them won (with a value) or lost by its hidden rate, higher for higher-scored leads.
    Their reports are the outcomes predictive routing learns from."""
    from exchange.auth.parties import PartyKind, Principal
    from exchange.store.db import Database
    from exchange.store.tables import parties

    rates = {name: rate for name, _tier, rate in DEMO_AGENTS}
    db = Database(settings)
    try:
        await asyncio.sleep(TRAFFIC_START_DELAY_S)
        async with db.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(parties.c.id, parties.c.name).where(
                        parties.c.kind == PartyKind.AGENT.value, parties.c.name.in_(list(rates))
                    )
                )
            ).all()
        agents = [
            (Principal(party_id=r.id, kind=PartyKind.AGENT, key_id=r.id, name=r.name), rates[r.name])
            for r in rows
        ]  # fmt: skip
        while True:
            for me, rate in agents:
                try:
                    await _work(db, me, rate)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the demo must never take the exchange down
                    log.warning("demo agent %s: %s", me.name, exc)
            await asyncio.sleep(AGENT_TICK_S)
    finally:
        await db.dispose()


async def _work(db: Any, me: Any, rate: float) -> None:
    """One look by one demo agent at the leads it owns."""
    from exchange.outcomes import service as outcomes
    from exchange.outcomes.messages import OutcomeIn, OutcomeKind
    from exchange.store.tables import leads
    from exchange.teams import service as teams
    from exchange.teams.messages import CloseIn

    now = dt.datetime.now(dt.timezone.utc)
    async with db.read() as conn:
        mine = await teams.my_leads(conn, me, 50)
    for lead in mine:
        async with db.write() as conn:
            if lead.first_contact_at is None:
                await teams.contacted(conn, me, lead.lead_id, now)
                continue
            if (now - lead.first_contact_at).total_seconds() < AGENT_WORK_S:
                continue
            score = (
                await conn.execute(sa.select(leads.c.score).where(leads.c.id == lead.lead_id))
            ).scalar_one_or_none()
            draw = random.Random(f"{lead.lead_id}:{me.party_id}")
            chance = min(0.95, rate * (0.5 + (score if score is not None else 50) / 100))
            if draw.random() < chance:
                value = draw.randint(*DEMO_WON_VALUE_MINOR)
                won = OutcomeIn(kind=OutcomeKind.WON, value_minor=value)
                await outcomes.report(conn, me, lead.lead_id, won, now)
                await teams.close_lead(conn, me, lead.lead_id, CloseIn(outcome="won"), now)
            else:
                await teams.close_lead(conn, me, lead.lead_id, CloseIn(outcome="lost"), now)
