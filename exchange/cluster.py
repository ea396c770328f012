"""The production topology on one machine: N API processes and M workers as real processes.

``exchange serve`` processes (each on its own port) and ``exchange worker`` processes share one
PostgreSQL database, one Redis and one secret key, exactly as they would across machines. Each
process is started as ``sys.executable -m exchange.cli ...`` (no console script needed), writes
its output to its own file under ``log_dir`` and is stopped with SIGTERM, then SIGKILL after a
grace period. The topology test and the benchmark use it::

    with Cluster(database_url=pg, redis_url=redis, secret_key="...",
                 api_ports=[18301, 18302], workers=2, log_dir=tmp) as cluster:
        key = cluster.create_operator_key()
        ... drive cluster.api_urls ...
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 60.0  # a cold start of every process on a small machine
STOP_GRACE_S = 10.0  # SIGTERM, then this long, then SIGKILL
CLI_TIMEOUT_S = 120.0
POLL_S = 0.1
LOG_TAIL_CHARS = 4_000
WORKER_READY_MARKER = "ready for action"  # dramatiq's line once a worker process consumes
_KEY_LINE = re.compile(r"^\s+(\S+)\s*$", re.MULTILINE)  # the key line `exchange ... create` prints
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ClusterError(RuntimeError):
    """A process of the cluster would not start, or a command failed."""


class Process:
    """One process of the cluster: its command, its log file and its ``Popen``."""

    def __init__(
        self,
        name: str,
        role: str,
        argv: Sequence[str],
        log_path: Path,
        port: int | None = None,
        ready_lines: int = 1,
    ) -> None:
        self.name = name
        self.role = role  # "api" or "worker"
        self.argv = list(argv)
        self.log_path = log_path
        self.port = port
        self.popen: subprocess.Popen[bytes] | None = None
        self.ready_lines = ready_lines  # workers: one "ready" line per worker process
        self.killed = False  # it outlived its grace period and got SIGKILL
        self._terminated = False
        self._stopped = False

    @property
    def url(self) -> str | None:
        return f"http://{HOST}:{self.port}" if self.port is not None else None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self, env: Mapping[str, str], cwd: Path) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # A session of its own: the process and any children (dramatiq forks its worker
            # processes) form one group that stop() can kill as a whole if it must.
            self.popen = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=dict(env), cwd=cwd, start_new_session=True,
            )  # fmt: skip

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def terminate(self) -> None:
        """SIGTERM, once: the process shuts down gracefully (a second one may mean "hurry")."""
        if self.popen is not None and not self._terminated and self.popen.poll() is None:
            self._terminated = True
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)

    def stop(self, grace_s: float = STOP_GRACE_S) -> int | None:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL its process group; the exit code."""
        if self.popen is None or self._stopped:
            return self.popen.returncode if self.popen else None
        self._stopped = True
        if self.popen.poll() is None:
            self.terminate()
            try:
                self.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.killed = True
        # Whatever is left in its group (the process itself, or children it forked) goes now.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(grace_s)
        return self.popen.returncode

    def __repr__(self) -> str:
        return f"Process({self.name!r}, pid={self.pid}, port={self.port})"


class Cluster:
    """API and worker processes on one database and one Redis; a context manager.

    ``env`` adds or overrides environment variables for every process (settings such as
    ``EXCHANGE_CAMPAIGN_CACHE_TTL_MS``); ``worker_env`` and ``api_env`` only for one role.
    """

    def __init__(
        self,
        *,
        database_url: str,
        redis_url: str,
        secret_key: str,
        api_ports: Sequence[int],
        workers: int = 2,
        log_dir: str | Path,
        env: Mapping[str, str] | None = None,
        api_env: Mapping[str, str] | None = None,
        worker_env: Mapping[str, str] | None = None,
        worker_processes: int = 1,
        worker_threads: int = 4,
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
        grace_s: float = STOP_GRACE_S,
        migrate: bool = True,
    ) -> None:
        if not api_ports:
            raise ValueError("a cluster needs at least one API port")
        self.database_url = database_url
        self.redis_url = redis_url
        self.secret_key = secret_key
        self.log_dir = Path(log_dir)
        self.startup_timeout_s = startup_timeout_s
        self.grace_s = grace_s
        self.migrate_first = migrate
        self.env = self._base_env(env)
        python = [sys.executable, "-m", "exchange.cli"]
        serve = [*python, "serve", "--host", HOST, "--workers", "1"]
        self.apis = [
            Process(
                f"api-{i + 1}",
                "api",
                [*serve, "--port", str(port)],
                self.log_dir / f"api-{i + 1}.log",
                port,
            )
            for i, port in enumerate(api_ports)
        ]
        work = [
            *python,
            "worker",
            "--processes",
            str(worker_processes),
            "--threads",
            str(worker_threads),
        ]
        self.workers = [
            Process(
                f"worker-{i + 1}",
                "worker",
                work,
                self.log_dir / f"worker-{i + 1}.log",
                ready_lines=worker_processes,
            )
            for i in range(workers)
        ]
        self._role_env = {"api": dict(api_env or {}), "worker": dict(worker_env or {})}

    # --- environment and one-off commands ---------------------------------------------------

    def _base_env(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        # The caller's own EXCHANGE_* settings do not leak in: the cluster says what it runs on.
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(_PROJECT_ROOT) + (os.pathsep + path if path else "")
        env["PYTHONUNBUFFERED"] = "1"  # logs reach the files as they happen
        env.update(
            EXCHANGE_DATABASE_URL=self.database_url,
            EXCHANGE_REDIS_URL=self.redis_url,
            EXCHANGE_SECRET_KEY=self.secret_key,
            EXCHANGE_VAR_DIR=str(self.log_dir / "var"),
        )
        env.update(extra or {})
        return env

    def cli(
        self, *args: str, check: bool = True, timeout_s: float = CLI_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        """Run ``exchange <args>`` against the cluster's database and Redis; output captured."""
        result = subprocess.run(
            [sys.executable, "-m", "exchange.cli", *args], env=self.env, cwd=_PROJECT_ROOT,
            capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if check and result.returncode != 0:
            command = " ".join(args)
            raise ClusterError(
                f"exchange {command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def migrate(self) -> None:
        self.cli("migrate")

    def seed(self) -> None:
        """The verticals that ship with the exchange."""
        self.cli("seed")

    def create_operator_key(self, name: str = "cluster") -> str:
        """A new operator key (``exchange admin create-key``), returned in full."""
        return _key_from(self.cli("admin", "create-key", "--name", name).stdout)

    def create_party(self, kind: str, name: str, **options: str) -> tuple[str, str]:
        """``exchange party create``: returns (party id, its key)."""
        argv = ["party", "create", "--kind", kind, "--name", name]
        for option, value in options.items():
            argv += [f"--{option.replace('_', '-')}", value]
        out = self.cli(*argv).stdout
        match = re.search(r": ([0-9a-f-]{36})$", out, re.MULTILINE)
        if match is None:
            raise ClusterError(f"no party id in: {out}")
        return match.group(1), _key_from(out)

    # --- life cycle ------------------------------------------------------------------------

    @property
    def processes(self) -> list[Process]:
        return [*self.apis, *self.workers]

    @property
    def api_urls(self) -> list[str]:
        return [p.url for p in self.apis if p.url]

    def start(self) -> Cluster:
        """Migrate (unless told not to), start every process, wait until all are ready."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.migrate_first:
            self.migrate()
        try:
            for process in self.processes:
                process.start({**self.env, **self._role_env[process.role]}, _PROJECT_ROOT)
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Until every API answers ``/health`` 200 and every worker logged it is consuming."""
        deadline = time.monotonic() + (
            timeout_s if timeout_s is not None else self.startup_timeout_s
        )
        waiting = list(self.processes)
        while waiting:
            for process in list(waiting):
                if not process.running():
                    raise ClusterError(
                        f"{process.name} exited with {process.popen and process.popen.returncode} "
                        f"while starting:\n{_tail(process.log())}"
                    )
                if _ready(process):
                    waiting.remove(process)
            if not waiting:
                return
            if time.monotonic() > deadline:
                names = ", ".join(p.name for p in waiting)
                raise ClusterError(f"not ready after the timeout: {names}\n{self.logs(waiting)}")
            time.sleep(POLL_S)

    def stop(self) -> dict[str, int | None]:
        """Stop every process: SIGTERM to all at once, then each gets the grace period (see
        ``Process.killed``). Returns each process's exit code by name."""
        for process in self.processes:
            process.terminate()
        return {p.name: p.stop(self.grace_s) for p in self.processes}

    def check_running(self) -> None:
        """Raise if a process died (one stopped on purpose is not counted)."""
        dead = [
            p for p in self.processes if p.popen is not None and not p._stopped and not p.running()
        ]
        if dead:
            codes = ", ".join(f"{p.name} ({p.popen.returncode})" for p in dead)  # type: ignore[union-attr]
            raise ClusterError(f"exited: {codes}\n{self.logs(dead)}")

    def logs(
        self, processes: Iterable[Process] | None = None, tail_chars: int = LOG_TAIL_CHARS
    ) -> str:
        """The end of each process's log, headed by its name: for a failure message."""
        parts = []
        for p in processes if processes is not None else self.processes:
            parts.append(
                f"----- {p.name} (pid {p.pid}, {p.log_path}) -----\n{_tail(p.log(), tail_chars)}"
            )
        return "\n".join(parts)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _ready(process: Process) -> bool:
    if process.role == "worker":
        return process.log().count(WORKER_READY_MARKER) >= process.ready_lines
    try:
        with urllib.request.urlopen(f"{process.url}/health", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _key_from(output: str) -> str:
    """The key the CLI printed (the indented line after "shown once, store it now:")."""
    matches = _KEY_LINE.findall(output.split("store it now:", 1)[-1])
    if not matches:
        raise ClusterError(f"no key in: {output}")
    return matches[0]


def _tail(text: str, chars: int = LOG_TAIL_CHARS) -> str:
    return text if len(text) <= chars else "...\n" + text[-chars:]


def free_ports(count: int, candidates: Iterable[int] | None = None) -> list[int]:
    """``count`` TCP ports nothing listens on now: from ``candidates`` when given (a range a
    caller was told to use), else any the OS picks."""
    ports: list[int] = []
    if candidates is None:
        sockets = []
        try:
            for _ in range(count):
                s = socket.socket()
                s.bind((HOST, 0))
                sockets.append(s)
                ports.append(s.getsockname()[1])
        finally:
            for s in sockets:
                s.close()
        return ports
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise ClusterError(f"fewer than {count} free ports among the candidates")
