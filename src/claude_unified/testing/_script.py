"""Scripted model responses ("steps") and their rendering as Messages API bytes.

A step is either a :class:`Reply` (one assistant message, optionally carrying faults to act out on
the wire) or an :class:`ErrorReply` (an HTTP error response). Builders such as :func:`reply` and
:func:`tool_call` make them. :func:`render_stream` and :func:`render_message` turn a reply into the
exact JSON bodies the API would send; they are pure, so an in-process fake can feed the same bytes
to the library's decoders that the HTTP fake server puts on the wire.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

import msgspec

from claude_unified import _wire as w
from claude_unified._events import (
    RedactedThinkingBlock,
    ServerToolUseBlock,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    UnknownBlock,
    Usage,
)

__all__ = [
    "CommentStall",
    "Delay",
    "Drip",
    "Drop",
    "ErrorReply",
    "Fault",
    "Gzip",
    "Malformed",
    "Raw",
    "Reply",
    "Reset",
    "ResponseBlock",
    "Stall",
    "Step",
    "StreamError",
    "comment_stall",
    "delay",
    "drip",
    "drop",
    "error",
    "gzip",
    "malformed",
    "message",
    "new_tool_id",
    "output_tokens",
    "raw",
    "render_error",
    "render_malformed",
    "render_message",
    "render_ping",
    "render_stream",
    "render_stream_error",
    "reply",
    "reset",
    "sse_frame",
    "stall",
    "stream_error",
    "thinking",
    "tool_call",
    "tool_calls",
]

JsonObject: TypeAlias = dict[str, Any]

ResponseBlock: TypeAlias = (
    TextBlock
    | ToolUseBlock
    | ThinkingBlock
    | RedactedThinkingBlock
    | ServerToolUseBlock
    | UnknownBlock
)
"""A block an assistant message can hold. An ``UnknownBlock`` is sent as its ``raw`` object."""

# --------------------------------------------------------------------------- faults


class _Fault(msgspec.Struct, frozen=True, tag_field="kind"):
    pass


class StreamError(_Fault, frozen=True, tag="stream_error"):
    """Answer HTTP 200, then send an ``error`` event after ``after_events`` events and stop."""

    after_events: int
    error_type: str = "overloaded_error"
    message: str = "Overloaded"


class Drop(_Fault, frozen=True, tag="drop"):
    """Close the connection. ``after_events=0`` closes it before any response byte is sent."""

    after_events: int = 0


class Stall(_Fault, frozen=True, tag="stall"):
    """Send nothing (but optional pings) for ``seconds`` after ``after_events`` events."""

    seconds: float
    after_events: int
    ping_every: float | None = None


class Malformed(_Fault, frozen=True, tag="malformed"):
    """Send one frame whose data is not valid JSON after ``after_events`` events."""

    after_events: int


class Delay(_Fault, frozen=True, tag="delay"):
    """Wait ``seconds`` before sending the response status line."""

    seconds: float


class CommentStall(_Fault, frozen=True, tag="comment_stall"):
    """Send only SSE comment lines (``: …``), one every ``every`` seconds, for ``seconds`` after
    ``after_events`` events: bytes keep arriving, events do not."""

    seconds: float
    after_events: int
    every: float = 0.05


class Raw(_Fault, frozen=True, tag="raw"):
    """Write ``data`` verbatim into the event stream after ``after_events`` events; with ``end``
    the response ends right after it (the remaining events are never sent)."""

    data: bytes
    after_events: int
    end: bool = False


class Reset(_Fault, frozen=True, tag="reset"):
    """Reset the connection (TCP RST) once ``after_bytes`` bytes of the event stream were sent
    (and, so that they are not dropped with the connection, had a moment to be read)."""

    after_bytes: int


class Drip(_Fault, frozen=True, tag="drip"):
    """Send the event stream ``size`` bytes at a time, pausing ``every`` seconds between."""

    size: int = 1
    every: float = 0.0


class Gzip(_Fault, frozen=True, tag="gzip"):
    """Send the event stream with ``content-encoding: gzip``; ``corrupt`` garbles the
    compressed bytes after the gzip header, so the client cannot decode them."""

    corrupt: bool = False


Fault: TypeAlias = (
    StreamError | Drop | Stall | Malformed | Delay | CommentStall | Raw | Reset | Drip | Gzip
)
"""A fault acted out while sending a step.

``after_events`` counts the rendered message events (``message_start`` … ``message_stop``);
pings are not counted. Stream faults (everything but ``Delay`` and ``Drop(after_events=0)``) only
apply to streaming requests, so a non-streaming retry of the same request succeeds. ``Reset``,
``Drip`` and ``Gzip`` act on the bytes of the event stream (``Reset`` counts them before
compression).
"""

# --------------------------------------------------------------------------- steps


class Reply(msgspec.Struct, frozen=True):
    """One assistant message. ``usage`` (when set) is reported verbatim instead of estimated;
    ``model`` (when set) replaces the requested model in the response."""

    content: tuple[ResponseBlock, ...]
    stop_reason: str = "end_turn"
    usage: Usage | None = None
    model: str | None = None
    faults: tuple[Fault, ...] = ()

    def with_fault(self, *faults: Fault) -> Reply:
        """A copy of this reply that also acts out ``faults``."""
        return msgspec.structs.replace(self, faults=self.faults + faults)


class ErrorReply(msgspec.Struct, frozen=True):
    """An HTTP error response with the API's error body."""

    status: int
    error_type: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()
    faults: tuple[Delay, ...] = ()

    def with_fault(self, *faults: Delay) -> ErrorReply:
        """A copy of this error that is sent only after the given delays."""
        return msgspec.structs.replace(self, faults=self.faults + faults)


Step: TypeAlias = Reply | ErrorReply

# --------------------------------------------------------------------------- builders

_tool_ids = itertools.count(1)


def new_tool_id() -> str:
    """A fresh ``toolu_fake_…`` id, unique within this process."""
    return f"toolu_fake_{next(_tool_ids):04x}{secrets.token_hex(4)}"


def reply(
    text: str,
    *,
    stop_reason: str = "end_turn",
    usage: Usage | None = None,
    model: str | None = None,
) -> Reply:
    """A plain text answer."""
    return Reply((TextBlock(text),), stop_reason=stop_reason, usage=usage, model=model)


def tool_call(
    name: str, input: JsonObject, *, id: str | None = None, text: str | None = None
) -> Reply:
    """An optional leading text block, then one ``tool_use`` block (stop_reason ``tool_use``)."""
    lead = (TextBlock(text),) if text is not None else ()
    return Reply((*lead, ToolUseBlock(id or new_tool_id(), name, input)), stop_reason="tool_use")


def tool_calls(*calls: tuple[str, JsonObject], text: str | None = None) -> Reply:
    """Several ``tool_use`` blocks in one message, each call given as ``(name, input)``."""
    lead = (TextBlock(text),) if text is not None else ()
    uses = tuple(ToolUseBlock(new_tool_id(), name, input) for name, input in calls)
    return Reply((*lead, *uses), stop_reason="tool_use")


def thinking(thought: str, text: str, *, signature: str = "sig_fake") -> Reply:
    """A signed thinking block followed by a text answer."""
    return Reply((ThinkingBlock(thought, signature), TextBlock(text)))


def message(
    blocks: Sequence[ResponseBlock],
    *,
    stop_reason: str,
    usage: Usage | None = None,
    model: str | None = None,
) -> Reply:
    """Any assistant message, from its blocks."""
    return Reply(tuple(blocks), stop_reason=stop_reason, usage=usage, model=model)


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_ERROR_MESSAGES = {
    "invalid_request_error": "Invalid request",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low",
    "permission_error": "Your API key does not have permission to use the specified resource",
    "not_found_error": "Not found",
    "timeout_error": "Request timed out",
    "conflict_error": "Conflict",
    "request_too_large": "Request exceeds the maximum allowed number of bytes",
    "rate_limit_error": "Rate limited",
    "api_error": "Internal server error",
    "overloaded_error": "Overloaded",
}


def error(
    status: int,
    *,
    error_type: str | None = None,
    message: str | None = None,
    headers: dict[str, str] | None = None,
) -> ErrorReply:
    """An HTTP error. ``error_type`` defaults from the status (429 → ``rate_limit_error`` …)."""
    if not 400 <= status <= 599:
        raise ValueError(f"error status must be 4xx or 5xx, got {status}")
    kind = error_type or _ERROR_TYPES.get(
        status, "api_error" if status >= 500 else "invalid_request_error"
    )
    text = message or _ERROR_MESSAGES.get(kind, kind)
    return ErrorReply(status, kind, text, headers=tuple((headers or {}).items()))


def stream_error(
    after_events: int, *, error_type: str = "overloaded_error", message: str | None = None
) -> StreamError:
    """An ``event: error`` after ``after_events`` events of an HTTP 200 stream."""
    return StreamError(after_events, error_type, message or _ERROR_MESSAGES.get(error_type, ""))


def drop(after_events: int = 0) -> Drop:
    """Close the socket; with 0, before any response byte."""
    return Drop(after_events)


def stall(seconds: float, *, after_events: int, ping_every: float | None = None) -> Stall:
    """Go quiet (apart from optional pings) for ``seconds``, then carry on."""
    if ping_every is not None and ping_every <= 0:
        raise ValueError(f"ping_every must be positive, got {ping_every}")
    return Stall(seconds, after_events, ping_every)


def malformed(after_events: int) -> Malformed:
    """Insert one frame whose data is not JSON."""
    return Malformed(after_events)


def delay(seconds: float) -> Delay:
    """Wait before responding at all."""
    return Delay(seconds)


def comment_stall(seconds: float, *, after_events: int, every: float = 0.05) -> CommentStall:
    """Send nothing but SSE comments for ``seconds``, then carry on."""
    if every <= 0:
        raise ValueError(f"every must be positive, got {every}")
    return CommentStall(seconds, after_events, every)


def raw(data: bytes, *, after_events: int, end: bool = False) -> Raw:
    """Put ``data`` on the wire verbatim after ``after_events`` events (and stop, with ``end``)."""
    return Raw(data, after_events, end)


def reset(after_bytes: int) -> Reset:
    """Reset the connection after ``after_bytes`` bytes of the event stream."""
    if after_bytes < 0:
        raise ValueError(f"after_bytes must be 0 or more, got {after_bytes}")
    return Reset(after_bytes)


def drip(size: int = 1, *, every: float = 0.0) -> Drip:
    """Send the event stream in pieces of ``size`` bytes, ``every`` seconds apart."""
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    return Drip(size, every)


def gzip(*, corrupt: bool = False) -> Gzip:
    """Compress the event stream (``content-encoding: gzip``); ``corrupt`` garbles it."""
    return Gzip(corrupt)


# --------------------------------------------------------------------------- wire structs


class _WireCacheCreation(msgspec.Struct, frozen=True):
    ephemeral_5m_input_tokens: int
    ephemeral_1h_input_tokens: int


class _WireUsage(msgspec.Struct, frozen=True):
    """Usage with every field present, as the API sends it."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cache_creation: _WireCacheCreation


class _WireMessage(msgspec.Struct, frozen=True, tag="message", tag_field="type"):
    id: str
    model: str
    content: list[Any]
    stop_reason: str | None
    usage: _WireUsage
    role: Literal["assistant"] = "assistant"
    stop_sequence: str | None = None


class _ThinkingStart(msgspec.Struct, frozen=True, tag="thinking", tag_field="type"):
    """A thinking block's opening: both fields present and empty, as the API sends it."""

    thinking: str = ""
    signature: str = ""


class _MessageStart(msgspec.Struct, frozen=True, tag="message_start", tag_field="type"):
    message: _WireMessage


class _DeltaBody(msgspec.Struct, frozen=True):
    stop_reason: str | None
    stop_sequence: str | None = None


class _MessageDelta(msgspec.Struct, frozen=True, tag="message_delta", tag_field="type"):
    delta: _DeltaBody
    usage: _WireUsage


class _ErrorDetail(msgspec.Struct, frozen=True):
    type: str
    message: str


class _ErrorBody(msgspec.Struct, frozen=True, omit_defaults=True, tag="error", tag_field="type"):
    error: _ErrorDetail
    request_id: str | None = None


class _EventType(msgspec.Struct, frozen=True):
    type: str


_encoder = msgspec.json.Encoder()
_event_type_decoder = msgspec.json.Decoder(_EventType)

# --------------------------------------------------------------------------- rendering


def output_tokens(step: Reply) -> int:
    """Estimated output tokens: characters of text, thinking and tool input ÷ 4, at least 1."""
    if step.usage is not None:
        return step.usage.output_tokens
    chars = 0
    for block in step.content:
        if isinstance(block, TextBlock):
            chars += len(block.text)
        elif isinstance(block, ThinkingBlock):
            chars += len(block.thinking)
        elif isinstance(block, ToolUseBlock | ServerToolUseBlock):
            chars += len(_encoder.encode(block.input))
    return max(1, chars // 4)


def _usage(
    step: Reply, input_tokens: int, cache_read: int, cache_write: int, cache_write_1h: int
) -> _WireUsage:
    given = step.usage
    if given is None:
        given = Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens(step),
            cache_creation_input_tokens=cache_write,
            cache_read_input_tokens=cache_read,
        )
        one_hour = cache_write_1h
    else:
        one_hour = given.cache_creation.ephemeral_1h_input_tokens if given.cache_creation else 0
    creation = given.cache_creation_input_tokens
    return _WireUsage(
        input_tokens=given.input_tokens,
        output_tokens=given.output_tokens,
        cache_creation_input_tokens=creation,
        cache_read_input_tokens=given.cache_read_input_tokens,
        cache_creation=_WireCacheCreation(creation - one_hour, one_hour),
    )


def _split(text: str) -> list[str]:
    """Cut non-empty text into one to three pieces, deterministically by length."""
    if not text:
        return []
    parts = 1 if len(text) < 8 else 2 if len(text) < 32 else 3
    size = -(-len(text) // parts)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _final_block(block: ResponseBlock) -> Any:
    return block.raw if isinstance(block, UnknownBlock) else block


def _block_events(index: int, block: ResponseBlock) -> list[Any]:
    deltas: list[w.DeltaBody] = []
    start: Any
    if isinstance(block, TextBlock):
        start = TextBlock("")
        deltas = [w.TextDeltaBody(piece) for piece in _split(block.text)]
        deltas += [w.CitationsDeltaBody(citation) for citation in block.citations or ()]
    elif isinstance(block, ThinkingBlock):
        start = _ThinkingStart()
        deltas = [w.ThinkingDeltaBody(piece) for piece in _split(block.thinking)]
        deltas.append(w.SignatureDeltaBody(block.signature))
    elif isinstance(block, ToolUseBlock | ServerToolUseBlock):
        start = msgspec.structs.replace(block, input={})
        partial = _encoder.encode(block.input).decode()
        deltas = [w.InputJsonDeltaBody(piece) for piece in ["", *_split(partial)]]
    else:
        start = _final_block(block)
    return [
        w.ContentBlockStartEvent(index, start),
        *(w.ContentBlockDeltaEvent(index, delta) for delta in deltas),
        w.ContentBlockStopEvent(index),
    ]


def render_stream(
    step: Reply,
    *,
    model: str,
    input_tokens: int,
    cache_read: int = 0,
    cache_write: int = 0,
    cache_write_1h: int = 0,
    message_id: str = "msg_fake",
) -> list[bytes]:
    """The JSON bodies of the stream events for ``step``, in order, without pings.

    ``cache_write`` is all cache-creation tokens; ``cache_write_1h`` is the part written with a
    one-hour TTL. ``message_delta`` repeats the full (cumulative) usage, as newer responses do.
    """
    usage = _usage(step, input_tokens, cache_read, cache_write, cache_write_1h)
    opening = msgspec.structs.replace(usage, output_tokens=min(1, usage.output_tokens))
    events: list[Any] = [
        _MessageStart(_WireMessage(message_id, step.model or model, [], None, opening))
    ]
    for index, block in enumerate(step.content):
        events += _block_events(index, block)
    events += [_MessageDelta(_DeltaBody(step.stop_reason), usage), w.MessageStopEvent()]
    return [_encoder.encode(event) for event in events]


def render_message(
    step: Reply,
    *,
    model: str,
    input_tokens: int,
    cache_read: int = 0,
    cache_write: int = 0,
    cache_write_1h: int = 0,
    message_id: str = "msg_fake",
) -> bytes:
    """The non-streaming JSON response for ``step``."""
    usage = _usage(step, input_tokens, cache_read, cache_write, cache_write_1h)
    content = [_final_block(block) for block in step.content]
    return _encoder.encode(
        _WireMessage(message_id, step.model or model, content, step.stop_reason, usage)
    )


def render_error(step: ErrorReply, *, request_id: str) -> bytes:
    """The JSON body of an error response."""
    return _encoder.encode(_ErrorBody(_ErrorDetail(step.error_type, step.message), request_id))


def render_stream_error(fault: StreamError) -> bytes:
    """The JSON body of an in-stream ``error`` event."""
    return _encoder.encode(w.ErrorEvent(w.ErrorDetail(fault.error_type, fault.message)))


def render_ping() -> bytes:
    return _encoder.encode(w.PingEvent())


def render_malformed() -> bytes:
    """Data that is not JSON: a ``content_block_delta`` cut off half-way."""
    whole = _encoder.encode(w.ContentBlockDeltaEvent(0, w.TextDeltaBody("cut off")))
    return whole[: len(whole) // 2]


def sse_frame(data: bytes, *, event: str | None = None) -> bytes:
    """One SSE frame; the event name defaults to the ``type`` inside ``data``."""
    name = event or _event_type_decoder.decode(data).type
    return b"event: %s\ndata: %s\n\n" % (name.encode(), data)
