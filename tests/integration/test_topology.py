"""The production topology on this machine: two `exchange serve` processes and two `exchange
worker` processes on PostgreSQL and Redis (exchange.cluster), simulated buyers over real HTTP.

The market is built the way an operator would: an operator key from `exchange admin create-key`,
verticals from `exchange seed`, the supplier from `exchange party create`, everything else through
the HTTP API. Suppliers' requests are spread over both API processes: pings
answered by one are posted to the other, direct posts alternate, and leads nobody buys go to an
internal team whose agents claim them through the API process the lead did not come in by. One
buyer's endpoint fails its first posts, so workers must retry those deliveries. The test waits
(bounded) until every lead is terminal and every delivery done, then checks the books with
`exchange ledger trial-balance` and `exchange ledger reconcile`, and that both workers and both
API processes did work. On failure it prints every process's log.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest

from exchange.cluster import Cluster, free_ports
from exchange.simulator import Behaviour, BuyerServer, endpoints
from tests.conftest import scratch_pg_database

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

LEADS_PER_KIND = 8  # of each: ping+post CA, ping+post TX, direct CA, direct TX, direct NY (team)
DEPOSIT_MINOR = 1_000_000
FIXED_PRICE_MINOR = 3_000
FIXED_FAILS_FIRST = 2  # the fixed-price buyer's first posts answer 500: workers retry them
TERMINAL_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 15.0
CONCURRENCY = 6
FAILOVER_LEADS = 3  # sent after one worker stopped: the other must route them
CACHE_TTL_MS = 300  # campaigns written through one API process reach the other within this
RECEIVED = "Received message"  # dramatiq's debug line for each message a worker takes
CONSENT = {"tcpa_text": "By clicking Submit I agree to be contacted.", "ip_address": "203.0.113.7"}
ZIPS = {"CA": "94103", "TX": "73301", "NY": "10001"}


def _port_candidates() -> range | None:
    """EXCHANGE_TEST_PORTS=18300-18399 keeps the test's ports in a range; else the OS picks."""
    spec = os.environ.get("EXCHANGE_TEST_PORTS")
    if not spec:
        return None
    low, high = (int(x) for x in spec.split("-"))
    return range(low, high + 1)


@pytest.fixture
def empty_pg_url() -> Any:
    """A new, empty PostgreSQL database: the cluster migrates it as production would."""
    with scratch_pg_database("exchange_test_topology", migrated=False) as url:
        yield url


def _flush_broker(redis_url: str) -> None:
    """Messages left in this Redis by earlier tests name rows of other databases."""
    import redis

    from exchange.worker.broker import REDIS_NAMESPACE

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{REDIS_NAMESPACE}:*"))
    if keys:
        client.delete(*keys)


class Api:
    """HTTP to the cluster's API processes, counting what each one answered."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.clients = [httpx.Client(base_url=u, timeout=HTTP_TIMEOUT_S) for u in urls]
        self.served: Counter[int] = Counter()
        self._lock = threading.Lock()

    def call(
        self,
        i: int,
        method: str,
        path: str,
        key: str,
        expect: tuple[int, ...] = (200, 201),
        **kw: Any,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}", **kw.pop("headers", {})}
        r = self.clients[i % len(self.clients)].request(method, path, headers=headers, **kw)
        assert r.status_code in expect, (
            f"{method} {path} on api-{i % len(self.clients) + 1}: {r.status_code} {r.text}"
        )
        if r.status_code < 500:
            with self._lock:
                self.served[i % len(self.clients)] += 1
        return r

    def close(self) -> None:
        for c in self.clients:
            c.close()


def _party(api: Api, i: int, op: str, kind: str, **extra: Any) -> tuple[str, str]:
    party = api.call(
        i,
        "POST",
        "/v1/parties",
        op,
        json={"kind": kind, "name": f"{kind} {uuid.uuid4().hex[:6]}", **extra},
    ).json()
    key = api.call(
        i, "POST", f"/v1/parties/{party['id']}/keys", op, json={"name": "topology"}
    ).json()
    return party["id"], key["key"]


def _lead_fields(n: int, state: str) -> dict[str, Any]:
    return {
        "zip": ZIPS[state], "state": state, "homeowner": True, "property_type": "single_family",
        "monthly_electric_bill": "185.40", "first_name": "Ana", "last_name": f"Topo{n}",
        "phone": f"(415) 555-{1000 + n:04d}", "email": f"topo{n}-{uuid.uuid4().hex[:8]}@example.com",
        "address": f"{n} Market St",
    }  # fmt: skip


PII = {"first_name", "last_name", "phone", "email", "address"}


def _db_state(pg_url: str) -> dict[str, Any]:
    with psycopg.connect(pg_url) as conn:

        def rows(sql: str) -> list[tuple]:
            return conn.execute(sql).fetchall()

        return {
            "leads": dict(rows("SELECT status, count(*) FROM leads GROUP BY status")),
            "sales": dict(rows("SELECT status, count(*) FROM sales GROUP BY status")),
            "deliveries": dict(rows("SELECT status, count(*) FROM deliveries GROUP BY status")),
            "owners": dict(rows("SELECT status, count(*) FROM lead_owners GROUP BY status")),
            "unsold_not_owned": rows(
                "SELECT count(*) FROM leads l LEFT JOIN lead_owners o ON o.lead_id = l.id "
                "AND o.status = 'owned' WHERE l.status = 'unsold' AND o.lead_id IS NULL"
            )[0][0],
        }


def _offered(pg_url: str, lead_ids: list[str]) -> int:
    """How many of these leads a worker has routed (offers made to the team's agents)."""
    with psycopg.connect(pg_url) as conn:
        return conn.execute(
            "SELECT count(DISTINCT lead_id) FROM offers WHERE lead_id = ANY(%s::uuid[])",
            (lead_ids,),
        ).fetchone()[0]


def _settled(state: dict[str, Any], expected_leads: int) -> bool:
    return (
        sum(state["leads"].values()) == expected_leads
        and set(state["leads"]) <= {"sold", "unsold"}
        and set(state["sales"]) <= {"delivered"}
        and set(state["deliveries"]) <= {"delivered"}
        and state["unsold_not_owned"] == 0
    )


def test_two_apis_and_two_workers_settle_every_lead_and_the_books(
    empty_pg_url, redis_url, tmp_path
):
    started = time.monotonic()
    phases: dict[str, float] = {}  # seconds since the start, printed at the end
    _flush_broker(redis_url)
    *api_ports, sim_port = free_ports(3, _port_candidates())
    behaviours = {
        "live": Behaviour(bid_min_minor=1500, bid_max_minor=4000, latency_ms=20),
        "fixed": Behaviour(latency_ms=10, post_fail_first=FIXED_FAILS_FIRST),
    }
    cluster = Cluster(
        database_url=empty_pg_url,
        redis_url=redis_url,
        secret_key="topology-test-secret",
        api_ports=api_ports,
        workers=2,
        log_dir=tmp_path / "cluster",
        env={
            "EXCHANGE_CAMPAIGN_CACHE_TTL_MS": str(CACHE_TTL_MS),
            "EXCHANGE_DELIVERY_BACKOFF_MIN_MS": "200",
            "EXCHANGE_DELIVERY_BACKOFF_MAX_MS": "1000",
            "EXCHANGE_DELIVERY_SWEEP_INTERVAL_S": "2",
            "EXCHANGE_OFFER_SWEEP_INTERVAL_S": "1",
            "EXCHANGE_PING_SWEEP_INTERVAL_S": "1",
            "EXCHANGE_DATABASE_POOL_SIZE": "4",
            "EXCHANGE_DATABASE_POOL_OVERFLOW": "4",
        },
        worker_env={"EXCHANGE_LOG_LEVEL": "DEBUG"},  # dramatiq logs each message it takes
        worker_threads=4,
    )
    with BuyerServer(behaviours, port=sim_port, seed=11) as simulator, cluster:
        phases["cluster up"] = time.monotonic() - started
        api = Api(cluster.api_urls)
        stop_agents = threading.Event()
        try:
            _drive_and_check(cluster, api, simulator, empty_pg_url, stop_agents, phases)
        except BaseException:
            print(
                f"\n===== cluster logs ({cluster.log_dir}) =====\n{cluster.logs(tail_chars=6_000)}"
            )
            raise
        finally:
            stop_agents.set()
            api.close()
    phases["done"] = time.monotonic() - started
    print(
        "topology test, seconds since start: "
        + ", ".join(f"{k} {v:.1f}" for k, v in phases.items())
    )


def _drive_and_check(
    cluster: Cluster,
    api: Api,
    simulator: BuyerServer,
    pg_url: str,
    stop_agents: threading.Event,
    phases: dict[str, float],
) -> None:
    t0 = time.monotonic() - phases["cluster up"]

    def phase(name: str) -> None:
        phases[name] = time.monotonic() - t0

    # --- the market, through the HTTP API only -------------------------------------------
    with ThreadPoolExecutor(3) as pool:  # three CLI processes at once: each is a cold start
        seeded = pool.submit(cluster.seed)
        operator = pool.submit(cluster.create_operator_key)
        supplier_party = pool.submit(cluster.create_party, "supplier", "Topology supplier")
        seeded.result()
        op = operator.result()
        supplier_id, supplier = supplier_party.result()  # made the CLI way, the rest over HTTP
    live_id, live_key = _party(api, 1, op, "buyer")
    fixed_id, fixed_key = _party(api, 0, op, "buyer")
    _, finance = _party(api, 1, op, "finance")
    team_id, _ = _party(api, 0, op, "team")
    agents = [_party(api, i, op, "agent", team_id=team_id) for i in range(2)]

    api.call(1, "PUT", f"/v1/suppliers/{supplier_id}/terms", op, json={"min_payout_minor": 100})
    for i, buyer in enumerate((live_id, fixed_id)):
        api.call(i, "PUT", f"/v1/buyers/{buyer}/account", op, json={"credit_limit_minor": 0})
        api.call(i + 1, "POST", "/v1/ledger/deposits", finance,
                 json={"buyer_id": buyer, "amount_minor": DEPOSIT_MINOR, "memo": "topology"})  # fmt: skip
    api.call(0, "POST", "/v1/campaigns", live_key, json={
        "name": "live CA", "vertical": "solar", "price_mode": "live",
        "filters": [{"kind": "states_in", "field": "state", "states": ["CA"]}],
        "endpoints": endpoints(simulator.base_url, "live", live=True),
    })  # fmt: skip
    api.call(1, "POST", "/v1/campaigns", fixed_key, json={
        "name": "fixed TX", "vertical": "solar", "price_mode": "fixed",
        "fixed_price_minor": FIXED_PRICE_MINOR,
        "filters": [{"kind": "states_in", "field": "state", "states": ["TX"]}],
        "endpoints": endpoints(simulator.base_url, "fixed", live=False),
    })  # fmt: skip
    api.call(
        0,
        "PUT",
        f"/v1/teams/{team_id}/config",
        op,
        json={"strategy": "parallel", "offer_timeout_s": 300},
    )
    api.call(1, "PUT", "/v1/team-routes", op, json={"vertical": "solar", "team_id": team_id})
    for i, (agent_id, _) in enumerate(agents):
        api.call(i, "PUT", f"/v1/agents/{agent_id}/profile", op, json={"heartbeat_ttl_s": None})
    time.sleep(3 * CACHE_TTL_MS / 1000)  # both API processes' campaign caches have expired

    phase("market built")

    # --- agents: claim every offer through the API process the lead did not come in by ---
    came_in_by: dict[str, int] = {}  # lead id -> API index the supplier used
    claims: Counter[str] = Counter()
    claims_lock = threading.Lock()

    agent_errors: list[BaseException] = []

    def agent_loop(a: int) -> None:
        try:
            claim_all(a)
        except BaseException as exc:  # reported by the wait below, not lost with the thread
            agent_errors.append(exc)
            raise

    def claim_all(a: int) -> None:
        key = agents[a][1]
        for tick in itertools.count():
            if stop_agents.is_set():
                return
            offers = api.call(
                a + tick, "GET", "/v1/agents/me/offers", key, params={"status": "pending"}
            ).json()["items"]
            for offer in offers:
                posted_on = came_in_by.get(offer["lead_id"], a)
                r = api.call(
                    posted_on + 1, "POST", f"/v1/offers/{offer['id']}/claim", key, expect=(200, 409)
                )
                outcome = "won" if r.status_code == 200 else r.json()["error"]["code"]
                with claims_lock:
                    claims[outcome] += 1
            stop_agents.wait(0.2)

    agent_threads = [threading.Thread(target=agent_loop, args=(a,), daemon=True) for a in range(2)]
    for t in agent_threads:
        t.start()

    # --- suppliers' traffic, spread over both API processes ------------------------------
    numbers = itertools.count(1)
    outcomes: Counter[str] = Counter()
    outcomes_lock = threading.Lock()

    def ping_post(i: int, state: str) -> None:
        fields = _lead_fields(next(numbers), state)
        ping = {
            "vertical": "solar",
            "fields": {k: v for k, v in fields.items() if k not in PII},
            "source": "google",
        }
        offer = api.call(i, "POST", "/v1/pings", supplier, json=ping).json()
        assert offer["status"] == "accepted", offer
        post = {"ping_id": offer["ping_id"], "fields": fields, "consent": CONSENT}
        sold = api.call(i + 1, "POST", "/v1/posts", supplier, json=post).json()  # the other process
        came_in_by[sold["lead_id"]] = i + 1
        with outcomes_lock:
            outcomes[f"ping_post {state} {sold['status']}"] += 1

    def direct(i: int, state: str) -> str:
        body = {
            "vertical": "solar",
            "fields": _lead_fields(next(numbers), state),
            "consent": CONSENT,
            "source": "google",
        }
        r = api.call(
            i,
            "POST",
            "/v1/leads",
            supplier,
            json=body,
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        out = r.json()
        came_in_by[out["lead_id"]] = i
        with outcomes_lock:
            outcomes[f"direct {state} {out['status']}"] += 1
        return str(out["lead_id"])

    jobs = [(ping_post, "CA"), (ping_post, "TX"), (direct, "CA"), (direct, "TX"), (direct, "NY")]
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        futures = [pool.submit(fn, i, state) for i in range(LEADS_PER_KIND) for fn, state in jobs]
        for f in futures:
            f.result()
    n = LEADS_PER_KIND
    assert outcomes == {
        "ping_post CA sold": n, "ping_post TX sold": n, "direct CA sold": n,
        "direct TX sold": n, "direct NY unsold": n,
    }, outcomes  # fmt: skip
    total = len(jobs) * n
    phase("leads sent")

    # --- wait until every lead is terminal and every delivery done -----------------------
    deadline = time.monotonic() + TERMINAL_TIMEOUT_S
    state = _db_state(pg_url)
    while not _settled(state, total) and time.monotonic() < deadline:
        cluster.check_running()
        assert not agent_errors, f"an agent failed: {agent_errors[0]!r}"
        time.sleep(0.3)
        state = _db_state(pg_url)
    assert _settled(state, total), (
        f"after {TERMINAL_TIMEOUT_S:.0f} s not every lead is terminal or not every delivery done: "
        f"{state} (expected {total} leads: sold or unsold-and-owned; sales and deliveries delivered)"
    )
    stop_agents.set()
    for t in agent_threads:
        t.join(5)
    cluster.check_running()

    phase("all terminal")
    sold = 4 * n
    assert state["leads"] == {"sold": sold, "unsold": n}
    assert state["sales"] == {"delivered": sold} and state["deliveries"] == {"delivered": sold}
    assert state["owners"] == {"owned": n}
    assert claims["won"] == n, claims  # exactly one owner per lead; a losing claim answers 409
    assert set(claims) <= {"won", "already_claimed", "routing_closed", "offer_not_pending"}, claims

    with psycopg.connect(pg_url) as conn:
        owners = conn.execute(
            "SELECT agent_id::text FROM lead_owners WHERE status = 'owned'"
        ).fetchall()
        accepted = conn.execute(
            "SELECT lead_id, count(*) FROM offers WHERE status = 'accepted' GROUP BY lead_id"
        ).fetchall()
        attempts = dict(
            conn.execute(
                "SELECT outcome, count(*) FROM delivery_attempts GROUP BY outcome"
            ).fetchall()
        )
        spent = dict(
            conn.execute(
                "SELECT buyer_id::text, sum(price_minor) FROM sales WHERE status = 'delivered' GROUP BY buyer_id"
            ).fetchall()
        )
    assert {o for (o,) in owners} <= {a for a, _ in agents}
    assert len(accepted) == n and all(c == 1 for _, c in accepted)
    # The fixed-price buyer's failed posts were attempted again.
    assert sum(attempts.values()) >= sold + FIXED_FAILS_FIRST, attempts
    assert spent[fixed_id] == n * 2 * FIXED_PRICE_MINOR

    # Each buyer's balance, read through both processes: the deposit less what it was charged.
    for i, buyer in enumerate((live_id, fixed_id)):
        for j in range(2):
            account = api.call(i + j, "GET", f"/v1/buyers/{buyer}/account", op).json()
            assert account["balance_minor"] == DEPOSIT_MINOR - int(spent[buyer]), account

    # --- the books -----------------------------------------------------------------------
    with ThreadPoolExecutor(2) as pool:
        trial_run = pool.submit(cluster.cli, "ledger", "trial-balance", check=False)
        rec_run = pool.submit(cluster.cli, "ledger", "reconcile", check=False)
        trial, rec = trial_run.result(), rec_run.result()
    assert trial.returncode == 0 and "balanced" in trial.stdout, trial.stdout + trial.stderr
    assert (
        rec.returncode == 0
        and f"reconciled {sold} sales" in rec.stdout
        and "no anomaly" in rec.stdout
    ), rec.stdout + rec.stderr
    report = api.call(1, "GET", "/v1/ledger/reconciliation", finance).json()
    assert report["ok"] and report["sales_checked"] == sold, report

    phase("books checked")

    # --- every process did its share -----------------------------------------------------
    assert all(api.served[i] > 10 for i in range(2)), api.served
    # Which worker takes a burst of messages is up to whose idle poll comes first (up to a
    # second apart), so one may take them all. To show each worker works, the one that took
    # the most stops (gracefully, as in a deploy) and the other must carry new leads alone.
    taken = {w.name: w.log().count(RECEIVED) for w in cluster.workers}
    busiest = max(cluster.workers, key=lambda w: taken[w.name])
    assert busiest.stop(cluster.grace_s) == 0 and not busiest.killed, busiest.log()[-3000:]
    more = [direct(i, "NY") for i in range(FAILOVER_LEADS)]
    deadline = time.monotonic() + TERMINAL_TIMEOUT_S
    while _offered(pg_url, more) < len(more) and time.monotonic() < deadline:
        cluster.check_running()
        time.sleep(0.3)
    assert _offered(pg_url, more) == len(more), "the remaining worker did not route new leads"
    logs = {w.name: w.log() for w in cluster.workers}
    taken = {name: log.count(RECEIVED) for name, log in logs.items()}
    assert all(taken.values()), f"a worker took no message: {taken}"
    phase("failover checked")
    retried = sum(log.count("delivery attempt") for log in logs.values())
    assert retried >= FIXED_FAILS_FIRST, f"workers retried {retried} deliveries"
    codes = cluster.stop()  # SIGTERM: every process shuts down within its grace period
    assert not [p.name for p in cluster.processes if p.killed], (
        f"needed SIGKILL; exit codes {codes}"
    )
    print(f"exit codes after SIGTERM: {codes}")
    print(f"messages taken per worker: {taken}; delivery attempts by workers: {retried}; "
          f"requests per API: {dict(api.served)}; claims: {dict(claims)}")  # fmt: skip
