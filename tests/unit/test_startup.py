"""A serving process starts even when its database is down: the markets it would load at
startup load on first use, and /health says what is wrong."""

from __future__ import annotations

from litestar.testing import TestClient

from exchange.app import create_app
from exchange.settings import load_settings

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"  # port 1: refused at once


def test_the_api_starts_with_its_database_down_and_reports_it(tmp_path):
    settings = load_settings(
        env={}, database_url=UNREACHABLE, secret_key="test-secret-not-for-production",
        var_dir=str(tmp_path), campaign_cache_ttl_ms=1_000, database_timeout_s=1,
    )  # fmt: skip
    with TestClient(app=create_app(settings, in_process_worker=False)) as client:
        answer = client.get("/health")
    assert answer.status_code == 503
    assert answer.json()["database"].startswith("error:")


def test_a_stuck_lead_threshold_leaves_a_walk_room_for_its_posts():
    import pytest

    from exchange.auction.walking import walk_budget_s
    from exchange.settings import LEAD_STUCK_AFTER_S_MIN, SettingsError, load_settings

    with pytest.raises(SettingsError, match="EXCHANGE_LEAD_STUCK_AFTER_S"):
        load_settings(env={"EXCHANGE_LEAD_STUCK_AFTER_S": "60"}, secret_key="x" * 32)
    assert walk_budget_s(LEAD_STUCK_AFTER_S_MIN) > 0  # the smallest allowed still walks
