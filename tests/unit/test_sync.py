"""The sync facade over in-process fake backends: same events, blocking calls, one portal thread."""

from __future__ import annotations

import asyncio
import gc
import itertools
import threading
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import msgspec
import pytest

import claude_unified as cu
from claude_unified import _sync
from claude_unified._sync import PORTAL_THREAD_NAME
from claude_unified.backends._protocol import Exchange
from claude_unified.backends._registry import backend_override
from claude_unified.testing import FakeBackend, FunctionBackend, Step, error, message, reply
from claude_unified.testing import tool_call as scripted_tool_call

pytestmark = pytest.mark.timeout(30)


@cu.tool
async def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


def long_answer(blocks: int = 40) -> Step:
    return message(
        [cu.TextBlock(f"part {i} of a long answer. ") for i in range(blocks)],
        stop_reason="end_turn",
    )


def kinds(events: list[cu.Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def comparable(events: list[cu.Event]) -> list[cu.Event]:
    """Events with the values that differ between any two runs (ids, timings) blanked."""
    blank: dict[type[Any], dict[str, Any]] = {
        cu.SessionStarted: {"session_id": ""},
        cu.Result: {"session_id": "", "duration_s": 0.0},
    }
    return [msgspec.structs.replace(e, **blank.get(type(e), {})) for e in events]


def script() -> list[Step]:
    return [
        reply("Hello there, friend"),
        scripted_tool_call("add", {"a": 2, "b": 3}, id="toolu_1", text="Adding."),
        reply("The sum is 5."),
    ]


def test_events_are_the_same_as_on_the_async_path() -> None:
    async def run_async() -> list[list[cu.Event]]:
        async with cu.Conversation(cu.Config(), backend=FakeBackend(script()), tools=[add]) as c:
            return [[e async for e in c.send("hi")], [e async for e in c.send("2+3?")]]

    expected = anyio.run(run_async)
    with cu.SyncConversation(cu.Config(), backend=FakeBackend(script()), tools=[add]) as conv:
        turns, got = [], []
        for prompt in ("hi", "2+3?"):
            turns.append(conv.send(prompt))
            got.append(list(turns[-1]))
    assert [comparable(turn) for turn in got] == [comparable(turn) for turn in expected]
    assert [turn.result for turn in turns] == [events[-1] for events in got]
    assert "ToolResult" in kinds(got[1])
    assert isinstance(got[1][-1], cu.Result) and got[1][-1].text == "The sum is 5."


def test_ask_returns_a_reply_and_keeps_history() -> None:
    fake = FakeBackend([reply("one"), reply("two")])
    with cu.SyncConversation(cu.Config(), backend=fake) as conv:
        first = conv.ask("first")
        second = conv.ask("second")
        assert conv.session_id is not None
        assert [m.role for m in conv.history] == ["user", "assistant"] * 2
    assert (first.text, second.text) == ("one", "two")
    assert second.message is not None and second.message.text == "two"
    assert isinstance(second.events[-1], cu.Result) and second.result.num_turns == 1
    assert [m.role for m in fake.last_request.history] == ["user", "assistant", "user"]


def test_turn_result_and_on_text_in_the_iterating_thread() -> None:
    seen: list[tuple[int, str]] = []
    with cu.SyncConversation(cu.Config(), backend=FakeBackend([long_answer(5)])) as conv:
        turn = conv.send("hi", on_text=lambda t: seen.append((threading.get_ident(), t)))
        events = list(turn)
        turn.raise_for_error()
    deltas = [e.text for e in events if isinstance(e, cu.TextDelta)]
    assert [text for _, text in seen] == deltas
    assert {ident for ident, _ in seen} == {threading.get_ident()}
    assert turn.result is events[-1]


@pytest.mark.parametrize(
    ("tools", "policy", "decision", "expected"),
    [
        pytest.param([add], cu.callback(lambda name, input: cu.Ask()), cu.Allow(), "5", id="allow"),
        pytest.param([], None, cu.Deny("not now"), "not now", id="deny-unregistered"),
    ],
)
def test_respond_to_a_permission_request(
    tools: list[Any], policy: cu.Policy | None, decision: cu.Decision, expected: str
) -> None:
    fake = FakeBackend([scripted_tool_call("add", {"a": 2, "b": 3}), reply("done")])
    with cu.SyncConversation(cu.Config(), backend=fake, tools=tools, policy=policy) as conv:
        events = []
        for event in conv.send("2+3?"):
            events.append(event)
            if isinstance(event, cu.PermissionRequest):
                conv.respond(event, decision)
    verdict = next(e for e in events if isinstance(e, cu.PermissionDecision))
    assert verdict.decided_by == "user"  # the answer was in place before the turn went on
    outcome = next(e for e in events if isinstance(e, cu.ToolResult))
    assert outcome.content == expected
    assert outcome.is_error == isinstance(decision, cu.Deny)
    assert isinstance(events[-1], cu.Result) and events[-1].text == "done"


def test_respond_to_an_unknown_request_raises_the_async_error() -> None:
    with cu.SyncConversation(cu.Config(), backend=FakeBackend()) as conv:
        stray = cu.PermissionRequest("req", "toolu", "Bash", {})
        with pytest.raises(cu.ClaudeError, match="not waiting"):
            conv.respond(stray, cu.Allow())


def test_early_break_then_a_clean_next_turn() -> None:
    fake = FakeBackend([long_answer(), reply("second answer")])
    with cu.SyncConversation(cu.Config(), backend=fake) as conv:
        for event in conv.send("first"):
            if isinstance(event, cu.TextDelta):
                break
        events = list(conv.send("second"))
    assert [e.text for e in events if isinstance(e, cu.Text)] == ["second answer"]
    assert kinds(events).count("Result") == 1
    roles = [m.role for m in fake.last_request.history]
    assert roles[-1] == "user"
    assert all(a != b for a, b in itertools.pairwise(roles)), roles


def test_pauses_hold_turn_after_turn() -> None:
    """The consumer and the portal thread race at every pause; the answer must win every time."""
    turns = 100
    steps = [
        scripted_tool_call("add", {"a": i, "b": 1}) if k == 0 else reply(f"done {i}")
        for i in range(turns)
        for k in range(2)
    ]
    ask = cu.callback(lambda name, input: cu.Ask())
    with cu.SyncConversation(
        cu.Config(), backend=FakeBackend(steps), tools=[add], policy=ask
    ) as conv:
        for i in range(turns):
            decided = []
            for event in conv.send(f"{i}+1?"):
                if isinstance(event, cu.PermissionRequest):
                    conv.respond(event, cu.Allow() if i % 2 else cu.Deny("no"))
                elif isinstance(event, cu.PermissionDecision):
                    decided.append(event.decided_by)
            assert decided == ["user"], i


def test_breaking_at_a_permission_decision_keeps_the_tool_from_running() -> None:
    """Turn after turn, so that every interleaving of the two threads gets its chance."""
    calls: list[int] = []

    @cu.tool
    async def record(n: int) -> str:
        """Record a number."""
        calls.append(n)
        return "recorded"

    turns = 50
    steps = [
        step
        for i in range(turns)
        for step in (scripted_tool_call("record", {"n": i}), reply(f"after {i}"))
    ]
    with cu.SyncConversation(cu.Config(), backend=FakeBackend(steps), tools=[record]) as conv:
        for i in range(turns):
            for event in conv.send(f"record {i}"):
                if isinstance(event, cu.PermissionDecision):
                    assert event.behavior == "allow"
                    break
            assert conv.ask("go on").text == f"after {i}"
    assert calls == []


def test_the_portal_reads_at_most_a_bounded_way_ahead() -> None:
    total, ahead = 10 * _sync._AHEAD, []
    taken = 0

    async def events() -> Any:
        for i in range(total):
            ahead.append(i - taken)
            yield cu.TextDelta(text=str(i), index=0)

    seen = []
    for event in _sync.SyncTurn(events()):
        assert isinstance(event, cu.TextDelta)
        seen.append(int(event.text))
        taken += 1
        if taken % 2000 == 1:
            time.sleep(0.05)  # a slow consumer now and then: the producer must wait for it
    assert seen == list(range(total))
    assert 0 < max(ahead) <= _sync._AHEAD + 1


def test_a_fast_stream_comes_in_few_batches_and_a_lone_event_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    burst, batches = 3000, []
    take_all = _sync._Pump.take_all

    def counted(pump: _sync._Pump) -> list[Any]:
        batch = take_all(pump)
        batches.append(len(batch))
        return batch

    monkeypatch.setattr(_sync._Pump, "take_all", counted)
    sent: dict[int, float] = {}

    async def events() -> Any:
        for i in range(burst + 2):
            if i >= burst:
                await anyio.sleep(0.5)  # the stream goes quiet after the burst
            sent[i] = time.monotonic()
            yield cu.TextDelta(text=str(i), index=0)

    delays = {}
    for event in _sync.SyncTurn(events()):
        assert isinstance(event, cu.TextDelta)
        delays[int(event.text)] = time.monotonic() - sent[int(event.text)]
    assert sorted(delays) == list(range(burst + 2))
    assert len(batches) <= burst // 64  # batched, not one hand-over per event
    assert max(delays[burst], delays[burst + 1]) < 0.25  # a quiet stream's event is not held


class BlockingBackend(FunctionBackend):
    """Blocks on the prompt "hang" until interrupted; answers anything else at once."""

    def __init__(self, *, honours_interrupt: bool = True) -> None:
        super().__init__(self._respond)
        self._honours_interrupt = honours_interrupt
        self._wake: anyio.Event | None = None
        self.released = threading.Event()

    async def interrupt(self) -> None:
        await super().interrupt()
        if self._wake is not None and self._honours_interrupt:
            self._wake.set()

    async def _respond(self, request: Exchange) -> Step:
        if request.prompt == "hang":
            self._wake = anyio.Event()
            try:
                await self._wake.wait()
            finally:
                self.released.set()
        return reply("after")


def test_close_of_a_turn_blocked_in_the_backend_interrupts_it() -> None:
    backend = BlockingBackend()
    with cu.SyncConversation(cu.Config(), backend=backend) as conv:
        turn = conv.send("hang")
        assert isinstance(next(turn), cu.SessionStarted)
        turn.close()
        assert backend.released.is_set()
        assert list(turn) == []
        assert conv.ask("next").text == "after"


def test_close_cancels_a_backend_that_ignores_the_interrupt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_sync, "_CLOSE_GRACE", 0.2)
    backend = BlockingBackend(honours_interrupt=False)
    with cu.SyncConversation(cu.Config(), backend=backend) as conv:
        turn = conv.send("hang")
        assert isinstance(next(turn), cu.SessionStarted)
        turn.close()
        assert backend.released.is_set()
        assert conv.ask("next").text == "after"


@pytest.mark.parametrize("leave", ["close", "garbage-collect"])
def test_a_chat_stream_left_while_blocked_is_cancelled_at_once(leave: str) -> None:
    backend = BlockingBackend(honours_interrupt=False)
    with cu.SyncChatClient(cu.Config(), backend=backend) as chat:
        stream = chat.stream("hang")
        assert isinstance(next(stream), cu.SessionStarted)
        started = time.monotonic()
        if leave == "close":
            stream.close()
        else:
            del stream
            gc.collect()
        assert backend.released.wait(5)
        assert time.monotonic() - started < 2  # well inside the interrupt grace period
        assert chat.chat("next").text == "after"


def test_exceptions_keep_their_types() -> None:
    def broken_policy(name: str, input: dict[str, Any]) -> cu.Decision:
        raise ZeroDivisionError("policy bug")

    fake = FakeBackend([error(529), error(529), scripted_tool_call("add", {"a": 1, "b": 1})])
    fake.queue(reply("still usable"))
    with cu.SyncConversation(cu.Config(), backend=fake, policy=cu.callback(broken_policy)) as conv:
        with pytest.raises(cu.OverloadedError):
            conv.ask("overloaded")
        turn = conv.send("overloaded again")
        result = list(turn)[-1]
        assert isinstance(result, cu.Result) and result.is_error
        with pytest.raises(cu.OverloadedError) as info:
            turn.raise_for_error()
        assert info.value.status_code == 529
        with pytest.raises(ZeroDivisionError, match="policy bug"):
            list(conv.send("call add"))
        assert conv.ask("and now?").text == "still usable"


def test_not_open_says_how_to_open(tmp_path: Path) -> None:
    conv = cu.SyncConversation(cu.Config(), backend=FakeBackend([reply("x")]))
    with pytest.raises(cu.ClaudeError, match=r"with SyncConversation\(\.\.\.\)"):
        conv.send("hi")
    missing = cu.Config(backend="cli", cli_path=str(tmp_path / "no-such-claude"))
    with pytest.raises(cu.CLINotFoundError), cu.SyncConversation(missing):
        pass  # the error of the async open() arrives with its own type


def test_interrupt_from_another_thread() -> None:
    in_flight, released = threading.Event(), threading.Event()

    async def respond(request: Exchange) -> Step:
        if request.prompt == "wait for me":
            in_flight.set()
            await anyio.to_thread.run_sync(released.wait)
        return reply("after")

    with cu.SyncConversation(cu.Config(), backend=FunctionBackend(respond)) as conv:

        def interrupter() -> None:
            if in_flight.wait(10):
                conv.interrupt()
            released.set()

        thread = threading.Thread(target=interrupter)
        thread.start()
        events = list(conv.send("wait for me"))
        thread.join()
        result = events[-1]
        assert isinstance(result, cu.Result) and result.is_error
        assert result.error is not None and result.error.kind == "interrupted"
        assert conv.ask("next").text == "after"


def test_usable_from_inside_a_running_asyncio_loop() -> None:
    async def notebook_cell() -> list[str]:
        fake = FakeBackend([reply("from a notebook"), reply("again")])
        with cu.SyncConversation(cu.Config(), backend=fake) as conv:
            first = conv.ask("hi").text
            second = [e.text for e in conv.send("more") if isinstance(e, cu.Text)]
        await asyncio.sleep(0)  # the caller's own loop still runs
        return [first, *second]

    assert asyncio.run(notebook_cell()) == ["from a notebook", "again"]


def test_many_conversations_share_one_portal_thread() -> None:
    def portal_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == PORTAL_THREAD_NAME]

    with cu.SyncConversation(cu.Config(), backend=FakeBackend([reply("warm")])) as warm:
        warm.ask("start the portal")
    before = threading.active_count()
    conversations = [
        cu.SyncConversation(cu.Config(), backend=FakeBackend([reply(f"answer {i}")]))
        for i in range(12)
    ]
    for conv in conversations:
        conv.open()
    try:
        answers = [conv.ask("hi").text for conv in conversations]
        assert threading.active_count() == before
    finally:
        for conv in conversations:
            conv.close()
    assert answers == [f"answer {i}" for i in range(12)]
    assert len(portal_threads()) == 1


def test_sync_api_from_the_portal_thread_fails_clearly() -> None:
    inner = cu.SyncConversation(cu.Config(), backend=FakeBackend([reply("never")]))

    @cu.tool
    async def nested() -> str:
        """Call the sync API from the event loop."""
        inner.ask("from inside")
        return "unreachable"

    fake = FakeBackend([scripted_tool_call("nested", {}), reply("done")])
    with inner, cu.SyncConversation(cu.Config(), backend=fake, tools=[nested]) as conv:
        answer = conv.ask("go")
    outcome = next(e for e in answer.events if isinstance(e, cu.ToolResult))
    assert outcome.is_error
    assert "event-loop thread" in str(outcome.content)


def test_a_backend_override_in_the_calling_thread_is_honoured() -> None:
    fake = FakeBackend([reply("overridden"), reply("queried")])
    token = backend_override.set(lambda config: fake)
    try:
        with cu.SyncConversation(cu.Config(backend="api", api_key="sk-unused")) as conv:
            assert conv.ask("hi").text == "overridden"
        assert cu.query_sync("hi", config=cu.Config()) == "queried"
    finally:
        backend_override.reset(token)


def test_save_and_restore(tmp_path: Path) -> None:
    fake = FakeBackend([reply("one"), reply("two")])
    token = backend_override.set(lambda config: fake)
    try:
        with cu.SyncConversation(cu.Config()) as conv:
            conv.ask("first")
            conv.save(tmp_path / "saved.json")
        with cu.SyncConversation.restore(tmp_path / "saved.json", cu.Config()) as again:
            assert again.ask("second").text == "two"
            assert again.session_id == conv.session_id
    finally:
        backend_override.reset(token)
    assert [m.text for m in fake.last_request.history] == ["first", "one", "second"]


def test_a_burst_reaches_a_lingering_consumer_before_the_next_one() -> None:
    """A burst followed by a pause is handed over within the linger: the consumer sees the
    whole first burst before the second one is even produced."""
    assert _sync._LINGER < 0.2 / 10  # the pauses below are far longer than the linger
    produced: list[int] = []

    async def source() -> AsyncGenerator[cu.TextDelta, None]:
        for burst in range(3):
            for i in range(100):
                produced.append(burst)
                yield cu.TextDelta(text=f"{burst}:{i}")
            await anyio.sleep(0.2)  # far longer than any linger

    seen_before: list[int] = []
    for event in _sync.SyncTurn(source()):
        assert isinstance(event, cu.TextDelta)
        if event.text.endswith(":99"):
            seen_before.append(len(produced))
    # the last event of each burst arrived before the next burst was produced
    assert seen_before == [100, 200, 300]
