"""Network reads that another task can stop, at the lowest cost the event loop allows.

``interrupt()`` must end a read that is waiting for the server. The portable way is a cancel scope
around every read, which anyio prices at about 4 µs on asyncio: as much as framing and decoding the
event that the read brings. On asyncio the same effect is had by cancelling the reading task
directly, and only when it is waiting in a read, then taking that one cancellation back with
``Task.uncancel()`` the way ``asyncio.timeout`` does; a read then costs two attribute writes.
Every other case (trio, or a total deadline close enough to join the read) keeps the scope.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from functools import partial

import anyio

try:  # what asyncio.current_task() reads on 3.11-3.13, where that function is Python code
    from asyncio.tasks import _current_tasks as _TASKS_BY_LOOP  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - newer Pythons, where current_task() is C already
    _TASKS_BY_LOOP = None

__all__ = ["ReadStopped", "StoppableReads"]


class ReadStopped(Exception):
    """A read ended early: by :meth:`StoppableReads.stop` when ``by_stop``, else by the deadline."""

    def __init__(self, by_stop: bool):
        super().__init__("stopped" if by_stop else "deadline")
        self.by_stop = by_stop


class StoppableReads:
    """Reads from one async iterator at a time, in whichever task calls :meth:`read`.

    A loop that reads for every event may make the read in its own frame, as :meth:`read` does
    (one coroutine frame less per read): :meth:`begin`, then either :meth:`read_scoped` or the
    iterator's own ``__anext__()`` followed by :meth:`end`, with :meth:`cancelled` on a
    cancellation.

    Once :meth:`stop` has been called every read, waiting or future, raises ``ReadStopped(True)``
    until :meth:`reset`. A cancellation from anywhere else always propagates untouched.
    """

    __slots__ = (
        "_before",
        "_cancel_sent",
        "_current",
        "_native",
        "_scope",
        "_task",
        "_waiting",
        "stopped",
    )

    def __init__(self) -> None:
        self.stopped = False
        self._native = False  # running on asyncio: stop by cancelling the reading task
        self._task: asyncio.Task[object] | None = None  # the task waiting in a read (asyncio)
        self._scope: anyio.CancelScope | None = None  # the scope of a read that waits, elsewhere
        self._waiting = False  # the asyncio reader is suspended in a read
        self._cancel_sent = False  # stop() cancelled the asyncio reader; not yet taken back
        self._before = 0  # the reader's pending cancel requests when its read began
        self._current: Callable[[], asyncio.Task[object] | None] = asyncio.current_task

    def reset(self) -> None:
        """Start over: not stopped."""
        self.stopped = False
        self._native = anyio.get_cancelled_exc_class() is asyncio.CancelledError
        if self._native and _TASKS_BY_LOOP is not None:  # the loop is fixed for an exchange
            self._current = partial(_TASKS_BY_LOOP.get, asyncio.get_running_loop())

    def stop(self) -> None:
        """End the read that waits now, if any, and every later one."""
        self.stopped = True
        if self._scope is not None:
            self._scope.cancel()
        elif self._waiting and not self._cancel_sent and self._task is not None:
            self._cancel_sent = True
            self._task.cancel()

    async def read(self, chunks: AsyncIterator[bytes], deadline: float = math.inf) -> bytes:
        """The next chunk. Raises ``StopAsyncIteration`` at the end, ``ReadStopped`` when stopped
        or when ``deadline`` (the event loop's clock) passes first."""
        task = self.begin(deadline)
        if task is None:
            return await self.read_scoped(chunks, deadline)
        try:
            return await chunks.__anext__()
        except asyncio.CancelledError:
            self.cancelled(task)
            raise
        finally:
            self.end(task)

    def begin(self, deadline: float) -> asyncio.Task[object] | None:
        """Start a read: the task that stop() cancels while it waits, or ``None`` when the read
        must be made with :meth:`read_scoped` (trio, a deadline, no current task)."""
        if self.stopped:
            raise ReadStopped(True)
        # the task is looked up per read: an iterator may be driven by more than one task
        task = self._current() if self._native and deadline == math.inf else None
        if task is not None:
            self._task = task
            self._before = task.cancelling()
            self._waiting = True
        return task

    def cancelled(self, task: asyncio.Task[object]) -> None:
        """A read begun for ``task`` was cancelled: ``ReadStopped`` when stop() did it; else
        the caller raises the cancellation on."""
        if self._take_back_cancel(task) <= self._before:
            raise ReadStopped(True) from None

    def end(self, task: asyncio.Task[object]) -> None:
        """A read begun for ``task`` is over, however it ended."""
        self._waiting = False
        if self._cancel_sent:  # the read ended another way before the cancel landed
            self._take_back_cancel(task)

    def _take_back_cancel(self, task: asyncio.Task[object]) -> int:
        """Withdraw stop()'s cancel request; returns the requests still pending on the task."""
        if not self._cancel_sent:
            return task.cancelling()
        self._cancel_sent = False
        return task.uncancel()

    async def read_scoped(self, chunks: AsyncIterator[bytes], deadline: float) -> bytes:
        with anyio.CancelScope(deadline=deadline) as scope:
            self._scope = scope
            try:
                return await chunks.__anext__()
            finally:
                self._scope = None
        raise ReadStopped(self.stopped)
