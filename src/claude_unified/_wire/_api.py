"""Typed msgspec frames of the Messages API (stream events, responses) and their decoders."""

from __future__ import annotations

from typing import TypeAlias

import msgspec

from .._events import ContentBlock, JsonObject
from ._base import (
    ErrorDetail,
    WireUsage,
    as_bytes,
    decode_block,
    decode_blocks,
    decode_open,
    json_object_decoder,
    malformed,
    type_of,
    with_usage_overflow,
)


class MessageHead(msgspec.Struct, frozen=True):
    id: str = ""
    model: str = ""
    role: str = "assistant"
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: WireUsage = msgspec.field(default_factory=WireUsage)
    stop_details: JsonObject | None = None
    container: JsonObject | None = None


class TextDeltaBody(msgspec.Struct, frozen=True, tag="text_delta", tag_field="type"):
    text: str


class InputJsonDeltaBody(msgspec.Struct, frozen=True, tag="input_json_delta", tag_field="type"):
    partial_json: str


class ThinkingDeltaBody(msgspec.Struct, frozen=True, tag="thinking_delta", tag_field="type"):
    thinking: str


class SignatureDeltaBody(msgspec.Struct, frozen=True, tag="signature_delta", tag_field="type"):
    signature: str


class CitationsDeltaBody(msgspec.Struct, frozen=True, tag="citations_delta", tag_field="type"):
    citation: JsonObject


class CompactionDeltaBody(msgspec.Struct, frozen=True, tag="compaction_delta", tag_field="type"):
    """The whole content of a ``compaction`` block (it replaces, never appends)."""

    content: str | None = None
    encrypted_content: str | None = None


class UnknownDeltaBody(msgspec.Struct, frozen=True, tag="unknown_delta", tag_field="type"):
    raw: JsonObject


DeltaBody: TypeAlias = (
    TextDeltaBody
    | InputJsonDeltaBody
    | ThinkingDeltaBody
    | SignatureDeltaBody
    | CitationsDeltaBody
    | CompactionDeltaBody
    | UnknownDeltaBody
)


class _ApiEvent(msgspec.Struct, frozen=True, tag_field="type"):
    pass


class MessageStartEvent(_ApiEvent, frozen=True, tag="message_start"):
    message: MessageHead


class ContentBlockStartEvent(_ApiEvent, frozen=True, tag="content_block_start"):
    index: int
    content_block: ContentBlock


class ContentBlockDeltaEvent(_ApiEvent, frozen=True, tag="content_block_delta"):
    index: int
    delta: DeltaBody


class ContentBlockStopEvent(_ApiEvent, frozen=True, tag="content_block_stop"):
    index: int


class MessageDeltaBody(msgspec.Struct, frozen=True):
    stop_reason: str | None = None
    stop_sequence: str | None = None
    stop_details: JsonObject | None = None
    container: JsonObject | None = None


class MessageDeltaEvent(_ApiEvent, frozen=True, tag="message_delta"):
    delta: MessageDeltaBody = msgspec.field(default_factory=MessageDeltaBody)
    usage: WireUsage | None = None


class MessageStopEvent(_ApiEvent, frozen=True, tag="message_stop"):
    pass


class PingEvent(_ApiEvent, frozen=True, tag="ping"):
    pass


class ErrorEvent(_ApiEvent, frozen=True, tag="error"):
    error: ErrorDetail = msgspec.field(default_factory=ErrorDetail)


class UnknownApiEvent(_ApiEvent, frozen=True, tag="unknown_event"):
    raw: JsonObject


ApiEvent: TypeAlias = (
    MessageStartEvent
    | ContentBlockStartEvent
    | ContentBlockDeltaEvent
    | ContentBlockStopEvent
    | MessageDeltaEvent
    | MessageStopEvent
    | PingEvent
    | ErrorEvent
    | UnknownApiEvent
)


class MessageResponse(msgspec.Struct, frozen=True):
    """A complete (non-streaming) Messages API response."""

    id: str = ""
    model: str = ""
    role: str = "assistant"
    content: list[ContentBlock] = msgspec.field(default_factory=list)
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: WireUsage = msgspec.field(default_factory=WireUsage)
    stop_details: JsonObject | None = None
    container: JsonObject | None = None


class CountTokensResponse(msgspec.Struct, frozen=True):
    input_tokens: int


_delta: msgspec.json.Decoder[DeltaBody] = msgspec.json.Decoder(DeltaBody)


_api_event: msgspec.json.Decoder[ApiEvent] = msgspec.json.Decoder(ApiEvent)


_message_response = msgspec.json.Decoder(MessageResponse)


_count_tokens = msgspec.json.Decoder(CountTokensResponse)


class _RawBlockStart(msgspec.Struct):
    index: int
    content_block: msgspec.Raw


class _RawBlockDelta(msgspec.Struct):
    index: int
    delta: msgspec.Raw


class _RawMessageResponse(msgspec.Struct):
    id: str = ""
    model: str = ""
    role: str = "assistant"
    content: list[msgspec.Raw] = msgspec.field(default_factory=list)
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: WireUsage = msgspec.field(default_factory=WireUsage)
    stop_details: JsonObject | None = None
    container: JsonObject | None = None


_raw_block_start = msgspec.json.Decoder(_RawBlockStart)


_raw_block_delta = msgspec.json.Decoder(_RawBlockDelta)


_raw_message_response = msgspec.json.Decoder(_RawMessageResponse)


_KNOWN_DELTAS = frozenset(
    {
        "text_delta",
        "input_json_delta",
        "thinking_delta",
        "signature_delta",
        "citations_delta",
        "compaction_delta",
    }
)


def _decode_delta(data: msgspec.Raw) -> DeltaBody:
    value = decode_open(data, _delta, _KNOWN_DELTAS, "delta")
    return UnknownDeltaBody(raw=value) if isinstance(value, dict) else value


def decode_api_event(data: bytes | str | msgspec.Raw) -> ApiEvent:
    """Decode one Messages API stream event (the ``data:`` of an SSE frame)."""
    try:
        event = _api_event.decode(data)
    except msgspec.ValidationError as exc:
        kind = type_of(data, "stream event")
        try:
            if kind == "content_block_start":
                start = _raw_block_start.decode(data)
                return ContentBlockStartEvent(start.index, decode_block(start.content_block))
            if kind == "content_block_delta":
                delta = _raw_block_delta.decode(data)
                return ContentBlockDeltaEvent(delta.index, _decode_delta(delta.delta))
        except msgspec.ValidationError as inner:
            raise malformed("stream event", as_bytes(data), inner) from inner
        if kind in _API_EVENT_TYPES:
            raise malformed("stream event", as_bytes(data), exc) from exc
        return UnknownApiEvent(raw=json_object_decoder.decode(data))
    except msgspec.DecodeError as exc:
        raise malformed("stream event", as_bytes(data), exc) from exc
    if type(event) is ContentBlockDeltaEvent:  # the bulk of a stream
        return event
    return _keep_usage_overflow(event, data)


def _keep_usage_overflow(event: ApiEvent, data: bytes | str | msgspec.Raw) -> ApiEvent:
    if isinstance(event, MessageStartEvent):
        head = event.message
        usage = with_usage_overflow(head.usage, data, nested=True)
        if usage is not head.usage:
            return MessageStartEvent(msgspec.structs.replace(head, usage=usage))
    elif isinstance(event, MessageDeltaEvent):
        delta_usage = with_usage_overflow(event.usage, data)
        if delta_usage is not event.usage:
            return msgspec.structs.replace(event, usage=delta_usage)
    return event


_API_EVENT_TYPES = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    }
)


def decode_message_response(data: bytes) -> MessageResponse:
    """Decode a non-streaming Messages API response."""
    try:
        response = _message_response.decode(data)
    except msgspec.ValidationError:
        try:
            raw = _raw_message_response.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise malformed("message response", data, exc) from exc
        return MessageResponse(
            id=raw.id,
            model=raw.model,
            role=raw.role,
            content=decode_blocks(raw.content),
            stop_reason=raw.stop_reason,
            stop_sequence=raw.stop_sequence,
            usage=with_usage_overflow(raw.usage, data),
            stop_details=raw.stop_details,
            container=raw.container,
        )
    except msgspec.DecodeError as exc:
        raise malformed("message response", data, exc) from exc
    usage = with_usage_overflow(response.usage, data)
    return response if usage is response.usage else msgspec.structs.replace(response, usage=usage)


def decode_count_tokens(data: bytes) -> CountTokensResponse:
    try:
        return _count_tokens.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise malformed("count_tokens response", data, exc) from exc
