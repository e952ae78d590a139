"""The adaptive (AIMD) concurrency limiter shared by every item of a batch."""

from __future__ import annotations

import anyio
import pytest

from claude_unified.batch._limiter import AdaptiveLimiter, Ticket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fill(limiter: AdaptiveLimiter) -> list[Ticket]:
    tickets = []
    while (ticket := limiter.try_acquire()) is not None:
        tickets.append(ticket)
    return tickets


def test_grants_up_to_the_ceiling_then_refuses() -> None:
    limiter = AdaptiveLimiter(4, clock=Clock())
    assert len(fill(limiter)) == 4
    assert limiter.in_flight == 4
    assert limiter.try_acquire() is None


def test_release_frees_a_permit() -> None:
    limiter = AdaptiveLimiter(2, clock=Clock())
    first, _ = fill(limiter)
    limiter.release(first, success=True)
    assert limiter.try_acquire() is not None


def test_a_burst_of_rate_limits_from_one_window_halves_once() -> None:
    limiter = AdaptiveLimiter(16, clock=Clock())
    tickets = fill(limiter)
    for ticket in tickets:  # every item that started together meets the same limit
        limiter.rate_limited(ticket)
    assert limiter.permits == 8
    assert limiter.history[-1][1] == 8


def test_rate_limits_from_later_windows_keep_halving_down_to_the_floor() -> None:
    limiter = AdaptiveLimiter(16, floor=2, clock=Clock())
    seen = []
    for _ in range(6):
        for earlier in fill(limiter):
            limiter.release(earlier, success=False)
        ticket = limiter.try_acquire()
        assert ticket is not None
        limiter.rate_limited(ticket)
        limiter.release(ticket, success=False)
        seen.append(limiter.permits)
    assert seen == [8, 4, 2, 2, 2, 2]


def test_successes_grow_the_window_by_one_per_window() -> None:
    limiter = AdaptiveLimiter(8, clock=Clock())
    limiter.rate_limited(limiter.try_acquire() or pytest.fail("no permit"))
    limiter.in_flight = 0
    assert limiter.permits == 4
    grown_after = 0
    while limiter.permits == 4:  # each success adds 1/window: about one window's worth
        ticket = limiter.try_acquire()
        assert ticket is not None
        limiter.release(ticket, success=True)
        grown_after += 1
    assert limiter.permits == 5
    assert grown_after == 5


def test_growth_stops_at_the_ceiling() -> None:
    limiter = AdaptiveLimiter(3, clock=Clock())
    for _ in range(50):
        ticket = limiter.try_acquire()
        assert ticket is not None
        limiter.release(ticket, success=True)
    assert limiter.permits == 3
    assert limiter.history == [(100.0, 3)]


def test_successes_of_items_started_before_a_decrease_do_not_undo_it() -> None:
    limiter = AdaptiveLimiter(8, clock=Clock())
    tickets = fill(limiter)
    limiter.rate_limited(tickets[0])
    for ticket in tickets[1:]:
        limiter.release(ticket, success=True)
    assert limiter.permits == 4


def test_failures_neither_grow_nor_shrink_the_window() -> None:
    limiter = AdaptiveLimiter(4, clock=Clock())
    for ticket in fill(limiter):
        limiter.release(ticket, success=False)
    assert limiter.permits == 4
    assert limiter.in_flight == 0


def test_a_server_wait_holds_new_items_back_until_it_is_over() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(4, clock=clock)
    ticket = limiter.try_acquire()
    assert ticket is not None
    limiter.rate_limited(ticket, wait=2.0)
    assert limiter.delay() == pytest.approx(2.0)
    assert limiter.try_acquire() is None
    clock.now += 1.5
    assert limiter.delay() == pytest.approx(0.5)
    assert limiter.try_acquire() is None
    clock.now += 0.5
    assert limiter.delay() == 0
    assert limiter.try_acquire() is not None


def test_a_shorter_wait_never_cuts_a_longer_one_short() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(4, clock=clock)
    first, second = limiter.try_acquire(), limiter.try_acquire()
    assert first is not None
    assert second is not None
    limiter.rate_limited(first, wait=5.0)
    limiter.rate_limited(second, wait=1.0)
    assert limiter.delay() == pytest.approx(5.0)


def test_history_records_every_change_with_its_time() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(8, clock=clock)
    clock.now = 101.0
    limiter.rate_limited(limiter.try_acquire() or pytest.fail("no permit"))
    assert limiter.history == [(100.0, 8), (101.0, 4)]


def test_ceiling_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AdaptiveLimiter(0)


@pytest.mark.anyio
async def test_acquire_waits_for_a_release() -> None:
    limiter = AdaptiveLimiter(1)
    held = await limiter.acquire()
    got: list[Ticket] = []

    async def second() -> None:
        got.append(await limiter.acquire())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(second)
            await anyio.sleep(0.05)
            assert got == []
            limiter.release(held, success=True)
    assert len(got) == 1
    assert limiter.in_flight == 1


@pytest.mark.anyio
async def test_acquire_waits_for_a_server_wait() -> None:
    limiter = AdaptiveLimiter(4)
    ticket = await limiter.acquire()
    limiter.rate_limited(ticket, wait=0.2)  # 2 permits left, 1 in use: only the wait holds
    started = anyio.current_time()
    with anyio.fail_after(5):
        await limiter.acquire()
    assert anyio.current_time() - started >= 0.15
