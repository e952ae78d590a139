"""Public data model: content blocks, messages, usage, and the event stream.

Everything here is a frozen msgspec Struct. Content blocks are tagged by ``type`` exactly as the
Messages API tags them, and encode with no extra fields, so an accumulated ``Message`` can be sent
back to the API unchanged. Events are tagged by ``type`` too (``"text_delta"``, ``"result"`` …),
and one shared encoder/decoder pair round-trips every event through JSON.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import msgspec

from ._exceptions import ProtocolError

__all__ = [
    "ApiRetry",
    "CacheCreation",
    "ContentBlock",
    "DocumentBlock",
    "Event",
    "ImageBlock",
    "Message",
    "PermissionDecision",
    "PermissionRequest",
    "RateLimit",
    "RedactedThinking",
    "RedactedThinkingBlock",
    "Result",
    "ServerToolUse",
    "ServerToolUseBlock",
    "SessionStarted",
    "Text",
    "TextBlock",
    "TextDelta",
    "Thinking",
    "ThinkingBlock",
    "ThinkingDelta",
    "ToolInputDelta",
    "ToolResult",
    "ToolResultBlock",
    "ToolUse",
    "ToolUseBlock",
    "TurnError",
    "Unknown",
    "UnknownBlock",
    "Usage",
    "decode_event",
    "encode_event",
]

JsonObject: TypeAlias = dict[str, Any]

# --------------------------------------------------------------------------- content blocks


class _Block(msgspec.Struct, frozen=True, omit_defaults=True, tag_field="type"):
    pass


class TextBlock(_Block, frozen=True, tag="text"):
    text: str
    citations: list[JsonObject] | None = None
    cache_control: JsonObject | None = None


class ImageBlock(_Block, frozen=True, tag="image"):
    source: JsonObject
    cache_control: JsonObject | None = None


class DocumentBlock(_Block, frozen=True, tag="document"):
    source: JsonObject
    title: str | None = None
    context: str | None = None
    citations: JsonObject | None = None
    cache_control: JsonObject | None = None


class ToolUseBlock(_Block, frozen=True, tag="tool_use"):
    id: str
    name: str
    input: JsonObject
    cache_control: JsonObject | None = None
    caller: JsonObject | None = None
    """Who called the tool (``{"type": "direct"}``, or a server tool for programmatic calls)."""
    toolset_name: str | None = None
    """For a member of a toolset, the toolset it belongs to."""


class ToolResultBlock(_Block, frozen=True, tag="tool_result"):
    tool_use_id: str
    content: str | list[ContentBlock] = ""
    is_error: bool = False
    cache_control: JsonObject | None = None


class ThinkingBlock(_Block, frozen=True, tag="thinking"):
    thinking: str
    signature: str = ""


class RedactedThinkingBlock(_Block, frozen=True, tag="redacted_thinking"):
    data: str


class ServerToolUseBlock(_Block, frozen=True, tag="server_tool_use"):
    id: str
    name: str
    input: JsonObject
    caller: JsonObject | None = None


class UnknownBlock(_Block, frozen=True, tag="unknown"):
    """A block type this version does not model, kept whole in ``raw`` (sent back as-is)."""

    raw: JsonObject


ContentBlock: TypeAlias = (
    TextBlock
    | ImageBlock
    | DocumentBlock
    | ToolUseBlock
    | ToolResultBlock
    | ThinkingBlock
    | RedactedThinkingBlock
    | ServerToolUseBlock
    | UnknownBlock
)

# --------------------------------------------------------------------------- usage and messages


class CacheCreation(msgspec.Struct, frozen=True, omit_defaults=True):
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0


class Usage(msgspec.Struct, frozen=True, omit_defaults=True):
    """Token usage. ``input_tokens`` excludes cached tokens; the prompt is the sum of all three.

    Besides the counts it keeps what the API reports about the request (``service_tier``,
    ``inference_geo``, ``speed``), the per-kind breakdowns (``server_tool_use``: web search and
    fetch requests; ``output_tokens_details``: e.g. thinking tokens) and, in ``extra``, every
    usage field this version does not model (e.g. ``iterations``), exactly as sent.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation: CacheCreation | None = None
    service_tier: str | None = None
    inference_geo: str | None = None
    speed: str | None = None
    server_tool_use: JsonObject | None = None
    output_tokens_details: JsonObject | None = None
    extra: JsonObject | None = None

    @property
    def prompt_tokens(self) -> int:
        """Every token of the prompt: uncached, written to cache and read from cache."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    def __add__(self, other: Usage) -> Usage:
        """Sum two usages (for totals across requests; never for stream overlays). Counts and
        breakdowns are summed; the descriptive fields and ``extra`` keep the latest value."""
        cache = None
        if self.cache_creation is not None or other.cache_creation is not None:
            a = self.cache_creation or CacheCreation()
            b = other.cache_creation or CacheCreation()
            cache = CacheCreation(
                a.ephemeral_5m_input_tokens + b.ephemeral_5m_input_tokens,
                a.ephemeral_1h_input_tokens + b.ephemeral_1h_input_tokens,
            )
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens
            + other.cache_creation_input_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
            cache_creation=cache,
            service_tier=other.service_tier or self.service_tier,
            inference_geo=other.inference_geo or self.inference_geo,
            speed=other.speed or self.speed,
            server_tool_use=_add_counts(self.server_tool_use, other.server_tool_use),
            output_tokens_details=_add_counts(
                self.output_tokens_details, other.output_tokens_details
            ),
            extra={**(self.extra or {}), **(other.extra or {})} or None,
        )


def _add_counts(a: JsonObject | None, b: JsonObject | None) -> JsonObject | None:
    """Sum two breakdowns key by key; a value that is not a number keeps the latest."""
    if a is None or b is None:
        return b if a is None else a
    summed = {**a, **b}
    for key in a.keys() & b.keys():
        x, y = a[key], b[key]
        if type(x) is int and type(y) is int:
            summed[key] = x + y
    return summed


class Message(msgspec.Struct, frozen=True, omit_defaults=True):
    """One message of a conversation. Assistant messages also carry id, model and usage."""

    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]
    id: str | None = None
    model: str | None = None
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: Usage | None = None
    stop_details: JsonObject | None = None
    """Why the model stopped, in detail (e.g. a refusal's category and explanation)."""
    container: JsonObject | None = None
    """The code-execution container the response used (id, expiry)."""

    @property
    def text(self) -> str:
        """The concatenated text of the message's text blocks."""
        if isinstance(self.content, str):
            return self.content
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    @property
    def tool_uses(self) -> list[ToolUseBlock]:
        if isinstance(self.content, str):
            return []
        return [b for b in self.content if isinstance(b, ToolUseBlock)]


# --------------------------------------------------------------------------- events


class _Event(msgspec.Struct, frozen=True, tag_field="type"):
    pass


class SessionStarted(_Event, frozen=True, tag="session_started"):
    backend: str
    session_id: str | None = None
    model: str | None = None
    tools: list[str] = msgspec.field(default_factory=list)
    cwd: str | None = None
    cli_version: str | None = None
    permission_mode: str | None = None


class TextDelta(_Event, frozen=True, tag="text_delta"):
    text: str
    index: int = 0


class ThinkingDelta(_Event, frozen=True, tag="thinking_delta"):
    thinking: str
    index: int = 0


class ToolInputDelta(_Event, frozen=True, tag="tool_input_delta"):
    partial_json: str
    index: int = 0
    tool_use_id: str = ""
    name: str = ""


class Text(_Event, frozen=True, tag="text"):
    text: str
    index: int = 0
    citations: list[JsonObject] | None = None


class Thinking(_Event, frozen=True, tag="thinking"):
    thinking: str
    signature: str = ""
    index: int = 0


class RedactedThinking(_Event, frozen=True, tag="redacted_thinking"):
    """A finished thinking block the API sent encrypted; ``data`` goes back to it as-is."""

    data: str
    index: int = 0


class ServerToolUse(_Event, frozen=True, tag="server_tool_use"):
    """A finished call of a tool the API runs itself (web search, code execution, …)."""

    id: str
    name: str
    input: JsonObject
    index: int = 0


class ToolUse(_Event, frozen=True, tag="tool_use"):
    id: str
    name: str
    input: JsonObject


class PermissionRequest(_Event, frozen=True, tag="permission_request"):
    """The policy said Ask. Answer with ``conversation.respond(request, decision)``."""

    request_id: str
    tool_use_id: str
    name: str
    input: JsonObject


class PermissionDecision(_Event, frozen=True, tag="permission_decision"):
    tool_use_id: str
    name: str
    behavior: Literal["allow", "deny"]
    message: str | None = None
    decided_by: Literal["policy", "user", "backend"] = "policy"
    interrupt: bool = False
    updated_input: JsonObject | None = None


class ToolResult(_Event, frozen=True, tag="tool_result"):
    tool_use_id: str
    name: str
    content: str | list[ContentBlock]
    is_error: bool = False


class ApiRetry(_Event, frozen=True, tag="api_retry"):
    attempt: int
    max_retries: int
    delay_s: float
    status: int | None = None
    error: str | None = None


class RateLimit(_Event, frozen=True, tag="rate_limit"):
    status: str | None = None
    resets_at: str | None = None
    limits: dict[str, str] = msgspec.field(default_factory=dict)


class TurnError(msgspec.Struct, frozen=True, omit_defaults=True):
    """Why a turn failed, in data form (the matching exception is raised by ``ask()``)."""

    kind: str
    message: str
    status_code: int | None = None
    request_id: str | None = None


ResultKind: TypeAlias = Literal["success", "error", "max_turns", "budget_exhausted", "interrupted"]
_KINDS = frozenset({"max_turns", "budget_exhausted", "interrupted"})


class Result(_Event, frozen=True, tag="result"):
    """The end of a turn. ``is_error`` turns still carry the text produced before the failure.

    ``kind`` says how the turn ended: ``"success"``; ``"max_turns"`` (the agent loop's round
    limit), ``"budget_exhausted"`` (``max_budget_usd`` reached), ``"interrupted"``, or
    ``"error"`` for any other failure (``error`` has the details). Left at its default, it is
    derived from ``is_error`` and ``error.kind``.
    """

    session_id: str | None = None
    stop_reason: str | None = None
    text: str = ""
    is_error: bool = False
    error: TurnError | None = None
    usage: Usage = msgspec.field(default_factory=Usage)
    cost_usd: float | None = None
    duration_s: float = 0.0
    num_turns: int = 0
    kind: ResultKind = "success"

    def __post_init__(self) -> None:
        if self.is_error and self.kind == "success":
            reason = self.error.kind if self.error is not None else "error"
            msgspec.structs.force_setattr(self, "kind", reason if reason in _KINDS else "error")


class Unknown(_Event, frozen=True, tag="unknown"):
    """Something the backend sent that this version does not model, kept whole."""

    source: Literal["api", "cli"]
    raw: JsonObject
    index: int | None = None
    """The content block it belongs to, for an unknown block or delta."""


Event: TypeAlias = (
    SessionStarted
    | TextDelta
    | ThinkingDelta
    | ToolInputDelta
    | Text
    | Thinking
    | RedactedThinking
    | ServerToolUse
    | ToolUse
    | PermissionRequest
    | PermissionDecision
    | ToolResult
    | ApiRetry
    | RateLimit
    | Result
    | Unknown
)

_event_encoder = msgspec.json.Encoder()
_event_decoder: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)


def encode_event(event: Event) -> bytes:
    """Encode an event as one JSON object."""
    return _event_encoder.encode(event)


def decode_event(data: bytes | str) -> Event:
    """Decode an event encoded by :func:`encode_event`; anything else raises ``ProtocolError``."""
    try:
        return _event_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raw = data.encode() if isinstance(data, str) else bytes(data)
        raise ProtocolError(f"not an encoded claude_unified event: {exc}", raw=raw) from exc
