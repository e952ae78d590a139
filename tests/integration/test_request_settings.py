"""Request settings, structured output, budgets and token counting on the API backend: what
reaches FakeAnthropicServer over real HTTP, and what comes back."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, TypedDict

import anyio
import msgspec
import pytest

import claude_unified as cu
from claude_unified.testing import (
    FakeAnthropicServer,
    message,
    reply,
    thinking,
    tool_call,
)

pytestmark = pytest.mark.anyio

SECRET = "sk-ant-test-settings-0001"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as srv:
        yield srv


@pytest.fixture
def fake(server: FakeAnthropicServer) -> FakeAnthropicServer:
    server.reset()
    return server


def config(server: FakeAnthropicServer, **overrides: Any) -> cu.Config:
    base = cu.Config(backend="api", api_key=SECRET, base_url=server.url, max_retries=0)
    return base.with_changes({"model": "claude-sonnet-5-5", **overrides})


def bodies(server: FakeAnthropicServer, path: str = "/v1/messages") -> list[dict[str, Any]]:
    return [r.json for r in server.requests if r.path == path and r.json is not None]


class Invoice(msgspec.Struct):
    number: str
    total: float


@dataclasses.dataclass
class Person:
    name: str
    age: int


class City(TypedDict):
    name: str
    population: int


@cu.tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


# ---------------------------------------------------------------- request settings


async def test_config_settings_reach_the_request_body(fake: FakeAnthropicServer) -> None:
    cfg = config(
        fake,
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        stop_sequences=["END"],
        tool_choice="add",
        thinking=cu.ThinkingConfig(budget_tokens=2000),
        effort="high",
        metadata={"user_id": "u-42"},
        service_tier="standard_only",
        extra_body={"inference_geo": "eu", "container": "c-1"},
    )
    fake.queue(reply("done"))
    async with cu.Conversation(cfg, tools=[add]) as conv:
        answer = await conv.ask("go")
    assert answer.text == "done"
    (body,) = bodies(fake)
    assert body["temperature"] == 0.2
    assert body["top_p"] == 0.9
    assert body["top_k"] == 40
    assert body["stop_sequences"] == ["END"]
    assert body["tool_choice"] == {"type": "tool", "name": "add"}
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert body["output_config"] == {"effort": "high"}
    assert body["metadata"] == {"user_id": "u-42"}
    assert body["service_tier"] == "standard_only"
    assert (body["inference_geo"], body["container"]) == ("eu", "c-1")


async def test_unset_settings_send_nothing(fake: FakeAnthropicServer) -> None:
    async with cu.ChatClient(config(fake)) as chat:
        await chat.chat("hi")
    (body,) = bodies(fake)
    for key in ("temperature", "top_p", "top_k", "stop_sequences", "tool_choice", "thinking"):
        assert key not in body
    assert "output_config" not in body and "metadata" not in body


@pytest.mark.parametrize(
    ("choice", "wire"),
    [("auto", {"type": "auto"}), ("any", {"type": "any"}), ("none", {"type": "none"})],
)
async def test_tool_choice_keywords(fake: FakeAnthropicServer, choice: str, wire: Any) -> None:
    async with cu.ChatClient(config(fake)) as chat:
        await chat.chat("hi", tool_choice=choice, tools=[add])
    assert bodies(fake)[-1]["tool_choice"] == wire


async def test_thinking_modes(fake: FakeAnthropicServer) -> None:
    async with cu.ChatClient(config(fake, thinking="adaptive")) as chat:
        await chat.chat("one")
        await chat.chat("two", thinking="disabled")
        await chat.chat("three", thinking=cu.ThinkingConfig(budget_tokens=1500, display="omitted"))
    assert [b["thinking"] for b in bodies(fake)] == [
        {"type": "adaptive"},
        {"type": "disabled"},
        {"type": "enabled", "budget_tokens": 1500, "display": "omitted"},
    ]


async def test_per_call_overrides_win_and_do_not_stick(fake: FakeAnthropicServer) -> None:
    async with cu.ChatClient(config(fake, temperature=0.5, effort="low")) as chat:
        await chat.chat("a", temperature=0.0, effort="max", stop_sequences=["STOP"])
        await chat.chat("b")
        collected = await chat.collect("c", top_k=3)
    first, second, third = bodies(fake)
    assert (first["temperature"], first["output_config"], first["stop_sequences"]) == (
        0.0,
        {"effort": "max"},
        ["STOP"],
    )
    assert (second["temperature"], second["output_config"]) == (0.5, {"effort": "low"})
    assert "stop_sequences" not in second
    assert third["top_k"] == 3
    assert isinstance(collected[-1], cu.Result)


async def test_conversation_turn_overrides(fake: FakeAnthropicServer) -> None:
    async with cu.Conversation(config(fake)) as conv:
        events = [e async for e in conv.send("first", temperature=1.0, metadata={"user_id": "x"})]
        await conv.ask("second")
    assert isinstance(events[-1], cu.Result) and not events[-1].is_error
    first, second = bodies(fake)
    assert (first["temperature"], first["metadata"]) == (1.0, {"user_id": "x"})
    assert "temperature" not in second and "metadata" not in second


async def test_misspelled_options_raise_and_send_nothing(fake: FakeAnthropicServer) -> None:
    async with cu.ChatClient(config(fake)) as chat:
        with pytest.raises(cu.ConfigError, match="did you mean 'max_tokens'") as info:
            await chat.chat("hi", max_token=5)  # type: ignore[call-overload]
        assert info.value.field == "max_token"
        with pytest.raises(cu.ConfigError, match="did you mean 'temperature'"):
            await chat.collect("hi", temprature=0.1)  # type: ignore[call-arg]
    async with cu.Conversation(config(fake)) as conv:
        with pytest.raises(cu.ConfigError, match="did you mean 'top_p'"):
            await conv.ask("hi", topp=0.3)  # type: ignore[call-overload]
        with pytest.raises(cu.ConfigError, match="effort"):
            await conv.ask("hi", effort="enormous")  # type: ignore[call-overload]
    assert bodies(fake) == []


async def test_bad_option_values_raise_config_errors(fake: FakeAnthropicServer) -> None:
    async with cu.ChatClient(config(fake)) as chat:
        with pytest.raises(cu.ConfigError) as info:
            await chat.chat("hi", temperature="warm")  # type: ignore[call-overload]
    assert (info.value.field, info.value.source) == ("temperature", "argument")
    assert bodies(fake) == []


async def test_thinking_blocks_and_signatures_round_trip(fake: FakeAnthropicServer) -> None:
    fake.queue(thinking("let me think", "first answer", signature="sig-abc-123"))
    fake.queue(reply("second answer"))
    cfg = config(fake, thinking=cu.ThinkingConfig(budget_tokens=1024))
    async with cu.Conversation(cfg) as conv:
        first = await conv.ask("q1")
        await conv.ask("q2")
    assert next(e for e in first.events if isinstance(e, cu.Thinking)).signature == "sig-abc-123"
    sent = bodies(fake)[1]["messages"][1]
    assert sent["role"] == "assistant"
    assert sent["content"][0] == {
        "type": "thinking",
        "thinking": "let me think",
        "signature": "sig-abc-123",
    }


async def test_concurrent_calls_keep_their_own_settings(fake: FakeAnthropicServer) -> None:
    async def one(chat: cu.ChatClient, i: int) -> None:
        await chat.chat(f"n{i}", top_k=i + 1)

    async with cu.ChatClient(config(fake)) as chat, anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(one, chat, i)
    sent = {b["messages"][-1]["content"]: b["top_k"] for b in bodies(fake)}
    assert sent == {f"n{i}": i + 1 for i in range(6)}


async def test_cli_only_options_fail_on_the_api(fake: FakeAnthropicServer) -> None:
    for name, value in [
        ("agents", {"r": {"description": "d", "prompt": "p"}}),
        ("plugins", ["/p"]),
        ("setting_sources", ["user"]),
        ("settings", {"model": "x"}),
        ("tools", ["Bash"]),
        ("add_dirs", ["/tmp"]),
    ]:
        with pytest.raises(cu.ConfigError, match=name) as info:
            async with cu.Conversation(config(fake, **{name: value})):
                pass
        assert info.value.field == name
    assert fake.requests == []


async def test_allowed_and_disallowed_tools_judge_api_calls(fake: FakeAnthropicServer) -> None:
    @cu.tool
    def mul(a: int, b: int) -> int:
        """Multiply."""
        return a * b

    fake.queue(tool_call("add", {"a": 1, "b": 2}), reply("ok"))
    fake.queue(tool_call("Bash", {"command": "ls"}), reply("ok"))
    cfg = config(fake, disallowed_tools=["add"], allowed_tools=["Bash(ls)"])
    async with cu.Conversation(cfg, tools=[add, mul]) as conv:
        denied = await conv.ask("use add")
        allowed = await conv.ask("use bash")
    (decision,) = [e for e in denied.events if isinstance(e, cu.PermissionDecision)]
    assert (decision.behavior, decision.decided_by) == ("deny", "policy")
    assert "add" in (decision.message or "")
    (bash,) = [e for e in allowed.events if isinstance(e, cu.PermissionDecision)]
    assert bash.behavior == "allow"


# ---------------------------------------------------------------- prompt caching


def _marked(text: str) -> cu.TextBlock:
    return cu.TextBlock(text, cache_control={"type": "ephemeral"})


def _breakpoints(body: dict[str, Any]) -> int:
    return msgspec.json.encode(body).count(b'"cache_control":')


@pytest.mark.parametrize(("users", "ours"), [(0, 3), (1, 3), (2, 2), (3, 1), (4, 0), (5, 0)])
async def test_cache_breakpoints_never_exceed_four(
    fake: FakeAnthropicServer, users: int, ours: int
) -> None:
    history = [{"role": "user", "content": [_marked(f"part {i}") for i in range(users)] or "x"}]
    history += [{"role": "assistant", "content": "ok"}, {"role": "user", "content": "go"}]
    cfg = config(fake, system_prompt="Be terse.")
    async with cu.ChatClient(cfg) as chat:
        await chat.chat(history, tools=[add])
    (body,) = bodies(fake)
    assert _breakpoints(body) == users + ours
    assert ("cache_control" in body) == (ours >= 1)  # the automatic one goes last
    assert ("cache_control" in body["system"][0]) == (ours >= 2)
    assert ("cache_control" in body["tools"][-1]) == (ours >= 3)


async def test_marks_in_extra_body_count_too(fake: FakeAnthropicServer) -> None:
    extra = {"system": [_marked_dict(f"s{i}") for i in range(4)]}
    async with cu.ChatClient(config(fake, extra_body=extra)) as chat:
        await chat.chat("hi")
    (body,) = bodies(fake)
    assert _breakpoints(body) == 4
    assert "cache_control" not in body


def _marked_dict(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}


async def test_text_mentioning_cache_control_is_not_counted(fake: FakeAnthropicServer) -> None:
    tricky = 'please explain "cache_control": {"type": "ephemeral"} to me'
    async with cu.ChatClient(config(fake)) as chat:
        await chat.chat([{"role": "user", "content": tricky}])
    assert "cache_control" in bodies(fake)[0]


# ---------------------------------------------------------------- structured output


async def test_structured_output_struct(fake: FakeAnthropicServer) -> None:
    fake.queue(reply('{"number": "INV-7", "total": 12.5}'))
    async with cu.ChatClient(config(fake)) as chat:
        answer = await chat.chat("Extract the invoice", output=Invoice)
    assert answer.output == Invoice("INV-7", 12.5)
    (body,) = bodies(fake)
    fmt = body["output_config"]["format"]
    assert fmt["type"] == "json_schema"
    assert fmt["schema"]["required"] == ["number", "total"]
    assert fmt["schema"]["properties"]["total"] == {"type": "number"}
    assert fmt["schema"]["additionalProperties"] is False


async def test_structured_output_dataclass_typeddict_and_query(fake: FakeAnthropicServer) -> None:
    fake.queue(reply('{"name": "Ada", "age": 36}'), reply('{"name": "Oslo", "population": 7}'))
    async with cu.Conversation(config(fake)) as conv:
        person = await conv.ask("who?", output=Person, effort="low")
    assert person.output == Person("Ada", 36)
    city = await cu.query("where?", config=config(fake), output=City)
    assert city == {"name": "Oslo", "population": 7}
    first, second = bodies(fake)
    assert first["output_config"]["effort"] == "low"
    assert set(second["output_config"]["format"]["schema"]["properties"]) == {
        "name",
        "population",
    }


async def test_structured_output_after_a_tool_round(fake: FakeAnthropicServer) -> None:
    fake.queue(tool_call("add", {"a": 2, "b": 3}), reply('{"number": "5", "total": 5}'))
    async with cu.Conversation(config(fake), tools=[add]) as conv:
        answer = await conv.ask("add then report", output=Invoice)
    assert answer.output == Invoice("5", 5.0)
    assert all("format" in b["output_config"] for b in bodies(fake))


@pytest.mark.parametrize(
    ("raw", "problem"),
    [("not json at all", "not JSON"), ('{"number": 7, "total": 1}', "Expected `str`")],
)
async def test_invalid_structured_output_raises(
    fake: FakeAnthropicServer, raw: str, problem: str
) -> None:
    fake.queue(reply(raw))
    async with cu.ChatClient(config(fake)) as chat:
        with pytest.raises(cu.OutputValidationError) as info:
            await chat.chat("x", output=Invoice)
    assert info.value.raw_text == raw
    assert problem in info.value.errors[0]


def test_output_type_must_be_an_object() -> None:
    conv = cu.Conversation(cu.Config(backend="fake"))
    with pytest.raises(TypeError, match="not a JSON object type"):
        conv.send("x", output=int)


# ---------------------------------------------------------------- budgets and limits


def _costly(text: str) -> Any:
    # claude-sonnet-5-5: $2 / $10 per million tokens → 1,000 in + 1,000 out = $0.012
    return message(
        [cu.TextBlock(text)],
        stop_reason="end_turn",
        usage=cu.Usage(input_tokens=1000, output_tokens=1000),
    )


async def test_budget_checked_before_the_next_request(fake: FakeAnthropicServer) -> None:
    fake.queue(_costly("one"), _costly("two"))
    async with cu.Conversation(config(fake, max_budget_usd=0.02)) as conv:
        assert (await conv.ask("a")).text == "one"
        assert (await conv.ask("b")).text == "two"  # $0.012 spent < $0.02: it may go
        assert conv.spent_usd == pytest.approx(0.024)
        events = [e async for e in conv.send("c")]
        with pytest.raises(cu.BudgetExceededError, match=r"max_budget_usd=0\.02"):
            await conv.ask("d")
    result = events[-1]
    assert isinstance(result, cu.Result)
    assert (result.is_error, result.kind) == (True, "budget_exhausted")
    assert len(bodies(fake)) == 2  # the spent budget stopped c and d before any request


async def test_budget_per_turn(fake: FakeAnthropicServer) -> None:
    fake.queue(_costly("one"), _costly("two"))
    async with cu.Conversation(config(fake)) as conv:
        assert (await conv.ask("a")).text == "one"
        with pytest.raises(cu.BudgetExceededError, match=r"max_budget_usd=0\.01"):
            await conv.ask("b", max_budget_usd=0.01)  # $0.012 spent so far: not even one
        assert (await conv.ask("c")).text == "two"  # the conversation's own: no cap
    assert len(bodies(fake)) == 2  # b sent no request of its own


async def test_budget_stops_an_agent_loop(fake: FakeAnthropicServer) -> None:
    costly_call = message(
        [cu.ToolUseBlock("toolu_1", "add", {"a": 1, "b": 1})],
        stop_reason="tool_use",
        usage=cu.Usage(input_tokens=1000, output_tokens=1000),
    )
    fake.on(lambda r: True, costly_call)
    async with cu.Conversation(config(fake, max_budget_usd=0.03), tools=[add]) as conv:
        events = [e async for e in conv.send("loop")]
    result = events[-1]
    assert isinstance(result, cu.Result) and result.kind == "budget_exhausted"
    assert len(bodies(fake)) == 3  # $0.012 each: the fourth would start over $0.03
    assert result.num_turns == 3


async def test_budget_needs_a_priced_model(fake: FakeAnthropicServer) -> None:
    async with cu.ChatClient(config(fake, model="mystery-model-1", max_budget_usd=1.0)) as chat:
        with pytest.raises(cu.ConfigError, match="no price for model 'mystery-model-1'"):
            await chat.chat("hi")


async def test_default_round_cap_ends_a_denied_tool_loop(fake: FakeAnthropicServer) -> None:
    fake.on(lambda r: True, tool_call("Bash", {"command": "rm -rf /"}))
    async with cu.Conversation(config(fake)) as conv:
        with pytest.raises(cu.TurnLimitError, match=r"the default max_turns=100") as info:
            await conv.ask("go")
    assert info.value.max_turns == 100
    assert len(bodies(fake)) == 100


async def test_max_turns_result_kind(fake: FakeAnthropicServer) -> None:
    fake.on(lambda r: True, tool_call("add", {"a": 1, "b": 1}))
    async with cu.Conversation(config(fake, max_turns=2), tools=[add]) as conv:
        events = [e async for e in conv.send("go")]
    result = events[-1]
    assert isinstance(result, cu.Result) and result.kind == "max_turns"


# ---------------------------------------------------------------- token counting


async def test_conversation_count_tokens(fake: FakeAnthropicServer) -> None:
    cfg = config(fake, system_prompt="Be terse.", temperature=0.3)
    async with cu.Conversation(cfg, tools=[add]) as conv:
        await conv.ask("hello there")
        counted = await conv.count_tokens()
        with_prompt = await conv.count_tokens("and one more question")
    counts = bodies(fake, "/v1/messages/count_tokens")
    assert len(counts) == 2
    first, second = counts
    assert [m["role"] for m in first["messages"]] == ["user", "assistant"]
    assert second["messages"][-1] == {"role": "user", "content": "and one more question"}
    assert first["tools"][0]["name"] == "add"
    assert first["system"][0]["text"] == "Be terse."
    assert "max_tokens" not in first and "stream" not in first
    assert counted > 0 and with_prompt > counted


async def test_chat_count_tokens(fake: FakeAnthropicServer) -> None:
    async with cu.ChatClient(config(fake)) as chat:
        n = await chat.count_tokens([{"role": "user", "content": "count me"}])
        assert await chat.count_tokens("count me") == n
    assert n > 0
    assert len(bodies(fake, "/v1/messages/count_tokens")) == 2


def test_sync_count_tokens(fake: FakeAnthropicServer) -> None:
    with cu.SyncChatClient(config(fake)) as sync_chat:
        n = sync_chat.count_tokens("count me")
    assert n > 0
    with cu.SyncChatClient(config(fake)) as sync_chat:
        assert sync_chat.count_tokens("count me") == n
    with cu.SyncConversation(config(fake)) as conv:
        assert conv.count_tokens("count me") == n
        with pytest.raises(cu.ClaudeError, match="nothing to count"):
            conv.count_tokens()
    assert len(bodies(fake, "/v1/messages/count_tokens")) == 3
    assert bodies(fake) == []


def test_sync_ask_with_output_and_options(fake: FakeAnthropicServer) -> None:
    fake.queue(reply('{"number": "1", "total": 2}'))
    with cu.SyncConversation(config(fake)) as conv:
        answer = conv.ask("x", output=Invoice, top_p=0.5)
    assert answer.output == Invoice("1", 2.0)
    assert bodies(fake)[0]["top_p"] == 0.5


async def test_per_call_budget_on_a_chat_client(fake: FakeAnthropicServer) -> None:
    fake.queue(_costly("paid"))
    async with cu.ChatClient(config(fake, max_budget_usd=1.0)) as chat:
        with pytest.raises(cu.BudgetExceededError):
            await chat.chat("free", max_budget_usd=0.0)
        assert (await chat.chat("paid")).text == "paid"  # the client's own budget is untouched
    assert [b["messages"][-1]["content"] for b in bodies(fake)] == ["paid"]
