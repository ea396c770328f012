"""The docs run: every command and request in README.md, docs/**/*.md and deploy/README.md.

The convention (written for doc writers in docs/README.md, "Examples that run"):

- ```sh blocks run, in order, in one bash process per page (``set -euo pipefail``), so shell
  variables carry from one block to the next. They run against one live exchange this module
  starts as `make run` does (``exchange run --no-traffic``: migrated SQLite in a temp dir, the two
  shipped verticals, the demo market), with ``$EXCHANGE`` (its base URL) and ``$OPERATOR_KEY``
  set, and ``exchange`` on the PATH (``.venv/bin/exchange`` in a block means the same). Every
  HTTP answer must be 2xx; ```sh expect=422 blocks show an error on purpose and every request in
  them must answer that status.
- ```sh no-run blocks are not run (they serve forever, or need Docker or Kubernetes); each
  command in them is checked: ``exchange ...`` parses with the real CLI parser, ``make`` targets
  exist, files passed with ``-f`` exist, ``python -m`` modules import.
- ```python blocks compile; ```python run blocks also run (inside the page's bash session, so they
  see its exported variables).
- json, text, csv and yaml blocks are shown, not run. A block without a language fails the test
  when it looks like a command or a request, and so does a language this runner does not know.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from exchange.cli import build_parser
from exchange.cluster import free_ports

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(
    [ROOT / "README.md", ROOT / "deploy" / "README.md", *(ROOT / "docs").rglob("*.md")],
    key=lambda p: str(p.relative_to(ROOT)),
)
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
SHOWN = {"json", "text", "csv", "yaml", "http-response"}
COMMAND_WORDS = {"curl", "exchange", ".venv/bin/exchange", "make", "python", "python3", ".venv/bin/python",
                 "docker", "kubectl", "pip", "export", "eval", "source", "jq", "git"}  # fmt: skip
LOOKS_LIKE_REQUEST = re.compile(r"^(GET|POST|PUT|PATCH|DELETE)\s+/", re.M)
STATUS_MARK = "__DOCS_HTTP_STATUS__"
BLOCK_MARK = "__DOCS_BLOCK__"


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    flags: list[str]
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def expect(self) -> int | None:
        for flag in self.flags:
            if flag.startswith("expect="):
                return int(flag.removeprefix("expect="))
        return None


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        info = match.group(1).split()
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(page, line, info[0] if info else "", info[1:], match.group(2)))
    return found


def _commands(text: str) -> list[str]:
    """Shell commands of a block: continuation lines joined, comments and blanks dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def _looks_like_a_command(text: str) -> bool:
    if LOOKS_LIKE_REQUEST.search(text):
        return True
    for line in _commands(text):
        words = line.removeprefix("$ ").split()
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
            words = words[1:]
        if line.startswith("$ ") or (words and words[0] in COMMAND_WORDS):
            return True
    return False


def _all_blocks() -> list[Block]:
    return [b for page in PAGES for b in blocks(page)]


# --- checks that need no server -------------------------------------------------------------


def test_every_block_is_labelled_run_checked_or_shown():
    problems = []
    for b in _all_blocks():
        if b.lang == "":
            if _looks_like_a_command(b.text):
                problems.append(f"{b.where}: an unlabelled block that looks like a command or request; "
                                "label it ```sh (runs), ```sh no-run (checked) or ```text")  # fmt: skip
        elif b.lang == "sh":
            unknown = [f for f in b.flags if f != "no-run" and not re.fullmatch(r"expect=[1-5]\d\d", f)]
            if unknown:
                problems.append(f"{b.where}: unknown sh flags {unknown}")
        elif b.lang == "python":
            if [f for f in b.flags if f != "run"]:
                problems.append(f"{b.where}: unknown python flags {b.flags}")
        elif b.lang not in SHOWN:
            problems.append(f"{b.where}: unknown block language {b.lang!r} (see docs/README.md)")
    assert not problems, "\n".join(problems)


def test_every_fence_is_closed():
    for page in PAGES:
        fences = len(re.findall(r"^```", page.read_text(), re.M))
        assert fences == 2 * len(blocks(page)), f"{page.relative_to(ROOT)}: a fence is not closed on a line of its own"


def test_python_blocks_compile():
    for b in _all_blocks():
        if b.lang == "python":
            compile(b.text, b.where, "exec")


def _check_no_run(command: str, where: str) -> None:
    words = shlex.split(command, comments=True)
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words = words[1:]
    if not words:
        return
    head, rest = words[0], words[1:]
    if head in ("exchange", ".venv/bin/exchange"):
        try:
            build_parser().parse_args(rest)
        except SystemExit as exc:
            raise AssertionError(f"{where}: `{command}` does not parse with the exchange CLI") from exc
    elif head == "make":
        targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
        for target in [w for w in rest if not w.startswith("-") and "=" not in w]:
            assert target in targets, f"{where}: make has no target {target!r}"
    elif head in ("docker", "kubectl"):
        files = [rest[i + 1] for i, w in enumerate(rest[:-1]) if w in ("-f", "--file", "--filename")]
        assert files or rest[:1] in (["build"], ["logs"], ["exec"]), f"{where}: `{command}` names no file"
        for name in files:
            assert (ROOT / name).exists(), f"{where}: {name} does not exist"
    elif head in ("python", "python3", ".venv/bin/python"):
        if rest[:1] == ["-m"]:
            assert importlib.util.find_spec(rest[1]) is not None, f"{where}: no module {rest[1]}"
    elif head in ("export", "source", "cd", "curl", "eval"):
        pass
    else:
        raise AssertionError(f"{where}: the runner does not know how to check `{head}` in a no-run block")


def test_no_run_blocks_name_real_commands_and_files():
    checked = 0
    for b in _all_blocks():
        if b.lang == "sh" and "no-run" in b.flags:
            for command in _commands(b.text):
                for part in re.split(r"\s(?:&&|\|\||;)\s", command):
                    _check_no_run(part, b.where)
                    checked += 1
    assert checked >= 5


# --- the live exchange ------------------------------------------------------------------------


def _operator_key(env: dict[str, str]) -> str:
    from exchange.auth.parties import PartyIn, PartyKind, create_party, issue_key
    from exchange.settings import load_settings
    from exchange.store.db import Database

    settings = load_settings(env={k: v for k, v in env.items() if k.startswith("EXCHANGE_")})

    async def main() -> str:
        db = Database(settings)
        try:
            async with db.write() as conn:
                party = await create_party(conn, PartyIn(kind=PartyKind.OPERATOR, name="Docs operator"))
                return (await issue_key(conn, party.id, "docs")).key
        finally:
            await db.dispose()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One exchange for every page, started as `make run` starts it (without simulated traffic)."""
    for tool in ("bash", "curl", "jq"):
        if shutil.which(tool) is None:
            pytest.fail(f"the docs examples need {tool} on the PATH")
    tmp = tmp_path_factory.mktemp("docs")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "exchange"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m exchange.cli "$@"\n')
    shim.chmod(0o755)
    port = free_ports(1)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env.update(
        EXCHANGE_DATABASE_URL=f"sqlite:///{tmp}/exchange.db",
        EXCHANGE_VAR_DIR=str(tmp / "var"),
        EXCHANGE_SECRET_KEY="docs-secret-not-for-production",
        EXCHANGE_LOG_LEVEL="WARNING",
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}",
        PYTHON=sys.executable,
    )
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "exchange.cli", "run", "--no-traffic", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"exchange run did not start:\n{(tmp / 'server.log').read_text()}")
            time.sleep(0.2)
        env.update(EXCHANGE=base, OPERATOR_KEY=_operator_key(env))
        env["DOCS_TMP"] = str(tmp)
        yield env
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _script(page_blocks: list[Block]) -> str:
    lines = [
        "set -euo pipefail",
        # Every request reports its status on stderr; the runner checks it against the block.
        f"curl() {{ command curl --write-out '%{{stderr}}{STATUS_MARK} %{{http_code}}\\n' \"$@\"; }}",
    ]
    for i, b in enumerate(page_blocks):
        lines.append(f"echo '{BLOCK_MARK} {i}' >&2")
        if b.lang == "python":
            lines += ['"$PYTHON" - <<\'__DOCS_PYTHON__\'', b.text.rstrip("\n"), "__DOCS_PYTHON__"]
            continue
        text = re.sub(r"(^|[\s(;|&])\.venv/bin/exchange\b", r"\1exchange", b.text)
        if b.expect is not None:
            lines += ["set +e", text.rstrip("\n"), "set -e"]
        else:
            lines.append(text.rstrip("\n"))
    lines.append(f"echo '{BLOCK_MARK} end' >&2")
    return "\n".join(lines) + "\n"


def _runnable(page: Path) -> list[Block]:
    return [
        b for b in blocks(page)
        if (b.lang == "sh" and "no-run" not in b.flags) or (b.lang == "python" and "run" in b.flags)
    ]  # fmt: skip


RUNNABLE_PAGES = [p for p in PAGES if _runnable(p)]


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=[str(p.relative_to(ROOT)) for p in RUNNABLE_PAGES])
def test_page_examples_run(live: dict[str, str], page: Path):
    page_blocks = _runnable(page)
    work = Path(live["DOCS_TMP"]) / f"cwd-{page.stem}-{page.parent.name}"
    work.mkdir(exist_ok=True)
    result = subprocess.run(
        ["bash", "--noprofile", "--norc"], input=_script(page_blocks), capture_output=True, text=True,
        cwd=work, env=live, timeout=180,
    )  # fmt: skip
    print(result.stdout)  # shown with `pytest -s`: the real output, to copy into the page
    # Split stderr by block; collect each block's HTTP statuses.
    current: int | None = None
    statuses: dict[int, list[int]] = {}
    errors: dict[int, list[str]] = {}
    finished = False
    for line in result.stderr.splitlines():
        if line.startswith(BLOCK_MARK):
            mark = line.split()[1]
            finished = mark == "end"
            current = None if finished else int(mark)
        elif line.startswith(STATUS_MARK) and current is not None:
            statuses.setdefault(current, []).append(int(line.split()[1]))
        elif current is not None:
            errors.setdefault(current, []).append(line)

    def report(i: int | None, why: str) -> str:
        b = page_blocks[i] if i is not None else None
        where = b.where if b else str(page)
        return (f"{where}: {why}\n--- block ---\n{b.text if b else ''}--- stderr ---\n"
                + "\n".join(errors.get(i, [])[-30:]) + f"\n--- stdout (end) ---\n{result.stdout[-3000:]}")  # fmt: skip

    if result.returncode != 0 or not finished:
        pytest.fail(report(current, f"exit status {result.returncode}"), pytrace=False)
    for i, b in enumerate(page_blocks):
        got = statuses.get(i, [])
        if b.expect is not None:
            assert got and all(s == b.expect for s in got), report(i, f"expected every request to answer {b.expect}, got {got}")  # fmt: skip
        else:
            bad = [s for s in got if not 200 <= s < 300]
            assert not bad, report(i, f"HTTP answers {got}: every request in a ```sh block must succeed")
