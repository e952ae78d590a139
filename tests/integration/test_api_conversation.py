"""Conversation over the ApiBackend, over real HTTP to FakeAnthropicServer on loopback."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import claude_unified as cu
from claude_unified.backends._protocol import Exchange, SessionSpec
from claude_unified.backends.api import ApiBackend
from claude_unified.testing import (
    FakeAnthropicServer,
    Step,
    drop,
    error,
    malformed,
    reply,
    stall,
    stream_error,
    thinking,
    tool_call,
    tool_calls,
)

pytestmark = pytest.mark.anyio

SECRET = "sk-ant-test-do-not-leak-4242"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as srv:
        yield srv


@pytest.fixture
def fake(server: FakeAnthropicServer) -> FakeAnthropicServer:
    server.reset()
    return server


def config(server: FakeAnthropicServer, **overrides: object) -> cu.Config:
    values: dict[str, object] = {
        "backend": "api",
        "api_key": SECRET,
        "base_url": server.url,
        "max_retries": 2,
        "model": "claude-sonnet-5-5",
    }
    values.update(overrides)
    return cu.Config(**values)  # type: ignore[arg-type]


def sent_body(server: FakeAnthropicServer) -> dict[str, Any]:
    body = server.requests[-1].json
    assert body is not None, "the last request had no JSON body"
    return body


def kinds(events: list[cu.Event]) -> list[str]:
    return [type(e).__name__ for e in events]


async def collect(conv: cu.Conversation, prompt: str) -> list[cu.Event]:
    return [event async for event in conv.send(prompt)]


async def test_streaming_text_turn(fake: FakeAnthropicServer) -> None:
    fake.queue(reply("Hello there, friend"))
    async with cu.Conversation(config(fake)) as conv:
        events = await collect(conv, "hi")
    assert kinds(events)[0] == "SessionStarted"
    assert kinds(events)[-2:] == ["Text", "Result"]
    deltas = [e.text for e in events if isinstance(e, cu.TextDelta)]
    assert "".join(deltas) == "Hello there, friend"
    result = events[-1]
    assert isinstance(result, cu.Result)
    assert result.text == "Hello there, friend"
    assert not result.is_error
    assert result.stop_reason == "end_turn"
    assert result.num_turns == 1
    assert result.usage.output_tokens > 0
    assert result.cost_usd is not None and result.cost_usd > 0
    request = fake.requests[-1]
    assert request.headers["x-api-key"] == SECRET
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["user-agent"].startswith("claude-unified/")
    assert sent_body(fake)["stream"] is True


async def test_non_streaming_turn(fake: FakeAnthropicServer) -> None:
    fake.queue(reply("not streamed"))
    async with cu.Conversation(config(fake, stream=False)) as conv:
        answer = await conv.ask("hi")
    assert answer.text == "not streamed"
    assert "stream" not in sent_body(fake)
    assert not any(isinstance(e, cu.TextDelta) for e in answer.events)


async def test_bearer_token_auth(fake: FakeAnthropicServer) -> None:
    fake.queue(reply("ok"))
    cfg = config(fake, api_key=None, auth_token="tok-123")
    async with cu.Conversation(cfg) as conv:
        await conv.ask("hi")
    headers = fake.requests[-1].headers
    assert headers["authorization"] == "Bearer tok-123"
    assert "x-api-key" not in headers


async def test_multi_turn_history_and_cache_reads(fake: FakeAnthropicServer) -> None:
    fake.queue(reply("one"), reply("two"), reply("three"))
    cfg = config(fake, system_prompt="Be terse.")
    async with cu.Conversation(cfg) as conv:
        first = await conv.ask("first question")
        second = await conv.ask("second question")
        third = await conv.ask("third question")
    assert [first.text, second.text, third.text] == ["one", "two", "three"]
    sent = sent_body(fake)["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant"] * 2 + ["user"]
    assert sent[0]["content"] == "first question"
    assert sent_body(fake)["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert first.result.usage.cache_read_input_tokens == 0
    assert first.result.usage.cache_creation_input_tokens > 0
    assert (
        0 < second.result.usage.cache_read_input_tokens < third.result.usage.cache_read_input_tokens
    )
    assert [m.role for m in conv.history] == ["user", "assistant"] * 3


async def test_thinking_block_is_sent_back_unchanged(fake: FakeAnthropicServer) -> None:
    fake.queue(thinking("let me think", "answer", signature="sig-1"), reply("next"))
    async with cu.Conversation(config(fake)) as conv:
        first = await conv.ask("q1")
        await conv.ask("q2")
    assert any(isinstance(e, cu.Thinking) and e.signature == "sig-1" for e in first.events)
    assistant = sent_body(fake)["messages"][1]
    assert assistant["content"][0] == {
        "type": "thinking",
        "thinking": "let me think",
        "signature": "sig-1",
    }


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(error(529), id="529"),
        pytest.param(error(500), id="500"),
        pytest.param(error(429, headers={"retry-after": "0.05"}), id="429-retry-after"),
        pytest.param(reply("lost").with_fault(drop(after_events=0)), id="drop-before-response"),
        pytest.param(reply("lost").with_fault(drop(after_events=1)), id="drop-after-start"),
        pytest.param(reply("lost").with_fault(stream_error(1)), id="mid-stream-overloaded"),
    ],
)
async def test_retryable_faults_are_retried(fake: FakeAnthropicServer, fault: Step) -> None:
    fake.queue(fault, reply("recovered"))
    async with cu.Conversation(config(fake)) as conv:
        events = await collect(conv, "hi")
    retries = [e for e in events if isinstance(e, cu.ApiRetry)]
    assert len(retries) == 1
    assert retries[0].attempt == 1
    assert retries[0].max_retries == 2
    result = events[-1]
    assert isinstance(result, cu.Result)
    assert not result.is_error
    assert result.text == "recovered"
    assert len(fake.requests) == 2


async def test_retry_after_is_honoured(fake: FakeAnthropicServer) -> None:
    fake.queue(error(429, headers={"retry-after-ms": "300"}), reply("ok"))
    async with cu.Conversation(config(fake)) as conv:
        started = anyio.current_time()
        answer = await conv.ask("hi")
        waited = anyio.current_time() - started
    retry = next(e for e in answer.events if isinstance(e, cu.ApiRetry))
    assert retry.delay_s == pytest.approx(0.3)
    assert retry.status == 429
    assert waited >= 0.3


async def test_retry_after_over_cap_fails_fast(fake: FakeAnthropicServer) -> None:
    fake.queue(error(429, headers={"retry-after": "3600"}))
    async with cu.Conversation(config(fake, max_retry_wait=10)) as conv:
        with pytest.raises(cu.RateLimitError) as info:
            await conv.ask("hi")
    assert info.value.retry_after == pytest.approx(3600)
    assert len(fake.requests) == 1


async def test_retries_exhausted_gives_error_result_and_typed_exception(
    fake: FakeAnthropicServer,
) -> None:
    fake.queue(error(529), error(529), error(529))
    async with cu.Conversation(config(fake)) as conv:
        turn = conv.send("hi")
        events = [e async for e in turn]
        assert kinds(events).count("ApiRetry") == 2
        result = events[-1]
        assert isinstance(result, cu.Result) and result.is_error
        assert result.error is not None and result.error.status_code == 529
        with pytest.raises(cu.OverloadedError):
            turn.raise_for_error()
        # the conversation stays usable
        fake.queue(reply("fine now"))
        assert (await conv.ask("again")).text == "fine now"


async def test_error_after_text_keeps_partial_text(fake: FakeAnthropicServer) -> None:
    fake.queue(reply("partial words that arrive").with_fault(stream_error(6)))
    async with cu.Conversation(config(fake)) as conv:
        with pytest.raises(cu.OverloadedError) as info:
            await conv.ask("hi")
        assert info.value.partial_text.startswith("partial")
        assert len(fake.requests) == 1  # text was already yielded: no retry
        assert conv.history[-1].role == "assistant"


async def test_authentication_error_never_shows_the_key(fake: FakeAnthropicServer) -> None:
    fake.queue(error(401))
    async with cu.Conversation(config(fake)) as conv:
        with pytest.raises(cu.AuthenticationError) as info:
            await conv.ask("hi")
        assert SECRET not in str(info.value)
        assert SECRET not in repr(info.value)
        assert SECRET not in repr(conv.config)
    assert len(fake.requests) == 1


async def test_unreachable_base_url_names_it() -> None:
    with anyio.fail_after(20):
        # bind-then-close gives a loopback port with nothing listening
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        await listener.aclose()
        url = f"http://127.0.0.1:{port}"
        cfg = cu.Config(backend="api", api_key=SECRET, base_url=url, max_retries=1)
        async with cu.Conversation(cfg) as conv:
            with pytest.raises(cu.ConnectError) as info:
                await conv.ask("hi")
    assert url in str(info.value)
    assert info.value.url == url


async def test_malformed_frame_is_a_protocol_error_with_raw_bytes(
    fake: FakeAnthropicServer,
) -> None:
    fake.queue(reply("x").with_fault(malformed(after_events=2)))
    async with cu.Conversation(config(fake)) as conv:
        with pytest.raises(cu.ProtocolError) as info:
            await conv.ask("hi")
    assert info.value.raw


async def test_idle_timeout_ignores_pings(fake: FakeAnthropicServer) -> None:
    fake.queue(reply("slow").with_fault(stall(1.5, after_events=2, ping_every=0.1)))
    cfg = config(fake, idle_timeout=0.5, max_retries=0)
    async with cu.Conversation(cfg) as conv:
        with pytest.raises(cu.TimeoutError) as info:
            await conv.ask("hi")
    assert info.value.kind == "idle"


async def test_idle_timeout_is_retried_when_nothing_was_yielded(
    fake: FakeAnthropicServer,
) -> None:
    fake.queue(reply("slow").with_fault(stall(1.5, after_events=1)), reply("fast"))
    async with cu.Conversation(config(fake, idle_timeout=0.4)) as conv:
        answer = await conv.ask("hi")
    assert answer.text == "fast"
    assert any(
        isinstance(e, cu.ApiRetry) and (e.error, e.detail) == ("timeout", "idle_timeout")
        for e in answer.events
    )


async def test_total_timeout(fake: FakeAnthropicServer) -> None:
    fake.queue(reply("slow").with_fault(stall(2, after_events=2, ping_every=0.1)))
    async with cu.Conversation(config(fake, timeout=0.6, max_retries=0)) as conv:
        with pytest.raises(cu.TimeoutError) as info:
            await conv.ask("hi")
    assert info.value.kind == "total"


async def test_breaking_out_early_leaves_next_turn_clean(fake: FakeAnthropicServer) -> None:
    fake.queue(reply("a long answer " * 20), reply("second answer"))
    async with cu.Conversation(config(fake)) as conv:
        async for event in conv.send("first"):
            if isinstance(event, cu.TextDelta):
                break
        events = await collect(conv, "second")
    texts = [e.text for e in events if isinstance(e, cu.Text)]
    assert texts == ["second answer"]
    assert kinds(events).count("Result") == 1
    sent = sent_body(fake)["messages"]
    assert sent[-1]["role"] == "user"
    roles = [m["role"] for m in sent]
    assert all(a != b for a, b in itertools.pairwise(roles)), roles


async def test_cancelling_a_turn_leaves_conversation_usable(fake: FakeAnthropicServer) -> None:
    fake.queue(reply("never finishes").with_fault(stall(5, after_events=2)), reply("after"))
    async with cu.Conversation(config(fake)) as conv:
        with anyio.move_on_after(0.3) as scope:
            await conv.ask("first")
        assert scope.cancelled_caught
        answer = await conv.ask("second")
    assert answer.text == "after"


async def test_interrupt_ends_turn_with_error_result(fake: FakeAnthropicServer) -> None:
    fake.queue(reply("never finishes").with_fault(stall(5, after_events=3)), reply("after"))
    async with cu.Conversation(config(fake)) as conv:
        events: list[cu.Event] = []
        async with anyio.create_task_group() as tg:

            async def consume() -> None:
                async for event in conv.send("first"):
                    events.append(event)

            tg.start_soon(consume)
            await anyio.sleep(0.3)
            await conv.interrupt()
        result = events[-1]
        assert isinstance(result, cu.Result) and result.is_error
        assert result.error is not None and result.error.kind == "interrupted"
        assert (await conv.ask("second")).text == "after"


async def test_count_tokens(fake: FakeAnthropicServer) -> None:
    backend = ApiBackend(config(fake))
    await backend.open(SessionSpec())
    try:
        history = [cu.Message(role="user", content="count these words please")]
        count = await backend.count_tokens(Exchange(prompt="", history=history, turn_id="t"))
    finally:
        await backend.aclose()
    assert count > 0
    assert fake.requests[-1].path == "/v1/messages/count_tokens"
    assert "max_tokens" not in sent_body(fake)


async def test_tool_loop_over_http(fake: FakeAnthropicServer) -> None:
    @cu.tool
    def add(a: int, b: int) -> str:
        """Add two integers."""
        return str(a + b)

    fake.queue(tool_call("add", {"a": 2, "b": 3}), reply("The sum is 5."))
    async with cu.Conversation(config(fake), tools=[add]) as conv:
        answer = await conv.ask("What is 2+3?")
    assert answer.text == "The sum is 5."
    names = [n for n in kinds(answer.events) if not n.endswith("Delta")]
    assert names == [
        "SessionStarted",
        "ToolUse",
        "PermissionDecision",
        "ToolResult",
        "Text",
        "Result",
    ]
    use = next(e for e in answer.events if isinstance(e, cu.ToolUse))
    assert (use.name, use.input) == ("add", {"a": 2, "b": 3})
    second = sent_body(fake)
    assert second["tools"][0]["name"] == "add"
    assert second["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    result_block = second["messages"][-1]["content"][0]
    assert result_block["type"] == "tool_result"
    assert result_block["content"] == "5"
    assert answer.result.num_turns == 2


async def test_save_and_restore_an_api_conversation(
    fake: FakeAnthropicServer, tmp_path: Path
) -> None:
    fake.queue(reply("first answer"), reply("second answer"))
    path = tmp_path / "conversation.json"
    async with cu.Conversation(config(fake)) as conv:
        await conv.ask("first question")
        conv.save(path)
        session_id = conv.session_id
    restored = cu.Conversation.restore(path, config(fake))
    async with restored:
        answer = await restored.ask("second question")
    assert answer.text == "second answer"
    assert restored.session_id == session_id
    sent = sent_body(fake)["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == [
        "first question",
        "second question",
    ]


async def test_restore_rejects_a_file_that_is_not_a_save(tmp_path: Path) -> None:
    path = tmp_path / "junk.json"
    path.write_text("[1, 2]")
    with pytest.raises(cu.ConfigError, match="not a saved conversation"):
        cu.Conversation.restore(path, cu.Config(backend="api", api_key="k"))


async def test_leaving_a_turn_at_a_tool_use_keeps_history_valid(
    fake: FakeAnthropicServer,
) -> None:
    fake.queue(tool_call("Write", {"file_path": "a.txt", "content": "x"}), reply("next"))
    async with cu.Conversation(config(fake)) as conv:
        async for event in conv.send("write it"):
            if isinstance(event, cu.PermissionRequest):
                break  # walk away while the tool call waits for an answer
        answer = await conv.ask("never mind")
    assert answer.text == "next"
    sent = sent_body(fake)["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    final = sent[-1]["content"]
    assert final[0]["type"] == "tool_result"
    assert final[0]["is_error"] is True
    assert final[-1] == {"type": "text", "text": "never mind"}


async def test_allowed_call_then_deny_with_interrupt_in_one_message(
    fake: FakeAnthropicServer,
) -> None:
    @cu.tool
    def add(a: int, b: int) -> str:
        """Add two integers."""
        return str(a + b)

    def decide(name: str, _input: dict[str, Any]) -> cu.Decision:
        return cu.Allow() if name == "add" else cu.Deny("stop", interrupt=True)

    fake.queue(tool_calls(("add", {"a": 1, "b": 2}), ("Write", {"file_path": "f", "content": ""})))
    async with cu.Conversation(config(fake), tools=[add], policy=cu.callback(decide)) as conv:
        events = [e async for e in conv.send("both")]
    results = [e for e in events if isinstance(e, cu.ToolResult)]
    assert [r.is_error for r in results] == [True, True]
    result = events[-1]
    assert isinstance(result, cu.Result) and result.error is not None
    assert result.error.kind == "interrupted"
