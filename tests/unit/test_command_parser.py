"""The command's parser built for one command line gives the same help and the same parse as
the whole parser: only the subcommand the line names gets its arguments."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

from claude_unified._command._parser import build_parser

COMMAND_LINES = [
    ["send", "hi", "--json", "--model", "m"],
    ["stream", "--files", "--allow", "Read", "x"],
    ["events", "--raw", "p"],
    ["count-tokens", "p"],
    ["repl", "--backend", "fake"],
    ["doctor", "--offline"],
    ["demo", "--json"],
    ["batch", "in.jsonl", "-o", "out.jsonl", "-j", "3", "--shard", "0/2"],
    ["completion", "zsh"],
    ["--backend", "fake", "send"],  # an option before the command: an error either way
]


def _outcome(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[object, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result: object = vars(parser.parse_args(argv))
        except SystemExit as exit_:
            result = ("exit", exit_.code)
    return result, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=" ".join)
def test_a_command_line_parses_the_same(argv: list[str]) -> None:
    assert _outcome(build_parser(argv), argv) == _outcome(build_parser(), argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["-h"],
        ["--version"],
        [],
        ["nonsense"],
        *([c[0], "--help"] for c in COMMAND_LINES),
    ],
    ids=" ".join,
)
def test_help_version_and_errors_are_the_same(argv: list[str]) -> None:
    ours = _outcome(build_parser(argv), argv)
    assert ours == _outcome(build_parser(), argv)
    assert ours[0][0] == "exit"  # type: ignore[index]


def test_the_top_level_help_lists_every_subcommand_without_building_them() -> None:
    parser = build_parser(["--help"])
    text = parser.format_help()
    for name in ("send", "stream", "events", "count-tokens", "repl", "doctor", "demo", "batch"):
        assert name in text
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    built = [name for name, sub in subparsers.choices.items() if len(sub._actions) > 1]
    assert built == []  # only their own -h
