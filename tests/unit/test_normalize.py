"""Reducers from wire frames to public events: MessageAccumulator and CliNormalizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from claude_unified import _wire as w
from claude_unified._events import (
    ApiRetry,
    Event,
    Message,
    PermissionDecision,
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
    ToolUse,
    ToolUseBlock,
    Unknown,
    UnknownBlock,
    Usage,
)
from claude_unified._exceptions import ProtocolError, ToolInputError
from claude_unified._normalize import CliNormalizer, MessageAccumulator, overlay_usage

_enc = msgspec.json.Encoder()

# Real, scrubbed transcripts of the pinned CLI, kept in the repository as fixtures.
TRANSCRIPTS = Path(__file__).parent.parent / "fixtures" / "cli-2.1.330"


# --------------------------------------------------------------------------- builders


def message_start(
    msg_id: str = "msg_1", model: str = "claude-sonnet-5-5", **usage: int | None
) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage or {"input_tokens": 10, "output_tokens": 1},
        },
    }


def start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def delta(index: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": body}


def text_delta(index: int, text: str) -> dict[str, Any]:
    return delta(index, {"type": "text_delta", "text": text})


def json_delta(index: int, partial: str) -> dict[str, Any]:
    return delta(index, {"type": "input_json_delta", "partial_json": partial})


def stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(stop_reason: str | None = None, **usage: int | None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
    }
    if usage:
        event["usage"] = usage
    return event


MESSAGE_STOP: dict[str, Any] = {"type": "message_stop"}
PING: dict[str, Any] = {"type": "ping"}


def decoded(*objs: dict[str, Any]) -> list[w.ApiEvent]:
    return [w.decode_api_event(_enc.encode(obj)) for obj in objs]


def feed(acc: MessageAccumulator, *objs: dict[str, Any]) -> list[Event]:
    events: list[Event] = []
    for event in decoded(*objs):
        events += acc.feed(event)
    return events


# --------------------------------------------------------------------------- text


def test_text_streams_deltas_then_one_text() -> None:
    acc = MessageAccumulator()
    events = feed(
        acc,
        message_start(),
        start(0, {"type": "text", "text": ""}),
        text_delta(0, "Hel"),
        text_delta(0, "lo"),
        text_delta(0, ", world"),
    )
    assert events == [TextDelta("Hel", 0), TextDelta("lo", 0), TextDelta(", world", 0)]
    assert acc.partial_text == "Hello, world"
    assert acc.message().content == []  # nothing finished yet
    assert feed(acc, stop(0)) == [Text("Hello, world", 0)]
    assert feed(acc, message_delta("end_turn", output_tokens=5), MESSAGE_STOP) == []
    assert acc.complete
    message = acc.message()
    assert message == Message(
        role="assistant",
        content=[TextBlock("Hello, world")],
        id="msg_1",
        model="claude-sonnet-5-5",
        stop_reason="end_turn",
        usage=Usage(input_tokens=10, output_tokens=5),
    )
    assert message.text == "Hello, world"


def test_text_block_start_text_is_kept() -> None:
    acc = MessageAccumulator()
    feed(acc, start(0, {"type": "text", "text": "Pre"}), text_delta(0, "fix"))
    assert acc.partial_text == "Prefix"
    assert feed(acc, stop(0)) == [Text("Prefix", 0)]


def test_partial_text_includes_finished_and_in_progress_blocks_in_order() -> None:
    acc = MessageAccumulator()
    feed(
        acc,
        start(0, {"type": "text", "text": ""}),
        text_delta(0, "one "),
        stop(0),
        start(1, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}),
        json_delta(1, '{"a"'),
        start(2, {"type": "text", "text": ""}),
        text_delta(2, "two"),
    )
    assert acc.partial_text == "one two"
    message = acc.message()
    assert message.content == [TextBlock("one ")]  # only finished blocks


def test_stop_sequence_and_message_order_by_index() -> None:
    acc = MessageAccumulator()
    feed(
        acc,
        message_start(),
        start(1, {"type": "text", "text": "b"}),
        start(0, {"type": "text", "text": "a"}),
        stop(1),
        stop(0),
        {
            "type": "message_delta",
            "delta": {"stop_reason": "stop_sequence", "stop_sequence": "###"},
        },
    )
    message = acc.message()
    assert message.content == [TextBlock("a"), TextBlock("b")]
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "###")


# --------------------------------------------------------------------------- tool use


TOOL_START = {"type": "tool_use", "id": "toolu_01Ab", "name": "get_weather", "input": {}}


def test_tool_input_in_pieces_gives_one_tool_use_at_block_stop() -> None:
    acc = MessageAccumulator()
    pieces = ["", '{"city": "Pa', 'ris", "days": [1,', " 2]}"]
    events = feed(acc, message_start(), start(1, TOOL_START), *[json_delta(1, p) for p in pieces])
    assert events == [ToolInputDelta(p, 1, "toolu_01Ab", "get_weather") for p in pieces]
    assert not any(isinstance(e, ToolUse) for e in events)
    assert feed(acc, stop(1)) == [
        ToolUse("toolu_01Ab", "get_weather", {"city": "Paris", "days": [1, 2]})
    ]
    assert acc.message().content == [
        ToolUseBlock("toolu_01Ab", "get_weather", {"city": "Paris", "days": [1, 2]})
    ]
    assert acc.message().tool_uses[0].input["city"] == "Paris"


@pytest.mark.parametrize("pieces", [[], [""], ["", ""]])
def test_empty_tool_input_is_an_empty_object(pieces: list[str]) -> None:
    acc = MessageAccumulator()
    feed(acc, start(0, TOOL_START), *[json_delta(0, p) for p in pieces])
    assert feed(acc, stop(0)) == [ToolUse("toolu_01Ab", "get_weather", {})]


@pytest.mark.parametrize("pieces", [['{"city": "Par'], ["[1, 2]"], ['{"a": 1}}']])
def test_invalid_tool_input_raises_tool_input_error(pieces: list[str]) -> None:
    acc = MessageAccumulator()
    feed(acc, start(3, TOOL_START), *[json_delta(3, p) for p in pieces])
    with pytest.raises(ToolInputError) as info:
        acc.feed(w.ContentBlockStopEvent(3))
    error = info.value
    assert error.index == 3
    assert error.tool_name == "get_weather"
    assert error.raw == "".join(pieces).encode()
    assert "3" in str(error)
    assert "get_weather" in str(error)


def test_name_normalizer_applies_to_tool_events_not_the_message() -> None:
    def normalize(name: str) -> str:
        return name.removeprefix("mcp__calc__")

    acc = MessageAccumulator(normalize_name=normalize)
    block = {"type": "tool_use", "id": "toolu_7", "name": "mcp__calc__add", "input": {}}
    events = feed(acc, start(0, block), json_delta(0, '{"a": 2, "b": 3}'), stop(0))
    assert events == [
        ToolInputDelta('{"a": 2, "b": 3}', 0, "toolu_7", "add"),
        ToolUse("toolu_7", "add", {"a": 2, "b": 3}),
    ]
    # the message is sent back to the API, so it keeps the wire name
    assert acc.message().content == [ToolUseBlock("toolu_7", "mcp__calc__add", {"a": 2, "b": 3})]


def test_server_tool_use_is_its_own_finished_event_not_a_tool_use() -> None:
    acc = MessageAccumulator()
    block = {
        "type": "server_tool_use",
        "id": "srvtoolu_01",
        "name": "web_search",
        "input": {},
        "caller": {"type": "direct"},
    }
    events = feed(acc, start(0, block), json_delta(0, '{"query": "paris"}'), stop(0))
    assert events == [
        ToolInputDelta('{"query": "paris"}', 0, "srvtoolu_01", "web_search"),
        ServerToolUse("srvtoolu_01", "web_search", {"query": "paris"}, 0),
    ]
    assert acc.message().content == [
        ServerToolUseBlock(
            "srvtoolu_01", "web_search", {"query": "paris"}, caller={"type": "direct"}
        )
    ]


def test_redacted_thinking_has_a_finished_event() -> None:
    acc = MessageAccumulator()
    events = feed(acc, start(1, {"type": "redacted_thinking", "data": "EmwKAh"}), stop(1))
    assert events == [RedactedThinking("EmwKAh", 1)]
    assert acc.message().content == [RedactedThinkingBlock("EmwKAh")]


def test_tool_use_keeps_caller_and_toolset_name() -> None:
    acc = MessageAccumulator()
    block = {
        "type": "tool_use",
        "id": "toolu_9",
        "name": "ls",
        "input": {},
        "caller": {"type": "code_execution_20250825", "tool_id": "srvtoolu_2"},
        "toolset_name": "files",
    }
    events = feed(acc, start(0, block), json_delta(0, '{"path": "."}'), stop(0))
    assert events[-1] == ToolUse("toolu_9", "ls", {"path": "."})
    content = acc.message().content
    assert isinstance(content, list)
    [kept] = content
    assert kept == ToolUseBlock(
        "toolu_9",
        "ls",
        {"path": "."},
        caller={"type": "code_execution_20250825", "tool_id": "srvtoolu_2"},
        toolset_name="files",
    )
    assert msgspec.to_builtins(kept) == {**block, "input": {"path": "."}}


def test_mcp_tool_use_input_deltas_build_the_block_sent_back() -> None:
    acc = MessageAccumulator(normalize_name=lambda n: n.upper())
    block = {
        "type": "mcp_tool_use",
        "id": "mcptoolu_1",
        "name": "echo",
        "server_name": "s",
        "input": {},
    }
    events = feed(
        acc,
        start(0, block),
        json_delta(0, '{"text": '),
        json_delta(0, '"hi"}'),
        stop(0),
    )
    assert events == [
        Unknown("api", block, 0),
        ToolInputDelta('{"text": ', 0, "mcptoolu_1", "ECHO"),
        ToolInputDelta('"hi"}', 0, "mcptoolu_1", "ECHO"),
    ]
    assert acc.message().content == [UnknownBlock({**block, "input": {"text": "hi"}})]


def test_mcp_tool_use_with_invalid_input_json_is_a_tool_input_error() -> None:
    acc = MessageAccumulator()
    block = {"type": "mcp_tool_use", "id": "m", "name": "echo", "server_name": "s", "input": {}}
    feed(acc, start(0, block), json_delta(0, '{"text": '))
    with pytest.raises(ToolInputError) as caught:
        feed(acc, stop(0))
    assert caught.value.raw == b'{"text": '


def test_compaction_delta_sets_the_block_it_belongs_to() -> None:
    acc = MessageAccumulator()
    block = {"type": "compaction", "content": None, "encrypted_content": None}
    compaction = {"type": "compaction_delta", "content": "Summary.", "encrypted_content": "Ep=="}
    events = feed(acc, start(0, block), delta(0, compaction), stop(0))
    assert events == [Unknown("api", block, 0)]
    assert acc.message().content == [
        UnknownBlock({"type": "compaction", "content": "Summary.", "encrypted_content": "Ep=="})
    ]


def test_stop_details_container_and_usage_fields_are_kept() -> None:
    acc = MessageAccumulator()
    head = message_start()
    head["message"]["usage"] = {
        "input_tokens": 5,
        "output_tokens": 1,
        "service_tier": "standard",
        "inference_geo": "global",
    }
    container = {"id": "container_1", "expires_at": "2026-12-03T18:00:00Z"}
    details = {"type": "refusal", "category": "cyber", "explanation": "no"}
    feed(
        acc,
        head,
        {
            "type": "message_delta",
            "delta": {"stop_reason": "refusal", "stop_details": details, "container": container},
            "usage": {
                "output_tokens": 9,
                "server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0},
                "output_tokens_details": {"thinking_tokens": 4},
                "iterations": [{"type": "message", "output_tokens": 9}],
                "fallback_credit": {"status": {"type": "redeemed"}},
            },
        },
        {"type": "message_stop"},
    )
    message = acc.message()
    assert (message.stop_reason, message.stop_details, message.container) == (
        "refusal",
        details,
        container,
    )
    assert message.usage == Usage(
        5,
        9,
        service_tier="standard",
        inference_geo="global",
        server_tool_use={"web_search_requests": 1, "web_fetch_requests": 0},
        output_tokens_details={"thinking_tokens": 4},
        extra={
            "iterations": [{"type": "message", "output_tokens": 9}],
            "fallback_credit": {"status": {"type": "redeemed"}},
        },
    )


def test_complete_tool_input_in_block_start_is_kept() -> None:
    acc = MessageAccumulator()
    block = {"type": "tool_use", "id": "toolu_2", "name": "f", "input": {"x": 1}}
    assert feed(acc, start(0, block), stop(0)) == [ToolUse("toolu_2", "f", {"x": 1})]


# --------------------------------------------------------------------------- thinking


def test_thinking_with_signature() -> None:
    acc = MessageAccumulator()
    events = feed(
        acc,
        start(0, {"type": "thinking", "thinking": ""}),
        delta(0, {"type": "thinking_delta", "thinking": "The user "}),
        delta(0, {"type": "thinking_delta", "thinking": "wants"}),
        delta(0, {"type": "signature_delta", "signature": "EqQBCgIYAhIM"}),
        stop(0),
    )
    assert events == [
        ThinkingDelta("The user ", 0),
        ThinkingDelta("wants", 0),
        Thinking("The user wants", "EqQBCgIYAhIM", 0),
    ]
    assert acc.message().content == [ThinkingBlock("The user wants", "EqQBCgIYAhIM")]
    assert acc.partial_text == ""


def test_thinking_without_signature_is_dropped_from_message() -> None:
    acc = MessageAccumulator()
    events = feed(
        acc,
        start(0, {"type": "thinking", "thinking": ""}),
        delta(0, {"type": "thinking_delta", "thinking": "aborted"}),
        stop(0),
        start(1, {"type": "redacted_thinking", "data": "EmwKAhgBEgy3"}),
        stop(1),
        start(2, {"type": "text", "text": "answer"}),
        stop(2),
    )
    assert Thinking("aborted", "", 0) in events
    assert acc.message().content == [RedactedThinkingBlock("EmwKAhgBEgy3"), TextBlock("answer")]


# --------------------------------------------------------------------------- citations


CITE_A = {
    "type": "char_location",
    "cited_text": "sunny",
    "document_index": 0,
    "start_char_index": 10,
    "end_char_index": 15,
}
CITE_B = {"type": "page_location", "cited_text": "warm", "start_page_number": 2}


def test_citations_are_appended_in_order() -> None:
    acc = MessageAccumulator()
    events = feed(
        acc,
        start(0, {"type": "text", "text": "", "citations": []}),
        text_delta(0, "It is sunny"),
        delta(0, {"type": "citations_delta", "citation": CITE_A}),
        delta(0, {"type": "citations_delta", "citation": CITE_B}),
        stop(0),
    )
    assert events == [TextDelta("It is sunny", 0), Text("It is sunny", 0, [CITE_A, CITE_B])]
    assert acc.message().content == [TextBlock("It is sunny", citations=[CITE_A, CITE_B])]


def test_citations_from_block_start_are_kept_first() -> None:
    acc = MessageAccumulator()
    feed(
        acc,
        start(0, {"type": "text", "text": "x", "citations": [CITE_B]}),
        delta(0, {"type": "citations_delta", "citation": CITE_A}),
        stop(0),
    )
    assert acc.message().content == [TextBlock("x", citations=[CITE_B, CITE_A])]


def test_text_without_citations_has_none() -> None:
    acc = MessageAccumulator()
    feed(acc, start(0, {"type": "text", "text": "", "citations": []}), stop(0))
    block = acc.message().content[0]
    assert isinstance(block, TextBlock)
    assert block.citations is None
    assert b"citations" not in msgspec.json.encode(block)


# --------------------------------------------------------------------------- usage


def test_usage_overlay_is_cumulative_never_summed() -> None:
    acc = MessageAccumulator()
    feed(
        acc,
        message_start(
            input_tokens=472,
            output_tokens=1,
            cache_creation_input_tokens=7,
            cache_read_input_tokens=9,
        ),
        message_delta(None, output_tokens=30),
    )
    assert acc.usage == Usage(472, 30, 7, 9)
    feed(
        acc,
        message_delta(
            "end_turn",
            output_tokens=61,
            input_tokens=500,
            cache_read_input_tokens=None,
            cache_creation_input_tokens=None,
        ),
    )
    assert acc.usage == Usage(500, 61, 7, 9)
    feed(acc, message_delta(None))  # no usage at all
    assert acc.usage == Usage(500, 61, 7, 9)
    assert acc.message().usage == Usage(500, 61, 7, 9)


def test_usage_cache_split_is_kept() -> None:
    acc = MessageAccumulator()
    feed(
        acc,
        message_start(input_tokens=5, output_tokens=1, cache_creation_input_tokens=30),
        {
            "type": "message_delta",
            "delta": {},
            "usage": {
                "output_tokens": 2,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 10,
                    "ephemeral_1h_input_tokens": 20,
                },
            },
        },
    )
    assert acc.usage.cache_creation is not None
    assert acc.usage.cache_creation.ephemeral_1h_input_tokens == 20
    assert acc.usage.cache_creation_input_tokens == 30


def test_overlay_usage_helper() -> None:
    base = Usage(1, 2, 3, 4)
    assert overlay_usage(base, None) is base
    assert overlay_usage(base, w.WireUsage(output_tokens=9)) == Usage(1, 9, 3, 4)


# --------------------------------------------------------------------------- pings, unknowns


def test_pings_and_errors_produce_nothing() -> None:
    acc = MessageAccumulator()
    feed(acc, message_start(), start(0, {"type": "text", "text": ""}), text_delta(0, "a"))
    before = (acc.partial_text, acc.usage, acc.complete)
    assert feed(acc, PING, PING) == []
    assert (acc.partial_text, acc.usage, acc.complete) == before
    assert feed(acc, text_delta(0, "b"), PING, stop(0)) == [TextDelta("b", 0), Text("ab", 0)]


WEB_SEARCH_RESULT = {
    "type": "web_search_tool_result",
    "tool_use_id": "srvtoolu_01",
    "content": [{"type": "web_search_result", "title": "T", "url": "https://example.com"}],
}


def test_unknown_events_blocks_and_deltas() -> None:
    acc = MessageAccumulator()
    unknown_event = {"type": "message_annotation", "note": 1}
    unknown_delta = {"type": "sparkle_delta", "sparkle": "*"}
    events = feed(
        acc,
        message_start(),
        unknown_event,
        start(0, {"type": "text", "text": "see:"}),
        stop(0),
        start(1, WEB_SEARCH_RESULT),
        stop(1),
        start(2, {"type": "text", "text": ""}),
        delta(2, unknown_delta),
        text_delta(2, "done"),
        stop(2),
    )
    assert events == [
        Unknown("api", unknown_event),
        Text("see:", 0),
        Unknown("api", WEB_SEARCH_RESULT, 1),
        Unknown("api", unknown_delta, 2),
        TextDelta("done", 2),
        Text("done", 2),
    ]
    assert acc.message().content == [
        TextBlock("see:"),
        UnknownBlock(raw=WEB_SEARCH_RESULT),
        TextBlock("done"),
    ]


def test_unknowns_carry_the_accumulator_source() -> None:
    acc = MessageAccumulator("cli")
    raw = {"type": "whatever"}
    assert feed(acc, raw) == [Unknown("cli", raw)]


def test_delta_for_a_block_that_never_started_is_kept_not_raised() -> None:
    acc = MessageAccumulator()
    events = feed(acc, text_delta(5, "orphan"))
    assert events == [Unknown("api", {"type": "content_block_delta", "index": 5})]
    assert feed(acc, stop(5)) == []
    assert acc.message().content == []


# --------------------------------------------------------------------------- non-streaming


def test_feed_response() -> None:
    body = {
        "id": "msg_01Xy",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5-5",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "Checking"},
            {"type": "tool_use", "id": "toolu_01Ab", "name": "Get", "input": {"city": "Paris"}},
            WEB_SEARCH_RESULT,
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 472, "output_tokens": 61},
    }
    acc = MessageAccumulator(normalize_name=str.lower)
    events = acc.feed_response(w.decode_message_response(_enc.encode(body)))
    assert events == [
        Thinking("hmm", "sig", 0),
        Text("Checking", 1),
        ToolUse("toolu_01Ab", "get", {"city": "Paris"}),
        Unknown("api", WEB_SEARCH_RESULT, 3),
    ]
    assert acc.complete
    assert acc.message() == Message(
        role="assistant",
        content=[
            ThinkingBlock("hmm", "sig"),
            TextBlock("Checking"),
            ToolUseBlock("toolu_01Ab", "Get", {"city": "Paris"}),
            UnknownBlock(raw=WEB_SEARCH_RESULT),
        ],
        id="msg_01Xy",
        model="claude-sonnet-5-5",
        stop_reason="tool_use",
        usage=Usage(472, 61),
    )


def test_streamed_and_non_streamed_give_the_same_message() -> None:
    streamed = MessageAccumulator()
    feed(
        streamed,
        message_start("msg_x", input_tokens=3, output_tokens=1),
        start(0, {"type": "text", "text": ""}),
        text_delta(0, "hi "),
        text_delta(0, "there"),
        stop(0),
        start(1, TOOL_START),
        json_delta(1, ""),
        json_delta(1, '{"city": "Oslo"}'),
        stop(1),
        message_delta("tool_use", output_tokens=20),
        MESSAGE_STOP,
    )
    response = w.MessageResponse(
        id="msg_x",
        model="claude-sonnet-5-5",
        content=[
            TextBlock("hi there"),
            ToolUseBlock("toolu_01Ab", "get_weather", {"city": "Oslo"}),
        ],
        stop_reason="tool_use",
        usage=w.WireUsage(input_tokens=3, output_tokens=20),
    )
    whole = MessageAccumulator()
    whole.feed_response(response)
    assert streamed.message() == whole.message()


# --------------------------------------------------------------------------- CLI: helpers


def cli_lines(path: Path) -> list[w.CliLine]:
    lines: list[w.CliLine] = []
    for raw in path.read_bytes().splitlines():
        if path.name.endswith(".stdout.jsonl"):
            lines.append(w.decode_cli_line(raw))
            continue
        record = msgspec.json.decode(raw, type=dict[str, Any])
        if record["dir"] == "from_cli":
            lines.append(w.decode_cli_line(_enc.encode(record["msg"])))
    return lines


def run_cli(
    name: str, normalizer: CliNormalizer | None = None, *, decide: bool = False
) -> tuple[CliNormalizer, list[Event]]:
    """Feed a transcript through a normalizer. ``decide`` plays the core: it notes every
    ``can_use_tool`` request as decided, as the core does once it has answered it."""
    normalizer = normalizer or CliNormalizer()
    events: list[Event] = []
    for line in cli_lines(TRANSCRIPTS / name):
        if decide and isinstance(line, w.ControlRequestLine):
            body = line.request
            if isinstance(body, w.CanUseToolRequest) and body.tool_use_id:
                normalizer.note_decided(body.tool_use_id)
        events += normalizer.feed(line)
    return normalizer, events


def raw_results(name: str) -> list[w.ResultLine]:
    return [x for x in cli_lines(TRANSCRIPTS / name) if isinstance(x, w.ResultLine)]


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


# --------------------------------------------------------------------------- CLI: transcripts


def test_multiturn_session_text_result_per_turn_with_per_turn_cost() -> None:
    normalizer, events = run_cli("multiturn.stdio.jsonl")
    assert kinds(events) == ["SessionStarted", "Text", "Result"] * 2
    started = events[0]
    assert isinstance(started, SessionStarted)
    assert started.backend == "cli"
    assert started.session_id == "c8defa69-f132-4ff8-aece-312ea6168e92"
    assert started.model == "claude-opus-5-5"
    assert started.permission_mode == "default"
    assert started.cli_version == "2.1.330"
    assert started.cwd == "/work/project"
    assert "Bash" in started.tools
    assert events[1] == Text("ECHO: first turn hello", 0)
    assert events[4] == Text("ECHO: second turn please", 0)

    first, second = events[2], events[5]
    assert isinstance(first, Result)
    assert isinstance(second, Result)
    totals = [r.total_cost_usd for r in raw_results("multiturn.stdio.jsonl")]
    assert totals == [pytest.approx(0.049524), pytest.approx(0.099196)]
    # total_cost_usd is cumulative in a long-lived CLI; each Result reports its own turn
    assert first.cost_usd == pytest.approx(0.049524)
    assert second.cost_usd == pytest.approx(0.099196 - 0.049524)
    assert second.cost_usd is not None
    assert second.cost_usd < 0.05
    for result, text in ((first, "ECHO: first turn hello"), (second, "ECHO: second turn please")):
        assert result.text == text
        assert not result.is_error
        assert result.error is None
        assert result.stop_reason == "end_turn"
        assert result.session_id == started.session_id
        assert result.num_turns == 1
        assert result.usage.input_tokens > 12000
        assert result.duration_s > 0
    assert [m.text for m in normalizer.messages] == [
        "ECHO: first turn hello",
        "ECHO: second turn please",
    ]


def test_partial_messages_are_not_emitted_twice() -> None:
    normalizer, events = run_cli("partial-messages-tool.stdio.jsonl")
    turn2 = events[kinds(events).index("Result") + 1 :]
    # each API request the CLI makes is announced by a system/status line, kept as Unknown
    assert kinds(events[: len(events) - len(turn2)]) == [
        "SessionStarted",
        "Unknown",
        "TextDelta",
        "TextDelta",
        "TextDelta",
        "Text",
        "Result",
    ]
    assert kinds(turn2) == [
        "SessionStarted",
        "Unknown",
        "TextDelta",
        "TextDelta",
        "TextDelta",
        "Text",
        "ToolInputDelta",
        "ToolInputDelta",
        "ToolInputDelta",
        "ToolUse",
        "PermissionDecision",
        "ToolResult",
        "Unknown",
        "TextDelta",
        "TextDelta",
        "TextDelta",
        "Text",
        "Result",
    ]
    statuses = [e.raw for e in events if isinstance(e, Unknown)]
    assert [(r["type"], r["subtype"], r["status"]) for r in statuses] == [
        ("system", "status", "requesting")
    ] * 3
    tool_id = "toolu_70ece7dfeca1411c8dc6ea8b"
    texts = [e.text for e in events if isinstance(e, Text)]
    assert texts == [
        "ECHO: partial hello",
        "I'll use Bash.",
        "TOOL_RESULT_SEEN is_error=False: hi-from-bash",
    ]
    tool_uses = [e for e in events if isinstance(e, ToolUse)]
    assert tool_uses == [
        ToolUse(tool_id, "Bash", {"command": "echo hi-from-bash", "description": "probe command"})
    ]
    decision = next(e for e in events if isinstance(e, PermissionDecision))
    assert decision == PermissionDecision(tool_id, "Bash", "allow", decided_by="backend")
    result = next(e for e in events if isinstance(e, ToolResult))
    assert result == ToolResult(tool_id, "Bash", "hi-from-bash", is_error=False)
    final = events[-1]
    assert isinstance(final, Result)
    assert final.text == "TOOL_RESULT_SEEN is_error=False: hi-from-bash"
    assert final.num_turns == 2
    # one accumulated message per API call, no duplicates from the assistant lines
    assert [m.id for m in normalizer.messages] == [
        "msg_fake_02cdc67a16674c6c87d9",
        "msg_fake_8b39c73048b74d459098",
        "msg_fake_a2e2b73f12c74b0d9649",
    ]
    second = normalizer.messages[1]
    assert second.content == [
        TextBlock("I'll use Bash."),
        ToolUseBlock(
            tool_id, "Bash", {"command": "echo hi-from-bash", "description": "probe command"}
        ),
    ]
    assert second.stop_reason == "tool_use"


def test_529_forever_gives_retries_and_an_error_result_without_synthetic_text() -> None:
    normalizer, events = run_cli("error-529-forever.stdout.jsonl")
    assert kinds(events) == ["SessionStarted", "ApiRetry", "ApiRetry", "Result"]
    assert events[1] == ApiRetry(1, 10, 0.592, 529, "overloaded", "overloaded")
    assert events[2] == ApiRetry(2, 10, 1.007, 529, "overloaded", "overloaded")
    result = events[3]
    assert isinstance(result, Result)
    assert result.is_error
    assert result.text == ""
    assert result.error is not None
    assert result.error.status_code == 529
    assert result.error.kind == "api_status"
    assert result.error.message.startswith("API Error: Repeated 529 Overloaded errors.")
    assert result.cost_usd == 0.0
    assert normalizer.messages == []


def test_429_then_ok() -> None:
    _, events = run_cli("error-429-retry-after-then-ok.stdout.jsonl")
    assert kinds(events) == ["SessionStarted", "ApiRetry", "Text", "Result"]
    retry = events[1]
    assert isinstance(retry, ApiRetry)
    assert (retry.attempt, retry.delay_s, retry.status, retry.error) == (
        1,
        1.007,
        429,
        "rate_limit",
    )
    result = events[3]
    assert isinstance(result, Result)
    assert not result.is_error


def test_permission_transcript_ends_interrupted() -> None:
    _, events = run_cli("permission-allow-deny-interrupt.stdio.jsonl", decide=True)
    results = [e for e in events if isinstance(e, Result)]
    assert len(results) == 4
    assert [r.is_error for r in results] == [False, False, False, True]
    final = results[-1]
    assert final.error is not None
    assert final.error.kind == "interrupted"
    assert final.error.status_code is None
    assert "ede_diagnostic" in final.error.message
    assert final.stop_reason == "tool_use"
    assert final.text == "I'll use Bash."  # text produced before the interrupt is kept
    # the core decided every prompt itself, so the normalizer adds no decisions of its own
    assert not any(isinstance(e, PermissionDecision) for e in events)
    tool_results = [e for e in events if isinstance(e, ToolResult)]
    assert [(r.name, r.is_error) for r in tool_results] == [
        ("Bash", False),
        ("Bash", True),
        ("Write", False),
        ("Bash", True),
    ]
    assert tool_results[0].content == "made-allowed"
    assert tool_results[1].content == "Denied by probe driver"
    costs = [r.cost_usd for r in results]
    assert all(c is not None and 0 < c < 0.12 for c in costs)
    assert sum(c for c in costs if c is not None) == pytest.approx(0.388988)


def test_assistant_lines_of_one_api_message_form_one_message() -> None:
    # without partial messages the CLI prints one assistant line per block, sharing an id
    normalizer, events = run_cli("permission-allow-deny-interrupt.stdio.jsonl", decide=True)
    first = normalizer.messages[0]
    assert first.id == "msg_fake_e97ec8d3e2eb4ef4bf16"
    assert first.content == [
        TextBlock("I'll use Bash."),
        ToolUseBlock(
            "toolu_8e1172b521f5441dab70221e",
            "Bash",
            {"command": "touch allowed.txt && echo made-allowed", "description": "probe command"},
        ),
    ]
    ids = [m.id for m in normalizer.messages]
    assert len(ids) == len(set(ids)) == 7
    assert sum(isinstance(e, ToolUse) for e in events) == 4
    assert sum(isinstance(e, Text) for e in events) == 7


def test_session_tools_and_tool_names_are_normalized() -> None:
    def normalize(name: str) -> str:
        return name.replace("mcp__calc__", "calc.")

    _, events = run_cli("sdk-mcp-hooks.wire.jsonl", CliNormalizer(normalize), decide=True)
    started = next(e for e in events if isinstance(e, SessionStarted))
    assert "calc.add" in started.tools
    assert "mcp__calc__add" not in started.tools
    tool_uses = [e for e in events if isinstance(e, ToolUse)]
    assert tool_uses[0] == ToolUse("toolu_71d2a31d7b6f4949aab03a3d", "calc.add", {"a": 2, "b": 3})
    results = [e for e in events if isinstance(e, ToolResult)]
    assert results[0].name == "calc.add"
    assert results[0].tool_use_id == tool_uses[0].id
    unknown = [e for e in events if isinstance(e, Unknown)]
    assert unknown
    assert all(e.source == "cli" and e.raw["subtype"] == "session_state_changed" for e in unknown)
    assert len([e for e in events if isinstance(e, Result)]) == 3


def test_control_traffic_and_lifecycle_lines_produce_no_events() -> None:
    _, events = run_cli("uuid-command-lifecycle.stdio.jsonl")
    assert kinds(events) == ["SessionStarted", "Text", "Result"] * 3
    _, events = run_cli("control-cancel-request.stdio.jsonl")
    # the interrupt cancelled the tool before it ran ("non_execution_kind"): nothing was allowed
    assert kinds(events) == [
        "SessionStarted",
        "Text",
        "ToolUse",
        "ToolResult",
        "Result",
        "SessionStarted",
        "Text",
        "Result",
    ]
    interrupted = events[4]
    assert isinstance(interrupted, Result)
    assert interrupted.error is not None
    assert interrupted.error.kind == "interrupted"


# --------------------------------------------------------------------------- CLI: synthetic


def cli(obj: dict[str, Any]) -> w.CliLine:
    return w.decode_cli_line(_enc.encode(obj))


def assistant(msg_id: str, *blocks: dict[str, Any], **extra: Any) -> w.CliLine:
    message = {"id": msg_id, "model": "claude-opus-5-5", "content": list(blocks)}
    return cli({"type": "assistant", "message": message, **extra})


def tool_result(tool_use_id: str, content: str, *, is_error: bool = False) -> w.CliLine:
    block = {
        "type": "tool_result",
        "tool_use_id": tool_use_id,
        "content": content,
        "is_error": is_error,
    }
    return cli({"type": "user", "message": {"role": "user", "content": [block]}})


def result_line(**fields: Any) -> w.CliLine:
    return cli({"type": "result", "subtype": "success", "is_error": False, **fields})


def test_permission_denied_gives_a_backend_deny_and_no_allow() -> None:
    normalizer = CliNormalizer()
    events = normalizer.feed(
        assistant("m1", {"type": "tool_use", "id": "toolu_b406", "name": "Bash", "input": {}})
    )
    events += normalizer.feed(
        cli(
            {
                "type": "system",
                "subtype": "permission_denied",
                "tool_name": "Bash",
                "tool_use_id": "toolu_b406",
                "message": "needs approval",
            }
        )
    )
    events += normalizer.feed(tool_result("toolu_b406", "denied", is_error=True))
    assert events == [
        ToolUse("toolu_b406", "Bash", {}),
        PermissionDecision(
            "toolu_b406", "Bash", "deny", message="needs approval", decided_by="backend"
        ),
        ToolResult("toolu_b406", "Bash", "denied", is_error=True),
    ]


def test_own_results_and_replays_and_subagents_are_skipped() -> None:
    normalizer = CliNormalizer()
    normalizer.note_own_result("toolu_mine")
    assert normalizer.feed(tool_result("toolu_mine", "x")) == []
    replay = {
        "type": "user",
        "isReplay": True,
        "message": {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_r", "content": "r"}],
        },
    }
    assert normalizer.feed(cli(replay)) == []
    sub = assistant(
        "m_sub", {"type": "text", "text": "inside Task"}, parent_tool_use_id="toolu_task"
    )
    assert normalizer.feed(sub) == []
    sub_stream = cli(
        {
            "type": "stream_event",
            "event": {"type": "message_start", "message": {"id": "m_sub2", "usage": {}}},
            "parent_tool_use_id": "toolu_task",
        }
    )
    assert normalizer.feed(sub_stream) == []
    assert (
        normalizer.feed(cli({"type": "user", "message": {"role": "user", "content": "hi"}})) == []
    )
    assert normalizer.messages == []


def test_rate_limit_unknown_and_control_lines() -> None:
    normalizer = CliNormalizer()
    info = {"status": "allowed", "resetsAt": 1771606800, "rateLimitType": "five_hour"}
    assert normalizer.feed(cli({"type": "rate_limit_event", "rate_limit_info": info})) == [
        RateLimit(status="allowed", resets_at="1771606800", limits={"rateLimitType": "five_hour"})
    ]
    raw = {"type": "tool_progress", "tool_use_id": "t", "elapsed": 2}
    assert normalizer.feed(cli(raw)) == [Unknown("cli", raw)]
    assert normalizer.feed(cli({"type": "control_cancel_request", "request_id": "r"})) == []
    lifecycle = {"type": "command_lifecycle", "command_uuid": "u", "state": "queued"}
    assert normalizer.feed(cli(lifecycle)) == []
    status = {"type": "system", "subtype": "status", "status": "requesting"}
    assert normalizer.feed(cli(status)) == [Unknown("cli", status)]


@pytest.mark.parametrize(
    ("fields", "kind", "message"),
    [
        (
            {
                "subtype": "error_max_turns",
                "is_error": True,
                "terminal_reason": "max_turns",
                "errors": ["Reached maximum number of turns (1)"],
            },
            "max_turns",
            "Reached maximum number of turns (1)",
        ),
        (
            {"subtype": "error_during_execution", "is_error": True, "errors": ["a", "b"]},
            "interrupted",
            "a; b",
        ),
        (
            {
                "subtype": "success",
                "is_error": True,
                "api_error_status": None,
                "terminal_reason": "api_error",
                "result": "Connection dropped (ECONNRESET)",
            },
            "api_error",
            "Connection dropped (ECONNRESET)",
        ),
        ({"subtype": "error_max_budget_usd"}, "budget_exhausted", "error_max_budget_usd"),
        (  # as CLI 2.1.330 prints it
            {
                "subtype": "error_max_budget_usd",
                "is_error": True,
                "terminal_reason": "budget_exhausted",
                "errors": ["Reached maximum budget ($0.01)"],
            },
            "budget_exhausted",
            "Reached maximum budget ($0.01)",
        ),
    ],
)
def test_error_results(fields: dict[str, Any], kind: str, message: str) -> None:
    result = CliNormalizer().feed(result_line(**fields))[0]
    assert isinstance(result, Result)
    assert result.is_error
    assert result.error is not None
    assert (result.error.kind, result.error.message) == (kind, message)
    assert result.kind == (
        kind if kind in ("max_turns", "budget_exhausted", "interrupted") else "error"
    )


def test_result_falls_back_to_streamed_text_and_clears_per_turn_state() -> None:
    normalizer = CliNormalizer()
    normalizer.feed(assistant("m1", {"type": "text", "text": "part one. "}))
    normalizer.feed(assistant("m2", {"type": "text", "text": "part two."}))
    first = normalizer.feed(result_line(total_cost_usd=0.5))[0]
    assert isinstance(first, Result)
    assert first.text == "part one. part two."
    assert first.cost_usd == 0.5
    second = normalizer.feed(result_line(result="explicit", total_cost_usd=0.75))[0]
    assert isinstance(second, Result)
    assert second.text == "explicit"
    assert second.cost_usd == pytest.approx(0.25)
    third = normalizer.feed(result_line())[0]
    assert isinstance(third, Result)
    assert third.cost_usd is None
    assert third.text == ""


def test_synthetic_error_assistant_is_not_emitted() -> None:
    normalizer = CliNormalizer()
    line = assistant(
        "synthetic-1",
        {"type": "text", "text": "API Error: boom"},
        error="server_error",
        api_error_status=500,
    )
    assert normalizer.feed(line) == []
    assert normalizer.messages == []


def test_result_flushes_an_unfinished_stream() -> None:
    normalizer = CliNormalizer()
    for obj in (
        message_start("m_cut"),
        start(0, {"type": "text", "text": ""}),
        text_delta(0, "cut"),
        stop(0),
    ):
        normalizer.feed(cli({"type": "stream_event", "event": obj}))
    assert normalizer.messages == []
    result = normalizer.feed(result_line(is_error=True, subtype="error_during_execution"))[0]
    assert isinstance(result, Result)
    assert result.text == "cut"
    assert [m.id for m in normalizer.messages] == ["m_cut"]
    # the assistant line for a streamed message is a duplicate and stays silent
    assert normalizer.feed(assistant("m_cut", {"type": "text", "text": "cut"})) == []


def test_tool_result_with_block_content() -> None:
    normalizer = CliNormalizer()
    normalizer.feed(assistant("m", {"type": "tool_use", "id": "t1", "name": "Read", "input": {}}))
    line = cli(
        {
            "type": "user",
            "message": {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [{"type": "text", "text": "file body"}],
                    }
                ],
            },
        }
    )
    events = normalizer.feed(line)
    assert events == [
        PermissionDecision("t1", "Read", "allow", decided_by="backend"),
        ToolResult("t1", "Read", [TextBlock("file body")]),
    ]


def test_a_cli_stream_that_breaks_the_protocol_gives_way_to_the_assistant_line() -> None:
    """A second block start for one index: the stream is dropped (an Unknown keeps the frame)
    and the assistant line that follows carries the message whole."""
    normalizer = CliNormalizer()
    events = []
    for obj in (
        message_start("m_dup"),
        start(0, {"type": "text", "text": ""}),
        text_delta(0, "first"),
        start(0, {"type": "text", "text": ""}),
    ):
        events += normalizer.feed(cli({"type": "stream_event", "event": obj}))
    unknown = [e for e in events if isinstance(e, Unknown)]
    assert len(unknown) == 1
    assert "content_block_start" in str(unknown[0].raw["error"])
    whole = normalizer.feed(assistant("m_dup", {"type": "text", "text": "first and all"}))
    assert [e.text for e in whole if isinstance(e, Text)] == ["first and all"]
    assert [m.text for m in normalizer.messages] == ["first and all"]


def test_a_duplicate_block_start_on_the_api_path_is_a_protocol_error() -> None:
    acc = MessageAccumulator()
    for obj in (start(0, {"type": "text", "text": ""}), text_delta(0, "shown")):
        acc.feed(w.decode_api_event(_enc.encode(obj)))
    with pytest.raises(ProtocolError) as info:
        acc.feed(w.decode_api_event(_enc.encode(start(0, {"type": "text", "text": ""}))))
    assert b"content_block_start" in info.value.raw
    assert acc.partial_text == "shown"
