"""``interrupt()`` while the library runs a tool (API path, over real HTTP): the tool is stopped,
answered with an error result, and the turn ends at once; the conversation goes on."""

from __future__ import annotations

import threading

import anyio
import pytest

import claude_unified as cu
from claude_unified.testing import FakeAnthropicServer, reply, tool_call, tool_calls

from .conftest import api_config, assert_history_valid, fd_guard

pytestmark = pytest.mark.anyio

LIMIT = 20  # a turn that waited for the tool would sleep far longer than this


class Hanging:
    """Tools that never finish on their own, and what became of them."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.cancelled = False
        self.release = threading.Event()  # lets the sync tool's thread end after the test

    def tools(self) -> list[cu.Tool]:
        @cu.tool
        async def wait_forever() -> str:
            """Waits for an hour."""
            self.started.set()
            try:
                await anyio.sleep(3600)
            except anyio.get_cancelled_exc_class():
                self.cancelled = True
                raise
            return "done"

        @cu.tool
        def block_forever() -> str:
            """Blocks its thread until released."""
            anyio.from_thread.run_sync(self.started.set)
            self.release.wait(3600)
            return "released"

        @cu.tool
        async def quick() -> str:
            """Answers at once (before the other tools of its message get going)."""
            return "quick answer"

        return [wait_forever, block_forever, quick]


async def interrupted_turn(
    conv: cu.Conversation, hanging: Hanging, prompt: str = "go"
) -> list[cu.Event]:
    seen: list[cu.Event] = []
    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tg:

            async def consume() -> None:
                async for event in conv.send(prompt):
                    seen.append(event)

            async def interrupt_when_running() -> None:
                await hanging.started.wait()
                await conv.interrupt()

            tg.start_soon(consume)
            tg.start_soon(interrupt_when_running)
    return seen


def results_of(events: list[cu.Event]) -> dict[str, cu.ToolResult]:
    return {e.name: e for e in events if isinstance(e, cu.ToolResult)}


async def goes_on(conv: cu.Conversation, fake: FakeAnthropicServer) -> None:
    fake.queue(reply("carry on"))
    with anyio.fail_after(LIMIT):
        assert (await conv.ask("next")).text == "carry on"
    assert_history_valid(conv.history)
    sent = fake.requests[-1].json
    assert sent is not None
    # the stopped tool's error result went back with the next prompt
    first_user_blocks = sent["messages"][2]["content"]
    assert any(b.get("type") == "tool_result" and b.get("is_error") for b in first_user_blocks)


@pytest.mark.parametrize("tool", ["wait_forever", "block_forever"])
async def test_interrupt_stops_a_running_tool(fake: FakeAnthropicServer, tool: str) -> None:
    hanging = Hanging()
    fake.queue(tool_call(tool, {}, text="Working on it."))
    config = api_config(fake)
    try:
        with fd_guard(fake):
            async with cu.Conversation(config, tools=hanging.tools()) as conv:
                events = await interrupted_turn(conv, hanging)
                result = events[-1]
                assert isinstance(result, cu.Result)
                assert result.error is not None
                assert result.error.kind == "interrupted"
                assert result.text == "Working on it."
                stopped = results_of(events)[tool]
                assert stopped.is_error
                assert "stopped" in str(stopped.content)
                assert_history_valid(conv.history)
                await goes_on(conv, fake)
        if tool == "wait_forever":
            assert hanging.cancelled
    finally:
        hanging.release.set()


async def test_interrupt_keeps_the_results_of_tools_that_finished(
    fake: FakeAnthropicServer,
) -> None:
    hanging = Hanging()
    fake.queue(tool_calls(("quick", {}), ("wait_forever", {})))
    async with cu.Conversation(api_config(fake), tools=hanging.tools()) as conv:
        events = await interrupted_turn(conv, hanging)
        by_name = results_of(events)
        assert by_name["wait_forever"].is_error
        assert not by_name["quick"].is_error
        assert by_name["quick"].content == "quick answer"
        assert_history_valid(conv.history)
        await goes_on(conv, fake)
    assert hanging.cancelled


async def test_a_caller_cancel_during_a_tool_leaves_a_valid_history(
    fake: FakeAnthropicServer,
) -> None:
    hanging = Hanging()
    fake.queue(tool_call("wait_forever", {}))
    with fd_guard(fake):
        async with cu.Conversation(api_config(fake), tools=hanging.tools()) as conv:
            with anyio.fail_after(LIMIT), anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:

                    async def consume() -> None:
                        async for _ in conv.send("go"):
                            pass

                    tg.start_soon(consume)
                    await hanging.started.wait()
                    scope.cancel()
            assert hanging.cancelled
            assert_history_valid(conv.history)
            fake.queue(reply("carry on"))
            with anyio.fail_after(LIMIT):
                assert (await conv.ask("next")).text == "carry on"


def test_interrupt_from_another_thread_stops_a_sync_conversation_tool(
    server: FakeAnthropicServer,
) -> None:
    server.reset()
    hanging = Hanging()
    server.queue(tool_call("block_forever", {}), reply("after"))
    started = threading.Event()

    @cu.tool
    def block() -> str:
        """Blocks until released."""
        started.set()
        hanging.release.wait(3600)
        return "released"

    try:
        with cu.SyncConversation(api_config(server), tools=[block]) as conv:
            server.reset()
            server.queue(tool_call("block", {}))

            def stop_when_running() -> None:
                started.wait(LIMIT)
                conv.interrupt()

            stopper = threading.Thread(target=stop_when_running)
            stopper.start()
            events = list(conv.send("go"))
            stopper.join(LIMIT)
            result = events[-1]
            assert isinstance(result, cu.Result)
            assert result.error is not None
            assert result.error.kind == "interrupted"
            assert results_of(events)["block"].is_error
            assert_history_valid(conv.history)
            server.queue(reply("carry on"))
            assert conv.ask("next").text == "carry on"
    finally:
        hanging.release.set()
