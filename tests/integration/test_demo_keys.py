"""`make run`'s demo console keys: one per page, each of its kind, kept under var/ (0600) and
the same on every run."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from exchange import demo
from exchange.auth.parties import authenticate
from exchange.intake import verticals
from tests.conftest import run


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_each_console_page_gets_a_demo_key_of_its_kind_kept_between_runs(backend):
    async def first(conn):
        await verticals.seed(conn, fields_max=200)
        await demo.ensure_demo_team(conn)
        return await demo.ensure_demo_console_keys(conn, backend)

    keys = run(backend, first)
    assert set(keys) == {"operator", "finance", "buyer", "supplier", "agent"}

    async def kinds(conn):
        return {kind: (await authenticate(conn, key)).kind.value for kind, key in keys.items()}

    assert run(backend, kinds) == {k: k for k in keys}
    path = Path(backend.var_dir) / demo.DEMO_CONSOLE_KEYS_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert run(backend, lambda conn: demo.ensure_demo_console_keys(conn, backend)) == keys
