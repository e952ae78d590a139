"""Row 1: one long Messages API SSE stream, client work only (served by a mock transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import msgspec
from httpx_sse import EventSource

from claude_unified import Config, Conversation, Message, TextBlock, ToolUseBlock
from claude_unified import _wire as w
from claude_unified._normalize import MessageAccumulator
from claude_unified.backends._protocol import Exchange, SessionSpec
from claude_unified.backends.api import ApiBackend

from . import _data
from ._harness import Line, Row, Size, Target, ainterleave, fmt_ms, median, note, ratio
from ._harness import cpu_clock as clock

URL = "http://127.0.0.1:9"  # never contacted: every request goes to the mock transport
MODEL = "claude-bench"
PROMPT = "Write the two files."


# --------------------------------------------------------------------------- the floor's types


class _Delta(msgspec.Struct, tag_field="type", tag="text_delta"):
    text: str


class _JsonDelta(msgspec.Struct, tag_field="type", tag="input_json_delta"):
    partial_json: str


class _Start(msgspec.Struct, tag_field="type", tag="message_start"):
    message: dict[str, Any]


class _BlockStart(msgspec.Struct, tag_field="type", tag="content_block_start"):
    index: int
    content_block: dict[str, Any]


class _BlockDelta(msgspec.Struct, tag_field="type", tag="content_block_delta"):
    index: int
    delta: _Delta | _JsonDelta


class _BlockStop(msgspec.Struct, tag_field="type", tag="content_block_stop"):
    index: int


class _MessageDelta(msgspec.Struct, tag_field="type", tag="message_delta"):
    delta: dict[str, Any]
    usage: dict[str, Any]


class _Stop(msgspec.Struct, tag_field="type", tag="message_stop"):
    pass


class _Ping(msgspec.Struct, tag_field="type", tag="ping"):
    pass


_FloorEvent = _Start | _BlockStart | _BlockDelta | _BlockStop | _MessageDelta | _Stop | _Ping


# --------------------------------------------------------------------------- transports


def _handler(frames: list[bytes], response_cls: Any) -> Any:
    headers = {"content-type": "text/event-stream; charset=utf-8", "request-id": "req_bench"}

    async def body() -> AsyncIterator[bytes]:
        for frame in frames:  # one chunk per event, as a live stream arrives
            yield frame

    async def handle(request: Any) -> Any:
        return response_cls(200, headers=headers, content=body())

    return handle


_API_EVENTS = (
    w.MessageStartEvent,
    w.ContentBlockStartEvent,
    w.ContentBlockDeltaEvent,
    w.ContentBlockStopEvent,
    w.MessageDeltaEvent,
    w.MessageStopEvent,
)


def _expected(deltas: int) -> tuple[str, list[dict[str, Any]]]:
    reply = _data.api_reply(deltas)
    text = "".join(b.text for b in reply.content if isinstance(b, TextBlock))
    inputs = [b.input for b in reply.content if isinstance(b, ToolUseBlock)]
    return text, inputs


async def _run(size: Size) -> Row:
    deltas = size.pick(3_000, 30_000)
    repeats = size.pick(3, 15)  # the min of many: a shared machine has slow moments
    frames = _data.sse_body(_data.api_events(deltas))
    n_events = len(frames)
    want_text, want_inputs = _expected(deltas)
    config = Config(backend="api", api_key="sk-ant-bench", base_url=URL, max_retries=0)

    # ours: backend + accumulator
    backend = ApiBackend(config, transport=httpx.MockTransport(_handler(frames, httpx.Response)))
    await backend.open(SessionSpec())
    exchange = Exchange(
        prompt=PROMPT, history=(Message(role="user", content=PROMPT),), turn_id="bench"
    )
    got: dict[str, Any] = {}

    async def ours_backend() -> float:
        start = clock()
        acc = MessageAccumulator()
        feed = acc.feed
        async for frame in backend.exchange(exchange):
            if isinstance(frame, _API_EVENTS):
                feed(frame)
        message = acc.message()
        elapsed = clock() - start
        got["ours"] = message
        return elapsed

    # ours: the full Conversation path
    conv_backend = ApiBackend(
        config, transport=httpx.MockTransport(_handler(frames, httpx.Response))
    )
    conversation = Conversation(config, backend=conv_backend)
    await conversation.open()

    async def ours_conversation() -> float:
        conversation.history.clear()
        start = clock()
        async for _event in conversation.send(PROMPT):
            pass
        elapsed = clock() - start
        got["conversation"] = next(
            m for m in reversed(conversation.history) if m.role == "assistant"
        )
        return elapsed

    # floor: httpx-sse + one reused typed msgspec decoder
    floor_client = httpx.AsyncClient(
        transport=httpx.MockTransport(_handler(frames, httpx.Response))
    )
    decoder = msgspec.json.Decoder(_FloorEvent)

    async def floor() -> float:
        start = clock()
        count = 0
        async with floor_client.stream("POST", URL + "/v1/messages", content=b"{}") as r:
            async for sse in EventSource(r).aiter_sse():
                if sse.data:
                    decoder.decode(sse.data)
                    count += 1
        elapsed = clock() - start
        assert count == n_events
        return elapsed

    async def floor_scoped() -> float:
        """The floor plus the portable way to make every read interruptible: a cancel scope."""
        start = clock()
        async with floor_client.stream("POST", URL + "/v1/messages", content=b"{}") as r:
            events = EventSource(r).aiter_sse().__aiter__()
            while True:
                with anyio.CancelScope():
                    try:
                        sse = await events.__anext__()
                    except StopAsyncIteration:
                        break
                if sse.data:
                    decoder.decode(sse.data)
        return clock() - start

    from claude_unified._normalize import MessageAccumulator as _Acc
    from claude_unified.backends._sse import SseFramer

    blob = b"".join(frames)
    reads_4k = [blob[i : i + 4096] for i in range(0, len(blob), 4096)]

    def bytes_floor(chunks: list[bytes]) -> Any:
        """httpx + our SSE framer + one typed decode + the accumulator: the least any client
        that hands out accumulated events can do with these bytes."""
        client = httpx.AsyncClient(transport=httpx.MockTransport(_handler(chunks, httpx.Response)))

        async def run() -> float:
            start = clock()
            framer, acc = SseFramer(), _Acc()
            async with client.stream("POST", URL + "/v1/messages", content=b"{}") as r:
                async for chunk in r.aiter_bytes():
                    for data in framer.feed(chunk):
                        event = w.decode_api_event(data)
                        if type(event) is not w.PingEvent:
                            acc.feed(event)
            acc.message()
            return clock() - start

        return run

    conv_4k = Conversation(
        config,
        backend=ApiBackend(
            config, transport=httpx.MockTransport(_handler(reads_4k, httpx.Response))
        ),
    )
    await conv_4k.open()

    async def ours_conversation_4k() -> float:
        conv_4k.history.clear()
        start = clock()
        async for _event in conv_4k.send(PROMPT):
            pass
        return clock() - start

    contenders: dict[str, Any] = {
        "bytes_floor": bytes_floor(frames),
        "bytes_floor_4k": bytes_floor(reads_4k),
        "ours_conversation_4k": ours_conversation_4k,
        "floor": floor,
        "floor_scoped": floor_scoped,
        "ours": ours_backend,
        "ours_conversation": ours_conversation,
    }
    peer_notes: list[str] = []
    try:
        import anthropic
        import httpx2

        client = anthropic.AsyncAnthropic(
            api_key="sk-ant-bench",
            base_url=URL,
            max_retries=0,
            http_client=httpx2.AsyncClient(
                transport=httpx2.MockTransport(_handler(frames, httpx2.Response))
            ),
        )
        params: dict[str, Any] = {
            "model": MODEL,
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": PROMPT}],
        }

        async def anthropic_raw() -> float:
            start = clock()
            stream = await client.messages.create(**params, stream=True)
            async for _event in stream:
                pass
            return clock() - start

        async def anthropic_accumulate() -> float:
            start = clock()
            async with client.messages.stream(**params) as stream:
                final = await stream.get_final_message()
            elapsed = clock() - start
            got["anthropic"] = final
            return elapsed

        contenders["anthropic_raw"] = anthropic_raw
        contenders["anthropic_accumulate"] = anthropic_accumulate
    except ImportError as exc:
        peer_notes.append(f"anthropic is not installed ({exc}); its lines are missing")

    note(f"row 1: {n_events} SSE events, {repeats} repeats")
    times = await ainterleave(contenders, repeats)
    _check(got, want_text, want_inputs)
    await backend.aclose()
    await conversation.aclose()
    await conv_4k.aclose()
    await floor_client.aclose()

    best = {name: min(values) for name, values in times.items()}
    row = Row(1, f"API stream: {n_events:,} SSE events, one chunk per event", "CPU time (min)")
    labels = {
        "bytes_floor": "bytes floor: httpx + our SSE framer + one decode + the accumulator",
        "bytes_floor_4k": "bytes floor, 4 KiB reads",
        "ours_conversation_4k": "ours: Conversation.send, 4 KiB reads",
        "floor": "floor: httpx + httpx-sse + one typed msgspec decoder",
        "floor_scoped": "floor + one anyio cancel scope per read (interruptible reads)",
        "ours": "ours: ApiBackend.exchange + MessageAccumulator + Message",
        "ours_conversation": "ours: Conversation.send (full path)",
        "anthropic_raw": "anthropic: messages.create(stream=True), raw events",
        "anthropic_accumulate": "anthropic: messages.stream().get_final_message()",
    }
    for name, value in best.items():
        per = value / n_events
        row.lines.append(
            Line(
                labels[name],
                fmt_ms(value),
                ratio(value, best["floor"]),
                f"{per * 1e6:.2f} µs/event; median {fmt_ms(median(times[name]))}",
            )
        )
    row.notes.append("ratio: time ÷ the floor's time (lower is better)")
    row.notes.append(
        "interrupt() must stop a read that waits; on asyncio ours cancels the reading task only "
        "when it waits instead of entering a cancel scope per read (the trio path keeps the scope)"
    )
    row.notes += peer_notes
    ours = best["ours"]
    row.targets.append(
        Target(
            "ours ≤ 1.3x the floor",
            f"{ours / best['floor']:.2f}x (Conversation: "
            f"{best['ours_conversation'] / best['floor']:.2f}x)",
            ours / best["floor"] <= 1.3,
        )
    )
    for conv_name, floor_name, reads in (
        ("ours_conversation", "bytes_floor", "one read per event"),
        ("ours_conversation_4k", "bytes_floor_4k", "4 KiB reads"),
    ):
        over = best[conv_name] / best[floor_name]
        extra = (best[conv_name] - best[floor_name]) / n_events * 1e6
        row.targets.append(
            Target(
                f"Conversation.send ≤ 1.5x the bytes floor, {reads}",
                f"{over:.2f}x ({extra:+.2f} µs/event)",
                over <= 1.5,
            )
        )
    if "anthropic_accumulate" in best:
        speedup = best["anthropic_accumulate"] / ours
        row.targets.append(
            Target(
                "ours ≥ 5x faster than anthropic's accumulation",
                f"{speedup:.1f}x faster",
                speedup >= 5,
            )
        )
    return row


def _check(got: dict[str, Any], text: str, inputs: list[dict[str, Any]]) -> None:
    """Every contender that accumulates must have built the same message."""
    for key in ("ours", "conversation"):
        message: Message = got[key]
        assert message.text == text, key
        assert [b.input for b in message.tool_uses] == inputs, key
    final = got.get("anthropic")
    if final is not None:
        assert "".join(b.text for b in final.content if b.type == "text") == text
        assert [b.input for b in final.content if b.type == "tool_use"] == inputs


def run(size: Size) -> Row:
    return anyio.run(_run, size)
