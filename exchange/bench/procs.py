"""Helper processes of the benchmark: buyer servers, baseline servers and the load generator.

Each is a child process in a session of its own (so it and anything it forks stop together),
logging to a file under the run's directory, stopped with SIGTERM then SIGKILL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import msgspec

from exchange.bench.loadgen import LoadSpec
from exchange.bench.stats import LoadResult
from exchange.cluster import HOST, Process

ROOT = Path(__file__).resolve().parent.parent.parent
READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0
LOADGEN_SLACK_S = 90.0  # beyond its duration: connect, warm up, the slowest answers
POLL_S = 0.1


class BenchError(RuntimeError):
    """A helper process failed."""


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def start(name: str, argv: Sequence[str], log_dir: Path, port: int | None = None,
          env: Mapping[str, str] | None = None) -> Process:  # fmt: skip
    process = Process(name, "helper", [sys.executable, *argv], log_dir / f"{name}.log", port)
    process.start(child_env(env), ROOT)
    return process


def wait_http(process: Process, path: str = "/health", timeout_s: float = READY_TIMEOUT_S,
              method: str = "GET") -> None:  # fmt: skip
    """Until ``path`` answers (any status below 500 for POST probes, 200 for GET)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process.running():
            raise BenchError(f"{process.name} exited while starting:\n{process.log()[-3000:]}")
        try:
            data = b"{}" if method == "POST" else None
            request = urllib.request.Request(f"{process.url}{path}", data=data, method=method)
            with urllib.request.urlopen(request, timeout=2) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if method == "POST" and exc.code < 500:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(POLL_S)
    raise BenchError(f"{process.name} not ready after {timeout_s:.0f} s:\n{process.log()[-3000:]}")


def uvicorn(name: str, factory: str, port: int, log_dir: Path, env: Mapping[str, str]) -> Process:
    argv = ["-m", "uvicorn", "--factory", factory, "--host", HOST, "--port", str(port),
            "--no-access-log", "--log-level", "warning", "--backlog", "4096"]  # fmt: skip
    return start(name, argv, log_dir, port, env)


def run_load(spec: LoadSpec, log_dir: Path) -> LoadResult:
    """Run the load generator in its own process and read back what it measured."""
    with tempfile.TemporaryDirectory(dir=log_dir) as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_path.write_bytes(msgspec.json.encode(spec))
        timeout = spec.duration_s + spec.warmup_s + LOADGEN_SLACK_S
        done = subprocess.run(
            [sys.executable, "-m", "exchange.bench.loadgen", str(spec_path), str(out_path)],
            env=child_env(), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise BenchError(f"load generator exited {done.returncode}:\n{done.stderr[-3000:]}")
        return msgspec.json.decode(out_path.read_bytes(), type=LoadResult)


def get_json(url: str, timeout_s: float = 10.0) -> object:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
        return json.loads(resp.read())
