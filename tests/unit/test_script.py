"""Scripted steps and their pure rendering into Messages API bytes."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from claude_unified._events import (
    CacheCreation,
    RedactedThinkingBlock,
    ServerToolUseBlock,
    TextBlock,
    ToolUseBlock,
    UnknownBlock,
    Usage,
)
from claude_unified.testing import (
    Delay,
    Drop,
    StreamError,
    delay,
    drop,
    error,
    message,
    render_message,
    render_stream,
    reply,
    stream_error,
    tool_call,
    tool_calls,
)
from claude_unified.testing._script import render_error, sse_frame

decode_object = msgspec.json.Decoder(dict[str, Any])


def decoded(step_events: list[bytes]) -> list[dict[str, Any]]:
    return [decode_object.decode(event) for event in step_events]


def test_text_is_split_into_one_to_three_deltas() -> None:
    for text, count in [("hi", 1), ("a medium sentence", 2), ("x" * 100, 3)]:
        rendered = decoded(render_stream(reply(text), model="m", input_tokens=10))
        pieces = [e["delta"]["text"] for e in rendered if e["type"] == "content_block_delta"]
        assert len(pieces) == count
        assert "".join(pieces) == text


def test_event_order_and_usage() -> None:
    rendered = decoded(
        render_stream(
            reply("hello"),
            model="m",
            input_tokens=40,
            cache_read=7,
            cache_write=5,
            cache_write_1h=2,
        )
    )
    assert [e["type"] for e in rendered] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert rendered[0]["message"]["usage"] == {
        "input_tokens": 40,
        "output_tokens": 1,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 7,
        "cache_creation": {"ephemeral_5m_input_tokens": 3, "ephemeral_1h_input_tokens": 2},
    }
    assert rendered[4]["usage"]["output_tokens"] == 1
    assert rendered[4]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}


def test_complete_blocks_arrive_without_deltas() -> None:
    search_result = {
        "type": "web_search_tool_result",
        "tool_use_id": "srvtoolu_1",
        "content": [{"type": "web_search_result", "title": "T", "url": "https://example.com"}],
    }
    step = message(
        [
            RedactedThinkingBlock("EmwK"),
            ServerToolUseBlock("srvtoolu_1", "web_search", {"query": "q"}),
            UnknownBlock(search_result),
        ],
        stop_reason="end_turn",
    )
    rendered = decoded(render_stream(step, model="m", input_tokens=1))
    starts = [e["content_block"] for e in rendered if e["type"] == "content_block_start"]
    assert starts == [
        {"type": "redacted_thinking", "data": "EmwK"},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
        search_result,
    ]
    delta_indexes = {e["index"] for e in rendered if e["type"] == "content_block_delta"}
    assert delta_indexes == {1}
    final = decode_object.decode(render_message(step, model="m", input_tokens=1))
    assert final["content"][2] == search_result


def test_given_usage_and_model_are_reported_verbatim() -> None:
    usage = Usage(
        input_tokens=3,
        output_tokens=99,
        cache_creation_input_tokens=4,
        cache_creation=CacheCreation(0, 4),
    )
    final = decode_object.decode(
        render_message(reply("x", usage=usage, model="claude-other"), model="m", input_tokens=1000)
    )
    assert final["model"] == "claude-other"
    assert final["usage"]["output_tokens"] == 99
    assert final["usage"]["cache_creation"] == {
        "ephemeral_5m_input_tokens": 0,
        "ephemeral_1h_input_tokens": 4,
    }


def test_tool_ids_are_unique_and_explicit_ids_kept() -> None:
    blocks = [tool_call("t", {}).content[0] for _ in range(50)]
    ids = {block.id for block in blocks if isinstance(block, ToolUseBlock)}
    assert len(ids) == 50
    assert all(i.startswith("toolu_fake_") for i in ids)
    assert tool_call("t", {"a": 1}, id="toolu_mine").content == (
        ToolUseBlock("toolu_mine", "t", {"a": 1}),
    )
    multi = tool_calls(("a", {}), ("b", {"x": 1}), text="both")
    assert multi.stop_reason == "tool_use"
    assert [type(block) for block in multi.content] == [TextBlock, ToolUseBlock, ToolUseBlock]


def test_faults_compose() -> None:
    step = reply("hi").with_fault(delay(0.1)).with_fault(drop(after_events=3), stream_error(2))
    assert step.faults == (Delay(0.1), Drop(3), StreamError(2, "overloaded_error", "Overloaded"))
    assert reply("hi").faults == ()


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (418, "invalid_request_error"),
        (503, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_error_defaults(status: int, error_type: str) -> None:
    step = error(status, headers={"retry-after": "2"})
    assert (step.error_type, step.headers) == (error_type, (("retry-after", "2"),))
    body = decode_object.decode(render_error(step, request_id="req_1"))
    assert body == {
        "type": "error",
        "error": {"type": error_type, "message": step.message},
        "request_id": "req_1",
    }


def test_error_rejects_success_statuses() -> None:
    with pytest.raises(ValueError, match="4xx or 5xx"):
        error(200)


def test_sse_frame_names_the_event() -> None:
    data = render_stream(reply("x"), model="m", input_tokens=1)[-1]
    assert sse_frame(data) == b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
