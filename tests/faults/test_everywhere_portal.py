"""The sync API's one event-loop thread survives whatever escapes a call into it (SystemExit
from a callback, a test framework's failure, KeyboardInterrupt), or starts again by itself:
every later sync call works."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import claude_unified as cu
from claude_unified import _sync
from claude_unified.testing import FakeBackend, reply, tool_call

pytestmark = pytest.mark.timeout(60)


class FrameworkFailure(BaseException):
    """Like pytest's own ``Failed``: a BaseException raised to end a test."""


def raising(exc: BaseException) -> Callable[[str, dict[str, Any]], cu.Decision]:
    def decide(name: str, input: dict[str, Any]) -> cu.Decision:
        raise exc

    return decide


@cu.tool
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


def tool_conversation(policy: cu.Policy, *steps: Any) -> cu.SyncConversation:
    fake = FakeBackend([tool_call("add", {"a": 1, "b": 2}), reply("3"), *steps])
    return cu.SyncConversation(cu.Config(), backend=fake, tools=[add], policy=policy)


def later_calls_work() -> None:
    with cu.SyncConversation(cu.Config(), backend=FakeBackend([reply("still here")])) as conv:
        assert conv.ask("hi").text == "still here"
        assert [type(e).__name__ for e in conv.send("again")][-1] == "Result"
    with cu.testing.override(backend=FakeBackend([reply("query works")])):
        assert cu.query_sync("q") == "query works"


@pytest.mark.parametrize(
    "exc", [SystemExit(3), KeyboardInterrupt(), FrameworkFailure("guard failed")], ids=repr
)
def test_a_base_exception_from_a_policy_in_ask_reaches_the_caller(exc: BaseException) -> None:
    with tool_conversation(cu.callback(raising(exc))) as conv, pytest.raises(type(exc)):
        conv.ask("add")
    later_calls_work()


@pytest.mark.parametrize("exc", [SystemExit(4), FrameworkFailure("x")], ids=repr)
def test_a_base_exception_while_iterating_a_sync_turn(exc: BaseException) -> None:
    with tool_conversation(cu.callback(raising(exc))) as conv:
        with pytest.raises(type(exc)):
            for _ in conv.send("add"):
                pass
        conv.close()
    later_calls_work()


class _ExitingBackend(FakeBackend):
    async def open(self, session: Any) -> None:
        raise SystemExit("no backend for you")


def test_a_base_exception_while_opening_a_facade() -> None:
    with pytest.raises(SystemExit), cu.SyncConversation(cu.Config(), backend=_ExitingBackend()):
        pass
    later_calls_work()


@cu.tool
def exits() -> str:
    """A tool that exits the interpreter (it runs in a task of its own)."""
    raise SystemExit(9)


def test_the_portal_starts_again_after_its_loop_ended() -> None:
    """A SystemExit in a task of its own ends an asyncio loop whatever catches it later; the
    caller gets an error, never a hang, and the next sync call gets a fresh portal thread."""
    before = _sync.portal()
    fake = FakeBackend([tool_call("exits", {}), reply("never")])
    conv = cu.SyncConversation(cu.Config(), backend=fake, tools=[exits], policy=cu.allow_all())
    conv.open()
    with pytest.raises(BaseException):  # noqa: B017, PT011 - which one depends on the timing
        conv.ask("exit please")
    later_calls_work()
    assert _sync.portal() is not before
    assert sum(t.name == _sync.PORTAL_THREAD_NAME for t in threading.enumerate()) == 1


# --------------------------------------------------------- tasks started without waiting


def test_a_task_started_without_waiting_delivers_its_result_and_its_base_exception() -> None:
    async def answer() -> str:
        return "done"

    async def escape() -> None:
        raise SystemExit(5)

    shared = _sync.portal()
    assert shared.start_task_soon(answer).result(timeout=10) == "done"
    held = shared.start_task_soon(escape)
    with pytest.raises(SystemExit):
        held.result(timeout=10)
    later_calls_work()  # the SystemExit stayed in its future: the loop serves on


def test_cancelling_the_future_from_this_thread_cancels_the_running_task() -> None:
    started, finished = threading.Event(), threading.Event()
    outcome: list[str] = []

    async def wait_forever() -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise
        finally:
            finished.set()

    future = _sync.portal().start_task_soon(wait_forever)
    assert started.wait(10)
    assert future.cancel()
    assert finished.wait(10)
    assert outcome == ["cancelled"]
    later_calls_work()


def test_a_future_cancelled_before_its_task_starts_never_runs() -> None:
    ran: list[bool] = []
    gate = threading.Event()

    async def block_the_loop() -> None:
        gate.wait(10)  # blocks the loop thread: the next task cannot start yet

    async def must_not_run() -> None:
        ran.append(True)

    shared = _sync.portal()
    blocker = shared.start_task_soon(block_the_loop)
    future = shared.start_task_soon(must_not_run)
    assert future.cancel()
    gate.set()
    blocker.result(timeout=10)
    shared.call(anyio.sleep, 0.05)
    assert ran == []
    later_calls_work()


def test_a_callback_run_soon_runs_on_the_loop_thread() -> None:
    seen: list[str] = []
    done = threading.Event()

    def note() -> None:
        seen.append(threading.current_thread().name)
        done.set()

    _sync.portal().call_soon(note)
    assert done.wait(10)
    assert seen == [_sync.PORTAL_THREAD_NAME]
