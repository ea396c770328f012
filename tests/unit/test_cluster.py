"""exchange.cluster without a database: stopping escalates to SIGKILL, a process that dies while
starting is reported with its log, keys are read from the CLI's output, ports are free."""

from __future__ import annotations

import socket
import sys
import time

import pytest

from exchange.cluster import Cluster, ClusterError, Process, _key_from, free_ports

IGNORES_SIGTERM = (
    "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('up', flush=True); time.sleep(60)"
)


def _wait_for(process: Process, text: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in process.log():
        assert time.monotonic() < deadline, process.log()
        time.sleep(0.05)


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path):
    process = Process(
        "stubborn", "worker", [sys.executable, "-c", IGNORES_SIGTERM], tmp_path / "p.log"
    )
    process.start({}, tmp_path)
    _wait_for(process, "up")
    started = time.monotonic()
    code = process.stop(grace_s=0.5)
    assert process.killed and code == -9
    assert time.monotonic() - started < 5
    assert process.stop() == -9  # stopping again changes nothing


def test_a_process_that_stops_on_sigterm_is_not_killed(tmp_path):
    process = Process("polite", "api", [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
                      tmp_path / "p.log")  # fmt: skip
    process.start({}, tmp_path)
    _wait_for(process, "up")
    assert process.stop(grace_s=5) == -15 and not process.killed


def test_a_process_dying_at_start_fails_the_cluster_with_its_log(tmp_path):
    [port] = free_ports(1)
    cluster = Cluster(
        database_url="mysql://nowhere/db",  # not a URL the exchange accepts: serve exits at once
        redis_url="redis://127.0.0.1:1/0", secret_key="k", api_ports=[port], workers=0,
        log_dir=tmp_path, migrate=False, startup_timeout_s=30,
    )  # fmt: skip
    with pytest.raises(ClusterError) as failed:
        cluster.start()
    assert "api-1 exited" in str(failed.value) and "EXCHANGE_DATABASE_URL" in str(failed.value)
    assert not cluster.apis[0].running()


def test_the_key_is_read_from_the_cli_output():
    out = "created supplier 'S': 0190-...\nsupplier key lx_ab (default); shown once, store it now:\n  lx_ab_secret\n"
    assert _key_from(out) == "lx_ab_secret"
    with pytest.raises(ClusterError):
        _key_from("no key here")


def test_free_ports_skips_ports_in_use():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        taken = busy.getsockname()[1]
        ports = free_ports(1, [taken, *range(taken + 1, taken + 50)])
    assert ports and ports[0] != taken
