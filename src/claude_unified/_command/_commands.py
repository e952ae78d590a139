"""What each subcommand does (the argument parser is ``_parser``): the library's turns,
printed as text or JSON lines."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

import msgspec

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
from .._exceptions import ConfigError
from .._permissions import Policy, allow_list
from .._tools import Tool
from ._exit_codes import (
    EXIT_OK,
    EXIT_TURN_FAILED,
)

__all__ = ["COMMANDS"]

Command = Callable[[argparse.Namespace], Awaitable[int]]


class _Style:
    """ANSI styling for stderr notes, off when NO_COLOR is set or stderr is not a terminal."""

    def __init__(self, stream: TextIO):
        self.on = stream.isatty() and not os.environ.get("NO_COLOR")

    def dim(self, text: str) -> str:
        return f"\x1b[2m{text}\x1b[0m" if self.on else text


def _prompt(value: str | None) -> str:
    """The prompt: ``value``, with piped standard input before it as its context; ``-`` or no
    ``value`` makes standard input the prompt. Trailing newlines are not part of it."""
    piped = value == "-" or value is None or not sys.stdin.isatty()
    context = sys.stdin.read().rstrip("\r\n") if piped else ""
    if value is None or value == "-":
        if not context.strip():
            raise ConfigError(
                "no prompt: give PROMPT, or pipe it in (echo hi | claude-unified send)"
            )
        return context
    return f"{context}\n\n{value}" if context.strip() else value


def _config(args: argparse.Namespace) -> Config:
    return Config.load(config_file=args.config, **_overrides(args))


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The configuration flags the subcommand has (each takes only those it means)."""
    flags = (
        ("backend", "backend"),
        ("model", "model"),
        ("system_prompt", "system"),
        ("base_url", "base_url"),
        ("max_turns", "max_turns"),
    )
    values = ((key, getattr(args, flag, None)) for key, flag in flags)
    return {key: value for key, value in values if value is not None}


def _policy(args: argparse.Namespace) -> Policy | None:
    allowed = getattr(args, "allow", None)
    return allow_list(allowed) if allowed else None


def _tools(config: Config, args: argparse.Namespace) -> list[Tool]:
    """With ``--files``, on the API path the command gives the model Claude Code's file and
    shell tools too, confined to the working directory, so ``--allow Bash(...)`` means the same
    on both backends (the CLI brings its own). Without it, no file is reachable on the API
    path: the command never hands out file access silently."""
    uses_cli = config.backend == "cli" or (config.backend == "auto" and not config.has_credentials)
    if uses_cli or not getattr(args, "files", False):
        return []
    from .._builtin_tools import builtin_tools

    return builtin_tools(root=config.cwd or os.getcwd())


class _Printer:
    """Prints events: text to stdout, tool activity as notes on stderr (or JSON lines)."""

    def __init__(
        self,
        *,
        as_json: bool,
        stream_text: bool,
        note: Callable[[Event], str | None] | None = None,
    ):
        self.as_json = as_json
        self.stream_text = stream_text
        self.style = _Style(sys.stderr)
        self.note = note or _unanswered

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
        elif note := self.note(event):
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
    return None


def _unanswered(event: Event) -> str | None:
    """The note for a permission request nobody at this command can answer."""
    if isinstance(event, PermissionRequest):
        return f"[ask] {event.name}: no one to answer here, so it is denied (use --allow)"
    return _note(event)


async def _run_turn(args: argparse.Namespace, *, stream_text: bool, as_json: bool) -> int:
    printer = _Printer(as_json=as_json, stream_text=stream_text)
    config = _config(args)
    async with Conversation(config, tools=_tools(config, args), policy=_policy(args)) as conv:
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

    # the person at the terminal answers each request: no "denied" note before the question
    printer = _Printer(as_json=False, stream_text=True, note=_note)
    config = _config(args)
    return await run_repl(config, _tools(config, args), _policy(args), printer)


async def _doctor(args: argparse.Namespace) -> int:
    from ._doctor import diagnose

    config, sources = Config.load_with_sources(config_file=args.config, **_overrides(args))
    report = await diagnose(config, sources, probe=not args.offline, announce=_announce)
    if args.json:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
    else:
        sys.stdout.write(report.render() + "\n")
    return EXIT_OK if report.api.usable or report.cli.usable else EXIT_TURN_FAILED


def _announce(text: str) -> None:
    sys.stderr.write(f"claude-unified: {text}\n")
    sys.stderr.flush()


async def _completion(args: argparse.Namespace) -> int:
    from ._completion import completion_script
    from ._parser import build_parser

    sys.stdout.write(completion_script(args.shell, build_parser()))
    return EXIT_OK


async def _batch(args: argparse.Namespace) -> int:
    from ._batch import batch_command

    return await batch_command(args, _config(args), _policy(args))


async def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return await run_demo(_Printer(as_json=args.json, stream_text=True))


COMMANDS: dict[str, Command] = {
    "send": _send,
    "stream": _stream,
    "events": _events,
    "count-tokens": _count_tokens,
    "demo": _demo,
    "repl": _repl,
    "doctor": _doctor,
    "batch": _batch,
    "completion": _completion,
}
