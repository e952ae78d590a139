"""What other layers install into backend resolution, so that ``backends`` never imports them.

``claude_unified.testing`` sets these: ``override()`` pushes a factory (the context variable
serves tasks; ``process_overrides``, most recent last, serves threads that start without the
caller's context: a plain ``threading.Thread``, a thread pool's worker), and the pytest plugin's
guard installs ``real_backend_check``, called (through ``check_real_backend``) with the
backend name ("api" or "cli") and the config wherever a real transport is made: when a backend
is resolved, when an HTTP client is made (so the Message Batches client is covered too) and when
the CLI is spawned. So a test cannot reach a real API by accident. The check raises a
``ConfigError``, never a test framework's exception, so it stays a library error wherever it
surfaces (inside an event loop, a thread, the sync facade).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # nothing at run time: the pytest plugin imports this module at load
    from .._config import Config
    from ._protocol import Backend

__all__ = ["backend_override", "check_real_backend", "process_overrides", "real_backend_check"]

backend_override: ContextVar[Callable[[Config], Backend] | None] = ContextVar(
    "claude_unified_backend_override", default=None
)
process_overrides: list[Callable[[Config], Backend]] = []
real_backend_check: Callable[[str, Config], None] | None = None


def check_real_backend(name: str, config: Config) -> None:
    """Run the installed guard, if any, for a real ``name`` transport about to be used."""
    if real_backend_check is not None:
        real_backend_check(name, config)
