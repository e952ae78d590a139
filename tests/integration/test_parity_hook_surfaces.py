"""Hooks on the stateless and batch surfaces (``ChatClient``, ``query``, ``run_batch``), the
same functions and the same outcomes on both transports. Harness: ``test_parity``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

import claude_unified as cu
from claude_unified.batch._cli_pool import CliPool
from claude_unified.batch._types import ItemSetup
from claude_unified.testing import FakeAnthropicServer, tool_call
from claude_unified.testing.pytest_plugin import CliTestEnv

from .test_parity import (
    LEAD,
    TURN_TIMEOUT_S,
    Side,
    denied,
    end,
    result,
    seen,
    side,
    step,
    text,
    use,
)
from .test_parity import pytestmark as parity_marks

__all__ = ["side"]  # the fixture, imported for pytest


def parity(test: Any) -> Any:
    """On both transports and both event loops (the marks of ``test_parity``)."""
    for mark in reversed(parity_marks):
        test = mark(test)
    return test


REMOVE, FINE = "Please remove everything.", "Please say hi."


def bash(command: str) -> dict[str, Any]:
    return {"command": command, "description": "run it"}


def blocking(message: str) -> cu.Hook:
    @cu.hook("PreToolUse", matcher="Bash")
    def no_rm(event: cu.PreToolUseInput) -> cu.HookResult | None:
        if "rm " in event.input.get("command", ""):
            return cu.Deny(message)
        return None

    return no_rm


def ran(event: str, outcome: str, message: str | None = None) -> tuple[Any, ...]:
    return ("HookRan", event, outcome, message)


def script_bash(side: Side, prompt: str, command: str) -> None:
    side.server.on(prompt, tool_call("Bash", bash(command), text=LEAD), times=1)


def own_tools(side: Side) -> list[cu.Tool]:
    """Bash for the API path; the CLI has its own."""
    return cu.builtin_tools(root=side.cwd) if side.transport == "api" else []


def blocked_steps(message: str) -> list[tuple[Any, ...]]:
    return [
        text(LEAD),
        use("Bash", bash("rm keep.txt")),
        ran("PreToolUse", "deny", message),
        denied("Bash", message, by="hook"),
        result("Bash", message, is_error=True),
        text(seen(message, is_error=True)),
        end(),
    ]


def steps(events: list[cu.Event]) -> list[tuple[Any, ...]]:
    ignored = (cu.TextDelta, cu.ToolInputDelta, cu.Unknown, cu.SessionStarted, cu.ApiRetry)
    return [step(e) for e in events if not isinstance(e, ignored)]


@parity
async def test_chat_client_hooks_block_bash_and_a_call_s_own_hooks_replace_them(
    side: Side,
) -> None:
    (side.cwd / "keep.txt").write_text("keep")
    tools, policy = own_tools(side), cu.allow_list(["Bash"])
    script_bash(side, REMOVE, "rm keep.txt")
    script_bash(side, FINE, "rm keep.txt")
    with anyio.fail_after(TURN_TIMEOUT_S * 2):
        async with cu.ChatClient(side.config(), hooks=[blocking("client hook")]) as chat:
            by_client = await chat.collect(REMOVE, tools=tools, policy=policy)
            by_call = await chat.collect(
                FINE, tools=tools, policy=policy, hooks=[blocking("call hook")]
            )
    assert steps(by_client) == blocked_steps("client hook")
    assert steps(by_call) == blocked_steps("call hook")  # the client's hook did not run
    assert (side.cwd / "keep.txt").exists()


@parity
async def test_query_runs_a_user_prompt_submit_hook(side: Side) -> None:
    prompts: list[str] = []

    @cu.hook("UserPromptSubmit")
    def context(event: cu.UserPromptSubmitInput) -> cu.HookResult:
        prompts.append(event.prompt)
        return cu.HookOutput(additional_context="the user is in a hurry")

    with anyio.fail_after(TURN_TIMEOUT_S):
        answer = await cu.query("hello there", config=side.config(), hooks=[context])
    assert answer == "ECHO: hello there"
    assert prompts == ["hello there"]
    sent = [r for r in side.server.requests if "hello there" in str(r.json)]
    assert sent and "the user is in a hurry" in str(sent[-1].json)


@parity
async def test_run_batch_hooks_judge_every_item(side: Side) -> None:
    (side.cwd / "keep.txt").write_text("keep")
    script_bash(side, REMOVE, "rm keep.txt")
    script_bash(side, FINE, "echo hi")
    seen_by_hook: list[str] = []

    @cu.hook("PreToolUse", matcher="Bash")
    def no_rm(event: cu.PreToolUseInput) -> cu.HookResult | None:
        seen_by_hook.append(event.input["command"])
        return cu.Deny("no rm") if "rm " in event.input["command"] else None

    with anyio.fail_after(TURN_TIMEOUT_S * 2):
        results = await cu.run_batch(
            [cu.BatchItem(id="remove", prompt=REMOVE), cu.BatchItem(id="fine", prompt=FINE)],
            side.config(),
            concurrency=1,
            tools=own_tools(side),
            policy=cu.allow_list(["Bash"]),
            hooks=[no_rm],
        )
    output = side.pick(api="hi\n\n[exit code 0]", cli="hi")
    assert [(r.id, r.is_error, r.text) for r in results] == [
        ("remove", False, seen("no rm", is_error=True)),
        ("fine", False, seen(output)),
    ]
    assert sorted(seen_by_hook) == ["echo hi", "rm keep.txt"]
    assert (side.cwd / "keep.txt").exists()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_a_cli_only_hook_event_on_the_api_fails_before_any_request(
    fake_anthropic_server: FakeAnthropicServer,
) -> None:
    @cu.hook("PreCompact")
    def compacting(event: Any) -> None:
        return None

    config = cu.Config(backend="api", api_key="sk-ant-test", base_url=fake_anthropic_server.url)
    with pytest.raises(cu.ConfigError, match="PreCompact") as by_client:
        async with cu.ChatClient(config, hooks=[compacting]) as chat:
            await chat.chat("hi")
    with pytest.raises(cu.ConfigError, match="PreCompact"):
        await cu.query("hi", config=config, hooks=[compacting])
    with pytest.raises(cu.ConfigError, match="PreCompact") as by_batch:
        await cu.run_batch(["hi"], config, hooks=[compacting])
    assert by_client.value.field == by_batch.value.field == "hooks"
    assert fake_anthropic_server.requests == []


@pytest.mark.cli
@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_every_pooled_cli_process_registers_the_hooks(claude_cli_env: CliTestEnv) -> None:
    """``max_uses=1``: each item gets a new process, and each must call the hook back."""
    server: FakeAnthropicServer = claude_cli_env.server
    prompts = [f"Please remove everything, round {n}." for n in range(3)]
    for prompt in prompts:
        server.on(prompt, tool_call("Bash", bash("rm keep.txt"), text=LEAD), times=1)
    keep = Path(claude_cli_env.cwd) / "keep.txt"
    keep.write_text("keep")
    texts: list[str] = []
    setup = ItemSetup(policy=cu.allow_list(["Bash"]), hooks=[blocking("no rm")])
    with anyio.fail_after(TURN_TIMEOUT_S * 3):
        async with CliPool(claude_cli_env.config(), 1, setup, max_uses=1) as pool:
            for n, prompt in enumerate(prompts):
                await pool.turn(
                    cu.BatchItem(id=str(n), prompt=prompt),
                    lambda e: texts.append(e.text) if isinstance(e, cu.Result) else None,
                )
            started = pool.processes_started
    assert texts == [seen("no rm", is_error=True)] * 3
    assert started == 3
    assert keep.exists()


def test_the_sync_forms_take_hooks(fake_anthropic_server: FakeAnthropicServer) -> None:
    prompts: list[str] = []

    @cu.hook("UserPromptSubmit")
    def note(event: cu.UserPromptSubmitInput) -> None:
        prompts.append(event.prompt)

    config = cu.Config(backend="api", api_key="sk-ant-test", base_url=fake_anthropic_server.url)
    with cu.SyncChatClient(config, hooks=[note]) as chat:
        assert chat.chat("one").text == "ECHO: one"
        assert chat.chat("two", hooks=[]).text == "ECHO: two"  # a call's own: none
    assert cu.query_sync("three", config=config, hooks=[note]) == "ECHO: three"
    results = cu.run_batch_sync(["four"], config, hooks=[note])
    assert [r.text for r in results] == ["ECHO: four"]
    assert prompts == ["one", "three", "four"]
