"""Scenario 6: an API process's resident memory with many campaigns in its cache.

Campaigns are added (in a vertical of their own) until the database holds ``total``; then a
fresh API process (nothing else has run in it, so what it holds is the code and the campaigns)
is asked to explain a lead of every vertical, which loads every vertical's campaign cache, and
its ``VmRSS`` is read from ``/proc/<pid>/status`` before and after. The API processes that served
the load are read too, for comparison.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request

import msgspec

from exchange.bench import leads
from exchange.bench.seed import (
    COPIES,
    DEADLINE_VERTICAL,
    MEMORY_VERTICAL,
    PING_VERTICAL,
    POST_VERTICAL,
    add_fixed_campaigns,
    count_rows,
)
from exchange.settings import Settings

KIB_PER_MIB = 1024
MEMORY_BUYERS = 10  # who owns the extra campaigns does not matter here
EXPLAIN_TIMEOUT_S = 120.0
SHAPES = {POST_VERTICAL: leads.SOLAR_LIKE, PING_VERTICAL: leads.AUTO_LIKE, DEADLINE_VERTICAL: leads.AUTO_LIKE}


class MemoryResult(msgspec.Struct, kw_only=True):
    campaigns: int
    rss_before_mib: float  # the fresh process, started, before its cache is loaded
    rss_mib: float  # the fresh process with every campaign cached
    loaded_mib: list[float]  # the API processes that served the load, caches warm too
    warm_s: float


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / KIB_PER_MIB
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _explain(url: str, key: str, vertical: str) -> None:
    shape = SHAPES.get(vertical, leads.SOLAR_LIKE if COPIES.get(vertical) == "solar" else leads.AUTO_LIKE)
    body = msgspec.json.encode({"vertical": vertical, "fields": leads.ping_fields(shape, 0)})
    request = urllib.request.Request(f"{url}/v1/explain", data=body, method="POST", headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=EXPLAIN_TIMEOUT_S) as resp:
            resp.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"explain {vertical} at {url}: HTTP {exc.code}: {exc.read()[:300]!r}") from exc


def add_campaigns(settings: Settings, buyers_url: str, total: int) -> int:
    """Campaigns until the database holds ``total``; returns how many it holds."""
    from exchange.store.tables import campaigns

    existing = asyncio.run(count_rows(settings, campaigns))
    if total > existing:
        asyncio.run(add_fixed_campaigns(settings, buyers_url, MEMORY_VERTICAL, total - existing, seed=9,
                                        buyers_max=MEMORY_BUYERS))  # fmt: skip
    return max(total, existing)


def warm(url: str, operator_key: str) -> float:
    """Load every vertical's campaign cache in the process at ``url``; seconds it took."""
    started = time.perf_counter()
    for vertical in [POST_VERTICAL, PING_VERTICAL, *COPIES]:
        _explain(url, operator_key, vertical)
    return time.perf_counter() - started


def measure(fresh: tuple[str, int], loaded: list[tuple[str, int]], operator_key: str, campaigns: int,
            cache_ttl_ms: int) -> MemoryResult:  # fmt: skip
    """RSS of the fresh process before and after warming it; of the loaded ones after."""
    before = rss_mib(fresh[1])
    warm_s = warm(fresh[0], operator_key)
    time.sleep(cache_ttl_ms / 1000)  # the loaded processes' caches expire: they reload it all
    for url, _ in loaded:
        warm(url, operator_key)
    return MemoryResult(campaigns=campaigns, rss_before_mib=before, rss_mib=rss_mib(fresh[1]),
                        loaded_mib=[rss_mib(pid) for _, pid in loaded], warm_s=warm_s)  # fmt: skip
