"""Typed msgspec lines of the CLI's stream-json protocol (output, control, input) and their
decoder. ``stream_event`` lines wrap Messages API events, decoded by ``_api``."""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import msgspec

from .._events import ContentBlock, JsonObject, TextBlock
from ._api import ApiEvent, decode_api_event
from ._base import (
    WireUsage,
    decode_blocks,
    decode_open,
    json_object_decoder,
    malformed,
    type_of,
    with_usage_overflow,
)


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
    permission_denied); any other subtype (``status`` too) becomes ``UnknownLine``, whole."""

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
    # permission_denied
    tool_name: str | None = None
    tool_use_id: str | None = None
    message: str | None = None


MODELLED_SYSTEM_SUBTYPES = frozenset({"init", "api_retry", "permission_denied"})


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
    permission_suggestions: list[JsonObject] | None = None


class McpMessageRequest(_ControlBody, frozen=True, tag="mcp_message"):
    server_name: str
    message: JsonObject


class HookCallbackRequest(_ControlBody, frozen=True, tag="hook_callback"):
    callback_id: str
    input: JsonObject = msgspec.field(default_factory=dict)
    tool_use_id: str | None = None


class WireHookInput(msgspec.Struct, frozen=True):
    """The fields of a ``hook_callback`` input the core reads (the rest stays in the raw
    object). Converted from the request's ``input`` with ``msgspec.convert``."""

    hook_event_name: str = ""
    session_id: str | None = None
    tool_name: str | None = None
    tool_input: JsonObject | None = None
    tool_use_id: str | None = None
    tool_response: Any = None
    prompt: str | None = None
    stop_hook_active: bool = False
    last_assistant_message: str | None = None


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


_cli_line: msgspec.json.Decoder[CliLine] = msgspec.json.Decoder(CliLine)


_control_body: msgspec.json.Decoder[ControlRequestBody] = msgspec.json.Decoder(ControlRequestBody)


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


_raw_stream_event_line = msgspec.json.Decoder(_RawStreamEventLine)


_raw_control_request_line = msgspec.json.Decoder(_RawControlRequestLine)


_raw_message_line = msgspec.json.Decoder(_RawMessageLine)


def ends_turn(line: object) -> bool:
    """Whether ``line`` is a turn's last: its ``result``, typed or (malformed) kept raw."""
    return type(line) is ResultLine or (
        isinstance(line, UnknownLine) and line.raw.get("type") == "result"
    )


def decode_cli_line(data: bytes) -> CliLine:
    """Decode one stdout line of the CLI; unknown types and subtypes become ``UnknownLine``."""
    try:
        line = _cli_line.decode(data)
    except msgspec.ValidationError as exc:
        return _decode_cli_line_slow(data, exc)
    except msgspec.DecodeError as exc:
        raise malformed("CLI line", data, exc) from exc
    if type(line) is SystemLine and line.subtype not in MODELLED_SYSTEM_SUBTYPES:
        return UnknownLine(raw=json_object_decoder.decode(data))
    if type(line) is ResultLine and line.usage is not None:
        usage = with_usage_overflow(line.usage, data)
        return line if usage is line.usage else msgspec.structs.replace(line, usage=usage)
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
    kind = type_of(data, "CLI line")
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
            return UnknownLine(raw=json_object_decoder.decode(data))
    except msgspec.ValidationError as inner:
        raise malformed("CLI line", data, inner) from inner
    if kind in _CLI_LINE_TYPES:
        raise malformed("CLI line", data, exc) from exc
    return UnknownLine(raw=json_object_decoder.decode(data))


def _decode_control_body(data: msgspec.Raw) -> ControlRequestBody:
    # Any body that fails typed decoding stays answerable as UnknownControlRequest: the CLI
    # waits forever for an answer, so a malformed request must still get an error response.
    value = decode_open(data, _control_body, frozenset(), "control request")
    if isinstance(value, dict):
        return UnknownControlRequest(name=str(value.get("subtype", "")), raw=value)
    return value


def _decode_message_line(kind: str, raw: _RawMessageLine) -> AssistantLine | UserLine:
    msg = raw.message
    content: str | list[ContentBlock] = (
        msg.content if isinstance(msg.content, str) else decode_blocks(msg.content)
    )
    if kind == "assistant":
        # an assistant message may carry its text as a plain string, as the API allows
        blocks: list[ContentBlock] = (
            ([TextBlock(content)] if content else []) if isinstance(content, str) else content
        )
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
