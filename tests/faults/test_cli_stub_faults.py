"""CLI faults acted out by a scripted stand-in ``claude`` (see ``_cli_stub``).

Each case ends in a typed error or a clean result, leaves the conversation usable (the next
turn gets its own answer) or clearly closed (the next turn raises), and leaves no process or fd.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import anyio
import pytest

import claude_unified as cu
from claude_unified.backends.cli import CliBackend

from ._cli_stub import Leftovers, StubCli, alive

pytestmark = pytest.mark.anyio

HANG_GUARD_S = 30  # a bound on every case: a hang fails instead of stalling the suite


def _status() -> dict[str, Any]:
    return {"type": "system", "subtype": "status", "status": "requesting", "session_id": "s"}


def _control(request_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": "control_request", "request_id": request_id, "request": body}


def _requests(stub: StubCli) -> list[dict[str, Any]]:
    return [line for line in stub.received() if line.get("type") == "control_request"]


@cu.tool
def _add(a: int, b: int) -> str:
    """Add two numbers."""
    return str(a + b)


async def usable(conv: cu.Conversation) -> None:
    """The next turn gets its own answer: nothing of an earlier turn is left in the way."""
    reply = await conv.ask("after")
    assert reply.text == "ECHO: after"
    assert reply.result.text == "ECHO: after"


async def events_of(conv: cu.Conversation, prompt: str) -> list[cu.Event]:
    return [event async for event in conv.send(prompt)]


def final(events: list[cu.Event]) -> cu.Result:
    assert isinstance(events[-1], cu.Result), events
    return events[-1]


# --------------------------------------------------------------------------- timeouts (1)


async def test_a_silent_cli_hits_idle_timeout_and_is_interrupted(tmp_path: Path) -> None:
    stub = StubCli(tmp_path, [[{"sleep": 3600}]])
    left = Leftovers()
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config(idle_timeout=0.5)) as conv:
            with pytest.raises(cu.TimeoutError) as info:
                await conv.ask("hello?")
            assert info.value.kind == "idle"
            assert "idle_timeout=0.5s" in str(info.value)
            # the CLI was told to stop the turn, and its late error result is not the next answer
            assert any(line["request"]["subtype"] == "interrupt" for line in _requests(stub))
            await usable(conv)
    await left.check()


async def test_a_cli_that_ignores_the_interrupt_is_stopped(tmp_path: Path) -> None:
    stub = StubCli(tmp_path, [[{"sleep": 3600}]], on_interrupt="silent")
    left = Leftovers()
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config(idle_timeout=0.5)) as conv:
            with pytest.raises(cu.TimeoutError):
                await conv.ask("hello?")
            backend = conv.backend
            assert isinstance(backend, CliBackend)
            assert backend.pid is not None
            with pytest.raises(cu.ProcessError, match="did not answer an interrupt"):
                await conv.ask("after")  # clearly closed
    await left.check()


async def test_output_lines_keep_the_idle_clock_from_running_out(tmp_path: Path) -> None:
    drip = [a for _ in range(6) for a in ({"sleep": 0.2}, {"line": _status()})]
    stub = StubCli(tmp_path, [[*drip, {"result": "made it"}]])
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config(idle_timeout=0.6)) as conv:
            reply = await conv.ask("slow but alive")
            assert reply.text == "made it"
            await usable(conv)


async def test_a_turn_past_timeout_fails_even_while_the_cli_talks(tmp_path: Path) -> None:
    drip = [a for _ in range(200) for a in ({"sleep": 0.05}, {"line": _status()})]
    stub = StubCli(tmp_path, [drip])
    left = Leftovers()
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config(timeout=0.5, idle_timeout=60)) as conv:
            with pytest.raises(cu.TimeoutError) as info:
                await conv.ask("forever")
            assert info.value.kind == "total"
            await usable(conv)
    await left.check()


async def test_initialize_has_its_own_timeout(tmp_path: Path) -> None:
    stub = StubCli(tmp_path, init="silent")
    left = Leftovers()
    conv = cu.Conversation(stub.config(init_timeout=0.5))
    with anyio.fail_after(HANG_GUARD_S), pytest.raises(cu.ProcessError) as info:
        await conv.open()
    assert "did not complete initialize" in str(info.value)
    assert "initialize within 0.5s" in str(info.value)
    await left.check()


async def test_a_callers_cancel_takes_effect_and_the_conversation_resyncs(
    tmp_path: Path,
) -> None:
    stub = StubCli(tmp_path, [[{"stream": ["thinking"], "stop": False}, {"sleep": 3600}]])
    left = Leftovers()
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config()) as conv:  # idle_timeout: the default 120 s
            with anyio.move_on_after(0.5) as scope:
                await conv.ask("long one")
            assert scope.cancelled_caught
            await usable(conv)
    await left.check()


async def test_a_cancel_on_a_hung_cli_stops_it_within_the_grace(tmp_path: Path) -> None:
    stub = StubCli(tmp_path, [[{"sleep": 3600}]], on_interrupt="silent")
    left = Leftovers()
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config()) as conv:
            with anyio.move_on_after(0.5):
                await conv.ask("long one")
            with pytest.raises(cu.ClaudeError):
                await conv.ask("after")
    await left.check()


# --------------------------------------------------------------------------- resync (2)


async def test_a_late_result_after_cancel_is_not_the_next_answer(tmp_path: Path) -> None:
    # the CLI acknowledges the interrupt but finishes the turn anyway, late
    late: list[dict[str, Any]] = [
        {"stream": ["Hel"], "stop": False},
        {"sleep": 1.0},
        {"result": "LATE first answer"},
    ]
    stub = StubCli(tmp_path, [late], on_interrupt="ack")
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config()) as conv:
            with anyio.CancelScope() as scope:
                async for event in conv.send("first"):
                    if isinstance(event, cu.TextDelta):
                        scope.cancel()
            for n in range(3):
                reply = await conv.ask(f"turn {n}")
                assert reply.text == f"ECHO: turn {n}"


async def test_leaving_a_turn_early_drains_it(tmp_path: Path) -> None:
    turn: list[dict[str, Any]] = [{"stream": ["a", "b", "c"]}, {"sleep": 0.2}, {"result": "abc"}]
    stub = StubCli(tmp_path, [turn], on_interrupt="ack")
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config()) as conv:
            async for event in conv.send("first"):
                if isinstance(event, cu.TextDelta):
                    break
            await usable(conv)
            assert next(m.text for m in conv.history if m.role == "assistant") == "abc"


# --------------------------------------------------------------------------- scopes (3)


async def test_open_inside_fail_after_close_outside(tmp_path: Path) -> None:
    stub = StubCli(tmp_path)
    left = Leftovers()
    conv = cu.Conversation(stub.config())
    with anyio.fail_after(HANG_GUARD_S):
        await conv.open()
    await usable(conv)
    with anyio.move_on_after(HANG_GUARD_S):
        await conv.aclose()
    await left.check()


async def test_open_in_one_task_close_in_another(tmp_path: Path) -> None:
    stub = StubCli(tmp_path)
    left = Leftovers()
    conv = cu.Conversation(stub.config())
    opened, done = anyio.Event(), anyio.Event()

    async def opener() -> None:
        await conv.open()
        opened.set()
        await done.wait()

    async def closer() -> None:
        await opened.wait()
        await usable(conv)
        await conv.aclose()
        done.set()

    with anyio.fail_after(HANG_GUARD_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(opener)
            tg.start_soon(closer)
    await left.check()


async def test_cancel_the_outer_scope_from_inside_send(tmp_path: Path) -> None:
    stub = StubCli(tmp_path, [[{"stream": ["x", "y"]}, {"sleep": 0.3}, {"result": "xy"}]])
    left = Leftovers()
    with anyio.fail_after(HANG_GUARD_S):
        with anyio.CancelScope() as outer:
            async with cu.Conversation(stub.config()) as conv:
                async for _event in conv.send("go"):
                    outer.cancel()
        assert outer.cancelled_caught
    await left.check()


async def test_close_from_another_task_during_a_turn(tmp_path: Path) -> None:
    stub = StubCli(tmp_path, [[{"sleep": 3600}]])
    left = Leftovers()
    conv = cu.Conversation(stub.config())
    await conv.open()
    events: list[cu.Event] = []

    async def turn() -> None:
        events.extend([event async for event in conv.send("long")])

    with anyio.fail_after(HANG_GUARD_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(turn)
            await anyio.sleep(0.3)
            await conv.aclose()
    result = final(events)
    assert result.is_error
    assert result.error is not None
    assert result.error.kind == "ProcessError"
    await left.check()


# --------------------------------------------------------------------------- control (4)


@pytest.mark.parametrize(
    "message",
    [
        {"jsonrpc": "2.0", "id": 7, "method": "tools/call"},
        {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"arguments": {}}},
        {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {"name": "add", "arguments": [1]},
        },
        {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": "add"},
        {"jsonrpc": "2.0", "id": 7},
    ],
    ids=["no-params", "no-name", "list-arguments", "string-params", "no-method"],
)
async def test_a_malformed_mcp_call_gets_a_json_rpc_error(
    tmp_path: Path, message: dict[str, Any]
) -> None:
    request = _control(
        "m1", {"subtype": "mcp_message", "server_name": "claude_unified", "message": message}
    )
    stub = StubCli(tmp_path, [[{"line": request}, {"await": "m1"}, {"result": "survived"}]])
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config(), tools=[_add]) as conv:
            reply = await conv.ask("call it")
            assert reply.text == "survived"
            await usable(conv)
    answer = stub.answer_to("m1")
    assert answer["subtype"] == "success"
    rpc = answer["response"]["mcp_response"]
    assert rpc["id"] == 7
    assert rpc["error"]["code"] in (-32600, -32602)


async def test_a_control_request_without_a_body_is_answered_with_an_error(
    tmp_path: Path,
) -> None:
    request = {"type": "control_request", "request_id": "c1"}
    stub = StubCli(tmp_path, [[{"line": request}, {"await": "c1"}, {"result": "ok"}]])
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config()) as conv:
            reply = await conv.ask("go")
            assert reply.text == "ok"
    assert stub.answer_to("c1")["subtype"] == "error"
    assert any(isinstance(e, cu.Unknown) and e.raw.get("request_id") == "c1" for e in reply.events)


async def test_an_unknown_control_subtype_is_answered_and_shown(tmp_path: Path) -> None:
    body = {"subtype": "elicit_user", "question": "why?"}
    stub = StubCli(tmp_path, [[{"line": _control("u1", body)}, {"await": "u1"}, {"result": "ok"}]])
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config()) as conv:
            reply = await conv.ask("go")
    answer = stub.answer_to("u1")
    assert answer["subtype"] == "error"
    assert "elicit_user" in answer["error"]
    shown = [e for e in reply.events if isinstance(e, cu.Unknown)]
    assert [e.raw for e in shown] == [
        {"type": "control_request", "request_id": "u1", "request": body}
    ]


# --------------------------------------------------------------------------- crash (5)


@pytest.mark.parametrize("death", [{"exit": 3}, {"kill": 9}], ids=["exit", "sigkill"])
async def test_partial_text_survives_a_cli_death_mid_stream(
    tmp_path: Path, death: dict[str, int]
) -> None:
    stub = StubCli(tmp_path, [[{"stream": ["Hel", "lo, wor"], "stop": False}, death]])
    left = Leftovers()
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config()) as conv:
            events = await events_of(conv, "talk")
            result = final(events)
            assert result.is_error
            assert result.text == "Hello, wor"
            assert conv.history[-1].text == "Hello, wor"
            with pytest.raises(cu.ProcessError) as info:
                await conv.ask("after")  # clearly closed
            assert info.value.exit_code == 3 or info.value.signal == signal.SIGKILL
    await left.check()


async def test_ask_raises_with_the_partial_text(tmp_path: Path) -> None:
    stub = StubCli(tmp_path, [[{"stream": ["par", "tial"], "stop": False}, {"exit": 1}]])
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config()) as conv:
            with pytest.raises(cu.ProcessError) as info:
                await conv.ask("talk")
    assert info.value.partial_text == "partial"
    assert info.value.exit_code == 1


# --------------------------------------------------------------------------- odd lines (6, 7)


@pytest.mark.parametrize(
    "fields",
    [{"num_turns": "1"}, {"errors": None}, {"usage": "lots"}, {"is_error": "no"}],
    ids=["num_turns-str", "errors-null", "usage-str", "is_error-str"],
)
async def test_a_result_of_an_odd_shape_ends_the_turn_losslessly(
    tmp_path: Path, fields: dict[str, Any]
) -> None:
    odd = {"type": "result", "subtype": "success", "result": "fine", "session_id": "s", **fields}
    odd["padding"] = "p" * 5000  # kept whole, not cut short
    stub = StubCli(tmp_path, [[{"stream": ["fi", "ne"]}, {"line": odd}]])
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config()) as conv:
            events = await events_of(conv, "go")
            await usable(conv)
    unknown = [e for e in events if isinstance(e, cu.Unknown)]
    assert [e.raw for e in unknown] == [odd]
    result = final(events)
    assert result.is_error
    assert result.text == "fine"
    assert result.error is not None
    assert result.error.kind == "ProtocolError"


async def test_a_non_json_line_is_kept_whole(tmp_path: Path) -> None:
    noise = "[debug] " + "z" * 10_000
    stub = StubCli(tmp_path, [[{"raw": noise}, {"result": "ok"}]])
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config()) as conv:
            reply = await conv.ask("go")
    shown = [e.raw for e in reply.events if isinstance(e, cu.Unknown)]
    assert shown == [{"type": "non_json_line", "text": noise}]


_SERVER_TOOL = {
    "type": "assistant",
    "session_id": "s",
    "message": {
        "id": "msg_srv",
        "model": "m",
        "content": [
            {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {"q": "x"}}
        ],
    },
}
_STREAM_ORPHANS = [
    {
        "type": "stream_event",
        "event": {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "orphan"},
        },
    },
    {
        "type": "stream_event",
        "event": {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
    },
]


@pytest.mark.parametrize(
    ("lines", "check"),
    [
        ([_status()], lambda e: isinstance(e, cu.Unknown) and e.raw["subtype"] == "status"),
        ([_SERVER_TOOL], lambda e: isinstance(e, cu.ServerToolUse) and e.name == "web_search"),
        (
            [{"type": "assistant", "message": {"id": "msg_s", "content": "plain words"}}],
            lambda e: isinstance(e, cu.Text) and e.text == "plain words",
        ),
        (
            _STREAM_ORPHANS[:1],
            lambda e: isinstance(e, cu.Unknown) and e.raw["event"]["delta"]["text"] == "orphan",
        ),
        (
            [{"stream": ["done"]}, _STREAM_ORPHANS[1]],
            lambda e: isinstance(e, cu.Unknown) and e.raw["event"]["type"] == "message_delta",
        ),
    ],
    ids=["system-status", "server-tool-use-only", "string-content", "before-start", "after-stop"],
)
async def test_lines_that_used_to_vanish_are_surfaced(
    tmp_path: Path, lines: list[dict[str, Any]], check: Any
) -> None:
    actions = [line if "stream" in line else {"line": line} for line in lines]
    stub = StubCli(tmp_path, [[*actions, {"result": "ok"}]])
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config()) as conv:
            reply = await conv.ask("go")
            await usable(conv)
    assert any(check(e) for e in reply.events), reply.events


# --------------------------------------------------------------------------- descendants (8)


@pytest.mark.parametrize("setsid", [False, True], ids=["same-group", "own-session"])
async def test_helpers_of_a_killed_cli_are_reaped(tmp_path: Path, setsid: bool) -> None:
    # the CLI's descendants are noted once a second: the helper lives a few seconds first
    turn: list[dict[str, Any]] = [
        {"spawn": ["sleep", "300"], "setsid": setsid},
        {"sleep": 2.5},
        {"kill": 9},
    ]
    stub = StubCli(tmp_path, [turn])
    left = Leftovers()
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config()) as conv:
            with pytest.raises(cu.ProcessError) as info:
                await conv.ask("start a helper, then die")
            assert info.value.signal == signal.SIGKILL
    helpers = stub.helper_pids()
    assert len(helpers) == 1
    await left.check(*helpers)


async def test_helpers_are_reaped_on_a_normal_close(tmp_path: Path) -> None:
    turn: list[dict[str, Any]] = [
        {"spawn": ["sleep", "300"], "setsid": True},
        {"result": "started"},
    ]
    stub = StubCli(tmp_path, [turn])
    left = Leftovers()
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config()) as conv:
            assert (await conv.ask("start")).text == "started"
            (helper,) = stub.helper_pids()
            assert alive(helper)
    await left.check(helper)


# --------------------------------------------------------------------------- one turn at a time (9)


async def test_a_second_concurrent_ask_fails_at_once(tmp_path: Path) -> None:
    stub = StubCli(tmp_path, [[{"line": _status()}, {"sleep": 0.5}, {"result": "first done"}]])
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(stub.config()) as conv:
            replies: list[list[cu.Event]] = []
            started = anyio.Event()

            async def first() -> None:
                events = []
                async for event in conv.send("first"):
                    started.set()
                    events.append(event)
                replies.append(events)

            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                await started.wait()
                with pytest.raises(cu.ClaudeError, match="another turn is running"):
                    await conv.ask("intruder")
            assert final(replies[0]).text == "first done"
            await usable(conv)
    prompts = [line["message"]["content"] for line in stub.received() if line["type"] == "user"]
    assert prompts == ["first", "after"]  # the intruder never reached the CLI
