"""What other layers install into backend resolution, so that ``backends`` never imports them.

``claude_unified.testing`` sets these: ``override()`` pushes a factory (the context variable
serves tasks; ``process_overrides``, most recent last, serves threads that start without the
caller's context: a plain ``threading.Thread``, a thread pool's worker), and the pytest plugin's
guard installs ``real_backend_check``, called with the backend name ("api" or "cli") and the
config before a real transport is built, so a test cannot reach a real API by accident.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # nothing at run time: the pytest plugin imports this module at load
    from .._config import Config
    from ._protocol import Backend

__all__ = ["backend_override", "process_overrides", "real_backend_check"]

backend_override: ContextVar[Callable[[Config], Backend] | None] = ContextVar(
    "claude_unified_backend_override", default=None
)
process_overrides: list[Callable[[Config], Backend]] = []
real_backend_check: Callable[[str, Config], None] | None = None
