"""Typed msgspec frames for both wire formats, and their decoders.

Decoding is open-world at every level. Each decoder first tries one typed pass over the whole
frame (the fast path: every known type, nested unions included). Only when that pass fails
validation does it take the slow path, which decodes the envelope with the nested parts left raw
and decodes each part on its own, so that an unknown event, block, delta, line type or control
request becomes an ``Unknown…`` value carrying the raw object instead of an error. A frame that is
not JSON at all, or a *known* type with a malformed body, is a ``ProtocolError`` with the bytes.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias, TypeVar

import msgspec

from ._events import CacheCreation, ContentBlock, JsonObject, UnknownBlock
from ._exceptions import ProtocolError

# --------------------------------------------------------------------------- shared pieces


class WireUsage(msgspec.Struct, frozen=True, omit_defaults=True):
    """Usage as sent on the wire: any field may be missing or null (``message_delta``)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation: CacheCreation | None = None


class ErrorDetail(msgspec.Struct, frozen=True):
    type: str = "api_error"
    message: str = ""


class ErrorBody(msgspec.Struct, frozen=True):
    """``{"type":"error","error":{…},"request_id":…}`` — the body of an API error."""

    error: ErrorDetail = msgspec.field(default_factory=ErrorDetail)
    request_id: str | None = None


class _Envelope(msgspec.Struct):
    type: str = ""


# --------------------------------------------------------------------------- Messages API events


class MessageHead(msgspec.Struct, frozen=True):
    id: str = ""
    model: str = ""
    role: str = "assistant"
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: WireUsage = msgspec.field(default_factory=WireUsage)


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


class UnknownDeltaBody(msgspec.Struct, frozen=True, tag="unknown_delta", tag_field="type"):
    raw: JsonObject


DeltaBody: TypeAlias = (
    TextDeltaBody
    | InputJsonDeltaBody
    | ThinkingDeltaBody
    | SignatureDeltaBody
    | CitationsDeltaBody
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


class CountTokensResponse(msgspec.Struct, frozen=True):
    input_tokens: int


# --------------------------------------------------------------------------- CLI stream-json lines


class WireAssistantMessage(msgspec.Struct, frozen=True):
    id: str = ""
    model: str = ""
    content: list[ContentBlock] = msgspec.field(default_factory=list)
    stop_reason: str | None = None
    usage: WireUsage | None = None


class WireUserMessage(msgspec.Struct, frozen=True):
    role: str = "user"
    content: str | list[ContentBlock] = ""


class _CliLine(msgspec.Struct, frozen=True, tag_field="type"):
    pass


class SystemLine(_CliLine, frozen=True, tag="system"):
    """Every ``system`` line. Fields are the union of the subtypes we model (init, api_retry,
    status, permission_denied); any other subtype becomes ``UnknownLine``."""

    subtype: str
    session_id: str | None = None
    uuid: str | None = None
    # init
    cwd: str | None = None
    tools: list[str] | None = None
    model: str | None = None
    permission_mode: str | None = msgspec.field(default=None, name="permissionMode")
    claude_code_version: str | None = None
    # api_retry
    attempt: int | None = None
    max_retries: int | None = None
    retry_delay_ms: float | None = None
    error_status: int | None = None
    error: str | None = None
    # status
    status: str | None = None
    # permission_denied
    tool_name: str | None = None
    tool_use_id: str | None = None
    message: str | None = None


MODELLED_SYSTEM_SUBTYPES = frozenset({"init", "api_retry", "status", "permission_denied"})


class AssistantLine(_CliLine, frozen=True, tag="assistant"):
    message: WireAssistantMessage
    parent_tool_use_id: str | None = None
    session_id: str | None = None
    uuid: str | None = None
    error: str | None = None
    api_error_status: int | None = None


class UserLine(_CliLine, frozen=True, tag="user"):
    message: WireUserMessage
    parent_tool_use_id: str | None = None
    session_id: str | None = None
    uuid: str | None = None
    is_replay: bool = msgspec.field(default=False, name="isReplay")
    # per tool_result: {"id", "permission_decision": {"decision": "accept"|…}, "non_execution_kind"}
    tool_result_meta: list[JsonObject] | None = None


class StreamEventLine(_CliLine, frozen=True, tag="stream_event"):
    event: ApiEvent
    parent_tool_use_id: str | None = None
    session_id: str | None = None
    uuid: str | None = None


class ResultLine(_CliLine, frozen=True, tag="result"):
    subtype: str = "success"
    is_error: bool = False
    result: str | None = None
    stop_reason: str | None = None
    terminal_reason: str | None = None
    num_turns: int = 0
    duration_ms: float = 0.0
    total_cost_usd: float | None = None
    usage: WireUsage | None = None
    api_error_status: int | None = None
    errors: list[str] = msgspec.field(default_factory=list)
    session_id: str | None = None
    uuid: str | None = None


class _ControlBody(msgspec.Struct, frozen=True, tag_field="subtype"):
    pass


class CanUseToolRequest(_ControlBody, frozen=True, tag="can_use_tool"):
    tool_name: str
    input: JsonObject
    tool_use_id: str | None = None
    blocked_path: str | None = None
    decision_reason: str | None = None


class McpMessageRequest(_ControlBody, frozen=True, tag="mcp_message"):
    server_name: str
    message: JsonObject


class HookCallbackRequest(_ControlBody, frozen=True, tag="hook_callback"):
    callback_id: str
    input: JsonObject = msgspec.field(default_factory=dict)
    tool_use_id: str | None = None


class UnknownControlRequest(_ControlBody, frozen=True, tag="unknown_request"):
    name: str
    raw: JsonObject


ControlRequestBody: TypeAlias = (
    CanUseToolRequest | McpMessageRequest | HookCallbackRequest | UnknownControlRequest
)


class ControlRequestLine(_CliLine, frozen=True, tag="control_request"):
    request_id: str
    request: ControlRequestBody


class ControlResponseBody(msgspec.Struct, frozen=True):
    request_id: str
    subtype: Literal["success", "error"] = "success"
    response: JsonObject | None = None
    error: str | None = None
    error_code: str | None = None


class ControlResponseLine(_CliLine, frozen=True, tag="control_response"):
    response: ControlResponseBody


class ControlCancelLine(_CliLine, frozen=True, tag="control_cancel_request"):
    request_id: str


class RateLimitLine(_CliLine, frozen=True, tag="rate_limit_event"):
    rate_limit_info: JsonObject = msgspec.field(default_factory=dict)


class CommandLifecycleLine(_CliLine, frozen=True, tag="command_lifecycle"):
    """Progress of a uuid-stamped input line: queued, started, completed (after its result)."""

    command_uuid: str
    state: str


class UnknownLine(_CliLine, frozen=True, tag="unknown_line"):
    raw: JsonObject


CliLine: TypeAlias = (
    SystemLine
    | AssistantLine
    | UserLine
    | StreamEventLine
    | ResultLine
    | ControlRequestLine
    | ControlResponseLine
    | ControlCancelLine
    | RateLimitLine
    | CommandLifecycleLine
    | UnknownLine
)

# --------------------------------------------------------------------------- outgoing CLI lines


class OutgoingUserMessage(msgspec.Struct, frozen=True):
    role: Literal["user"]
    content: str | list[Any]


class OutgoingUserLine(msgspec.Struct, frozen=True, tag="user", tag_field="type"):
    message: OutgoingUserMessage
    uuid: str
    parent_tool_use_id: None = None
    session_id: str = ""


class OutgoingControlRequest(msgspec.Struct, frozen=True, tag="control_request", tag_field="type"):
    request_id: str
    request: JsonObject


class OutgoingControlResponse(
    msgspec.Struct, frozen=True, tag="control_response", tag_field="type"
):
    response: ControlResponseBody


# --------------------------------------------------------------------------- decoders

_T = TypeVar("_T")

_json_object = msgspec.json.Decoder(JsonObject)
_envelope = msgspec.json.Decoder(_Envelope)
_block: msgspec.json.Decoder[ContentBlock] = msgspec.json.Decoder(ContentBlock)
_delta: msgspec.json.Decoder[DeltaBody] = msgspec.json.Decoder(DeltaBody)
_api_event: msgspec.json.Decoder[ApiEvent] = msgspec.json.Decoder(ApiEvent)
_message_response = msgspec.json.Decoder(MessageResponse)
_error_body = msgspec.json.Decoder(ErrorBody)
_count_tokens = msgspec.json.Decoder(CountTokensResponse)
_cli_line: msgspec.json.Decoder[CliLine] = msgspec.json.Decoder(CliLine)
_control_body: msgspec.json.Decoder[ControlRequestBody] = msgspec.json.Decoder(ControlRequestBody)


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


class _RawStreamEventLine(msgspec.Struct):
    event: msgspec.Raw
    parent_tool_use_id: str | None = None
    session_id: str | None = None
    uuid: str | None = None


class _RawControlRequestLine(msgspec.Struct):
    request_id: str
    request: msgspec.Raw


class _RawWireMessage(msgspec.Struct):
    id: str = ""
    model: str = ""
    role: str = "user"
    content: str | list[msgspec.Raw] = ""
    stop_reason: str | None = None
    usage: WireUsage | None = None


class _RawMessageLine(msgspec.Struct):
    message: _RawWireMessage
    parent_tool_use_id: str | None = None
    session_id: str | None = None
    uuid: str | None = None
    error: str | None = None
    api_error_status: int | None = None
    is_replay: bool = msgspec.field(default=False, name="isReplay")


_raw_block_start = msgspec.json.Decoder(_RawBlockStart)
_raw_block_delta = msgspec.json.Decoder(_RawBlockDelta)
_raw_message_response = msgspec.json.Decoder(_RawMessageResponse)
_raw_stream_event_line = msgspec.json.Decoder(_RawStreamEventLine)
_raw_control_request_line = msgspec.json.Decoder(_RawControlRequestLine)
_raw_message_line = msgspec.json.Decoder(_RawMessageLine)

_KNOWN_BLOCKS = frozenset(
    {
        "text",
        "image",
        "document",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "server_tool_use",
    }
)
_KNOWN_DELTAS = frozenset(
    {"text_delta", "input_json_delta", "thinking_delta", "signature_delta", "citations_delta"}
)


def _malformed(what: str, data: bytes | str, exc: Exception) -> ProtocolError:
    raw = data.encode() if isinstance(data, str) else bytes(data)
    return ProtocolError(f"malformed {what}: {exc}", raw=raw)


def _as_bytes(data: bytes | str | msgspec.Raw) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


def _type_of(data: bytes | str | msgspec.Raw, what: str) -> str:
    try:
        return _envelope.decode(data).type
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _malformed(what, _as_bytes(data), exc) from exc


def _decode_open(
    data: bytes | msgspec.Raw,
    typed: msgspec.json.Decoder[_T],
    known: frozenset[str],
    what: str,
) -> _T | JsonObject:
    """Decode one value of an open union: typed when its type is known, else the raw object."""
    try:
        return typed.decode(data)
    except msgspec.ValidationError as exc:
        if _type_of(data, what) in known:
            raise _malformed(what, _as_bytes(data), exc) from exc
        return _json_object.decode(data)
    except msgspec.DecodeError as exc:
        raise _malformed(what, _as_bytes(data), exc) from exc


def decode_block(data: bytes | msgspec.Raw) -> ContentBlock:
    """Decode one content block; an unknown block type becomes ``UnknownBlock``."""
    value = _decode_open(data, _block, _KNOWN_BLOCKS, "content block")
    return UnknownBlock(raw=value) if isinstance(value, dict) else value


def _decode_blocks(raws: list[msgspec.Raw]) -> list[ContentBlock]:
    return [decode_block(raw) for raw in raws]


def _decode_delta(data: msgspec.Raw) -> DeltaBody:
    value = _decode_open(data, _delta, _KNOWN_DELTAS, "delta")
    return UnknownDeltaBody(raw=value) if isinstance(value, dict) else value


def decode_api_event(data: bytes | str | msgspec.Raw) -> ApiEvent:
    """Decode one Messages API stream event (the ``data:`` of an SSE frame)."""
    try:
        return _api_event.decode(data)
    except msgspec.ValidationError as exc:
        kind = _type_of(data, "stream event")
        try:
            if kind == "content_block_start":
                start = _raw_block_start.decode(data)
                return ContentBlockStartEvent(start.index, decode_block(start.content_block))
            if kind == "content_block_delta":
                delta = _raw_block_delta.decode(data)
                return ContentBlockDeltaEvent(delta.index, _decode_delta(delta.delta))
        except msgspec.ValidationError as inner:
            raise _malformed("stream event", _as_bytes(data), inner) from inner
        if kind in _API_EVENT_TYPES:
            raise _malformed("stream event", _as_bytes(data), exc) from exc
        return UnknownApiEvent(raw=_json_object.decode(data))
    except msgspec.DecodeError as exc:
        raise _malformed("stream event", _as_bytes(data), exc) from exc


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
        return _message_response.decode(data)
    except msgspec.ValidationError:
        try:
            raw = _raw_message_response.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise _malformed("message response", data, exc) from exc
        return MessageResponse(
            id=raw.id,
            model=raw.model,
            role=raw.role,
            content=_decode_blocks(raw.content),
            stop_reason=raw.stop_reason,
            stop_sequence=raw.stop_sequence,
            usage=raw.usage,
        )
    except msgspec.DecodeError as exc:
        raise _malformed("message response", data, exc) from exc


def decode_error_body(data: bytes) -> ErrorBody | None:
    """Decode an API error body; ``None`` when it is not the API's JSON shape (e.g. an edge 413)."""
    try:
        return _error_body.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def decode_count_tokens(data: bytes) -> CountTokensResponse:
    try:
        return _count_tokens.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _malformed("count_tokens response", data, exc) from exc


def decode_cli_line(data: bytes) -> CliLine:
    """Decode one stdout line of the CLI; unknown types and subtypes become ``UnknownLine``."""
    try:
        line = _cli_line.decode(data)
    except msgspec.ValidationError as exc:
        return _decode_cli_line_slow(data, exc)
    except msgspec.DecodeError as exc:
        raise _malformed("CLI line", data, exc) from exc
    if isinstance(line, SystemLine) and line.subtype not in MODELLED_SYSTEM_SUBTYPES:
        return UnknownLine(raw=_json_object.decode(data))
    return line


_CLI_LINE_TYPES = frozenset(
    {
        "system",
        "assistant",
        "user",
        "stream_event",
        "result",
        "control_request",
        "control_response",
        "control_cancel_request",
        "rate_limit_event",
        "command_lifecycle",
    }
)


def _decode_cli_line_slow(data: bytes, exc: msgspec.ValidationError) -> CliLine:
    kind = _type_of(data, "CLI line")
    try:
        if kind == "stream_event":
            se = _raw_stream_event_line.decode(data)
            return StreamEventLine(
                decode_api_event(se.event), se.parent_tool_use_id, se.session_id, se.uuid
            )
        if kind == "control_request":
            cr = _raw_control_request_line.decode(data)
            return ControlRequestLine(cr.request_id, _decode_control_body(cr.request))
        if kind in ("assistant", "user"):
            return _decode_message_line(kind, _raw_message_line.decode(data))
        if kind == "system":
            return UnknownLine(raw=_json_object.decode(data))
    except msgspec.ValidationError as inner:
        raise _malformed("CLI line", data, inner) from inner
    if kind in _CLI_LINE_TYPES:
        raise _malformed("CLI line", data, exc) from exc
    return UnknownLine(raw=_json_object.decode(data))


def _decode_control_body(data: msgspec.Raw) -> ControlRequestBody:
    # Any body that fails typed decoding stays answerable as UnknownControlRequest: the CLI
    # waits forever for an answer, so a malformed request must still get an error response.
    value = _decode_open(data, _control_body, frozenset(), "control request")
    if isinstance(value, dict):
        return UnknownControlRequest(name=str(value.get("subtype", "")), raw=value)
    return value


def _decode_message_line(kind: str, raw: _RawMessageLine) -> AssistantLine | UserLine:
    msg = raw.message
    content: str | list[ContentBlock] = (
        msg.content if isinstance(msg.content, str) else _decode_blocks(msg.content)
    )
    if kind == "assistant":
        blocks = [] if isinstance(content, str) else content
        return AssistantLine(
            WireAssistantMessage(msg.id, msg.model, blocks, msg.stop_reason, msg.usage),
            raw.parent_tool_use_id,
            raw.session_id,
            raw.uuid,
            raw.error,
            raw.api_error_status,
        )
    return UserLine(
        WireUserMessage(msg.role, content),
        raw.parent_tool_use_id,
        raw.session_id,
        raw.uuid,
        raw.is_replay,
    )


def decode_json_object(data: bytes) -> JsonObject:
    """Decode a JSON object (used only where the shape really is open: raw passthrough)."""
    try:
        return _json_object.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _malformed("JSON object", data, exc) from exc
