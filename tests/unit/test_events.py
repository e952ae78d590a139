"""The public data model: event round-trips, block encoding and Usage arithmetic."""

from __future__ import annotations

from typing import Any, get_args

import msgspec
import pytest

from claude_unified._events import (
    ApiRetry,
    CacheCreation,
    ContentBlock,
    DocumentBlock,
    Event,
    HookRan,
    ImageBlock,
    Message,
    PermissionDecision,
    PermissionRequest,
    RateLimit,
    RedactedThinking,
    RedactedThinkingBlock,
    Result,
    ServerToolUse,
    ServerToolUseBlock,
    SessionStarted,
    Text,
    TextBlock,
    TextDelta,
    Thinking,
    ThinkingBlock,
    ThinkingDelta,
    ToolInputDelta,
    ToolResult,
    ToolResultBlock,
    ToolUse,
    ToolUseBlock,
    TurnError,
    Unknown,
    UnknownBlock,
    Usage,
    decode_event,
    encode_event,
)
from claude_unified._exceptions import ProtocolError

EVENTS: list[Event] = [
    SessionStarted(
        backend="cli",
        session_id="s-1",
        model="claude-opus-5-5",
        tools=["Bash", "calc.add"],
        cwd="/work/project",
        cli_version="2.1.330",
        permission_mode="acceptEdits",
    ),
    SessionStarted(backend="api"),
    TextDelta("Hel", 2),
    ThinkingDelta("hmm", 1),
    ToolInputDelta('{"a": ', 3, "toolu_1", "add"),
    Text("Hello", 0),
    Text("cited", 1, [{"type": "char_location", "cited_text": "c", "document_index": 0}]),
    RedactedThinking("EmwKAhgBEgy3", 2),
    ServerToolUse("srvtoolu_1", "web_search", {"query": "q"}, 3),
    Thinking("deep", "sig", 1),
    ToolUse("toolu_1", "add", {"a": 1, "nested": {"b": [1, None, "x"]}}),
    PermissionRequest("req_1", "toolu_1", "Bash", {"command": "ls"}),
    PermissionRequest(
        "req_2",
        "toolu_3",
        "Write",
        {"file_path": "/elsewhere/x", "content": ""},
        blocked_path="/elsewhere/x",
        decision_reason="outside the working directory",
        suggestions=[{"type": "addDirectories", "directories": ["/elsewhere"]}],
    ),
    PermissionDecision("toolu_4", "Bash", "deny", message="no rm", decided_by="hook"),
    HookRan("PreToolUse", "no_rm", "deny", "toolu_4", message="no rm"),
    HookRan("PreToolUse", "rewrite", "allow", "toolu_5", updated_input={"command": "ls -a"}),
    HookRan(
        "PostToolUse",
        "note",
        "output",
        "toolu_5",
        additional_context="checked",
        system_message="seen",
        stop=False,
        message="go on",
    ),
    HookRan("Stop", "broken", "error", message="The Stop hook broken failed: it raised X"),
    PermissionDecision(
        "toolu_1",
        "Bash",
        "deny",
        message="no",
        decided_by="user",
        interrupt=True,
        updated_input={"command": "ls -a"},
    ),
    PermissionDecision("toolu_2", "Read", "allow"),
    ToolResult("toolu_1", "add", "3"),
    ToolResult(
        "toolu_2",
        "Read",
        [TextBlock("a"), ImageBlock({"type": "url", "url": "https://x/y.png"})],
        is_error=True,
    ),
    ApiRetry(1, 10, 0.592, 529, "overloaded", "overloaded_error"),
    ApiRetry(2, 2, 1.5),
    RateLimit("allowed", "1771606800", {"rateLimitType": "five_hour"}),
    RateLimit(),
    Result(
        session_id="s-1",
        stop_reason="end_turn",
        text="done",
        usage=Usage(
            10,
            5,
            2,
            3,
            CacheCreation(1, 1),
            service_tier="standard",
            inference_geo="global",
            speed="fast",
            server_tool_use={"web_search_requests": 2, "web_fetch_requests": 0},
            output_tokens_details={"thinking_tokens": 4},
            extra={"iterations": [{"type": "message", "input_tokens": 10}]},
        ),
        cost_usd=0.049448,
        duration_s=1.25,
        num_turns=2,
    ),
    Result(
        is_error=True,
        error=TurnError("api_status", "Overloaded", status_code=529, request_id="req_1"),
    ),
    Unknown("api", {"type": "web_search_tool_result", "content": [{"x": None}]}),
    Unknown("cli", {"type": "system", "subtype": "session_state_changed"}),
    Unknown("api", {"type": "sparkle_delta", "sparkle": "*"}, index=4),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_round_trips(event: Event) -> None:
    data = encode_event(event)
    decoded = decode_event(data)
    assert decoded == event
    assert type(decoded) is type(event)
    assert decode_event(data.decode()) == event


def test_every_event_type_is_covered() -> None:
    assert {type(e) for e in EVENTS} == set(get_args(Event))


@pytest.mark.parametrize(
    ("event", "tag"),
    [
        (TextDelta("x"), "text_delta"),
        (Text("x"), "text"),
        (ToolUse("t", "n", {}), "tool_use"),
        (Result(), "result"),
        (Unknown("api", {}), "unknown"),
        (SessionStarted(backend="api"), "session_started"),
        (PermissionDecision("t", "n", "allow"), "permission_decision"),
    ],
)
def test_events_are_tagged_by_type(event: Event, tag: str) -> None:
    obj = msgspec.json.decode(encode_event(event), type=dict[str, Any])
    assert obj["type"] == tag


def test_decode_event_rejects_unknown_tags_with_the_library_error() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_event(b'{"type":"nonsense"}')
    assert info.value.raw == b'{"type":"nonsense"}'
    assert isinstance(info.value.__cause__, msgspec.ValidationError)


# --------------------------------------------------------------------------- blocks and messages

ALL_BLOCKS: list[ContentBlock] = [
    TextBlock("hi", citations=[{"type": "char_location", "cited_text": "h"}]),
    TextBlock("cached", cache_control={"type": "ephemeral"}),
    ImageBlock({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}),
    DocumentBlock(
        {"type": "text", "media_type": "text/plain", "data": "doc"},
        title="Doc",
        citations={"enabled": True},
    ),
    ToolUseBlock("toolu_1", "get_weather", {"city": "Paris"}),
    ToolUseBlock("toolu_3", "list", {}, caller={"type": "direct"}, toolset_name="files"),
    ToolResultBlock("toolu_1", "sunny"),
    ToolResultBlock("toolu_2", [TextBlock("bad")], is_error=True),
    ThinkingBlock("think", "sig"),
    RedactedThinkingBlock("EmwKAhgBEgy3"),
    ServerToolUseBlock("srvtoolu_1", "web_search", {"query": "q"}),
    ServerToolUseBlock(
        "srvtoolu_2",
        "code_execution",
        {"code": "1"},
        caller={"type": "code_execution_20250825", "tool_id": "srvtoolu_1"},
    ),
    UnknownBlock({"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}),
]

EXPECTED_WIRE: list[dict[str, Any]] = [
    {"type": "text", "text": "hi", "citations": [{"type": "char_location", "cited_text": "h"}]},
    {"type": "text", "text": "cached", "cache_control": {"type": "ephemeral"}},
    {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    },
    {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "doc"},
        "title": "Doc",
        "citations": {"enabled": True},
    },
    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    {
        "type": "tool_use",
        "id": "toolu_3",
        "name": "list",
        "input": {},
        "caller": {"type": "direct"},
        "toolset_name": "files",
    },
    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
    {
        "type": "tool_result",
        "tool_use_id": "toolu_2",
        "content": [{"type": "text", "text": "bad"}],
        "is_error": True,
    },
    {"type": "thinking", "thinking": "think", "signature": "sig"},
    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3"},
    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
    {
        "type": "server_tool_use",
        "id": "srvtoolu_2",
        "name": "code_execution",
        "input": {"code": "1"},
        "caller": {"type": "code_execution_20250825", "tool_id": "srvtoolu_1"},
    },
    {
        "type": "unknown",
        "raw": {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
    },
]


def _has_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


def test_message_with_every_block_type_encodes_exactly() -> None:
    message = Message(role="assistant", content=list(ALL_BLOCKS))
    obj = msgspec.json.decode(msgspec.json.encode(message), type=dict[str, Any])
    assert obj == {"role": "assistant", "content": EXPECTED_WIRE}
    assert not _has_null(obj)


def test_every_block_class_is_covered() -> None:
    assert {type(b) for b in ALL_BLOCKS} == set(get_args(ContentBlock))


def test_message_round_trips_via_msgspec() -> None:
    message = Message(
        role="assistant",
        content=list(ALL_BLOCKS),
        id="msg_1",
        model="claude-opus-5-5",
        stop_reason="end_turn",
        usage=Usage(3, 4, cache_creation=CacheCreation(0, 0)),
        stop_details={"type": "refusal", "category": None, "explanation": None},
        container={"id": "container_1", "expires_at": "2026-12-03T17:00:00Z"},
    )
    data = msgspec.json.encode(message)
    assert msgspec.json.decode(data, type=Message) == message
    assert msgspec.convert(msgspec.to_builtins(message), Message) == message
    obj = msgspec.json.decode(data, type=dict[str, Any])
    assert obj["usage"] == {"input_tokens": 3, "output_tokens": 4, "cache_creation": {}}
    assert "stop_sequence" not in obj


def test_string_message_and_helpers() -> None:
    user = Message(role="user", content="hi")
    assert msgspec.json.encode(user) == b'{"role":"user","content":"hi"}'
    assert user.text == "hi"
    assert user.tool_uses == []
    assistant = Message(role="assistant", content=list(ALL_BLOCKS))
    assert assistant.text == "hicached"
    assert assistant.tool_uses == [
        ToolUseBlock("toolu_1", "get_weather", {"city": "Paris"}),
        ToolUseBlock("toolu_3", "list", {}, caller={"type": "direct"}, toolset_name="files"),
    ]


def test_thinking_block_without_signature_omits_it() -> None:
    assert msgspec.json.encode(ThinkingBlock("t")) == b'{"type":"thinking","thinking":"t"}'


def test_blocks_are_frozen() -> None:
    block = TextBlock("x")
    with pytest.raises(AttributeError):
        block.text = "y"  # type: ignore[misc]


# --------------------------------------------------------------------------- usage


def test_usage_add() -> None:
    a = Usage(10, 20, 30, 40, CacheCreation(5, 25))
    b = Usage(1, 2, 3, 4)
    total = a + b
    assert total == Usage(11, 22, 33, 44, CacheCreation(5, 25))
    assert b + a == total
    assert Usage(1, 1) + Usage(2, 2) == Usage(3, 3)
    assert (Usage(1, 1) + Usage(2, 2)).cache_creation is None
    assert Usage(cache_creation=CacheCreation(1, 2)) + Usage(
        cache_creation=CacheCreation(10, 20)
    ) == Usage(cache_creation=CacheCreation(11, 22))


def test_usage_add_sums_breakdowns_and_keeps_the_latest_descriptions() -> None:
    first = Usage(
        1,
        1,
        service_tier="standard",
        server_tool_use={"web_search_requests": 1, "web_fetch_requests": 2},
        output_tokens_details={"thinking_tokens": 5},
        extra={"iterations": [1], "fallback_credit": {"status": "x"}},
    )
    second = Usage(
        2,
        2,
        service_tier="priority",
        inference_geo="us",
        server_tool_use={"web_search_requests": 3, "future_requests": 1, "note": "n"},
        extra={"iterations": [2]},
    )
    assert first + second == Usage(
        3,
        3,
        service_tier="priority",
        inference_geo="us",
        server_tool_use={
            "web_search_requests": 4,
            "web_fetch_requests": 2,
            "future_requests": 1,
            "note": "n",
        },
        output_tokens_details={"thinking_tokens": 5},
        extra={"iterations": [2], "fallback_credit": {"status": "x"}},
    )
    assert (Usage(1, 1) + Usage(2, 2)).extra is None


def test_usage_add_does_not_mutate() -> None:
    a = Usage(1, 1, cache_creation=CacheCreation(1, 1))
    assert a + a == Usage(2, 2, cache_creation=CacheCreation(2, 2))
    assert a == Usage(1, 1, cache_creation=CacheCreation(1, 1))


def test_prompt_tokens() -> None:
    usage = Usage(
        input_tokens=100,
        output_tokens=999,
        cache_creation_input_tokens=20,
        cache_read_input_tokens=3,
    )
    assert usage.prompt_tokens == 123
    assert Usage().prompt_tokens == 0


def test_usage_encodes_without_zero_fields() -> None:
    assert msgspec.json.encode(Usage()) == b"{}"
    assert msgspec.json.encode(Usage(output_tokens=2)) == b'{"output_tokens":2}'


@pytest.mark.parametrize(
    ("status", "word", "reason"),
    [
        (529, "overloaded", "overloaded"),  # the CLI
        (529, "overloaded_error", "overloaded"),  # the API's error type
        (None, "overloaded_error", "overloaded"),  # an error event inside a stream
        (429, "rate_limit", "rate_limit"),
        (429, "http_429", "rate_limit"),
        (500, "server_error", "server_error"),
        (503, "api_error", "server_error"),
        (502, "http_502", "server_error"),
        (401, "authentication_failed", "authentication_failed"),
        (504, "http_504", "timeout"),
        (None, "idle_timeout", "timeout"),
        (None, "timeout", "timeout"),
        (None, "connection_error", "connection"),
        (None, "stream_truncated", "connection"),
        (None, "unknown", "connection"),  # the CLI's word for a dropped connection
        (409, "http_409", "unknown"),
        (None, None, "connection"),
    ],
)
def test_retry_reasons_are_one_vocabulary(
    status: int | None, word: str | None, reason: str
) -> None:
    from claude_unified._events import RetryReason, retry_reason

    assert retry_reason(status, word) == reason
    assert reason in get_args(RetryReason)
