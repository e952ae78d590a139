"""The sync facade and ChatClient over real HTTP (FakeAnthropicServer) and the real CLI."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

import claude_unified as cu
from claude_unified.testing import FakeAnthropicServer, error, reply, stall
from claude_unified.testing.pytest_plugin import CliTestEnv

pytestmark = pytest.mark.timeout(60)


def api_config(server: FakeAnthropicServer, **overrides: Any) -> cu.Config:
    values: dict[str, Any] = {
        "backend": "api",
        "api_key": "sk-ant-test",
        "base_url": server.url,
        "model": "claude-sonnet-5-5",
    }
    values.update(overrides)
    return cu.Config(**values)


def last_body(server: FakeAnthropicServer) -> dict[str, Any]:
    body = server.requests[-1].json
    assert body is not None, "the last request had no JSON body"
    return body


def texts(events: list[cu.Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, cu.Text)]


# --------------------------------------------------------------------------- sync, API


def test_sync_conversation_over_http(fake_anthropic_server: FakeAnthropicServer) -> None:
    server = fake_anthropic_server
    streamed: list[str] = []
    with cu.SyncConversation(api_config(server, system_prompt="Be brief.")) as conv:
        first = conv.ask("first question")
        events = list(conv.send("second question", on_text=streamed.append))
    assert first.text == "ECHO: first question"
    assert texts(events) == ["ECHO: second question"]
    assert "".join(streamed) == "ECHO: second question"
    body = last_body(server)
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["system"][0]["text"] == "Be brief."


def test_sync_interrupt_over_http_from_another_thread(
    fake_anthropic_server: FakeAnthropicServer,
) -> None:
    server = fake_anthropic_server
    server.queue(reply("never finishes").with_fault(stall(5, after_events=3)), reply("after"))
    with cu.SyncConversation(api_config(server)) as conv:
        turn = conv.send("first")
        events = [next(turn)]
        while not isinstance(events[-1], cu.TextDelta):
            events.append(next(turn))
        threading.Thread(target=conv.interrupt).start()
        events += list(turn)
        result = events[-1]
        assert isinstance(result, cu.Result) and result.is_error
        assert result.error is not None and result.error.kind == "interrupted"
        assert conv.ask("second").text == "after"


# --------------------------------------------------------------------------- ChatClient, API


@pytest.mark.anyio
async def test_per_call_overrides_reach_the_request(
    fake_anthropic_server: FakeAnthropicServer,
) -> None:
    server = fake_anthropic_server
    async with cu.ChatClient(api_config(server, max_tokens=512)) as chat:
        tuned = await chat.chat("hi", system="Be terse", model="claude-other", max_tokens=77)
        body = last_body(server)
        assert (body["model"], body["max_tokens"]) == ("claude-other", 77)
        assert body["system"][0]["text"] == "Be terse"
        plain = await chat.chat("hi again")
    body = last_body(server)
    assert (body["model"], body["max_tokens"]) == ("claude-sonnet-5-5", 512)
    assert "system" not in body
    assert body["messages"] == [{"role": "user", "content": "hi again"}]  # stateless
    assert (tuned.text, plain.text) == ("ECHO: hi", "ECHO: hi again")


@pytest.mark.anyio
async def test_explicit_message_lists(fake_anthropic_server: FakeAnthropicServer) -> None:
    server = fake_anthropic_server
    history: list[cu.Message | dict[str, Any]] = [
        {"role": "user", "content": "my name is Ada"},
        cu.Message(role="assistant", content="Hello Ada."),
        {"role": "user", "content": [{"type": "text", "text": "what is my name?"}]},
    ]
    async with cu.ChatClient(api_config(server)) as chat:
        answer = await chat.chat(history)
        assert last_body(server)["messages"] == [
            {"role": "user", "content": "my name is Ada"},
            {"role": "assistant", "content": "Hello Ada."},
            {"role": "user", "content": [{"type": "text", "text": "what is my name?"}]},
        ]
        await chat.chat([{"role": "user", "content": "and again"}])
        assert last_body(server)["messages"] == [{"role": "user", "content": "and again"}]
        with pytest.raises(ValueError, match="must end with a user message"):
            await chat.chat(history[:2])
        with pytest.raises(ValueError, match="role"):
            await chat.chat([{"role": "robot", "content": "beep"}])
    assert answer.text == "ECHO: what is my name?"


@pytest.mark.anyio
async def test_stream_collect_and_on_text(fake_anthropic_server: FakeAnthropicServer) -> None:
    server = fake_anthropic_server
    server.queue(reply("streamed words arrive in pieces"))
    deltas: list[str] = []
    async with cu.ChatClient(api_config(server)) as chat:
        streamed = [e async for e in chat.stream("one", on_text=deltas.append)]
        collected = await chat.collect("two")
    assert "".join(deltas) == "streamed words arrive in pieces"
    assert texts(streamed) == ["streamed words arrive in pieces"]
    assert texts(collected) == ["ECHO: two"]
    assert isinstance(collected[-1], cu.Result) and not collected[-1].is_error
    assert last_body(server)["messages"] == [{"role": "user", "content": "two"}]


@pytest.mark.anyio
async def test_calls_share_one_connection_pool(
    fake_anthropic_server: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[httpx.AsyncClient] = []
    init = httpx.AsyncClient.__init__

    def counting_init(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        init(self, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "__init__", counting_init)
    async with cu.ChatClient(api_config(fake_anthropic_server)) as chat:
        for prompt in ("a", "b", "c"):
            await chat.chat(prompt)
        await chat.collect("d")
    assert len(made) == 1
    assert len(fake_anthropic_server.requests) == 4


@pytest.mark.anyio
async def test_chat_errors_keep_their_types(fake_anthropic_server: FakeAnthropicServer) -> None:
    async with cu.ChatClient(api_config(fake_anthropic_server, max_retries=0)) as chat:
        fake_anthropic_server.on("overload", error(529))
        with pytest.raises(cu.OverloadedError):
            await chat.chat("overload me")
        assert (await chat.chat("fine")).text == "ECHO: fine"
    with pytest.raises(cu.ClaudeError, match="not open"):
        await chat.chat("closed")


@pytest.mark.anyio
async def test_query(fake_anthropic_server: FakeAnthropicServer) -> None:
    # the fixture points ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY at the server: Config.load()
    assert await cu.query("What is 2+2?") == "ECHO: What is 2+2?"
    assert await cu.query("again", model="claude-q", max_tokens=99) == "ECHO: again"
    body = last_body(fake_anthropic_server)
    assert (body["model"], body["max_tokens"]) == ("claude-q", 99)


def test_query_sync_and_sync_chat_client(fake_anthropic_server: FakeAnthropicServer) -> None:
    server = fake_anthropic_server
    assert cu.query_sync("sync one-shot", config=api_config(server)) == "ECHO: sync one-shot"
    deltas: list[str] = []
    with cu.SyncChatClient(api_config(server)) as chat:
        reply_ = chat.chat("hi", system="Be terse")
        assert last_body(server)["system"][0]["text"] == "Be terse"
        streamed = list(chat.stream("stream me", on_text=deltas.append))
        collected = chat.collect("collect me", model="claude-c")
        assert last_body(server)["model"] == "claude-c"
    assert reply_.text == "ECHO: hi"
    assert texts(streamed) == ["ECHO: stream me"] and "".join(deltas) == "ECHO: stream me"
    assert texts(collected) == ["ECHO: collect me"]


# --------------------------------------------------------------------------- the real CLI


@pytest.mark.cli
def test_sync_conversation_on_the_real_cli(claude_cli_env: CliTestEnv) -> None:
    with cu.SyncConversation(claude_cli_env.config()) as conv:
        first = conv.ask("remember pelican")
        events = []
        for event in conv.send("BASH: touch asked.txt"):
            events.append(event)
            if isinstance(event, cu.PermissionRequest):
                conv.respond(event, cu.Allow())
        session_id = conv.session_id
    assert first.text == "ECHO: remember pelican"
    decision = next(e for e in events if isinstance(e, cu.PermissionDecision))
    assert (decision.behavior, decision.decided_by) == ("allow", "user")
    assert Path(claude_cli_env.cwd, "asked.txt").exists()
    assert session_id == first.result.session_id
    body = last_body(claude_cli_env.server)
    assert "remember pelican" in str(body["messages"])  # one session, one history


@pytest.mark.cli
def test_sync_early_break_on_the_real_cli(claude_cli_env: CliTestEnv) -> None:
    # the answer stalls after its first words, so the loop is left in the middle of the turn
    slow = reply("a first answer, slow to finish").with_fault(stall(1.0, after_events=3))
    claude_cli_env.server.on("a first turn left early", slow, times=1)
    with cu.SyncConversation(claude_cli_env.config()) as conv:
        for event in conv.send("a first turn left early"):
            if isinstance(event, cu.TextDelta):
                break
        second = list(conv.send("the second turn"))
    assert texts(second) == ["ECHO: the second turn"]
    assert sum(isinstance(e, cu.Result) for e in second) == 1


@pytest.mark.cli
@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # each call starts a CLI: run once
async def test_chat_client_on_the_real_cli(claude_cli_env: CliTestEnv) -> None:
    server = claude_cli_env.server
    async with cu.ChatClient(claude_cli_env.config()) as chat:
        first = await chat.chat("first cli call", system="Be terse")
        assert "Be terse" in str(last_body(server)["system"])
        second = await chat.chat([{"role": "user", "content": "second cli call"}])
        with pytest.raises(cu.ConfigError, match="explicit message history"):
            await chat.chat(
                [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "c"},
                ]
            )
    assert (first.text, second.text) == ("ECHO: first cli call", "ECHO: second cli call")
    assert "first cli call" not in str(last_body(server)["messages"])  # a fresh process
