"""The CLI a newcomer uses: migrate, seed, create keys, revoke them."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from litestar.testing import TestClient

from exchange.app import create_app
from exchange.settings import load_settings
from tests.conftest import decode
from tests.integration.test_intake_api import solar_lead

KEY = re.compile(r"^\s+(lx_\S+)$", re.M)


def cli(settings, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(
        EXCHANGE_DATABASE_URL=settings.database_url,
        EXCHANGE_SECRET_KEY=settings.secret_key,
        EXCHANGE_VAR_DIR=settings.var_dir,
    )
    return subprocess.run(
        [sys.executable, "-m", "exchange.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def sqlite_settings(tmp_path):
    return load_settings(
        env={}, database_url=f"sqlite:///{tmp_path}/cli.db", secret_key="s", var_dir=str(tmp_path / "var")
    )


def test_from_empty_database_to_a_posted_lead(sqlite_settings):
    s = sqlite_settings
    assert cli(s, "migrate").returncode == 0
    seeded = cli(s, "seed")
    assert "auto_insurance, solar" in seeded.stdout
    assert "none (all present)" in cli(s, "seed").stdout

    admin = cli(s, "admin", "create-key")
    assert admin.returncode == 0, admin.stderr
    admin_key = KEY.search(admin.stdout).group(1)
    supplier = cli(s, "party", "create", "--kind", "supplier", "--name", "Acme Leads")
    assert supplier.returncode == 0, supplier.stderr
    supplier_key = KEY.search(supplier.stdout).group(1)

    with TestClient(create_app(s, in_process_worker=False)) as client:
        r = client.post("/v1/leads", json=solar_lead(), headers={"Authorization": f"Bearer {supplier_key}"})
        assert r.status_code == 201, r.text
        parties = decode(client.get("/v1/parties", headers={"Authorization": f"Bearer {admin_key}"}))
        assert sorted(p["kind"] for p in parties["items"]) == ["operator", "supplier"]

    prefix = supplier_key.split("_")[1]
    revoked = cli(s, "key", "revoke", prefix)
    assert revoked.returncode == 0 and "revoked key" in revoked.stdout
    with TestClient(create_app(s, in_process_worker=False)) as client:
        r = client.post("/v1/leads", json=solar_lead(), headers={"Authorization": f"Bearer {supplier_key}"})
        assert r.status_code == 401


def test_cli_errors_are_readable(sqlite_settings):
    s = sqlite_settings
    cli(s, "migrate")
    bad = cli(s, "party", "create", "--kind", "buyer", "--name", "x", "--timezone", "Nowhere/Land")
    assert bad.returncode == 1
    assert "error: unknown time zone (timezone: 'Nowhere/Land' is not an IANA time zone)" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = cli(s, "key", "revoke", "000000000000")
    assert missing.returncode == 1 and "no key with prefix" in missing.stderr
    env_bad = subprocess.run(
        [sys.executable, "-m", "exchange.cli", "seed"],
        env=dict(os.environ, EXCHANGE_DATABASE_URL="mysql://x"), capture_output=True, text=True,
    )
    assert env_bad.returncode == 2 and "EXCHANGE_DATABASE_URL" in env_bad.stderr


def test_export_prints_shell_lines_for_eval(sqlite_settings):
    assert cli(sqlite_settings, "migrate").returncode == 0
    made = cli(sqlite_settings, "party", "create", "--kind", "buyer", "--name", "Sunny", "--export", "BUYER")
    assert made.returncode == 0, made.stderr
    assert re.fullmatch(r"export BUYER_ID=[0-9a-f-]{36}\nexport BUYER_KEY=lx_\S+\n", made.stdout)
    admin = cli(sqlite_settings, "admin", "create-key", "--export", "OPERATOR")
    assert re.fullmatch(r"export OPERATOR_ID=[0-9a-f-]{36}\nexport OPERATOR_KEY=lx_\S+\n", admin.stdout)
    refused = cli(sqlite_settings, "party", "create", "--kind", "buyer", "--name", "x", "--export", "buyer; rm")
    assert refused.returncode == 2 and "shell variable prefix" in refused.stderr
