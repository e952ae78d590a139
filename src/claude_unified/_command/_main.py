"""The ``claude-unified`` command.

Exit codes: 0 success; 1 the turn failed (API error, CLI error result, tool loop limit);
2 bad usage or configuration; 130 interrupted with Ctrl-C; 141 the reader of stdout went away
(a closed pipe, as in ``claude-unified … | head -1``), quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TextIO

import anyio
import msgspec

from .._builtin_tools import builtin_tools
from .._config import Config
from .._conversation import Conversation
from .._events import (
    ApiRetry,
    Event,
    PermissionDecision,
    PermissionRequest,
    Result,
    Text,
    TextDelta,
    ToolResult,
    ToolUse,
    encode_event,
)
from .._exceptions import ClaudeError, ConfigError
from .._permissions import Policy, allow_list
from .._tools import Tool
from .._version import __version__
from ._exit_codes import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TURN_FAILED,
    EXIT_USAGE,
)

__all__ = ["build_parser", "main"]

Command = Callable[[argparse.Namespace], Awaitable[int]]


class _Style:
    """ANSI styling for stderr notes, off when NO_COLOR is set or stderr is not a terminal."""

    def __init__(self, stream: TextIO):
        self.on = stream.isatty() and not os.environ.get("NO_COLOR")

    def dim(self, text: str) -> str:
        return f"\x1b[2m{text}\x1b[0m" if self.on else text


def _common(parser: argparse.ArgumentParser, *, json: bool = True) -> None:
    parser.add_argument("--backend", help="auto (default), api, cli, fake, or an entry point name")
    parser.add_argument("--model", help="model id or alias")
    parser.add_argument("--system", help="system prompt")
    parser.add_argument("--base-url", help="Messages API base URL (API backend)")
    parser.add_argument("--config", help="path to a claude-unified.toml to load")
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="TOOL",
        help="allow a tool (Claude Code rule syntax, e.g. 'Bash(git log:*)'); repeatable",
    )
    parser.add_argument("--max-turns", type=int, help="limit tool-use rounds per turn")
    if json:
        parser.add_argument("--json", action="store_true", help="print one JSON object per line")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also the source of the command-line reference in the docs)."""
    parser = argparse.ArgumentParser(
        prog="claude-unified",
        description="Talk to Claude over the Messages API or the Claude Code CLI.",
        epilog="Exit codes: 0 success, 1 the turn failed, 2 usage or configuration error, "
        "130 interrupted. A PROMPT of '-' is read from standard input.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary in (
        ("send", "send one prompt and print the reply when it is complete"),
        ("stream", "send one prompt and print the reply as it streams"),
        ("events", "send one prompt and print every event as JSON"),
        ("count-tokens", "count the prompt's input tokens (API backend)"),
    ):
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.add_argument("prompt", metavar="PROMPT", help="the prompt, or '-' for stdin")
        _common(sub)
        if name == "events":
            sub.add_argument(
                "--raw", action="store_true", help="print the backend's wire frames instead"
            )
    repl = commands.add_parser(
        "repl",
        help="a multi-turn conversation on the terminal",
        description="Multi-turn and streaming. When the policy asks, you answer y/N. Ctrl-C "
        "interrupts the running turn; Ctrl-D or /exit leaves.",
    )
    _common(repl)
    doctor = commands.add_parser(
        "doctor",
        help="which backends are usable here, and why not",
        description="Checks credentials (never printed), the base URL, the claude CLI and its "
        "version, and shows where each configuration value came from.",
    )
    _common(doctor)
    demo = commands.add_parser(
        "demo",
        help="a scripted conversation with a tool call on a built-in fake server",
        description="Runs a conversation with a tool call and a permission decision against "
        "a built-in fake Messages API on loopback. Needs no credentials and no CLI.",
    )
    demo.add_argument("--json", action="store_true", help="print one JSON object per event")
    _batch_parser(commands)
    return parser


def _batch_parser(commands: Any) -> None:
    from ._batch import add_batch_arguments

    batch = commands.add_parser(
        "batch",
        help="run every prompt of a JSONL file, each in a fresh conversation",
        description="Runs the items of INPUT concurrently and appends each result to OUT as it "
        "completes. Ctrl-C stops taking new items and lets those in flight finish; a second "
        "Ctrl-C aborts them. Exit code 1 when an item failed or an input line was skipped.",
    )
    add_batch_arguments(batch)
    _common(batch, json=False)


def _prompt(value: str) -> str:
    return sys.stdin.read() if value == "-" else value


def _config(args: argparse.Namespace) -> Config:
    return Config.load(config_file=args.config, **_overrides(args))


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        key: value
        for key, value in (
            ("backend", args.backend),
            ("model", args.model),
            ("system_prompt", args.system),
            ("base_url", args.base_url),
            ("max_turns", args.max_turns),
        )
        if value is not None
    }


def _policy(args: argparse.Namespace) -> Policy | None:
    return allow_list(args.allow) if args.allow else None


def _tools(config: Config) -> list[Tool]:
    """On the API path the command gives the model Claude Code's file and shell tools too,
    confined to the working directory, so ``--allow Bash(...)`` means the same on both
    backends (the CLI brings its own). Write, Edit and Bash still need ``--allow``."""
    uses_cli = config.backend == "cli" or (config.backend == "auto" and not config.has_credentials)
    return [] if uses_cli else builtin_tools(root=config.cwd or os.getcwd())


class _Printer:
    """Prints events: text to stdout, tool activity as notes on stderr (or JSON lines)."""

    def __init__(self, *, as_json: bool, stream_text: bool):
        self.as_json = as_json
        self.stream_text = stream_text
        self.style = _Style(sys.stderr)

    def __call__(self, event: Event) -> None:
        if self.as_json:
            sys.stdout.write(encode_event(event).decode() + "\n")
            sys.stdout.flush()
            return
        if isinstance(event, TextDelta) and self.stream_text:
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif isinstance(event, Text) and self.stream_text:
            sys.stdout.write("\n")
            sys.stdout.flush()
        elif note := _note(event):
            sys.stderr.write(self.style.dim(note) + "\n")


def _note(event: Event) -> str | None:
    if isinstance(event, ToolUse):
        return f"[tool] {event.name} {msgspec.json.encode(event.input).decode()}"
    if isinstance(event, PermissionDecision):
        reason = f": {event.message}" if event.message else ""
        return f"[{event.behavior}] {event.name} (by {event.decided_by}){reason}"
    if isinstance(event, ToolResult):
        content = event.content if isinstance(event.content, str) else "<blocks>"
        return f"[{'error' if event.is_error else 'result'}] {content[:200]}"
    if isinstance(event, ApiRetry):
        return f"[retry {event.attempt}/{event.max_retries}] {event.error} in {event.delay_s:.1f}s"
    if isinstance(event, PermissionRequest):
        return f"[ask] {event.name}: no one to answer here, so it is denied (use --allow)"
    return None


async def _run_turn(args: argparse.Namespace, *, stream_text: bool, as_json: bool) -> int:
    printer = _Printer(as_json=as_json, stream_text=stream_text)
    config = _config(args)
    async with Conversation(config, tools=_tools(config), policy=_policy(args)) as conv:
        result: Result | None = None
        async for event in conv.send(_prompt(args.prompt)):
            printer(event)
            if isinstance(event, Result):
                result = event
    assert result is not None
    if not as_json and not stream_text:
        sys.stdout.write(result.text + "\n")
    if result.is_error:
        message = result.error.message if result.error else "the turn failed"
        sys.stderr.write(f"claude-unified: error: {message}\n")
        return EXIT_TURN_FAILED
    return EXIT_OK


async def _send(args: argparse.Namespace) -> int:
    return await _run_turn(args, stream_text=False, as_json=args.json)


async def _stream(args: argparse.Namespace) -> int:
    return await _run_turn(args, stream_text=True, as_json=args.json)


async def _events(args: argparse.Namespace) -> int:
    if args.raw:
        from ._raw import print_raw_frames

        return await print_raw_frames(_config(args), _prompt(args.prompt))
    return await _run_turn(args, stream_text=False, as_json=True)


async def _count_tokens(args: argparse.Namespace) -> int:
    from ._raw import count_tokens

    count = await count_tokens(_config(args), _prompt(args.prompt))
    sys.stdout.write(f'{{"input_tokens": {count}}}\n' if args.json else f"{count}\n")
    return EXIT_OK


async def _repl(args: argparse.Namespace) -> int:
    from ._repl import run_repl

    printer = _Printer(as_json=args.json, stream_text=True)
    config = _config(args)
    return await run_repl(config, _tools(config), _policy(args), printer)


async def _doctor(args: argparse.Namespace) -> int:
    from ._doctor import diagnose

    config, sources = Config.load_with_sources(config_file=args.config, **_overrides(args))
    report = await diagnose(config, sources)
    if args.json:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
    else:
        sys.stdout.write(report.render() + "\n")
    return EXIT_OK if report.api.usable or report.cli.usable else EXIT_TURN_FAILED


async def _batch(args: argparse.Namespace) -> int:
    from ._batch import batch_command

    return await batch_command(args, _config(args), _policy(args))


async def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return await run_demo(_Printer(as_json=args.json, stream_text=True))


_COMMANDS: dict[str, Command] = {
    "send": _send,
    "stream": _stream,
    "events": _events,
    "count-tokens": _count_tokens,
    "demo": _demo,
    "repl": _repl,
    "doctor": _doctor,
    "batch": _batch,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``claude-unified`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    command = _COMMANDS[args.command]
    try:
        code = anyio.run(command, args)
        sys.stdout.flush()  # here, not at exit: a reader that went away is handled below
    except KeyboardInterrupt:
        sys.stderr.write("claude-unified: interrupted\n")
        return EXIT_INTERRUPTED
    except ConfigError as exc:
        sys.stderr.write(f"claude-unified: configuration error: {exc}\n")
        return EXIT_USAGE
    except ClaudeError as exc:
        sys.stderr.write(f"claude-unified: error: {type(exc).__name__}: {exc}\n")
        return EXIT_TURN_FAILED
    except BaseException as exc:
        if not _broken_pipe(exc):
            raise
        return _reader_gone()
    return code


def _broken_pipe(exc: BaseException) -> bool:
    """Whether ``exc`` is a write to a closed pipe (also when a task group wrapped it)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_broken_pipe(inner) for inner in exc.exceptions)
    return isinstance(exc, BrokenPipeError)


def _reader_gone() -> int:
    """The reader of stdout went away (``claude-unified … | head -1``): stop quietly, as a
    command killed by SIGPIPE would, with nothing left for the interpreter to flush at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE
