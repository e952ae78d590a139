"""Property tests: whatever bytes arrive, the SSE framer, the API event decoder, the accumulator
and ``decode_event`` raise nothing but the library's own errors."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import claude_unified as cu
from claude_unified import _wire as w
from claude_unified._normalize import MessageAccumulator
from claude_unified.backends._sse import SseFramer

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

EVENT_TYPES = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
    "something_new",
]
BLOCK_TYPES = ["text", "thinking", "tool_use", "server_tool_use", "redacted_thinking", "image", "x"]
DELTA_TYPES = [
    "text_delta",
    "input_json_delta",
    "thinking_delta",
    "signature_delta",
    "citations_delta",
    "y",
]
small_index = st.integers(min_value=-1, max_value=3) | st.integers()


def _shaped(kinds: list[str], fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Objects with a ``type`` from ``kinds`` and any mix of plausible or random fields."""
    return st.fixed_dictionaries(
        {"type": st.sampled_from(kinds)},
        optional={name: strategy | json_values for name, strategy in fields.items()},
    )


blocks = _shaped(
    BLOCK_TYPES,
    {
        "text": st.text(max_size=10),
        "thinking": st.text(max_size=10),
        "signature": st.text(max_size=5),
        "id": st.text(max_size=5),
        "name": st.text(max_size=5),
        "input": st.dictionaries(st.text(max_size=3), json_scalars, max_size=2),
    },
)
deltas = _shaped(
    DELTA_TYPES,
    {
        "text": st.text(max_size=10),
        "partial_json": st.sampled_from(['{"a":', "1}", "", "{}", "[", "nul"]),
        "thinking": st.text(max_size=10),
        "signature": st.text(max_size=5),
        "citation": st.dictionaries(st.text(max_size=3), json_scalars, max_size=2),
    },
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=5),
        "model": st.text(max_size=5),
        "content": st.lists(blocks, max_size=2),
        "usage": st.dictionaries(
            st.sampled_from(["input_tokens", "output_tokens", "cache_read_input_tokens"]),
            st.integers(min_value=-5, max_value=10**6) | json_scalars,
            max_size=3,
        ),
    },
)
events = _shaped(
    EVENT_TYPES,
    {
        "index": small_index,
        "content_block": blocks,
        "delta": deltas | st.fixed_dictionaries({}, optional={"stop_reason": st.text(max_size=8)}),
        "message": messages,
        "usage": st.dictionaries(st.text(max_size=12), json_scalars, max_size=3),
        "error": st.fixed_dictionaries({"type": st.text(max_size=8), "message": st.text()}),
    },
)
index = st.integers(min_value=0, max_value=2)
valid_blocks = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, st.text(max_size=5)),
    st.just({"type": "thinking", "thinking": "", "signature": ""}),
    st.builds(
        lambda n: {"type": "tool_use", "id": "toolu_1", "name": n, "input": {}}, st.text(max_size=4)
    ),
)
valid_deltas = st.one_of(
    st.builds(lambda t: {"type": "text_delta", "text": t}, st.text(max_size=5)),
    st.builds(
        lambda p: {"type": "input_json_delta", "partial_json": p},
        st.sampled_from(['{"a":', "1}", "", "{}", "[", "nul"]),
    ),
    st.builds(lambda t: {"type": "thinking_delta", "thinking": t}, st.text(max_size=5)),
    st.just({"type": "signature_delta", "signature": "sig"}),
)
valid_events = st.one_of(
    st.just({"type": "message_start", "message": {"id": "m", "model": "x", "content": []}}),
    st.builds(
        lambda i, b: {"type": "content_block_start", "index": i, "content_block": b},
        index,
        valid_blocks,
    ),
    st.builds(
        lambda i, d: {"type": "content_block_delta", "index": i, "delta": d}, index, valid_deltas
    ),
    st.builds(lambda i: {"type": "content_block_stop", "index": i}, index),
    st.just(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 3},
        }
    ),
    st.just({"type": "message_stop"}),
)
"""Events each well formed, in any order: duplicates, gaps and strays included."""


encoded_events = (
    valid_events.map(msgspec.json.encode) | events.map(msgspec.json.encode) | st.binary(max_size=40)
)


@st.composite
def streams(draw: st.DrawFn) -> list[bytes]:
    """A well-formed stream of a few blocks, then cut, repeated, reordered or salted with other
    frames: the shapes a broken server or connection produces."""
    out: list[Any] = [
        {"type": "message_start", "message": {"id": "m", "model": "x", "content": []}}
    ]
    for i in range(draw(st.integers(min_value=0, max_value=3))):
        out.append({"type": "content_block_start", "index": i, "content_block": draw(valid_blocks)})
        for delta in draw(st.lists(valid_deltas, max_size=4)):
            out.append({"type": "content_block_delta", "index": i, "delta": delta})
        out.append({"type": "content_block_stop", "index": i})
    out += [
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
        {"type": "message_stop"},
    ]
    frames = [msgspec.json.encode(event) for event in out]
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(frames)))
        action = draw(st.sampled_from(["cut", "repeat", "insert", "drop"]))
        if action == "cut":
            frames = frames[:at]
        elif action == "repeat" and at < len(frames):
            frames.insert(at, frames[at])
        elif action == "insert":
            frames.insert(at, draw(encoded_events))
        elif at < len(frames):
            del frames[at]
    return frames


def _decode_all(frames: list[bytes]) -> list[w.ApiEvent]:
    decoded = []
    for frame in frames:
        with contextlib.suppress(cu.ProtocolError):
            decoded.append(w.decode_api_event(frame))
    return decoded


@SETTINGS
@given(st.lists(st.binary(max_size=64), max_size=12))
def test_the_framer_takes_any_bytes(chunks: list[bytes]) -> None:
    framer = SseFramer()
    for chunk in chunks:
        assert all(isinstance(data, bytes) for data in framer.feed(chunk))


@SETTINGS
@given(st.lists(encoded_events, max_size=6), st.integers(min_value=1, max_value=9))
def test_the_framer_returns_every_event_whatever_the_chunking(
    frames: list[bytes], size: int
) -> None:
    frames = [f for f in frames if b"\n" not in f and b"\r" not in f]
    stream = b"".join(b"data: " + f + b"\n\n" for f in frames)
    framer = SseFramer()
    out = []
    for i in range(0, len(stream), size):
        out += framer.feed(stream[i : i + size])
    assert out == frames


@SETTINGS
@given(encoded_events)
def test_the_event_decoder_raises_only_library_errors(data: bytes) -> None:
    try:
        event: object = w.decode_api_event(data)
    except cu.ProtocolError as exc:  # the only error it may raise; anything else fails the test
        event = exc.raw
    assert event is not None


@SETTINGS
@given(streams() | st.lists(encoded_events, max_size=14))
def test_the_accumulator_raises_only_library_errors(frames: list[bytes]) -> None:
    acc = MessageAccumulator()
    try:
        for event in _decode_all(frames):
            for public in acc.feed(event):
                cu.decode_event(cu.encode_event(public))  # every event it makes round-trips
        message = acc.message()
    except cu.ClaudeError:
        return
    msgspec.json.encode(message)
    assert isinstance(acc.partial_text, str)


@SETTINGS
@given(
    st.binary(max_size=60) | json_values.map(msgspec.json.encode) | events.map(msgspec.json.encode)
)
def test_decode_event_raises_only_protocol_errors(data: bytes) -> None:
    try:
        event = cu.decode_event(data)
    except cu.ProtocolError as exc:
        raw = exc.raw
    else:
        assert cu.decode_event(cu.encode_event(event)) == event
        return
    assert raw == data
