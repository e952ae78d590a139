"""One task's wait, with a time limit, for a signal that another task gives.

A CLI turn waits once per stdout read of the process (a streamed turn is dozens of reads), so
the wait is on the hot path. ``anyio.Event`` inside ``move_on_after`` costs a backend lookup, a
cancel scope entered and left, and an event object, per wait. On asyncio the same wait is one
bare future and one timer handle, about five times cheaper; other event loops (trio) keep the
anyio form. Cancellation works alike on both: a cancelled task stops waiting at once.
"""

from __future__ import annotations

import asyncio

import anyio

__all__ = ["Wakeup"]


class Wakeup:
    """A wake-up for one waiting task at a time: :meth:`set` ends the current :meth:`wait`
    (a ``set`` with nobody waiting is not remembered: the waiter checks its condition first)."""

    __slots__ = ("_waiter",)

    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | anyio.Event | None = None

    def set(self) -> None:
        waiter, self._waiter = self._waiter, None
        if isinstance(waiter, asyncio.Future):
            if not waiter.done():
                waiter.set_result(None)
        elif waiter is not None:
            waiter.set()

    async def wait(self, seconds: float) -> None:
        """Until :meth:`set` or ``seconds`` have passed, whichever comes first."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio
            event = self._waiter = anyio.Event()
            try:
                with anyio.move_on_after(seconds):
                    await event.wait()
            finally:
                if self._waiter is event:
                    self._waiter = None
            return
        future: asyncio.Future[None] = loop.create_future()
        self._waiter = future
        timer = loop.call_later(seconds, _expire, future)
        try:
            await future
        finally:
            timer.cancel()
            if self._waiter is future:
                self._waiter = None


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
