"""StoppableReads: interrupt() ends a waiting read, and never eats or leaks a cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from claude_unified.backends._stoppable import ReadStopped, StoppableReads

pytestmark = pytest.mark.anyio


def _pending_cancels() -> int:
    """Cancel requests still standing on the current task (asyncio keeps count; trio has none)."""
    if anyio.get_cancelled_exc_class() is asyncio.CancelledError:
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()
    return 0


async def _chunks(receive: MemoryObjectReceiveStream[bytes]) -> AsyncIterator[bytes]:
    async for chunk in receive:
        yield chunk


async def _stop_soon(reads: StoppableReads, delay: float = 0.05) -> None:
    await anyio.sleep(delay)
    reads.stop()


def _started() -> tuple[MemoryObjectSendStream[bytes], StoppableReads, AsyncIterator[bytes]]:
    """A chunk channel with nothing in it yet, and reads ready to take from it."""
    send, receive = anyio.create_memory_object_stream[bytes](2)
    reads = StoppableReads()
    reads.reset()
    return send, reads, _chunks(receive).__aiter__()


async def _read_until_stopped(
    reads: StoppableReads, chunks: AsyncIterator[bytes], deadline: float = math.inf
) -> ReadStopped:
    """Read while another task stops the reads; the ``ReadStopped`` that ends the read."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(_stop_soon, reads)
        with anyio.fail_after(5), pytest.raises(ReadStopped) as stopped:
            await reads.read(chunks, deadline)
    return stopped.value


async def test_reads_pass_chunks_through_then_end() -> None:
    send, reads, chunks = _started()
    await send.send(b"a")
    await send.send(b"b")
    send.close()
    assert [await reads.read(chunks), await reads.read(chunks)] == [b"a", b"b"]
    with pytest.raises(StopAsyncIteration):
        await reads.read(chunks)


async def test_stop_ends_a_read_that_waits_and_every_later_one() -> None:
    _, reads, chunks = _started()
    assert (await _read_until_stopped(reads, chunks)).by_stop
    assert _pending_cancels() == 0
    await anyio.lowlevel.checkpoint()  # no cancellation is left over for the next await
    send, _, more = _started()  # the stopped read closed its iterator: read another one
    await send.send(b"after reset")
    with pytest.raises(ReadStopped):
        await reads.read(more)
    reads.reset()
    assert await reads.read(more) == b"after reset"


async def test_stop_while_a_chunk_is_already_on_its_way() -> None:
    """The chunk arrives and stop() follows before the reader runs again: the read either ends
    stopped or returns the chunk it already had, and no later read gets through."""
    send, reads, chunks = _started()

    async def deliver_then_stop() -> None:
        await anyio.sleep(0.05)
        send.send_nowait(b"chunk")
        reads.stop()

    async with anyio.create_task_group() as tg:
        tg.start_soon(deliver_then_stop)
        with anyio.fail_after(5):
            with contextlib.suppress(ReadStopped):
                assert await reads.read(chunks) == b"chunk"
    assert reads.stopped
    assert _pending_cancels() == 0
    await anyio.lowlevel.checkpoint()
    with pytest.raises(ReadStopped):
        await reads.read(chunks)


async def test_an_outer_cancellation_passes_through_untouched() -> None:
    send, reads, chunks = _started()
    with anyio.move_on_after(0.05) as scope:
        await reads.read(chunks)
    assert scope.cancelled_caught
    assert not reads.stopped
    assert _pending_cancels() == 0
    send.close()


async def test_an_outer_cancellation_at_the_same_moment_as_stop_is_not_lost() -> None:
    """Both land in one step: the read ends either way, and the outer scope is still cancelled
    (at the latest by the next checkpoint)."""
    send, reads, chunks = _started()
    with anyio.fail_after(5):
        with anyio.CancelScope() as outer:

            async def both() -> None:
                await anyio.sleep(0.05)
                reads.stop()
                outer.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(both)
                with contextlib.suppress(ReadStopped):
                    await reads.read(chunks)
                await anyio.sleep(5)
            pytest.fail("the outer cancellation was lost")
    assert outer.cancelled_caught
    assert _pending_cancels() == 0
    send.close()


async def test_a_read_that_fails_while_being_stopped_leaves_no_cancel_behind() -> None:
    reads = StoppableReads()
    reads.reset()

    async def fragile() -> AsyncIterator[bytes]:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            raise OSError("connection reset while closing") from None
        yield b""  # pragma: no cover - never reached

    async with anyio.create_task_group() as tg:
        tg.start_soon(_stop_soon, reads)
        with anyio.fail_after(5), pytest.raises(OSError, match="connection reset"):
            await reads.read(fragile().__aiter__())
    assert _pending_cancels() == 0
    await anyio.lowlevel.checkpoint()


async def test_a_deadline_ends_the_read_as_not_stopped() -> None:
    send, reads, chunks = _started()
    with anyio.fail_after(5), pytest.raises(ReadStopped) as stopped:
        await reads.read(chunks, anyio.current_time() + 0.05)
    assert not stopped.value.by_stop
    send.close()


async def test_stop_ends_a_read_that_waits_under_a_deadline() -> None:
    send, reads, chunks = _started()
    assert (await _read_until_stopped(reads, chunks, anyio.current_time() + 60)).by_stop
    send.close()


async def test_no_deadline_means_infinity() -> None:
    """The default deadline is infinite: the read waits as long as it takes."""
    send, reads, chunks = _started()

    async def later() -> None:
        await anyio.sleep(0.1)
        await send.send(b"slow")

    async with anyio.create_task_group() as tg:
        tg.start_soon(later)
        assert await reads.read(chunks, math.inf) == b"slow"
    send.close()


async def test_stop_ends_the_read_of_whichever_task_reads() -> None:
    """Reset in one task, read in another: stop() ends that read and leaves the first alone."""
    _, reads, chunks = _started()
    outcome: list[bool] = []

    async def reader() -> None:
        try:
            await reads.read(chunks)
        except ReadStopped as stopped:
            outcome.append(stopped.by_stop)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await anyio.sleep(0.05)
            reads.stop()
        await anyio.sleep(0.05)  # the task that reset is not cancelled
    assert outcome == [True]
    assert _pending_cancels() == 0
