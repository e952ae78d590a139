"""Request settings, structured output, budgets and agent options on the real pinned CLI,
against FakeAnthropicServer: what the CLI sent, and what came back."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

import claude_unified as cu
from claude_unified.testing import message
from claude_unified.testing.pytest_plugin import CliTestEnv

pytestmark = [pytest.mark.anyio, pytest.mark.cli]


class Person(msgspec.Struct):
    name: str
    age: int


def api_bodies(env: CliTestEnv) -> list[dict[str, Any]]:
    return [r.json for r in env.server.requests if r.path == "/v1/messages" and r.json]


async def test_thinking_and_effort_reach_the_wire(claude_cli_env: CliTestEnv) -> None:
    # claude-sonnet-4-5 takes a thinking budget (newer models only think adaptively)
    cfg = claude_cli_env.config(
        model="claude-sonnet-4-5", thinking=cu.ThinkingConfig(budget_tokens=5000)
    )
    async with cu.ChatClient(cfg) as chat:
        answer = await chat.chat("hello")
        await chat.chat("again", thinking="disabled")
    assert answer.text == "ECHO: hello"
    first, second = api_bodies(claude_cli_env)
    assert first["thinking"]["type"] == "enabled"
    assert first["thinking"]["budget_tokens"] == 5000
    assert second["thinking"] == {"type": "disabled"}
    async with cu.ChatClient(claude_cli_env.config(effort="high")) as chat:
        await chat.chat("hi")
    assert api_bodies(claude_cli_env)[-1]["output_config"]["effort"] == "high"


async def test_unsupported_setting_fails_before_anything_starts(
    claude_cli_env: CliTestEnv,
) -> None:
    with pytest.raises(cu.ConfigError, match="temperature cannot be honoured") as info:
        async with cu.Conversation(claude_cli_env.config(temperature=0.3)):
            pass
    assert info.value.field == "temperature"
    async with cu.ChatClient(claude_cli_env.config()) as chat:
        with pytest.raises(cu.ConfigError, match="stop_sequences"):
            await chat.chat("hi", stop_sequences=["END"])
    assert claude_cli_env.server.requests == []


async def test_a_turn_cannot_change_process_settings(claude_cli_env: CliTestEnv) -> None:
    async with cu.Conversation(claude_cli_env.config(effort="low")) as conv:
        assert (await conv.ask("one")).text == "ECHO: one"
        with pytest.raises(cu.ConfigError, match="effort cannot change") as info:
            await conv.ask("two", effort="max")
        assert info.value.field == "effort"
        with pytest.raises(cu.ConfigError, match="output cannot change"):
            await conv.ask("four", output=Person)
        assert (await conv.ask("three")).text == "ECHO: three"  # still usable


async def test_structured_output_via_json_schema(claude_cli_env: CliTestEnv) -> None:
    async with cu.ChatClient(claude_cli_env.config()) as chat:
        answer = await chat.chat('TOOL: StructuredOutput {"name": "Ada", "age": 36}', output=Person)
    assert answer.output == Person("Ada", 36)
    (structured,) = [
        e for e in answer.events if isinstance(e, cu.ToolUse) and e.name == "StructuredOutput"
    ]
    assert structured.input == {"name": "Ada", "age": 36}
    tools = [t["name"] for t in api_bodies(claude_cli_env)[0]["tools"]]
    assert "StructuredOutput" in tools


async def test_structured_output_query(claude_cli_env: CliTestEnv) -> None:
    cfg = claude_cli_env.config()
    person = await cu.query(
        'TOOL: StructuredOutput {"name": "Bo", "age": 3}', config=cfg, output=Person
    )
    assert person == Person("Bo", 3)


async def test_budget_exhausted_on_the_cli(claude_cli_env: CliTestEnv) -> None:
    costly = message(
        [cu.TextBlock("expensive")],
        stop_reason="end_turn",
        usage=cu.Usage(input_tokens=100_000, output_tokens=10_000),
    )
    claude_cli_env.server.on("spend", costly)
    async with cu.Conversation(claude_cli_env.config(max_budget_usd=0.01)) as conv:
        events = [e async for e in conv.send("spend")]
        result = events[-1]
        assert isinstance(result, cu.Result)
        assert (result.is_error, result.kind) == (True, "budget_exhausted")
        assert result.error is not None and "budget" in result.error.message
        with pytest.raises(cu.BudgetExceededError):
            await conv.ask("spend")


async def test_count_tokens_is_refused_on_the_cli(claude_cli_env: CliTestEnv) -> None:
    async with cu.Conversation(claude_cli_env.config()) as conv:
        with pytest.raises(cu.ClaudeError, match="count_tokens needs the API backend"):
            await conv.count_tokens("hello")
    async with cu.ChatClient(claude_cli_env.config()) as chat:
        with pytest.raises(cu.ClaudeError, match="count_tokens needs the API backend"):
            await chat.count_tokens("hello")


async def test_agent_options_reach_the_cli(claude_cli_env: CliTestEnv) -> None:
    cfg = claude_cli_env.config(
        tools=["Bash", "Read"],
        disallowed_tools=["Read"],
        setting_sources=["project"],
        settings={"cleanupPeriodDays": 3},
        agents={"reviewer": {"description": "Reviews code", "prompt": "Review it."}},
    )
    async with cu.Conversation(cfg) as conv:
        events = [e async for e in conv.send("hello")]
    (started,) = [e for e in events if isinstance(e, cu.SessionStarted)]
    assert "Bash" in started.tools
    assert "Read" not in started.tools  # disallowed
    assert "Write" not in started.tools  # not among --tools
    body = api_bodies(claude_cli_env)[0]
    assert "reviewer" in msgspec.json.encode(body).decode()  # the sub-agent is offered
