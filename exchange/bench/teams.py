"""Scenario 5: internal teams on PostgreSQL.

Round-robin: unsold leads (posted through the API before any route existed, so no worker routed
them) are routed with ``teams.routing.route_lead`` by ``ROUTER_PROCESSES`` processes running
``ROUTERS_PER_PROCESS`` concurrent tasks each, as API and worker processes would: leads per
second among ``agents`` agents, and how evenly they were shared.

Parallel: for each trial a lead is offered to ``claimers`` agents at once, then every agent
claims it over HTTP at the same moment: the settle time is from the first claim sent to the last
answer; exactly one claim must win (the others get 409).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import multiprocessing
import time
import uuid
from collections import Counter

import aiohttp
import msgspec
import sqlalchemy as sa

from exchange.bench import leads
from exchange.bench.seed import TEAMS_VERTICAL
from exchange.bench.stats import Latency
from exchange.settings import Settings

ROUTER_PROCESSES = 2  # routing runs in every API and worker process; one per core here
ROUTERS_PER_PROCESS = 4  # concurrent routing tasks in each
LEAD_POSTERS = 16  # concurrent connections creating the unsold leads
PARALLEL_OFFER_TIMEOUT_S = 300
RR_SOURCE = "rr"
PARALLEL_SOURCE = "parallel"
HTTP_TIMEOUT_S = 30.0


class TeamsResult(msgspec.Struct, kw_only=True):
    agents: int
    leads: int
    rr_leads_per_s: float
    rr_route: Latency
    rr_spread: int  # most leads one agent got minus fewest
    claimers: int
    trials: int
    settle: Latency  # per trial: first claim sent to last answer
    claim: Latency  # per claim
    single_winner_trials: int


class _Team(msgspec.Struct):
    team_id: uuid.UUID
    agents: list[uuid.UUID]
    keys: list[str]


async def _team(conn: sa.ext.asyncio.AsyncConnection, name: str, agents: int, strategy: str) -> _Team:
    from exchange.auth.parties import PartyIn, PartyKind, create_party, issue_key
    from exchange.teams import service
    from exchange.teams.messages import ProfileIn, TeamConfigIn

    now = dt.datetime.now(dt.timezone.utc)
    team = await create_party(conn, PartyIn(kind=PartyKind.TEAM, name=name))
    config = TeamConfigIn(strategy=strategy, offer_timeout_s=PARALLEL_OFFER_TIMEOUT_S)  # type: ignore[arg-type]
    await service.set_config(conn, team.id, config, now)
    ids, keys = [], []
    for i in range(agents):
        agent = await create_party(conn, PartyIn(kind=PartyKind.AGENT, name=f"{name} agent {i}", team_id=team.id))
        await service.set_profile(conn, agent.id, ProfileIn(heartbeat_ttl_s=None), now)
        ids.append(agent.id)
        keys.append((await issue_key(conn, agent.id, "bench")).key)
    return _Team(team.id, ids, keys)


async def _route(conn: sa.ext.asyncio.AsyncConnection, team_id: uuid.UUID, source: str) -> None:
    from exchange.teams import service
    from exchange.teams.messages import RouteIn

    await service.set_route(conn, RouteIn(vertical=TEAMS_VERTICAL, team_id=team_id, source=source),
                            dt.datetime.now(dt.timezone.utc))  # fmt: skip


async def _post_unsold(urls: list[str], key: str, count: int, source: str, seq_start: int) -> list[uuid.UUID]:
    """Unsold leads (the vertical has no campaigns), posted before their route exists."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    ids: list[uuid.UUID] = []
    seqs = iter(range(seq_start, seq_start + count))

    async def poster(http: aiohttp.ClientSession, n: int) -> None:
        for seq in seqs:
            body = leads.direct_post(TEAMS_VERTICAL, leads.SOLAR_LIKE, seq, f"teams-{source}")
            body["source"] = source
            async with http.post(urls[n % len(urls)] + "/v1/leads", data=msgspec.json.encode(body)) as resp:
                answer = msgspec.json.decode(await resp.read())
                if resp.status != 201 or answer.get("status") != "unsold":
                    raise RuntimeError(f"teams lead not unsold: {resp.status} {answer}")
                ids.append(uuid.UUID(answer["lead_id"]))

    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)) as http:
        await asyncio.gather(*(poster(http, n) for n in range(LEAD_POSTERS)))
    return ids


ROUTERS_START_DELAY_S = 0.5  # every routing process starts at the same moment


def _warm(settings: Settings) -> None:
    """Nothing: spawning the process and importing this module is the warm-up."""


def _route_share(settings: Settings, lead_ids: list[uuid.UUID], start_at: float) -> tuple[list[float], Counter[str], float]:
    """In a routing process: route ``lead_ids`` with ``ROUTERS_PER_PROCESS`` tasks from
    ``start_at`` (wall clock); per-lead latencies, leads per agent, and when it finished."""
    return asyncio.run(_route_async(settings, lead_ids, start_at))


async def _route_async(settings: Settings, lead_ids: list[uuid.UUID], start_at: float) -> tuple[list[float], Counter[str], float]:
    from exchange.store.db import Database
    from exchange.teams import routing

    logging.getLogger("exchange.teams").setLevel(logging.WARNING)  # no line per routed lead
    db = Database(settings)
    pending = iter(lead_ids)
    route_ms: list[float] = []
    owners: Counter[str] = Counter()

    async def router() -> None:
        for lead_id in pending:
            started = time.perf_counter()
            owned = await routing.route_lead(db, lead_id)
            route_ms.append((time.perf_counter() - started) * 1000)
            if owned is not None and owned.agent_id is not None:
                owners[str(owned.agent_id)] += 1

    try:
        async with db.read() as conn:  # the pool's first connection, before the clock starts
            await conn.execute(sa.text("SELECT 1"))
        await asyncio.sleep(max(0.0, start_at - time.time()))
        await asyncio.gather(*(router() for _ in range(ROUTERS_PER_PROCESS)))
        return route_ms, owners, time.time()
    finally:
        await db.dispose()


async def run(settings: Settings, urls: list[str], supplier_key: str, *, agents: int, rr_leads: int,
              claimers: int, trials: int, seq_start: int) -> TeamsResult:  # fmt: skip
    from exchange.store.db import Database
    from exchange.store.tables import offers
    from exchange.teams import routing

    # Routing runs in this process: its per-lead INFO lines would flood the bench's console.
    teams_log = logging.getLogger("exchange.teams")
    level = teams_log.level
    teams_log.setLevel(max(logging.WARNING, level))
    db = Database(settings)
    try:
        async with db.write() as conn:
            rr = await _team(conn, "bench round-robin", agents, "round_robin")
            par = await _team(conn, "bench parallel", claimers, "parallel")
        rr_ids = await _post_unsold(urls, supplier_key, rr_leads, RR_SOURCE, seq_start)
        par_ids = await _post_unsold(urls, supplier_key, trials, PARALLEL_SOURCE, seq_start + rr_leads)
        async with db.write() as conn:
            await _route(conn, rr.team_id, RR_SOURCE)
            await _route(conn, par.team_id, PARALLEL_SOURCE)

        # Round-robin: ROUTER_PROCESSES processes route every lead, as API and worker processes would.
        route_ms: list[float] = []
        owners: Counter[str] = Counter()
        shares = [rr_ids[i::ROUTER_PROCESSES] for i in range(ROUTER_PROCESSES)]
        context = multiprocessing.get_context("spawn")  # a clean process: no inherited sockets
        with concurrent.futures.ProcessPoolExecutor(ROUTER_PROCESSES, mp_context=context) as pool:
            list(pool.map(_warm, [settings] * ROUTER_PROCESSES))  # imports and pools ready first
            start_at = time.time() + ROUTERS_START_DELAY_S
            done = list(pool.map(_route_share, [settings] * ROUTER_PROCESSES, shares, [start_at] * ROUTER_PROCESSES))
        for share_ms, share_owners, _ in done:
            route_ms += share_ms
            owners.update(share_owners)
        rr_elapsed = max(finished for _, _, finished in done) - start_at
        counts = [owners.get(str(a), 0) for a in rr.agents]

        # Parallel: offer each lead to every claimer, then all claim at once over HTTP.
        settle_ms, claim_ms, single = [], [], 0
        key_of = {str(a): k for a, k in zip(par.agents, par.keys, strict=True)}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)) as http:
            for lead_id in par_ids:
                await routing.route_lead(db, lead_id)
                async with db.read() as conn:
                    made = (await conn.execute(
                        sa.select(offers.c.id, offers.c.agent_id).where(offers.c.lead_id == lead_id)
                    )).all()  # fmt: skip
                first = time.perf_counter()

                async def claim(n: int, offer_id: uuid.UUID, agent_id: uuid.UUID, first: float = first) -> int:
                    url = f"{urls[n % len(urls)]}/v1/offers/{offer_id}/claim"
                    async with http.post(url, headers={"Authorization": f"Bearer {key_of[str(agent_id)]}"}) as resp:
                        await resp.read()
                        claim_ms.append((time.perf_counter() - first) * 1000)
                        return resp.status

                statuses = await asyncio.gather(*(claim(n, o.id, o.agent_id) for n, o in enumerate(made)))
                settle_ms.append((time.perf_counter() - first) * 1000)
                single += int(statuses.count(200) == 1 and statuses.count(409) == len(statuses) - 1)
    finally:
        await db.dispose()
        teams_log.setLevel(level)
    return TeamsResult(
        agents=agents, leads=len(rr_ids), rr_leads_per_s=len(rr_ids) / rr_elapsed, rr_route=Latency.of(route_ms),
        rr_spread=max(counts) - min(counts), claimers=claimers, trials=len(par_ids), settle=Latency.of(settle_ms),
        claim=Latency.of(claim_ms), single_winner_trials=single,
    )  # fmt: skip
