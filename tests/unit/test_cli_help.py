"""`exchange --help` and every subcommand's --help read well: each exits 0 with a description
and an example, and every option and argument says what it is."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

from exchange.cli import build_parser


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(argv prefix, parser) for the top-level parser and every subcommand, nested ones too."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            assert action.metavar == "COMMAND", path  # not the long {run,demo,...} list
            helps = {choice.dest for choice in action._choices_actions}
            assert helps == set(action.choices), f"{path}: a command without a one-line help"
            for name, child in action.choices.items():
                yield from _commands(child, (*path, name))


COMMANDS = list(_commands(build_parser()))


def test_every_command_is_found():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "run", "serve", "worker", "party create", "ledger close-period", "bench"} <= names
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize("path,parser", COMMANDS, ids=lambda v: " ".join(v) or "exchange" if isinstance(v, tuple) else "")
def test_help_exits_0_with_a_description_and_an_example(path, parser):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        build_parser().parse_args([*path, "--help"])
    assert done.value.code == 0
    text = out.getvalue()
    assert parser.description and parser.formatter_class is argparse.RawDescriptionHelpFormatter
    assert any(f"{label}:\n  {start}" in text for label in ("example", "examples") for start in ("exchange ", 'eval "$(exchange ')), text
    assert "{" not in text.split("\n", 1)[0], text  # the usage line names no choices list
    for line in text.splitlines():
        assert len(line) <= 100, line


@pytest.mark.parametrize("path,parser", COMMANDS, ids=lambda v: " ".join(v) or "exchange" if isinstance(v, tuple) else "")
def test_every_option_and_argument_has_help(path, parser):
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"exchange {' '.join(path)}: {name} has no help"


@pytest.mark.parametrize("path,parser", [c for c in COMMANDS if c[0]], ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_each_example_parses(path, parser):
    """The example in the epilog is a real command line for this very parser."""
    import shlex

    listed = parser.epilog.split(":\n", 1)[1]
    for line in listed.splitlines():
        example = line.strip().split("  #")[0]
        if example.startswith('eval "$('):
            example = example.removeprefix('eval "$(').removesuffix(')"')
        argv = shlex.split(example)
        assert argv[0] == "exchange"
        build_parser().parse_args(argv[1:])  # SystemExit on an unknown command or flag
