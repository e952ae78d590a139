"""Typed wire decoders: Messages API stream events, responses, error bodies and CLI lines.

Every decoder is open-world: unknown event, block, delta, line and control-request types come
back as ``Unknown…`` values carrying the raw object, while a *known* type with a malformed body,
or input that is not JSON at all, is a ``ProtocolError`` holding the offending bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from claude_unified import _wire as w
from claude_unified._events import (
    CacheCreation,
    ContentBlock,
    DocumentBlock,
    ImageBlock,
    RedactedThinkingBlock,
    ServerToolUseBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UnknownBlock,
)
from claude_unified._exceptions import ProtocolError

_enc = msgspec.json.Encoder()

# Real, scrubbed transcripts of the pinned CLI, kept in the repository as fixtures.
TRANSCRIPTS = Path(__file__).parent.parent / "fixtures" / "cli-2.1.330"


def enc(obj: Any) -> bytes:
    return _enc.encode(obj)


def api(obj: dict[str, Any]) -> w.ApiEvent:
    return w.decode_api_event(enc(obj))


def transcript_files() -> list[Path]:
    if not TRANSCRIPTS.is_dir():
        return []
    return sorted(TRANSCRIPTS.glob("*.jsonl"))


def cli_lines(path: Path) -> list[bytes]:
    """The stdout lines the CLI wrote, as bytes, from either transcript format."""
    lines: list[bytes] = []
    for raw in path.read_bytes().splitlines():
        if not raw.strip():
            continue
        if path.name.endswith(".stdout.jsonl"):
            lines.append(raw)
            continue
        record = msgspec.json.decode(raw, type=dict[str, Any])
        if record["dir"] == "from_cli":
            lines.append(enc(record["msg"]))
    return lines


# --------------------------------------------------------------------------- stream events

MESSAGE_START = {
    "type": "message_start",
    "message": {
        "id": "msg_01Xy",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 472,
            "output_tokens": 1,
            "cache_creation_input_tokens": 7,
            "cache_read_input_tokens": 9,
            "cache_creation": {"ephemeral_5m_input_tokens": 3, "ephemeral_1h_input_tokens": 4},
        },
    },
}


def test_message_start() -> None:
    event = api(MESSAGE_START)
    assert isinstance(event, w.MessageStartEvent)
    head = event.message
    assert (head.id, head.model, head.role) == ("msg_01Xy", "claude-sonnet-5-5", "assistant")
    assert head.stop_reason is None
    assert head.usage == w.WireUsage(
        input_tokens=472,
        output_tokens=1,
        cache_creation_input_tokens=7,
        cache_read_input_tokens=9,
        cache_creation=CacheCreation(3, 4),
    )


def test_message_delta_stop_ping_error() -> None:
    delta = api(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "stop_sequence", "stop_sequence": "END"},
            "usage": {"output_tokens": 61, "input_tokens": None},
        }
    )
    assert delta == w.MessageDeltaEvent(
        delta=w.MessageDeltaBody(stop_reason="stop_sequence", stop_sequence="END"),
        usage=w.WireUsage(output_tokens=61),
    )
    assert api({"type": "message_stop"}) == w.MessageStopEvent()
    assert api({"type": "ping"}) == w.PingEvent()
    error = api({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert error == w.ErrorEvent(w.ErrorDetail(type="overloaded_error", message="Overloaded"))
    stop = api({"type": "content_block_stop", "index": 3})
    assert stop == w.ContentBlockStopEvent(3)


def test_message_delta_without_usage() -> None:
    event = api({"type": "message_delta", "delta": {"stop_reason": "end_turn"}})
    assert isinstance(event, w.MessageDeltaEvent)
    assert event.delta.stop_reason == "end_turn"
    assert event.usage is None


CITATION = {
    "type": "char_location",
    "cited_text": "sunny",
    "document_index": 0,
    "document_title": "Report",
    "start_char_index": 10,
    "end_char_index": 15,
}


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        ({"type": "text_delta", "text": "Checking"}, w.TextDeltaBody("Checking")),
        (
            {"type": "input_json_delta", "partial_json": '{"city": "Par'},
            w.InputJsonDeltaBody('{"city": "Par'),
        ),
        ({"type": "input_json_delta", "partial_json": ""}, w.InputJsonDeltaBody("")),
        (
            {"type": "thinking_delta", "thinking": "The user wants"},
            w.ThinkingDeltaBody("The user wants"),
        ),
        (
            {"type": "signature_delta", "signature": "EqQBCgIYAhIM"},
            w.SignatureDeltaBody("EqQBCgIYAhIM"),
        ),
        ({"type": "citations_delta", "citation": CITATION}, w.CitationsDeltaBody(CITATION)),
    ],
    ids=lambda v: v.get("type") if isinstance(v, dict) else type(v).__name__,
)
def test_every_delta_type(delta: dict[str, Any], expected: w.DeltaBody) -> None:
    event = api({"type": "content_block_delta", "index": 2, "delta": delta})
    assert event == w.ContentBlockDeltaEvent(2, expected)


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ({"type": "text", "text": ""}, TextBlock("")),
        (
            {"type": "text", "text": "hi", "citations": [CITATION]},
            TextBlock("hi", citations=[CITATION]),
        ),
        (
            {"type": "tool_use", "id": "toolu_01Ab", "name": "get_weather", "input": {}},
            ToolUseBlock("toolu_01Ab", "get_weather", {}),
        ),
        (
            {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {}},
            ServerToolUseBlock("srvtoolu_01", "web_search", {}),
        ),
        ({"type": "thinking", "thinking": ""}, ThinkingBlock("")),
        (
            {"type": "thinking", "thinking": "hm", "signature": "sig"},
            ThinkingBlock("hm", "sig"),
        ),
        (
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3"},
            RedactedThinkingBlock("EmwKAhgBEgy3"),
        ),
        (
            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
            ImageBlock({"type": "url", "url": "https://x/y.png"}),
        ),
        (
            {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "abc"},
                "title": "Doc",
                "citations": {"enabled": True},
            },
            DocumentBlock(
                {"type": "text", "media_type": "text/plain", "data": "abc"},
                title="Doc",
                citations={"enabled": True},
            ),
        ),
        (
            {
                "type": "tool_result",
                "tool_use_id": "toolu_1",
                "content": [{"type": "text", "text": "ok"}],
                "is_error": True,
            },
            ToolResultBlock("toolu_1", [TextBlock("ok")], is_error=True),
        ),
    ],
    ids=lambda v: v.get("type") if isinstance(v, dict) else type(v).__name__,
)
def test_every_block_type(block: dict[str, Any], expected: ContentBlock) -> None:
    event = api({"type": "content_block_start", "index": 1, "content_block": block})
    assert event == w.ContentBlockStartEvent(1, expected)
    assert w.decode_block(enc(block)) == expected


WEB_SEARCH_RESULT = {
    "type": "web_search_tool_result",
    "tool_use_id": "srvtoolu_01",
    "content": [
        {
            "type": "web_search_result",
            "title": "T",
            "url": "https://example.com",
            "encrypted_content": "Eq…",
        }
    ],
}


def test_unknown_block_is_kept_raw() -> None:
    event = api({"type": "content_block_start", "index": 2, "content_block": WEB_SEARCH_RESULT})
    assert isinstance(event, w.ContentBlockStartEvent)
    assert event.index == 2
    assert event.content_block == UnknownBlock(raw=WEB_SEARCH_RESULT)


def test_unknown_delta_is_kept_raw() -> None:
    delta = {"type": "fancy_delta", "payload": [1, 2, {"x": None}]}
    event = api({"type": "content_block_delta", "index": 0, "delta": delta})
    assert event == w.ContentBlockDeltaEvent(0, w.UnknownDeltaBody(raw=delta))


def test_unknown_event_is_kept_raw() -> None:
    raw = {"type": "message_annotation", "index": 4, "note": {"k": "v"}}
    assert api(raw) == w.UnknownApiEvent(raw=raw)


def test_event_without_type_is_unknown() -> None:
    raw = {"index": 4}
    assert api(raw) == w.UnknownApiEvent(raw=raw)


def test_decode_accepts_str_and_raw() -> None:
    data = '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"é"}}'
    expected = w.ContentBlockDeltaEvent(0, w.TextDeltaBody("é"))
    assert w.decode_api_event(data) == expected
    assert w.decode_api_event(msgspec.Raw(data.encode())) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type":"content_block_stop"}',
        b'{"type":"content_block_stop","index":"zero"}',
        b'{"type":"message_start","message":{"usage":{"input_tokens":"many"}}}',
        b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta"}}',
        b'{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":1}}',
        b'{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t"}}',
        b'{"type":"content_block_start","content_block":{"type":"text","text":""}}',
        b'{"type":"error","error":"overloaded"}',
    ],
)
def test_known_type_with_malformed_body_raises(raw: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        w.decode_api_event(raw)
    assert info.value.raw in (raw, *_nested_parts(raw))
    assert "malformed" in str(info.value)


def _nested_parts(raw: bytes) -> list[bytes]:
    """The nested delta or block of an event, which the error may carry instead."""
    obj = msgspec.json.decode(raw, type=dict[str, Any])
    return [enc(obj[key]) for key in ("delta", "content_block") if key in obj]


@pytest.mark.parametrize("raw", [b"not json", b"", b'{"type":', b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_non_json_or_non_object_raises_with_bytes(raw: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        w.decode_api_event(raw)
    assert info.value.raw == raw


def test_malformed_str_input_carries_utf8_bytes() -> None:
    with pytest.raises(ProtocolError) as info:
        w.decode_api_event("{nope é")
    assert info.value.raw == "{nope é".encode()


def test_malformed_delta_error_carries_the_delta() -> None:
    raw = b'{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta"}}'
    with pytest.raises(ProtocolError) as info:
        w.decode_api_event(raw)
    assert info.value.raw == b'{"type":"signature_delta"}'


# --------------------------------------------------------------------------- non-streaming


RESPONSE = {
    "id": "msg_01Xy",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-5-5",
    "content": [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_01Ab", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 472,
        "output_tokens": 61,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
    },
}


def test_decode_message_response() -> None:
    response = w.decode_message_response(enc(RESPONSE))
    assert response.id == "msg_01Xy"
    assert response.model == "claude-sonnet-5-5"
    assert response.stop_reason == "tool_use"
    assert response.content == [
        TextBlock("Let me check."),
        ToolUseBlock("toolu_01Ab", "get_weather", {"city": "Paris"}),
    ]
    assert response.usage.input_tokens == 472
    assert response.usage.output_tokens == 61
    assert response.usage.cache_creation == CacheCreation(0, 0)


def test_decode_message_response_with_unknown_blocks() -> None:
    body = {
        **RESPONSE,
        "content": [
            {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {}},
            WEB_SEARCH_RESULT,
            {"type": "text", "text": "Found it."},
        ],
        "stop_reason": "end_turn",
    }
    response = w.decode_message_response(enc(body))
    assert response.content == [
        ServerToolUseBlock("srvtoolu_01", "web_search", {}),
        UnknownBlock(raw=WEB_SEARCH_RESULT),
        TextBlock("Found it."),
    ]
    assert response.stop_reason == "end_turn"
    assert response.usage.input_tokens == 472


@pytest.mark.parametrize(
    "raw",
    [
        b"<html>502 Bad Gateway</html>",
        b'{"content":[{"type":"text"}]}',
        b'{"content":[{"type":"mystery"}],"usage":{"input_tokens":"x"}}',
    ],
)
def test_malformed_message_response_raises(raw: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        w.decode_message_response(raw)
    assert info.value.raw in (raw, b'{"type":"text"}')


def test_decode_error_body() -> None:
    body = {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Slow down", "details": None},
        "request_id": "req_011C",
    }
    parsed = w.decode_error_body(enc(body))
    assert parsed is not None
    assert parsed.error == w.ErrorDetail(type="rate_limit_error", message="Slow down")
    assert parsed.request_id == "req_011C"


@pytest.mark.parametrize(
    "raw",
    [b"<html><body>413 Request Entity Too Large</body></html>", b"", b"[]", b'{"error": 5}'],
)
def test_decode_error_body_of_other_shapes_is_none(raw: bytes) -> None:
    assert w.decode_error_body(raw) is None


def test_decode_count_tokens() -> None:
    assert w.decode_count_tokens(b'{"input_tokens":2095}').input_tokens == 2095
    with pytest.raises(ProtocolError) as info:
        w.decode_count_tokens(b'{"tokens":1}')
    assert info.value.raw == b'{"tokens":1}'


# --------------------------------------------------------------------------- CLI lines: synthetic


def test_control_request_can_use_tool() -> None:
    line = w.decode_cli_line(
        enc(
            {
                "type": "control_request",
                "request_id": "9891",
                "request": {
                    "subtype": "can_use_tool",
                    "tool_name": "Bash",
                    "display_name": "Bash",
                    "input": {"command": "touch a.txt"},
                    "permission_suggestions": [],
                    "blocked_path": "/work/project/a.txt",
                    "tool_use_id": "toolu_8e11",
                },
            }
        )
    )
    assert line == w.ControlRequestLine(
        "9891",
        w.CanUseToolRequest(
            tool_name="Bash",
            input={"command": "touch a.txt"},
            tool_use_id="toolu_8e11",
            blocked_path="/work/project/a.txt",
            permission_suggestions=[],
        ),
    )


def test_unknown_control_request_subtype() -> None:
    request = {"subtype": "elicit_user", "question": "why?", "options": [1, 2]}
    line = w.decode_cli_line(
        enc({"type": "control_request", "request_id": "r1", "request": request})
    )
    assert line == w.ControlRequestLine("r1", w.UnknownControlRequest("elicit_user", request))


def test_malformed_control_request_stays_answerable() -> None:
    # A control request must always be answered, so a malformed body keeps its request id and
    # comes back raw (the backend answers it with an error) instead of failing the whole line.
    request = {"subtype": "can_use_tool", "tool_name": "Bash"}
    raw = enc({"type": "control_request", "request_id": "r", "request": request})
    line = w.decode_cli_line(raw)
    assert line == w.ControlRequestLine("r", w.UnknownControlRequest("can_use_tool", request))


def test_control_request_without_request_id_raises() -> None:
    raw = enc({"type": "control_request", "request": {"subtype": "hook_callback"}})
    with pytest.raises(ProtocolError) as info:
        w.decode_cli_line(raw)
    assert info.value.raw == raw


def test_unknown_line_types_are_kept_raw() -> None:
    for raw in (
        {"type": "tool_progress", "tool_use_id": "t", "elapsed": 1.5},
        {"type": "auth_status", "isAuthenticating": False, "output": ["ok"]},
        {"no_type": True},
    ):
        assert w.decode_cli_line(enc(raw)) == w.UnknownLine(raw=raw)


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "system", "subtype": "hook_started", "hook_id": "h", "hook_name": "PreToolUse"},
        {"type": "system", "subtype": "model_fallback", "trigger": "overloaded"},
        # a field whose type clashes with a modelled one must not break an unmodelled subtype
        {"type": "system", "subtype": "compact_boundary", "status": {"pre_tokens": 9}},
        {"type": "system", "subtype": "task_notification", "error": {"code": 1}},
    ],
    ids=lambda raw: str(raw["subtype"]),
)
def test_unmodelled_system_subtypes_are_unknown(raw: dict[str, Any]) -> None:
    assert w.decode_cli_line(enc(raw)) == w.UnknownLine(raw=raw)


def test_system_permission_denied() -> None:
    raw = {
        "type": "system",
        "subtype": "permission_denied",
        "tool_name": "Bash",
        "tool_use_id": "toolu_b406",
        "message": "needs approval",
    }
    line = w.decode_cli_line(enc(raw))
    assert isinstance(line, w.SystemLine)
    assert (line.tool_name, line.tool_use_id, line.message) == (
        "Bash",
        "toolu_b406",
        "needs approval",
    )


def test_assistant_line_with_unknown_block() -> None:
    raw = {
        "type": "assistant",
        "message": {
            "id": "msg_1",
            "model": "claude-opus-5-5",
            "content": [WEB_SEARCH_RESULT, {"type": "text", "text": "done"}],
            "stop_reason": None,
            "usage": {"input_tokens": 5, "output_tokens": 1},
        },
        "parent_tool_use_id": None,
        "session_id": "s",
    }
    line = w.decode_cli_line(enc(raw))
    assert isinstance(line, w.AssistantLine)
    assert line.message.id == "msg_1"
    assert line.message.content == [UnknownBlock(raw=WEB_SEARCH_RESULT), TextBlock("done")]
    assert line.message.usage == w.WireUsage(input_tokens=5, output_tokens=1)
    assert line.session_id == "s"


def test_user_line_with_unknown_block_in_content() -> None:
    raw = {
        "type": "user",
        "message": {"role": "user", "content": [{"type": "search_result", "title": "t"}]},
        "isReplay": True,
    }
    line = w.decode_cli_line(enc(raw))
    assert isinstance(line, w.UserLine)
    assert line.is_replay is True
    assert line.message.content == [UnknownBlock(raw={"type": "search_result", "title": "t"})]


def test_stream_event_line_with_unknown_event() -> None:
    inner = {"type": "brand_new_event", "x": 1}
    line = w.decode_cli_line(
        enc({"type": "stream_event", "event": inner, "parent_tool_use_id": "toolu_9"})
    )
    assert line == w.StreamEventLine(w.UnknownApiEvent(raw=inner), parent_tool_use_id="toolu_9")


def test_rate_limit_line() -> None:
    info = {"status": "allowed", "resetsAt": 1771606800, "rateLimitType": "five_hour"}
    line = w.decode_cli_line(enc({"type": "rate_limit_event", "rate_limit_info": info}))
    assert line == w.RateLimitLine(rate_limit_info=info)


@pytest.mark.parametrize(
    "raw",
    [
        b"[claude-code] auth helper says hi",
        b"",
        b"[1, 2, 3]",
        b'{"type":"result","is_error":"nope"}',
        b'{"type":"control_cancel_request"}',
        b'{"type":"assistant","message":{"content":[{"type":"text"}]}}',
    ],
)
def test_bad_cli_lines_raise_with_bytes(raw: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        w.decode_cli_line(raw)
    assert info.value.raw in (raw, b'{"type":"text"}')


# --------------------------------------------------------------------------- CLI lines: real


def _check_system(raw: dict[str, Any], line: w.CliLine) -> None:
    subtype = raw["subtype"]
    if subtype not in w.MODELLED_SYSTEM_SUBTYPES:
        assert line == w.UnknownLine(raw=raw)
        return
    assert isinstance(line, w.SystemLine)
    assert line.subtype == subtype
    assert line.session_id == raw.get("session_id")
    assert line.uuid == raw.get("uuid")
    if subtype == "init":
        assert line.permission_mode == raw["permissionMode"]
        assert line.permission_mode in ("default", "acceptEdits")
        assert line.model == raw["model"]
        assert (line.model or "").startswith("claude-")
        assert line.cwd == raw["cwd"] == "/work/project"
        assert line.tools == raw["tools"]
        assert "Bash" in (line.tools or [])
        assert line.claude_code_version == raw["claude_code_version"] == "2.1.330"
    elif subtype == "api_retry":
        assert line.attempt == raw["attempt"]
        assert line.max_retries == raw["max_retries"]
        assert line.retry_delay_ms == raw["retry_delay_ms"]
        assert line.error_status == raw["error_status"]
        assert line.error == raw["error"]


def _check_message(raw: dict[str, Any], line: w.CliLine) -> None:
    content = raw["message"]["content"]
    if raw["type"] == "assistant":
        assert isinstance(line, w.AssistantLine)
        assert line.message.id == raw["message"]["id"]
        assert line.message.model == raw["message"]["model"]
        assert line.error == raw.get("error")
        assert line.api_error_status == raw.get("api_error_status")
        blocks: list[ContentBlock] = line.message.content
    else:
        assert isinstance(line, w.UserLine)
        assert line.is_replay == raw.get("isReplay", False)
        if isinstance(content, str):
            assert line.message.content == content
            return
        assert not isinstance(line.message.content, str)
        blocks = line.message.content
    assert [msgspec.to_builtins(b)["type"] for b in blocks] == [b["type"] for b in content]
    for block, raw_block in zip(blocks, content, strict=True):
        if isinstance(block, TextBlock):
            assert block.text == raw_block["text"]
        elif isinstance(block, ToolUseBlock):
            assert (block.id, block.name, block.input) == (
                raw_block["id"],
                raw_block["name"],
                raw_block["input"],
            )
        elif isinstance(block, ToolResultBlock):
            assert block.tool_use_id == raw_block["tool_use_id"]
            assert block.is_error == raw_block.get("is_error", False)


def _check_result(raw: dict[str, Any], line: w.CliLine) -> None:
    assert isinstance(line, w.ResultLine)
    assert line.subtype == raw["subtype"]
    assert line.is_error == raw["is_error"]
    assert line.result == raw.get("result")
    assert line.stop_reason == raw.get("stop_reason")
    assert line.terminal_reason == raw["terminal_reason"]
    assert line.total_cost_usd == raw["total_cost_usd"]
    assert line.num_turns == raw["num_turns"]
    assert line.duration_ms == raw["duration_ms"]
    assert line.api_error_status == raw.get("api_error_status")
    assert line.errors == raw.get("errors", [])
    assert line.session_id == raw["session_id"]
    assert line.usage is not None
    assert line.usage.input_tokens == raw["usage"]["input_tokens"]
    assert line.usage.output_tokens == raw["usage"]["output_tokens"]


def _check_control(raw: dict[str, Any], line: w.CliLine) -> None:
    if raw["type"] == "control_cancel_request":
        assert line == w.ControlCancelLine(raw["request_id"])
        return
    if raw["type"] == "control_response":
        assert isinstance(line, w.ControlResponseLine)
        body = raw["response"]
        assert line.response.request_id == body["request_id"]
        assert line.response.subtype == body["subtype"]
        assert line.response.response == body.get("response")
        assert line.response.error == body.get("error")
        assert line.response.error_code == body.get("error_code")
        return
    assert isinstance(line, w.ControlRequestLine)
    assert line.request_id == raw["request_id"]
    request = raw["request"]
    body = line.request
    if request["subtype"] == "can_use_tool":
        assert isinstance(body, w.CanUseToolRequest)
        assert body.tool_name == request["tool_name"]
        assert body.input == request["input"]
        assert body.tool_use_id == request["tool_use_id"]
        assert body.blocked_path == request.get("blocked_path")
    elif request["subtype"] == "mcp_message":
        assert isinstance(body, w.McpMessageRequest)
        assert body.server_name == request["server_name"] == "calc"
        assert body.message == request["message"]
    elif request["subtype"] == "hook_callback":
        assert isinstance(body, w.HookCallbackRequest)
        assert body.callback_id == request["callback_id"]
        assert body.input == request["input"]
        assert body.tool_use_id == request.get("tool_use_id")
    else:
        assert body == w.UnknownControlRequest(request["subtype"], request)


_EVENT_CLASSES: dict[str, type] = {
    "message_start": w.MessageStartEvent,
    "content_block_start": w.ContentBlockStartEvent,
    "content_block_delta": w.ContentBlockDeltaEvent,
    "content_block_stop": w.ContentBlockStopEvent,
    "message_delta": w.MessageDeltaEvent,
    "message_stop": w.MessageStopEvent,
}


def _check_line(raw: dict[str, Any], line: w.CliLine) -> None:
    kind = raw.get("type")
    if kind == "system":
        _check_system(raw, line)
    elif kind in ("assistant", "user"):
        _check_message(raw, line)
    elif kind == "result":
        _check_result(raw, line)
    elif kind in ("control_request", "control_response", "control_cancel_request"):
        _check_control(raw, line)
    elif kind == "stream_event":
        assert isinstance(line, w.StreamEventLine)
        assert isinstance(line.event, _EVENT_CLASSES[raw["event"]["type"]])
        assert line.parent_tool_use_id is None
        assert line.session_id == raw["session_id"]
    elif kind == "command_lifecycle":
        assert line == w.CommandLifecycleLine(raw["command_uuid"], raw["state"])
    else:
        assert line == w.UnknownLine(raw=raw)


@pytest.mark.parametrize("path", transcript_files(), ids=lambda p: p.name)
def test_every_transcript_line_decodes(path: Path) -> None:
    lines = cli_lines(path)
    assert lines, f"{path.name} has no CLI output"
    seen: set[type] = set()
    for data in lines:
        line = w.decode_cli_line(data)
        _check_line(msgspec.json.decode(data, type=dict[str, Any]), line)
        seen.add(type(line))
    assert w.ResultLine in seen or w.ControlResponseLine in seen


def _all_lines() -> list[tuple[dict[str, Any], w.CliLine]]:
    out = []
    for path in transcript_files():
        for data in cli_lines(path):
            out.append((msgspec.json.decode(data, type=dict[str, Any]), w.decode_cli_line(data)))
    return out


def test_transcripts_cover_every_line_kind() -> None:
    classes = {type(line) for _, line in _all_lines()}
    assert classes >= {
        w.SystemLine,
        w.AssistantLine,
        w.UserLine,
        w.StreamEventLine,
        w.ResultLine,
        w.ControlRequestLine,
        w.ControlResponseLine,
        w.ControlCancelLine,
        w.CommandLifecycleLine,
        w.UnknownLine,
    }
    bodies = {
        type(line.request) for _, line in _all_lines() if isinstance(line, w.ControlRequestLine)
    }
    assert bodies == {w.CanUseToolRequest, w.McpMessageRequest, w.HookCallbackRequest}


def test_real_init_line() -> None:
    data = cli_lines(TRANSCRIPTS / "oneshot-text.stdout.jsonl")[0]
    line = w.decode_cli_line(data)
    assert isinstance(line, w.SystemLine)
    assert line.subtype == "init"
    assert line.session_id == "6775abb4-e6c4-4348-8723-81ea1039d466"
    assert line.permission_mode == "default"
    assert line.model == "claude-opus-5-5"
    assert line.claude_code_version == "2.1.330"
    assert line.tools is not None
    assert line.tools[:2] == ["Task", "Bash"]


def test_real_api_retry_and_error_result() -> None:
    lines = [
        w.decode_cli_line(d) for d in cli_lines(TRANSCRIPTS / "error-529-forever.stdout.jsonl")
    ]
    retries = [x for x in lines if isinstance(x, w.SystemLine) and x.subtype == "api_retry"]
    assert [(r.attempt, r.retry_delay_ms, r.error_status, r.error) for r in retries] == [
        (1, 592, 529, "overloaded"),
        (2, 1007, 529, "overloaded"),
    ]
    assert all(r.max_retries == 10 for r in retries)
    synthetic = lines[3]
    assert isinstance(synthetic, w.AssistantLine)
    assert synthetic.message.model == "<synthetic>"
    assert synthetic.error == "server_error"
    assert synthetic.api_error_status == 529
    result = lines[4]
    assert isinstance(result, w.ResultLine)
    assert (result.subtype, result.is_error, result.api_error_status) == ("success", True, 529)
    assert result.terminal_reason == "api_error"
    assert result.total_cost_usd == 0


def test_real_control_cancel_request() -> None:
    lines = [
        w.decode_cli_line(d) for d in cli_lines(TRANSCRIPTS / "control-cancel-request.stdio.jsonl")
    ]
    request = next(x for x in lines if isinstance(x, w.ControlRequestLine))
    cancel = next(x for x in lines if isinstance(x, w.ControlCancelLine))
    assert cancel.request_id == request.request_id == "2c1e4411-dca9-482c-ba48-9c35b11e0eb8"
    assert isinstance(request.request, w.CanUseToolRequest)
    assert request.request.input == {
        "command": "touch cancel_me.txt",
        "description": "probe command",
    }


def test_real_control_error_responses() -> None:
    path = TRANSCRIPTS / "control-set-mode-model-unknown.stdio.jsonl"
    lines = [w.decode_cli_line(d) for d in cli_lines(path)]
    errors = [
        x.response
        for x in lines
        if isinstance(x, w.ControlResponseLine) and x.response.subtype == "error"
    ]
    assert [(e.request_id, e.error_code) for e in errors] == [
        ("req_5_probe", "invalid_mode"),
        ("req_6_probe", "unsupported_request"),
    ]
    assert errors[1].error == "Unsupported control request subtype: bogus_subtype_xyz"


def test_real_unmodelled_subtype_keeps_raw() -> None:
    lines = [w.decode_cli_line(d) for d in cli_lines(TRANSCRIPTS / "sdk-mcp-hooks.wire.jsonl")]
    unknown = [x for x in lines if isinstance(x, w.UnknownLine)]
    assert unknown
    assert {x.raw["subtype"] for x in unknown} == {"session_state_changed"}
    assert {x.raw["state"] for x in unknown} == {"running", "idle", "requires_action"}
    assert all(x.raw["sdk_host_only"] is True for x in unknown)


def test_real_stream_events_wrap_api_events() -> None:
    path = TRANSCRIPTS / "partial-messages-tool.stdio.jsonl"
    events = [
        line.event
        for line in map(w.decode_cli_line, cli_lines(path))
        if isinstance(line, w.StreamEventLine)
    ]
    starts = [e for e in events if isinstance(e, w.MessageStartEvent)]
    assert [s.message.id for s in starts] == [
        "msg_fake_02cdc67a16674c6c87d9",
        "msg_fake_8b39c73048b74d459098",
        "msg_fake_a2e2b73f12c74b0d9649",
    ]
    json_parts = [
        e.delta.partial_json
        for e in events
        if isinstance(e, w.ContentBlockDeltaEvent) and isinstance(e.delta, w.InputJsonDeltaBody)
    ]
    assert msgspec.json.decode("".join(json_parts)) == {
        "command": "echo hi-from-bash",
        "description": "probe command",
    }
    tool_starts = [
        e.content_block
        for e in events
        if isinstance(e, w.ContentBlockStartEvent) and isinstance(e.content_block, ToolUseBlock)
    ]
    assert [(b.name, b.input) for b in tool_starts] == [("Bash", {})]
    assert not any(isinstance(e, w.PingEvent | w.UnknownApiEvent) for e in events)


def test_real_command_lifecycle() -> None:
    path = TRANSCRIPTS / "uuid-command-lifecycle.stdio.jsonl"
    states = [
        (line.command_uuid[-1], line.state)
        for line in map(w.decode_cli_line, cli_lines(path))
        if isinstance(line, w.CommandLifecycleLine)
    ]
    assert states[:2] == [("1", "queued"), ("1", "started")]
    assert ("3", "completed") in states
    assert len(states) == 9
