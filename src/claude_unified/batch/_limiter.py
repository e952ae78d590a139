"""Adaptive concurrency for batch jobs: additive increase, multiplicative decrease (AIMD).

A rate limit (HTTP 429) or an overload (529) is a property of the account or the service, not of
one request: every item in flight is about to meet the same wall. So the whole batch slows down.
The number of items allowed in flight halves, and when the server said how long to wait, no new
item starts before then. Each success adds ``1/permits``, that is one permit per full window of
successes, so the batch creeps back towards its ceiling instead of hitting the limit again at once.

Signals are counted once per window, as TCP does: items that started together meet a limit
together, and their burst of 429s must halve the window once, not once per item. A signal (or a
success) from an item that started before the last decrease is therefore ignored.

The class is synchronous at heart (``try_acquire``, ``release``, ``rate_limited`` with an
injectable clock) so its arithmetic is tested without an event loop; ``acquire`` adds the waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import anyio

__all__ = ["AdaptiveLimiter", "Ticket"]


class Ticket(NamedTuple):
    """One granted permit; ``epoch`` is the window it was granted in."""

    epoch: int


class AdaptiveLimiter:
    """At most ``permits`` items in flight; ``permits`` moves between ``floor`` and ``ceiling``.

    ``history`` records ``(time, permits)`` at the start and at every change, so a caller (or a
    test) can see how a rate-limit storm shaped the batch.
    """

    def __init__(
        self, ceiling: int, *, floor: int = 1, clock: Callable[[], float] = time.monotonic
    ):
        if ceiling < 1:
            raise ValueError(f"concurrency must be at least 1, got {ceiling}")
        self.ceiling = ceiling
        self.floor = max(1, min(floor, ceiling))
        self.in_flight = 0
        self.not_before = 0.0
        self._window = float(ceiling)
        self._epoch = 0
        self._clock = clock
        self._changed: anyio.Event | None = None
        self.history: list[tuple[float, int]] = [(clock(), ceiling)]

    @property
    def permits(self) -> int:
        """How many items may be in flight now."""
        return max(self.floor, int(self._window))

    def delay(self) -> float:
        """Seconds until a new item may start because of a server-requested wait (0 if none)."""
        return max(0.0, self.not_before - self._clock())

    def try_acquire(self) -> Ticket | None:
        """A permit if one is free and no server wait is pending, else ``None``."""
        if self.delay() > 0 or self.in_flight >= self.permits:
            return None
        self.in_flight += 1
        return Ticket(self._epoch)

    def release(self, ticket: Ticket, *, success: bool) -> None:
        """Give a permit back; a success of the current window grows it."""
        self.in_flight -= 1
        if success and ticket.epoch == self._epoch and self._window < self.ceiling:
            self._set_window(min(float(self.ceiling), self._window + 1 / self._window))
        self._notify()

    def rate_limited(self, ticket: Ticket, wait: float | None = None) -> None:
        """An item was told to slow down: halve the window (once per window) and, when the
        server named a wait, start nothing new before it is over."""
        if wait is not None and wait > 0:
            self.not_before = max(self.not_before, self._clock() + wait)
        if ticket.epoch == self._epoch:
            self._epoch += 1
            self._set_window(max(float(self.floor), self._window / 2))
        self._notify()

    async def acquire(self) -> Ticket:
        """Wait for a permit (and for any server-requested wait to pass)."""
        while (ticket := self.try_acquire()) is None:
            wait = self.delay()
            if wait > 0:
                await anyio.sleep(wait)
                continue
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()
        return ticket

    def _set_window(self, window: float) -> None:
        before = self.permits
        self._window = window
        if self.permits != before:
            self.history.append((self._clock(), self.permits))

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None
