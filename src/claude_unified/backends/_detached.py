"""A background task that belongs to no caller's cancel scope.

A conversation's CLI reader runs from ``open()`` to ``aclose()``, and callers make those two calls
from unrelated places: ``open()`` inside ``fail_after``, ``aclose()`` inside ``move_on_after``, or
in two different tasks. A task group entered in ``open()`` would push its cancel scope onto the
caller's scope stack, and leaving the caller's scope first raises ``RuntimeError``. So the task
is started outside any task group (an asyncio task, or a trio system task) and owns one cancel
scope of its own, which ``cancel()`` may trigger from any task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import anyio

__all__ = ["Detached"]

_log = logging.getLogger(__name__)


class Detached:
    """Runs ``fn()`` in the background from :meth:`start`; stop it with :meth:`aclose`.

    ``fn`` should handle its own errors: one that escapes is logged and ends the task (a trio
    system task may not raise).
    """

    __slots__ = ("_done", "_fn", "_handle", "_scope")

    def __init__(self, fn: Callable[[], Awaitable[None]]):
        self._fn = fn
        self._scope = anyio.CancelScope()
        self._done = anyio.Event()
        self._handle: asyncio.Task[None] | None = None  # asyncio keeps only weak references

    def start(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio: trio is the other loop anyio runs on
            import trio

            trio.lowlevel.spawn_system_task(self._run)
        else:
            self._handle = loop.create_task(self._run())

    async def _run(self) -> None:
        try:
            with self._scope:
                await self._fn()
        except Exception:
            _log.exception("a background task of claude_unified failed")
        finally:
            self._done.set()
            self._handle = None

    async def aclose(self) -> None:
        """Cancel the task and wait until it has finished (shielded from the caller's cancel)."""
        self._scope.cancel()
        with anyio.CancelScope(shield=True):
            await self._done.wait()
