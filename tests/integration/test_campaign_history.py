"""The per-process cache of teams' campaign conversion counts (exchange.scoring.history):
no campaigns ranked by conversion, no work; otherwise one read per vertical and TTL."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

from exchange.outcomes import stats
from exchange.scoring import Counts
from exchange.scoring.history import CampaignHistory
from exchange.store.db import Database
from tests.conftest import run


def test_campaign_counts_are_read_once_per_vertical_and_set(exchange):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC)
    keys = [(stats.campaign_subject(a), "*"), (stats.campaign_subject(a), "priority=high")]
    run(exchange.settings, lambda c: stats.add(c, keys, stats.Counts(4, 1), now))
    vertical = uuid.uuid4()
    with asyncio.Runner() as runner:
        db = Database(exchange.settings)
        history = CampaignHistory(db, ttl_s=30)
        fresh = CampaignHistory(db, ttl_s=0)
        try:
            assert runner.run(history.counts(vertical, frozenset())) == {} and history.loads == 0
            for _ in range(5):
                found = runner.run(history.counts(vertical, frozenset({a, b})))
            assert history.loads == 1
            assert found == {a: {"*": Counts(4, 1), "priority=high": Counts(4, 1)}}
            runner.run(history.counts(vertical, frozenset({a})))  # the market changed: reload
            assert history.loads == 2
            runner.run(fresh.counts(vertical, frozenset({a})))
            runner.run(fresh.counts(vertical, frozenset({a})))
            assert fresh.loads == 2  # TTL 0: every lead reads afresh (tests)
        finally:
            runner.run(history.close())
            runner.run(db.dispose())
