"""The command's exit codes, shared by every subcommand."""

from __future__ import annotations

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_TURN_FAILED", "EXIT_USAGE"]

EXIT_OK = 0
EXIT_TURN_FAILED = 1
"""A turn (or, for ``batch``, an item) failed, or ``doctor`` found no usable backend."""
EXIT_USAGE = 2
"""Bad arguments or configuration: nothing was sent."""
EXIT_INTERRUPTED = 130
"""Stopped by Ctrl-C (128 + SIGINT), as shells report it."""
EXIT_BROKEN_PIPE = 141
"""The reader of stdout went away (128 + SIGPIPE, as a shell reports a command killed by it);
nothing is printed."""
