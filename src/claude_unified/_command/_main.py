"""The ``claude-unified`` command.

Exit codes: 0 success; 1 the turn failed (API error, CLI error result, tool loop limit);
2 bad usage or configuration; 130 interrupted with Ctrl-C; 141 the reader of stdout went away
(a closed pipe, as in ``claude-unified … | head -1``), quietly.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ._exit_codes import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_TURN_FAILED,
    EXIT_USAGE,
)
from ._parser import build_parser

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``claude-unified`` command; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)  # --help and --version end here, cheaply
    import anyio

    from .._exceptions import ClaudeError, ConfigError
    from ._commands import COMMANDS

    try:
        code = anyio.run(COMMANDS[args.command], args)
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
