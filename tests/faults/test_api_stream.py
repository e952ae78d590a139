"""API faults on the wire, over real HTTP to the fake server: each case ends with a typed error or
a clean result within its time limit, leaves a valid history, a usable conversation and no fd."""

from __future__ import annotations

from typing import Any

import anyio
import msgspec
import pytest

import claude_unified as cu
from claude_unified.testing import (
    FakeAnthropicServer,
    Fault,
    comment_stall,
    drip,
    gzip,
    raw,
    reply,
    reset,
    stream_error,
)
from claude_unified.testing._script import sse_frame

from .conftest import SECRET, api_config, assert_history_valid, fd_guard

pytestmark = pytest.mark.anyio

TEXT = "Hello there friend"  # streamed as two deltas: events 2 and 3, block_stop is event 4
LIMIT = 20  # seconds any case may take before it counts as a hang


def frame(obj: dict[str, Any]) -> bytes:
    return sse_frame(msgspec.json.encode(obj))


async def turn_of(conv: cu.Conversation, prompt: str = "hi") -> tuple[list[cu.Event], cu.Turn]:
    turn = conv.send(prompt)
    with anyio.fail_after(LIMIT):
        events = [event async for event in turn]
    return events, turn


async def still_usable(conv: cu.Conversation, fake: FakeAnthropicServer) -> None:
    fake.queue(reply("after the fault"))
    with anyio.fail_after(LIMIT):
        answer = await conv.ask("again")
    assert answer.text == "after the fault"
    assert_history_valid(conv.history)


async def failed_turn(
    fake: FakeAnthropicServer, *faults: Fault, **config: Any
) -> tuple[cu.Result, cu.ClaudeError, list[cu.Message]]:
    """Run one turn that must fail; check history and usability afterwards."""
    fake.queue(reply(TEXT).with_fault(*faults))
    with fd_guard(fake):
        async with cu.Conversation(api_config(fake, **config)) as conv:
            events, turn = await turn_of(conv)
            result = events[-1]
            assert isinstance(result, cu.Result)
            assert result.is_error
            assert turn.exception is not None
            history = list(conv.history)
            assert_history_valid(history)
            await still_usable(conv, fake)
    return result, turn.exception, history


async def clean_turn(fake: FakeAnthropicServer, *faults: Fault, **config: Any) -> cu.Result:
    fake.queue(reply(TEXT).with_fault(*faults))
    with fd_guard(fake):
        async with cu.Conversation(api_config(fake, **config)) as conv:
            events, _ = await turn_of(conv)
            result = events[-1]
            assert isinstance(result, cu.Result)
            assert not result.is_error, result.error
            assert_history_valid(conv.history)
            await still_usable(conv, fake)
    return result


# --------------------------------------------------------------------- idle: comments only


@pytest.mark.parametrize("after_events", [0, 3])
async def test_comment_only_stream_hits_the_idle_timeout(
    fake: FakeAnthropicServer, after_events: int
) -> None:
    result, exc, _ = await failed_turn(
        fake, comment_stall(60, after_events=after_events, every=0.02), idle_timeout=0.5
    )
    assert isinstance(exc, cu.TimeoutError)
    assert exc.kind == "idle"
    assert result.text == exc.partial_text


async def test_comments_slower_than_reads_still_hit_the_idle_timeout(
    fake: FakeAnthropicServer,
) -> None:
    """A comment just inside every read timeout keeps each read alive: the event clock ends it."""
    _, exc, _ = await failed_turn(
        fake, comment_stall(60, after_events=3, every=0.3), idle_timeout=0.5
    )
    assert isinstance(exc, cu.TimeoutError)
    assert exc.kind == "idle"


async def test_comment_stall_before_any_text_is_retried(fake: FakeAnthropicServer) -> None:
    fake.queue(reply("slow").with_fault(comment_stall(60, after_events=1)), reply("fast"))
    with fd_guard(fake):
        async with cu.Conversation(api_config(fake, idle_timeout=0.5, max_retries=1)) as conv:
            with anyio.fail_after(LIMIT):
                answer = await conv.ask("hi")
    assert answer.text == "fast"
    assert any(
        isinstance(e, cu.ApiRetry) and (e.error, e.detail) == ("timeout", "idle_timeout")
        for e in answer.events
    )


async def test_short_comment_stall_is_harmless(fake: FakeAnthropicServer) -> None:
    result = await clean_turn(fake, comment_stall(0.2, after_events=3), idle_timeout=2)
    assert result.text == TEXT


# --------------------------------------------------------------------- protocol violations


async def test_duplicate_block_start_is_a_protocol_error_with_the_partial_text(
    fake: FakeAnthropicServer,
) -> None:
    again = frame(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    )
    result, exc, history = await failed_turn(fake, raw(again, after_events=3))
    assert isinstance(exc, cu.ProtocolError)
    assert b"content_block_start" in exc.raw
    first_piece = "Hello the"
    assert exc.partial_text == result.text == first_piece
    assert history[-1].role == "assistant"
    assert history[-1].text == first_piece


async def test_message_stop_with_a_block_open_is_a_protocol_error(
    fake: FakeAnthropicServer,
) -> None:
    stop = frame({"type": "message_stop"})
    result, exc, history = await failed_turn(fake, raw(stop, after_events=4, end=True))
    assert isinstance(exc, cu.ProtocolError)
    assert exc.partial_text == result.text == TEXT
    assert history[-1].text == TEXT  # kept, and not as an empty assistant message


async def test_message_stop_before_any_block_is_a_clean_empty_answer_not_written(
    fake: FakeAnthropicServer,
) -> None:
    """A message with no content at all: nothing to keep, nothing invalid written."""
    stop = frame({"type": "message_stop"})
    fake.queue(reply(TEXT).with_fault(raw(stop, after_events=1, end=True)))
    async with cu.Conversation(api_config(fake)) as conv:
        await turn_of(conv)
        assert_history_valid(conv.history)
        await still_usable(conv, fake)


async def test_garbage_bytes_are_a_protocol_error_with_the_bytes(
    fake: FakeAnthropicServer,
) -> None:
    _, exc, _ = await failed_turn(fake, raw(b"data: {not json\n\n", after_events=3))
    assert isinstance(exc, cu.ProtocolError)
    assert exc.raw == b"{not json"


async def test_an_unknown_event_type_is_kept_and_the_turn_succeeds(
    fake: FakeAnthropicServer,
) -> None:
    fake.queue(reply(TEXT).with_fault(raw(frame({"type": "future_event", "x": 1}), after_events=3)))
    async with cu.Conversation(api_config(fake)) as conv:
        events, _ = await turn_of(conv)
    unknown = [e for e in events if isinstance(e, cu.Unknown)]
    assert [u.raw for u in unknown] == [{"type": "future_event", "x": 1}]
    assert isinstance(events[-1], cu.Result)
    assert events[-1].text == TEXT


async def test_stream_ending_without_message_stop_keeps_the_text(
    fake: FakeAnthropicServer,
) -> None:
    result, exc, _ = await failed_turn(fake, raw(b"", after_events=5, end=True))
    assert isinstance(exc, cu.ConnectError)
    assert "before message_stop" in str(exc)
    assert result.text == TEXT


async def test_error_event_after_text_keeps_the_text(fake: FakeAnthropicServer) -> None:
    result, exc, _ = await failed_turn(fake, stream_error(3), max_retries=2)
    assert isinstance(exc, cu.OverloadedError)
    assert result.text == "Hello the"


# --------------------------------------------------------------------- bytes on the wire


@pytest.mark.parametrize("after_bytes", [1, 40, 200])
async def test_reset_before_text_is_retried(fake: FakeAnthropicServer, after_bytes: int) -> None:
    """Before any content event the attempt may be retried: the second attempt succeeds."""
    fake.queue(reply(TEXT).with_fault(reset(after_bytes)), reply("retried"))
    with fd_guard(fake):
        async with cu.Conversation(api_config(fake, max_retries=1)) as conv:
            with anyio.fail_after(LIMIT):
                answer = await conv.ask("hi")
            assert answer.text == "retried"
            assert_history_valid(conv.history)


@pytest.mark.parametrize("after_bytes", [1, 40, 200, 10_000])
async def test_reset_without_retries_is_a_connect_error(
    fake: FakeAnthropicServer, after_bytes: int
) -> None:
    fake.queue(reply(TEXT).with_fault(reset(after_bytes)))
    with fd_guard(fake):
        async with cu.Conversation(api_config(fake)) as conv:
            events, turn = await turn_of(conv)
            result = events[-1]
            assert isinstance(result, cu.Result)
            if after_bytes < 10_000:  # the whole stream is shorter: it arrived before the reset
                assert result.is_error
                assert isinstance(turn.exception, cu.ConnectError)
            else:
                assert result.text == TEXT
            assert_history_valid(conv.history)
            await still_usable(conv, fake)


async def test_reset_after_text_is_not_retried_and_keeps_the_text(
    fake: FakeAnthropicServer,
) -> None:
    start = {"type": "message_start", "message": {"id": "m", "model": "x", "content": []}}
    opening = b"".join(
        [
            frame(start),
            frame({"type": "content_block_start", "index": 0, "content_block": TEXT_BLOCK}),
            frame({"type": "content_block_delta", "index": 0, "delta": TEXT_DELTA}),
        ]
    )
    _, exc, history = await failed_turn(
        fake, raw(opening, after_events=0), reset(len(opening)), max_retries=2
    )
    assert isinstance(exc, cu.ConnectError)
    assert exc.partial_text == "streamed "
    assert history[-1].text == "streamed "


TEXT_BLOCK = {"type": "text", "text": ""}
TEXT_DELTA = {"type": "text_delta", "text": "streamed "}


@pytest.mark.parametrize("size", [1, 7, 64])
async def test_a_dripped_stream_arrives_whole(fake: FakeAnthropicServer, size: int) -> None:
    result = await clean_turn(fake, drip(size))
    assert result.text == TEXT


async def test_a_gzipped_stream_arrives_whole(fake: FakeAnthropicServer) -> None:
    result = await clean_turn(fake, gzip())
    assert result.text == TEXT


async def test_a_gzipped_dripped_stream_arrives_whole(fake: FakeAnthropicServer) -> None:
    result = await clean_turn(fake, gzip(), drip(3))
    assert result.text == TEXT


async def test_a_corrupt_gzip_stream_is_a_protocol_error(fake: FakeAnthropicServer) -> None:
    _, exc, _ = await failed_turn(fake, gzip(corrupt=True))
    assert isinstance(exc, cu.ProtocolError)
    assert "could not be decoded" in str(exc)


async def test_crlf_and_bom_framing_is_understood(fake: FakeAnthropicServer) -> None:
    """A whole stream in CRLF with a byte-order mark, comments and multi-line data."""
    start = {"type": "message_start", "message": {"id": "m", "model": "x", "content": []}}
    parts = [
        b"\xef\xbb\xbf: hello\r\n\r\n",
        b"event: message_start\r\ndata: " + msgspec.json.encode(start) + b"\r\n\r\n",
        b'data: {"type":"content_block_start","index":0,\r\n',
        b'data: "content_block":{"type":"text","text":""}}\r\n\r\n',
        b'data: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"crlf"}}\r\n\r\n',
        b'data: {"type":"content_block_stop","index":0}\r\r',
        b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"}}\n\n',
        b'data: {"type":"message_stop"}\r\n\r\n',
    ]
    fake.queue(reply("unused").with_fault(raw(b"".join(parts), after_events=0, end=True)))
    async with cu.Conversation(api_config(fake)) as conv:
        events, _ = await turn_of(conv)
    result = events[-1]
    assert isinstance(result, cu.Result)
    assert result.text == "crlf"


# --------------------------------------------------------------------- stopping a stall


async def test_interrupt_during_a_comment_stall(fake: FakeAnthropicServer) -> None:
    fake.queue(reply(TEXT).with_fault(comment_stall(60, after_events=3)))
    with fd_guard(fake):
        async with cu.Conversation(api_config(fake)) as conv:
            seen: list[cu.Event] = []
            with anyio.fail_after(LIMIT):
                async with anyio.create_task_group() as tg:
                    turn = conv.send("hi")

                    async def consume() -> None:
                        async for event in turn:
                            seen.append(event)
                            if isinstance(event, cu.TextDelta):
                                tg.start_soon(conv.interrupt)

                    tg.start_soon(consume)
            result = seen[-1]
            assert isinstance(result, cu.Result)
            assert result.error is not None
            assert result.error.kind == "interrupted"
            assert result.text == "Hello the"
            assert_history_valid(conv.history)
            await still_usable(conv, fake)


async def test_caller_cancel_during_a_comment_stall(fake: FakeAnthropicServer) -> None:
    fake.queue(reply(TEXT).with_fault(comment_stall(60, after_events=3)))
    with fd_guard(fake):
        async with cu.Conversation(api_config(fake)) as conv:
            with anyio.move_on_after(0.5) as scope:
                async for _ in conv.send("hi"):
                    pass
            assert scope.cancelled_caught
            assert_history_valid(conv.history)
            await still_usable(conv, fake)


# --------------------------------------------------------------------- secrets


async def test_a_key_echoed_in_a_401_body_is_scrubbed(fake: FakeAnthropicServer) -> None:
    from claude_unified.testing import error

    fake.queue(error(401, message=f"invalid x-api-key: {SECRET}"))
    async with cu.Conversation(api_config(fake)) as conv:
        events, turn = await turn_of(conv)
    result = events[-1]
    assert isinstance(result, cu.Result)
    assert isinstance(turn.exception, cu.AuthenticationError)
    for shown in (str(turn.exception), repr(turn.exception), str(result), repr(result.error)):
        assert SECRET not in shown
        assert SECRET[-12:] not in shown
    assert "invalid x-api-key" in str(turn.exception)
