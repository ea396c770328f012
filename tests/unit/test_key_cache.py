"""The per-app cache of accepted keys: bounded in time, per app, cleared by a revocation here."""

from __future__ import annotations

import uuid

from freezegun import freeze_time

from exchange.auth.parties import KeyCache, PartyKind, Principal, forget_principals

KEY = "lx_0123456789ab_secret"


def principal() -> Principal:
    return Principal(party_id=uuid.uuid4(), kind=PartyKind.SUPPLIER, key_id=uuid.uuid4(), name="s")


def test_a_key_is_remembered_for_the_ttl_then_looked_up_again():
    cache = KeyCache(ttl_ms=5_000)
    who = principal()
    with freeze_time("2026-11-23 12:00:00") as clock:
        cache.put(KEY, who)
        assert cache.get(KEY) == who
        clock.tick(4.9)
        assert cache.get(KEY) == who
        clock.tick(0.2)
        assert cache.get(KEY) is None


def test_each_app_has_its_own_cache_and_a_revocation_here_clears_them_all():
    first, second = KeyCache(ttl_ms=5_000), KeyCache(ttl_ms=5_000)
    first.put(KEY, principal())
    assert second.get(KEY) is None
    forget_principals()
    assert first.get(KEY) is None


def test_ttl_zero_remembers_nothing():
    cache = KeyCache(ttl_ms=0)
    cache.put(KEY, principal())
    assert cache.get(KEY) is None
