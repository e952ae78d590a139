"""The command's argument parser: everything ``--help`` needs and nothing else, so that it
answers at the cost of the interpreter (the subcommands load what they use when they run)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from .._version import __version__

__all__ = ["build_parser"]


def _common(
    parser: argparse.ArgumentParser, *, json: bool = True, prompt: bool = True, tools: bool = True
) -> None:
    """The flags a subcommand shares with others, only those that mean something to it:
    ``prompt`` (a system prompt is sent), ``tools`` (tools may run), ``json`` (JSON output)."""
    parser.add_argument(
        "--backend", help="auto (default), api, cli, fake (echoes), or an entry point name"
    )
    parser.add_argument("--model", help="model id or alias")
    if prompt:
        parser.add_argument("--system", help="system prompt")
    parser.add_argument("--base-url", help="Messages API base URL (API backend)")
    parser.add_argument("--config", help="path to a claude-unified.toml to load")
    if tools:
        parser.add_argument(
            "--allow",
            action="append",
            default=[],
            metavar="TOOL",
            help="allow a tool (Claude Code rule syntax, e.g. 'Bash(git log:*)'); repeatable",
        )
        parser.add_argument("--max-turns", type=int, help="limit tool-use rounds per turn")
        parser.add_argument(
            "--files",
            action="store_true",
            help="API backend: give the model Read, Write, Edit, Glob, Grep and Bash, confined "
            "to the working directory (the CLI has its own); off unless asked for",
        )
    if json:
        parser.add_argument("--json", action="store_true", help="print one JSON object per line")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser (also the source of the command-line reference in the docs).

    Given the command line ``argv``, only the subcommand it names gets its own arguments (the
    others keep their names and summaries, all that the top-level ``--help`` shows), so that
    ``--help`` and ``--version`` answer without building a parser per subcommand.
    """
    parser = argparse.ArgumentParser(
        prog="claude-unified",
        description="Talk to Claude over the Messages API or the Claude Code CLI.",
        epilog="Exit codes: 0 success, 1 the turn failed, 2 usage or configuration error, "
        "130 interrupted, 141 the reader of the output went away. Piped standard input is the "
        "prompt, or its context when PROMPT is given too.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = _named_command(argv)
    for name, summary, description, fill in _SUBCOMMANDS:
        sub = commands.add_parser(name, help=summary, description=description or summary)
        if named is None or named == name:
            fill(sub, name)
    return parser


def _named_command(argv: Sequence[str] | None) -> str | None:
    """The subcommand ``argv`` names, if it names a known one (the top level has no option
    that takes a value, so it is the first word that is not an option)."""
    if argv is None:
        return None
    word = next((arg for arg in argv if not arg.startswith("-")), None)
    known = {entry[0] for entry in _SUBCOMMANDS}
    return word if word in known else ("" if word is None else None)


def _prompt_command(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument(
        "prompt",
        metavar="PROMPT",
        nargs="?",
        help="the prompt; piped standard input comes before it as context ('-' or no "
        "PROMPT: standard input is the prompt)",
    )
    _common(parser, json=name != "events", tools=name != "count-tokens")
    if name == "events":
        parser.add_argument(
            "--raw", action="store_true", help="print the backend's wire frames instead"
        )


def _repl_command(parser: argparse.ArgumentParser, name: str) -> None:
    _common(parser, json=False)


def _doctor_command(parser: argparse.ArgumentParser, name: str) -> None:
    _common(parser, prompt=False, tools=False)
    parser.add_argument(
        "--offline", action="store_true", help="do not connect to the base URL to check it"
    )


def _demo_command(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object per event")


def _batch_command(parser: argparse.ArgumentParser, name: str) -> None:
    add_batch_arguments(parser)
    _common(parser, json=False)


def _completion_command(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("shell", choices=("bash", "zsh"), help="the shell to complete for")


_SUBCOMMANDS: tuple[
    tuple[str, str, str | None, Callable[[argparse.ArgumentParser, str], None]], ...
] = (
    ("send", "send one prompt and print the reply when it is complete", None, _prompt_command),
    ("stream", "send one prompt and print the reply as it streams", None, _prompt_command),
    ("events", "send one prompt and print every event as JSON", None, _prompt_command),
    ("count-tokens", "count the prompt's input tokens (API backend)", None, _prompt_command),
    (
        "repl",
        "a multi-turn conversation on the terminal",
        "Multi-turn and streaming, with line editing and history. When the policy asks, you "
        "answer y/N. Ctrl-C interrupts the running turn; at the prompt, Ctrl-C, Ctrl-D or "
        "/exit leaves.",
        _repl_command,
    ),
    (
        "doctor",
        "which backends are usable here, and why not",
        "Checks credentials (never printed), the base URL (a TCP connect, announced first; "
        "--offline skips it), the claude CLI and its version, and shows where each "
        "configuration value came from.",
        _doctor_command,
    ),
    (
        "demo",
        "a scripted conversation with a tool call on a built-in fake server",
        "Runs a conversation with a tool call and a permission decision against a built-in "
        "fake Messages API on loopback. Needs no credentials and no CLI.",
        _demo_command,
    ),
    (
        "batch",
        "run every prompt of a JSONL file, each in a fresh conversation",
        "Runs the items of INPUT concurrently and appends each result to OUT as it completes. "
        "Ctrl-C stops taking new items and lets those in flight finish; a second Ctrl-C "
        "aborts them. Exit code 1 when an item failed or an input line was skipped.",
        _batch_command,
    ),
    (
        "completion",
        "print a shell completion script (bash or zsh)",
        "Prints a completion script for the command. bash: "
        "'eval \"$(claude-unified completion bash)\"' in ~/.bashrc; zsh: "
        "'eval \"$(claude-unified completion zsh)\"' in ~/.zshrc.",
        _completion_command,
    ),
)


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """The batch command's own arguments (the common ones are added by the caller)."""
    parser.add_argument(
        "input",
        metavar="INPUT",
        help="JSONL file: one item per line ({id, prompt, system?, model?, max_tokens?, "
        "user_data? (copied to the result), and the request settings: metadata? ({user_id}), "
        "temperature?, effort?, thinking?, …}) or a "
        "plain-text prompt per line (its id is its line number)",
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="JSONL results")
    parser.add_argument(
        "-j", "--jobs", type=_positive, metavar="N", help="items in flight (default 16; CLI: 2)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip items OUT already holds as successful, and append to it",
    )
    parser.add_argument(
        "--shard",
        type=_shard,
        metavar="I/N",
        help="run only shard I (0-based) of N, picked by a stable hash of each id",
    )
    parser.add_argument(
        "--via-batches-api",
        action="store_true",
        help="submit the items to the Message Batches API (half price, results within 24 h)",
    )


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"wants a whole number of at least 1, got {value!r}")
    return int(value)


def _shard(value: str) -> tuple[int, int]:
    from ..batch._io import parse_shard

    try:
        return parse_shard(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
