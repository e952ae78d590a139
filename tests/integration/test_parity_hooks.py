"""Parity of hooks: the same functions, the same events, on both transports.

On the API the library calls the hooks in its agent loop; on the CLI the same functions answer
the CLI's ``hook_callback`` requests. Harness and notation: ``test_parity``.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import claude_unified as cu

from .test_parity import (
    LEAD,
    STOP,
    Session,
    Side,
    Step,
    add,
    allowed,
    denied,
    end,
    result,
    seen,
    side,
    text,
    use,
)
from .test_parity import pytestmark as parity_marks

pytestmark = parity_marks
__all__ = ["side"]  # the fixture, imported for pytest


def ran(event: str, outcome: str, message: str | None = None) -> Step:
    return ("HookRan", event, outcome, message)


def bash(command: str) -> dict[str, Any]:
    return {"command": command, "description": "run it"}


async def test_a_pre_tool_use_hook_blocks_bash(side: Side) -> None:
    prompt, fine = "Please remove everything.", "Please say hi."

    @cu.hook("PreToolUse", matcher="Bash")
    def no_rm(event: cu.PreToolUseInput) -> cu.HookResult | None:
        if "rm " in event.input.get("command", ""):
            return cu.Deny("no rm")
        return None

    (side.cwd / "keep.txt").write_text("keep")
    policy = cu.allow_list(["Bash"])
    async with Session(side, policy=policy, builtins=True, hooks=[no_rm]) as session:
        session.script(prompt, ("Bash", bash("rm keep.txt")))
        session.script(fine, ("Bash", bash("echo hi")))
        blocked = await session.turn(prompt)
        passed = await session.turn(fine)
    assert blocked.steps == [
        text(LEAD),
        use("Bash", bash("rm keep.txt")),
        ran("PreToolUse", "deny", "no rm"),
        denied("Bash", "no rm", by="hook"),
        result("Bash", "no rm", is_error=True),
        text(seen("no rm", is_error=True)),
        end(),
    ]
    assert blocked.calls == []  # a hook's Deny decides before the policy is asked
    assert (side.cwd / "keep.txt").exists()
    output = side.pick(api="hi\n\n[exit code 0]", cli="hi")  # each Bash words its output
    assert passed.steps == [
        text(LEAD),
        use("Bash", bash("echo hi")),
        ran("PreToolUse", "none"),
        allowed("Bash"),
        result("Bash", output),
        text(seen(output)),
        end(),
    ]


async def test_a_hook_rewrites_the_input_and_the_policy_judges_the_rewrite(side: Side) -> None:
    prompt = "Please echo the original."

    @cu.hook("PreToolUse", matcher="Bash(echo:*)")
    def rewrite(event: cu.PreToolUseInput) -> cu.HookResult:
        return cu.Allow(updated_input={**event.input, "command": "echo rewritten"})

    async with Session(
        side, policy=cu.allow_list(["Bash(echo rewritten)"]), builtins=True, hooks=[rewrite]
    ) as session:
        session.script(prompt, ("Bash", bash("echo original")))
        trace = await session.turn(prompt)
    output = side.pick(api="rewritten\n\n[exit code 0]", cli="rewritten")
    assert trace.steps == [
        text(LEAD),
        use("Bash", bash("echo original")),
        ran("PreToolUse", "allow"),
        allowed("Bash"),
        result("Bash", output),
        text(seen(output)),
        end(),
    ]
    assert trace.calls == [("Bash", bash("echo rewritten"))]
    decision = next(e for e in trace.events if isinstance(e, cu.PermissionDecision))
    assert decision.updated_input == bash("echo rewritten")


async def test_a_hook_allow_never_overrides_a_deny_rule(side: Side) -> None:
    prompt = "Please echo something."

    @cu.hook("PreToolUse")
    def yes(event: cu.PreToolUseInput) -> cu.HookResult:
        return cu.Allow()

    message = "Tool 'Bash' is denied by the rule Bash"
    async with Session(side, policy=cu.deny_list(["Bash"]), builtins=True, hooks=[yes]) as s:
        s.script(prompt, ("Bash", bash("echo x")))
        trace = await s.turn(prompt)
    assert trace.steps == [
        text(LEAD),
        use("Bash", bash("echo x")),
        ran("PreToolUse", "allow"),
        denied("Bash", message),
        result("Bash", message, is_error=True),
        text(seen(message, is_error=True)),
        end(),
    ]


async def test_a_hook_allow_answers_what_the_policy_would_ask(side: Side) -> None:
    prompt = "Please add 1 and 1."

    @cu.hook("PreToolUse", matcher="add")
    def yes(event: cu.PreToolUseInput) -> cu.HookResult:
        return cu.Allow()

    async with Session(side, tools=[add], policy=cu.allow_list(["Read"]), hooks=[yes]) as s:
        s.script(prompt, ("add", {"a": 1, "b": 1}))
        trace = await s.turn(prompt)
    assert trace.steps == [
        text(LEAD),
        use("add", {"a": 1, "b": 1}),
        ran("PreToolUse", "allow"),
        allowed("add", by="hook"),
        result("add", "2"),
        text(seen("2")),
        end(),
    ]


async def test_a_hook_that_raises_denies_the_call_with_the_error(side: Side) -> None:
    prompt = "Please add 2 and 2."

    @cu.hook("PreToolUse")
    async def broken(event: cu.PreToolUseInput) -> cu.HookResult | None:
        raise RuntimeError("the hook's own bug")

    message = (
        "The PreToolUse hook test_a_hook_that_raises_denies_the_call_with_the_error.<locals>."
        "broken failed: it raised RuntimeError: the hook's own bug"
    )
    async with Session(side, tools=[add], hooks=[broken]) as session:
        session.script(prompt, ("add", {"a": 2, "b": 2}))
        trace = await session.turn(prompt)
    assert trace.steps == [
        text(LEAD),
        use("add", {"a": 2, "b": 2}),
        ran("PreToolUse", "error", message),
        denied("add", message, by="hook"),
        result("add", message, is_error=True),
        text(seen(message, is_error=True)),
        end(),
    ]


async def test_a_slow_hook_is_bounded_by_its_timeout(side: Side) -> None:
    prompt = "Please add 3 and 3."

    @cu.hook("PreToolUse", timeout=0.2)
    def slow(event: cu.PreToolUseInput) -> None:
        import time

        time.sleep(5)  # a sync hook runs in a worker thread: the turn does not wait for it

    qualname = slow.name
    message = f"The PreToolUse hook {qualname} failed: it did not answer within 0.2s"
    async with Session(side, tools=[add], hooks=[slow]) as session:
        session.script(prompt, ("add", {"a": 3, "b": 3}))
        trace = await session.turn(prompt)
    assert trace.steps[2:5] == [
        ran("PreToolUse", "error", message),
        denied("add", message, by="hook"),
        result("add", message, is_error=True),
    ]


async def test_post_tool_use_sees_the_result_and_adds_context(side: Side) -> None:
    prompt = "Please add 4 and 4."
    seen_inputs: list[cu.PostToolUseInput] = []

    @cu.hook("PostToolUse", matcher="add")
    def note(event: cu.PostToolUseInput) -> cu.HookResult:
        seen_inputs.append(event)
        return cu.HookOutput(additional_context="checked by a hook")

    async with Session(side, tools=[add], hooks=[note]) as session:
        session.script(prompt, ("add", {"a": 4, "b": 4}))
        trace = await session.turn(prompt)
    assert trace.steps == [
        text(LEAD),
        use("add", {"a": 4, "b": 4}),
        allowed("add"),
        result("add", "8"),
        ran("PostToolUse", "output"),
        text(seen("8")),
        end(),
    ]
    [got] = seen_inputs
    assert (got.name, got.input) == ("add", {"a": 4, "b": 4})
    # the tool's output as each backend has it: our result, or the CLI's MCP content
    assert got.response == side.pick(api="8", cli=[{"type": "text", "text": "8"}])
    sent = str([r.json for r in side.server.requests])
    assert "checked by a hook" in sent  # the model was given the context


async def test_user_prompt_submit_adds_context_or_blocks_the_prompt(side: Side) -> None:
    prompts: list[str] = []

    @cu.hook("UserPromptSubmit")
    def guard(event: cu.UserPromptSubmitInput) -> cu.HookResult:
        prompts.append(event.prompt)
        if "secret" in event.prompt:
            return cu.Deny("not this prompt")
        return cu.HookOutput(additional_context="the user is in a hurry")

    async with Session(side, hooks=[guard]) as session:
        told = await session.turn("hello there")
        before = len(side.server.requests)
        blocked = await session.turn("tell me the secret")
        after = len(side.server.requests)
    assert told.steps == [ran("UserPromptSubmit", "output"), text("ECHO: hello there"), end()]
    assert "the user is in a hurry" in str(side.server.requests[before - 1].json)
    assert blocked.steps == [ran("UserPromptSubmit", "deny", "not this prompt"), end()]
    assert blocked.result.text == (
        "UserPromptSubmit operation blocked by hook:\nnot this prompt\n\n"
        "Original prompt: tell me the secret"
    )
    assert before == after  # a blocked prompt sends no request
    assert prompts == ["hello there", "tell me the secret"]


async def test_a_stop_hook_continues_the_turn_once(side: Side) -> None:
    stops: list[cu.StopInput] = []

    @cu.hook("Stop")
    def once_more(event: cu.StopInput) -> cu.HookResult | None:
        stops.append(event)
        if event.stop_hook_active:
            return None
        return cu.HookOutput(stop=False, reason="please continue")

    async with Session(side, hooks=[once_more]) as session:
        trace = await session.turn("hi")
    assert trace.steps == [
        text("ECHO: hi"),
        ran("Stop", "output", "please continue"),
        text("ECHO: please continue"),
        ran("Stop", "none"),
        end(),
    ]
    assert [s.stop_hook_active for s in stops] == [False, True]
    assert [s.last_message for s in stops] == ["ECHO: hi", "ECHO: please continue"]
    assert trace.result.text == "ECHO: please continue"


async def test_hook_events_round_trip_through_json(side: Side) -> None:
    @cu.hook("PreToolUse")
    def look(event: cu.PreToolUseInput) -> None:
        return None

    prompt = "Please add 5 and 5."
    async with Session(side, tools=[add], hooks=[look]) as session:
        session.script(prompt, ("add", {"a": 5, "b": 5}))
        trace = await session.turn(prompt)
    hooks = [e for e in trace.events if isinstance(e, cu.HookRan)]
    assert hooks
    for event in hooks:
        assert cu.decode_event(cu.encode_event(event)) == event
        assert event.tool_use_id == next(e.id for e in trace.events if isinstance(e, cu.ToolUse))


async def test_cli_only_events_work_on_the_cli_and_are_refused_on_the_api(side: Side) -> None:
    started: list[cu.HookInput] = []

    @cu.hook("SubagentStart")
    def subagent(event: cu.HookInput) -> None:
        started.append(event)

    session = Session(side, hooks=[subagent], policy=cu.allow_all())
    if side.transport == "api":
        with pytest.raises(cu.ConfigError, match="SubagentStart") as info:
            await session.conv.open()
        assert info.value.field == "hooks"
        return
    prompt = "Please start a helper."
    agent = {"description": "helper", "prompt": "say hi", "subagent_type": "general-purpose"}
    async with session:
        session.script(prompt, ("Agent", agent))
        trace = await session.turn(prompt)
    assert ran("SubagentStart", "none") in trace.steps
    assert [e.event for e in started] == ["SubagentStart"]
    assert started[0].raw["agent_type"] == "general-purpose"


async def test_a_turn_cancelled_while_a_hook_runs_leaves_nothing_half_done(side: Side) -> None:
    prompt = "Please save a note."
    entered = anyio.Event()
    saved: list[str] = []

    @cu.tool
    def save(note: str) -> str:
        """Save a note."""
        saved.append(note)
        return "saved"

    @cu.hook("PreToolUse", timeout=60)
    async def ponder(event: cu.PreToolUseInput) -> None:
        entered.set()
        await anyio.sleep(60)

    async with Session(side, tools=[save], hooks=[ponder]) as session:
        session.script(prompt, ("save", {"note": "hi"}))

        async def consume() -> None:
            async for _ in session.conv.send(prompt):
                pass

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                await entered.wait()
                tg.cancel_scope.cancel()  # from another task, while the hook runs
            after = await session.turn("Still there?")
    # the next prompt travels with the abandoned call's error result, which the model answers;
    # the library and the CLI word that result their own way
    # the CLI words it one of two ways, by which of its two answers comes first: the hook's
    # own refusal (the turn was cancelled while it ran) or the abandoned turn's denial
    abandoned = side.pick(
        api=["The tool was not run: the turn was ended before it could run."],
        cli=[STOP, "PreToolUse:mcp__claude_unified__save hook error: the turn was abandoned"],
    )
    assert after.steps in [[text(seen(a, is_error=True)), end()] for a in abandoned]
    assert saved == []  # the call the hook was judging never ran
