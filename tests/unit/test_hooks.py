"""Hooks: the decorator's checks, running and combining hooks, the CLI's wire format."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import claude_unified as cu
from claude_unified._hooks import HookSet, HookTally, cli_hook_input
from claude_unified._permissions import normalize_tool_name
from claude_unified.backends._cli_hooks import hook_output, initialize_hooks
from claude_unified.backends._protocol import HookAnswer, HookRegistration


def pre(command: str) -> cu.PreToolUseInput:
    return cu.PreToolUseInput(
        event="PreToolUse", tool_use_id="t1", name="Bash", input={"command": command}
    )


def call_of(payload: cu.PreToolUseInput) -> cu.ToolCall:
    return cu.ToolCall(id=payload.tool_use_id, name=payload.name, input=payload.input)


def test_unknown_events_and_misplaced_matchers_fail_when_registered() -> None:
    with pytest.raises(ValueError, match=r"unknown hook event 'PreToolUsee'.*PreToolUse"):
        cu.hook("PreToolUsee")(lambda e: None)
    with pytest.raises(ValueError, match="a Stop hook takes no matcher"):
        cu.hook("Stop", matcher="Bash")(lambda e: None)
    with pytest.raises(ValueError, match="invalid permission rule"):
        cu.hook("PreToolUse", matcher="Bash(")(lambda e: None)
    with pytest.raises(ValueError, match="timeout must be > 0"):
        cu.hook("Stop", timeout=0)(lambda e: None)
    with pytest.raises(TypeError, match=r"decorated with @hook"):
        HookSet([lambda e: None])  # type: ignore[list-item]


def test_a_hook_stays_callable() -> None:
    @cu.hook("PreToolUse", matcher=["Bash(git:*)", "Read"])
    def check(event: cu.PreToolUseInput) -> cu.HookResult | None:
        return cu.Deny("x") if "push" in event.input["command"] else None

    assert check(pre("git push")) == cu.Deny("x")
    assert check.applies(call_of(pre("git status")))
    assert not check.applies(call_of(pre("ls")))
    assert "PreToolUse" in repr(check)


@pytest.mark.anyio
async def test_hooks_run_in_order_chaining_rewrites_until_a_deny() -> None:
    order: list[str] = []

    @cu.hook("PreToolUse")
    def first(event: cu.PreToolUseInput) -> cu.HookResult:
        order.append(f"first:{event.input['command']}")
        return cu.Allow(updated_input={"command": "ls -a"})

    @cu.hook("PreToolUse")
    async def second(event: cu.PreToolUseInput) -> cu.HookResult:
        order.append(f"second:{event.input['command']}")
        return cu.Deny("no")

    @cu.hook("PreToolUse")
    def third(event: cu.PreToolUseInput) -> None:
        order.append("third")

    tally = HookTally()
    payload = pre("ls")
    ran = await HookSet([first, second, third]).run(payload, tally, call=call_of(payload))
    assert order == ["first:ls", "second:ls -a"]
    assert [r.outcome for r in ran] == ["allow", "deny"]
    assert tally.denied == "no"
    assert tally.updated_input == {"command": "ls -a"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("returned", "what"),
    [(cu.Ask(), "returned Ask()"), ("yes", "returned 'yes'"), (True, "returned True")],
)
async def test_a_hook_returning_something_else_is_a_failed_hook(returned: Any, what: str) -> None:
    @cu.hook("PreToolUse")
    def odd(event: cu.PreToolUseInput) -> Any:
        return returned

    tally = HookTally()
    [ran] = await HookSet([odd]).run(pre("ls"), tally)
    assert ran.outcome == "error"
    assert what in (ran.message or "")
    assert tally.denied == ran.message


@pytest.mark.anyio
async def test_a_failed_stop_or_post_hook_refuses_nothing() -> None:
    @cu.hook("Stop")
    def broken(event: cu.StopInput) -> None:
        raise KeyError("gone")

    tally = HookTally()
    [ran] = await HookSet([broken]).run(cu.StopInput(event="Stop"), tally)
    assert ran.outcome == "error"
    assert "raised KeyError" in (ran.message or "")
    assert tally.denied is None
    assert tally.continue_reason is None


@pytest.mark.anyio
async def test_a_hook_is_cancelled_with_its_caller() -> None:
    started = anyio.Event()

    @cu.hook("Stop", timeout=60)
    async def waits(event: cu.StopInput) -> None:
        started.set()
        await anyio.sleep(60)

    async with anyio.create_task_group() as tg:
        tg.start_soon(HookSet([waits]).run, cu.StopInput(event="Stop"), HookTally())
        await started.wait()
        tg.cancel_scope.cancel()  # never turned into a "failed hook" by the timeout handling


def test_cli_hook_inputs_are_typed_and_names_normalized() -> None:
    raw = {
        "hook_event_name": "PreToolUse",
        "session_id": "s1",
        "tool_name": "mcp__claude_unified__add",
        "tool_input": {"a": 1},
        "tool_use_id": "toolu_1",
        "effort": {"level": "medium"},
    }
    got = cli_hook_input(raw, normalize_tool_name)
    assert got == cu.PreToolUseInput(
        event="PreToolUse", session_id="s1", raw=raw, tool_use_id="toolu_1", name="add",
        input={"a": 1},
    )  # fmt: skip
    stop = cli_hook_input({"hook_event_name": "Stop", "stop_hook_active": True}, str)
    assert isinstance(stop, cu.StopInput)
    assert stop.stop_hook_active
    odd = cli_hook_input({"hook_event_name": "PreToolUse", "tool_input": "not an object"}, str)
    assert type(odd) is cu.HookInput
    assert odd.event == "PreToolUse"


def test_the_cli_wire_format() -> None:
    regs = [
        HookRegistration("PreToolUse", None, 600.0, "hook_0"),
        HookRegistration("PreCompact", "manual", 65.0, "hook_1"),
    ]
    assert initialize_hooks(regs) == {
        "PreToolUse": [{"matcher": None, "hookCallbackIds": ["hook_0"], "timeout": 600.0}],
        "PreCompact": [{"matcher": "manual", "hookCallbackIds": ["hook_1"], "timeout": 65.0}],
    }
    assert initialize_hooks([]) is None
    assert hook_output(HookAnswer(event="Stop")) == {}
    assert hook_output(HookAnswer(event="Stop", block=True, reason="go on")) == {
        "decision": "block",
        "reason": "go on",
    }
    assert hook_output(
        HookAnswer(event="PreToolUse", permission="allow", updated_input={"command": "ls"})
    ) == {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "allow",
            "updatedInput": {"command": "ls"},
        }
    }
    assert hook_output(
        HookAnswer(event="PostToolUse", additional_context="c", system_message="m")
    ) == {
        "systemMessage": "m",
        "hookSpecificOutput": {"hookEventName": "PostToolUse", "additionalContext": "c"},
    }


def test_permission_requests_answer_ask_user_question() -> None:
    questions = [{"question": "Which colour?", "options": [{"label": "red"}, {"label": "blue"}]}]
    request = cu.PermissionRequest("r", "t", "AskUserQuestion", {"questions": questions})
    assert request.questions == questions
    assert request.answer_questions({"Which colour?": "blue"}) == cu.Allow(
        updated_input={"questions": questions, "answers": {"Which colour?": "blue"}}
    )
    with pytest.raises(ValueError, match="no such question"):
        request.answer_questions({"Which size?": "L"})
    other = cu.PermissionRequest("r", "t", "Bash", {"command": "ls"})
    assert other.questions == []
    with pytest.raises(ValueError, match="for AskUserQuestion, not Bash"):
        other.answer_questions({})
