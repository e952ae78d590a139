"""Request settings, structured output, budgets and agent options on the real pinned CLI,
against FakeAnthropicServer: what the CLI sent, and what came back."""

from __future__ import annotations

import os
from typing import Any

import anyio
import msgspec
import pytest

import claude_unified as cu
from claude_unified._settings import ThinkingSetting
from claude_unified.backends._process import ManagedProcess
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


def first_body(env: CliTestEnv, prompt: str) -> dict[str, Any]:
    """The first request a turn sent: the one whose last user text ends with its prompt (the
    CLI may put system reminders ahead of it)."""
    for r in env.server.requests:
        if r.path == "/v1/messages" and r.json and r.last_user_text.split("\n")[-1] == prompt:
            return r.json
    raise AssertionError(f"no request ends with {prompt!r}")


def tool_names(body: dict[str, Any]) -> list[str]:
    return [t["name"] for t in body.get("tools", [])]


def backend_of(conv: cu.Conversation) -> Any:
    assert conv.backend is not None
    return conv.backend


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_per_turn_output_restarts_the_process_and_resumes_the_session(
    claude_cli_env: CliTestEnv,
) -> None:
    prompt_2 = 'TOOL: StructuredOutput {"name": "Ada", "age": 36}'
    async with cu.Conversation(claude_cli_env.config()) as conv:
        one = await conv.ask("one")
        first_pid = backend_of(conv).pid
        two = await conv.ask(prompt_2, output=Person)
        second_pid = backend_of(conv).pid
        three = await conv.ask("three")
        assert backend_of(conv).restarts == 2  # into the schema, and back out of it
        assert backend_of(conv).restart_ms > 0
    assert two.output == Person("Ada", 36)  # validated on turn 2 only
    assert (one.output, three.output) == (None, None)
    # (turn 2 ended on the StructuredOutput result, so turn 3's prompt shares its message)
    assert not three.result.is_error
    assert len({first_pid, second_pid}) == 2
    assert pid_gone(first_pid) and pid_gone(second_pid)
    # one session throughout: --resume keeps its id
    session_ids = {r.result.session_id for r in (one, two, three)}
    assert len(session_ids) == 1 and None not in session_ids
    assert conv.session_id in session_ids
    assert "StructuredOutput" not in tool_names(first_body(claude_cli_env, "one"))
    assert "StructuredOutput" in tool_names(first_body(claude_cli_env, prompt_2))
    third = first_body(claude_cli_env, "three")
    assert "StructuredOutput" not in tool_names(third)
    sent = msgspec.json.encode(third["messages"]).decode()  # turns 1 and 2, resent
    for said in ("one", "ECHO: one", "StructuredOutput", "three"):
        assert said in sent
    history = msgspec.json.encode(conv.history).decode()  # the CLI's messages of all turns
    for said in ("ECHO: one", "StructuredOutput", "Ada"):
        assert said in history
    assert conv.history[-1].role == "assistant"


def thinking_of(body: dict[str, Any], *, display: bool) -> Any:
    thinking = dict(body["thinking"])
    if not display:
        thinking.pop("display", None)  # the CLI's own choice
    return thinking


@pytest.mark.parametrize(
    ("own", "override", "on_turn_2", "on_turn_3", "restarts"),
    [
        (  # a budget by set_max_thinking_tokens, and off again the same way
            "disabled",
            cu.ThinkingConfig(budget_tokens=5000),
            {"type": "enabled", "budget_tokens": 5000},
            {"type": "disabled"},
            0,
        ),
        (  # another display needs the flag: a restart there and one back
            cu.ThinkingConfig(budget_tokens=2000),
            cu.ThinkingConfig(budget_tokens=3000, display="omitted"),
            {"type": "enabled", "budget_tokens": 3000},  # (2.1.330 sends its own display)
            {"type": "enabled", "budget_tokens": 2000},
            2,
        ),
    ],
    ids=["budget-by-control-request", "display-by-restart"],
)
async def test_per_turn_thinking_reaches_turn_2_only(
    claude_cli_env: CliTestEnv,
    own: ThinkingSetting,
    override: ThinkingSetting,
    on_turn_2: dict[str, Any],
    on_turn_3: dict[str, Any],
    restarts: int,
) -> None:
    # claude-sonnet-4-5 takes a thinking budget (newer models only think adaptively)
    cfg = claude_cli_env.config(model="claude-sonnet-4-5", thinking=own)
    async with cu.Conversation(cfg) as conv:
        await conv.ask("one")
        await conv.ask("two", thinking=override)
        await conv.ask("three")
        assert backend_of(conv).restarts == restarts
    one, two, three = (first_body(claude_cli_env, p) for p in ("one", "two", "three"))
    assert thinking_of(one, display=False) == on_turn_3  # the conversation's own
    assert thinking_of(two, display=False) == on_turn_2
    assert thinking_of(three, display=False) == on_turn_3
    assert "ECHO: two" in msgspec.json.encode(three["messages"]).decode()


async def test_per_turn_effort_keeps_tools_hooks_and_policy_on_the_new_process(
    claude_cli_env: CliTestEnv,
) -> None:
    noted: list[str] = []

    @cu.tool
    def add(a: int, b: int) -> str:
        """Add two numbers."""
        return str(a + b)

    @cu.hook("PostToolUse")
    def note(event: cu.PostToolUseInput) -> None:
        noted.append(event.name)

    prompt = 'TOOL: mcp__claude_unified__add {"a": 2, "b": 3}'
    cfg = claude_cli_env.config(effort="low")
    async with cu.Conversation(
        cfg,
        tools=[add],
        hooks=[note],
        policy=cu.first_match(cu.deny_list(["Bash"]), cu.allow_all()),
    ) as conv:
        await conv.ask("one")
        reply = await conv.ask(prompt, effort="max")
        denied = await conv.ask('TOOL: Bash {"command": "echo hi"}', effort="max")
        assert backend_of(conv).restarts == 1  # the third turn has turn 2's settings
        await conv.ask("four")
        assert backend_of(conv).restarts == 2
    results = [e for e in reply.events if isinstance(e, cu.ToolResult)]
    assert [(r.name, r.content, r.is_error) for r in results] == [("add", "5", False)]
    assert noted == ["add"]  # the hook was registered again
    decisions = [e for e in denied.events if isinstance(e, cu.PermissionDecision)]
    assert [d.behavior for d in decisions] == ["deny"]  # the policy still judges
    assert first_body(claude_cli_env, "one")["output_config"]["effort"] == "low"
    assert first_body(claude_cli_env, prompt)["output_config"]["effort"] == "max"
    assert first_body(claude_cli_env, "four")["output_config"]["effort"] == "low"


async def test_a_setting_the_cli_cannot_honour_still_fails_naming_it(
    claude_cli_env: CliTestEnv,
) -> None:
    async with cu.Conversation(claude_cli_env.config()) as conv:
        await conv.ask("one")
        with pytest.raises(cu.ConfigError, match="temperature cannot be honoured") as info:
            await conv.ask("two", temperature=0.2)
        assert info.value.field == "temperature"
        assert backend_of(conv).restarts == 0
        assert (await conv.ask("three")).text == "ECHO: three"  # still usable


async def test_cancelling_a_turn_during_the_restart_leaves_nothing_behind(
    claude_cli_env: CliTestEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned: list[Any] = []
    real_start = ManagedProcess.start
    scope = anyio.CancelScope()

    async def start_then_cancel(*args: Any, **kwargs: Any) -> Any:
        proc = await real_start(*args, **kwargs)
        spawned.append(proc)
        if len(spawned) == 2:  # the restart's process: cancel before its initialize is done
            scope.cancel()
        return proc

    monkeypatch.setattr(ManagedProcess, "start", start_then_cancel)
    async with cu.Conversation(claude_cli_env.config()) as conv:
        one = await conv.ask("one")
        fds = len(os.listdir("/proc/self/fd"))
        with scope:
            await conv.ask("two", effort="high")
        assert scope.cancelled_caught
        assert backend_of(conv).pid is None
        assert all(p.returncode is not None and pid_gone(p.pid) for p in spawned)
        assert len(os.listdir("/proc/self/fd")) < fds  # the old process's pipes are closed too
        three = await conv.ask("three")  # starts a process again, on the same session
        assert three.text == "ECHO: three"
        assert three.result.session_id == one.result.session_id
    assert all(p.returncode is not None for p in spawned)
    assert len(spawned) == 3
    sent = msgspec.json.encode(first_body(claude_cli_env, "three")["messages"]).decode()
    assert "ECHO: one" in sent
    assert "two" not in [r.last_user_text.strip() for r in claude_cli_env.server.requests]


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


async def test_budget_per_turn_and_across_a_restart(claude_cli_env: CliTestEnv) -> None:
    # claude-opus-5-5 (the CLI's default): 1,000 in + 1,000 out = $0.024 a turn
    costly = message(
        [cu.TextBlock("spent")],
        stop_reason="end_turn",
        usage=cu.Usage(input_tokens=1000, output_tokens=1000),
    )
    claude_cli_env.server.on("spend", costly)
    async with cu.Conversation(claude_cli_env.config(max_budget_usd=0.06)) as conv:
        assert (await conv.ask("spend")).text == "spent"  # $0.024
        assert (await conv.ask("spend", effort="high")).text == "spent"  # new process: $0.048
        with pytest.raises(cu.BudgetExceededError):  # the session's spend counts, not the
            await conv.ask("spend", effort="high")  # new process's alone: $0.072 > $0.06
        assert backend_of(conv).restarts == 1
    async with cu.Conversation(claude_cli_env.config()) as conv:
        assert (await conv.ask("hello")).text == "ECHO: hello"
        with pytest.raises(cu.BudgetExceededError):
            await conv.ask("spend", max_budget_usd=0.01)
        assert (await conv.ask("spend")).text == "spent"  # no cap of its own


async def test_a_budget_of_zero_sends_nothing(claude_cli_env: CliTestEnv) -> None:
    """As on the API path: no request at all. Claude Code itself refuses to start with
    ``--max-budget-usd=0``, so the process is started without the flag and every turn is
    refused before it is sent."""
    async with cu.Conversation(claude_cli_env.config(max_budget_usd=0)) as conv:
        events = [e async for e in conv.send("hello")]
        result = events[-1]
        assert isinstance(result, cu.Result)
        assert (result.is_error, result.kind) == (True, "budget_exhausted")
        with pytest.raises(cu.BudgetExceededError):
            await conv.ask("hello")
        assert (await conv.ask("hello", max_budget_usd=1.0)).text == "ECHO: hello"
    sent = [r for r in claude_cli_env.server.requests if r.path == "/v1/messages" and r.json]
    assert [r.last_user_text.split("\n")[-1] for r in sent] == ["hello"]  # the capped-up one


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
