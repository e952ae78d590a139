"""Wakeup: set() ends the wait at once, the time limit ends it otherwise, and a cancelled or
timed-out wait leaves nothing behind for the next one."""

from __future__ import annotations

import math

import anyio
import pytest

from claude_unified.backends._wakeup import Wakeup

pytestmark = pytest.mark.anyio


async def test_set_from_another_task_ends_the_wait_at_once() -> None:
    wakeup = Wakeup()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_set_after, wakeup, 0.02)
        started = anyio.current_time()
        await wakeup.wait(30)
    assert anyio.current_time() - started < 5


async def test_the_time_limit_ends_a_wait_nobody_sets() -> None:
    wakeup = Wakeup()
    started = anyio.current_time()
    await wakeup.wait(0.05)
    assert anyio.current_time() - started >= 0.04


async def test_a_set_with_nobody_waiting_is_not_remembered() -> None:
    wakeup = Wakeup()
    wakeup.set()
    started = anyio.current_time()
    await wakeup.wait(0.05)
    assert anyio.current_time() - started >= 0.04


async def test_a_set_after_a_timed_out_wait_does_not_end_the_next_one_early() -> None:
    wakeup = Wakeup()
    await wakeup.wait(0.01)
    wakeup.set()  # nobody waits: the expired wait let go of its waiter
    started = anyio.current_time()
    await wakeup.wait(0.05)
    assert anyio.current_time() - started >= 0.04


async def test_a_cancelled_wait_raises_the_cancellation_and_the_next_wait_works() -> None:
    wakeup = Wakeup()
    with anyio.move_on_after(0.02) as scope:
        await wakeup.wait(math.inf)
    assert scope.cancelled_caught
    wakeup.set()  # the cancelled waiter is gone: nothing to wake, nothing raised
    async with anyio.create_task_group() as tg:
        tg.start_soon(_set_after, wakeup, 0.02)
        with anyio.fail_after(5):
            await wakeup.wait(math.inf)


async def test_a_wait_cancelled_from_another_task_stops_at_once() -> None:
    wakeup = Wakeup()
    async with anyio.create_task_group() as tg:
        tg.start_soon(wakeup.wait, math.inf)
        await anyio.sleep(0.02)
        tg.cancel_scope.cancel()
    wakeup.set()


async def _set_after(wakeup: Wakeup, seconds: float) -> None:
    await anyio.sleep(seconds)
    wakeup.set()
