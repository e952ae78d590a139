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
from ._permissions import Allow

__all__ = [
    "ApiRetry",
    "CacheCreation",
    "ContentBlock",
    "DocumentBlock",
    "Event",
    "HookRan",
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
    """A text content block; ``citations`` as the API sent them."""

    text: str
    citations: list[JsonObject] | None = None
    cache_control: JsonObject | None = None


class ImageBlock(_Block, frozen=True, tag="image"):
    """An image content block; ``source`` is the API's source object (base64 or URL)."""

    source: JsonObject
    cache_control: JsonObject | None = None


class DocumentBlock(_Block, frozen=True, tag="document"):
    """A document content block (a PDF or plain text) with optional title, context, citations."""

    source: JsonObject
    title: str | None = None
    context: str | None = None
    citations: JsonObject | None = None
    cache_control: JsonObject | None = None


class ToolUseBlock(_Block, frozen=True, tag="tool_use"):
    """A tool call in an assistant message: its id, the tool's name and the parsed JSON input."""

    id: str
    name: str
    input: JsonObject
    cache_control: JsonObject | None = None
    caller: JsonObject | None = None
    """Who called the tool (``{"type": "direct"}``, or a server tool for programmatic calls)."""
    toolset_name: str | None = None
    """For a member of a toolset, the toolset it belongs to."""


class ToolResultBlock(_Block, frozen=True, tag="tool_result"):
    """A tool's result in a user message, answering the ``tool_use`` block with ``tool_use_id``."""

    tool_use_id: str
    content: str | list[ContentBlock] = ""
    is_error: bool = False
    cache_control: JsonObject | None = None


class ThinkingBlock(_Block, frozen=True, tag="thinking"):
    """Extended thinking in an assistant message; ``signature`` must be sent back unchanged."""

    thinking: str
    signature: str = ""


class RedactedThinkingBlock(_Block, frozen=True, tag="redacted_thinking"):
    """Thinking the API returns encrypted in ``data``; sent back as-is."""

    data: str


class ServerToolUseBlock(_Block, frozen=True, tag="server_tool_use"):
    """A call of a tool the API runs itself (web search, code execution, …)."""

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
    """Prompt-cache writes split by time to live (five minutes, one hour)."""

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
        """The message's tool calls, in order."""
        if isinstance(self.content, str):
            return []
        return [b for b in self.content if isinstance(b, ToolUseBlock)]


# --------------------------------------------------------------------------- events


class _Event(msgspec.Struct, frozen=True, tag_field="type"):
    pass


class SessionStarted(_Event, frozen=True, tag="session_started"):
    """The first event of a conversation's first turn (repeated when something in it changes).

    ``model`` is the model in use: ``Config.model`` or the backend's default on the API, the
    model the CLI reports on the CLI. ``tools`` lists the tools the model can call (on the CLI
    also the CLI's own); ``cwd``, ``cli_version`` and ``permission_mode`` come from the CLI."""

    backend: str
    session_id: str | None = None
    model: str | None = None
    tools: list[str] = msgspec.field(default_factory=list)
    cwd: str | None = None
    cli_version: str | None = None
    permission_mode: str | None = None


class TextDelta(_Event, frozen=True, tag="text_delta"):
    """A piece of the text block at ``index`` of the assistant message, as it streams."""

    text: str
    index: int = 0


class ThinkingDelta(_Event, frozen=True, tag="thinking_delta"):
    """A piece of the thinking block at ``index``, as it streams."""

    thinking: str
    index: int = 0


class ToolInputDelta(_Event, frozen=True, tag="tool_input_delta"):
    """A piece of a tool call's JSON input as it streams; the pieces of one block concatenate to
    the input that ``ToolUse`` then carries parsed."""

    partial_json: str
    index: int = 0
    tool_use_id: str = ""
    name: str = ""


class Text(_Event, frozen=True, tag="text"):
    """A complete text block of the assistant message (once per block, streamed or not)."""

    text: str
    index: int = 0
    citations: list[JsonObject] | None = None


class Thinking(_Event, frozen=True, tag="thinking"):
    """A complete thinking block, with its signature."""

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
    """A complete tool call. ``name`` is the plain name on both backends (never
    ``mcp__claude_unified__…``); ``input`` is the parsed JSON object."""

    id: str
    name: str
    input: JsonObject


class PermissionRequest(_Event, frozen=True, tag="permission_request"):
    """The policy said Ask. Answer with ``conversation.respond(request, decision)``.

    On the CLI the request also carries what the CLI knows about the call: ``blocked_path`` (the
    path outside the allowed directories that made it ask), ``decision_reason`` and
    ``suggestions`` (the CLI's own rule suggestions, as it sends them). On the API they are None.
    """

    request_id: str
    tool_use_id: str
    name: str
    input: JsonObject
    blocked_path: str | None = None
    decision_reason: str | None = None
    suggestions: list[JsonObject] | None = None

    @property
    def questions(self) -> list[JsonObject]:
        """The questions of an ``AskUserQuestion`` call (``[]`` for any other tool)."""
        found = self.input.get("questions") if self.name == "AskUserQuestion" else None
        return [q for q in found if isinstance(q, dict)] if isinstance(found, list) else []

    def answer_questions(self, answers: dict[str, str]) -> Allow:
        """The ``Allow`` that answers an ``AskUserQuestion`` call: ``answers`` maps each
        question's text to the chosen option's label (or free text). Pass it to ``respond()``."""
        if self.name != "AskUserQuestion":
            raise ValueError(f"answer_questions() is for AskUserQuestion, not {self.name}")
        texts = {str(q.get("question")) for q in self.questions}
        unknown = sorted(set(answers) - texts)
        if unknown:
            raise ValueError(f"no such question: {unknown!r}; the questions are {sorted(texts)!r}")
        return Allow(updated_input={**self.input, "answers": dict(answers)})


class PermissionDecision(_Event, frozen=True, tag="permission_decision"):
    """What was decided for one tool call, and by whom: ``decided_by`` is ``"policy"``, ``"user"``
    (an answered ``PermissionRequest``) or ``"backend"`` (the CLI decided by itself)."""

    tool_use_id: str
    name: str
    behavior: Literal["allow", "deny"]
    message: str | None = None
    decided_by: Literal["policy", "hook", "user", "backend"] = "policy"
    interrupt: bool = False
    updated_input: JsonObject | None = None


class ToolResult(_Event, frozen=True, tag="tool_result"):
    """A tool's result as the model receives it (a string or content blocks); a denied call's
    result is an error carrying the denial message."""

    tool_use_id: str
    name: str
    content: str | list[ContentBlock]
    is_error: bool = False


class HookRan(_Event, frozen=True, tag="hook_ran"):
    """One hook function ran: which, for which event (and tool call), and what it said.

    ``outcome``: ``none`` (no opinion), ``allow``, ``deny``, ``output`` (a ``HookOutput``) or
    ``error`` (it raised, timed out or returned something else; ``message`` says which).
    """

    event: str
    hook: str
    outcome: Literal["none", "allow", "deny", "output", "error"]
    tool_use_id: str | None = None
    message: str | None = None
    updated_input: JsonObject | None = None
    additional_context: str | None = None
    system_message: str | None = None
    stop: bool | None = None


RetryReason: TypeAlias = Literal[
    "overloaded", "rate_limit", "server_error", "authentication_failed", "timeout", "connection",
    "unknown",
]  # fmt: skip
"""Why a request is retried, in the same words on both backends (``ApiRetry.error``)."""

_REASON_OF_WORD: dict[str, RetryReason] = {
    # the CLI's words, then the API's error types and the library's own transport failures
    "overloaded": "overloaded",
    "rate_limit": "rate_limit",
    "server_error": "server_error",
    "authentication_failed": "authentication_failed",
    "overloaded_error": "overloaded",
    "rate_limit_error": "rate_limit",
    "api_error": "server_error",
    "authentication_error": "authentication_failed",
    "timeout_error": "timeout",
    "timeout": "timeout",
    "idle_timeout": "timeout",
    "connection_error": "connection",
    "stream_truncated": "connection",
}
_REASON_OF_STATUS: dict[int, RetryReason] = {
    529: "overloaded",
    429: "rate_limit",
    401: "authentication_failed",
    408: "timeout",
    504: "timeout",
}


def retry_reason(status: int | None, word: str | None) -> RetryReason:
    """The one word for a retry, from its HTTP status and the backend's own word for it."""
    if status in _REASON_OF_STATUS:
        return _REASON_OF_STATUS[status]
    if word in _REASON_OF_WORD:
        return _REASON_OF_WORD[word]
    if status is None:  # no response at all: the CLI says "unknown" for a dropped connection
        return "connection"
    return "server_error" if status >= 500 else "unknown"


class ApiRetry(_Event, frozen=True, tag="api_retry"):
    """A failed request will be retried after ``delay_s`` seconds: the library's retries on the
    API, the CLI's own on the CLI. ``status`` is the HTTP status when there was a response.
    ``error`` says why in the same words on both backends (``RetryReason``); ``detail`` is the
    backend's own word (the API's error type, the CLI's ``error``)."""

    attempt: int
    max_retries: int
    delay_s: float
    status: int | None = None
    error: RetryReason | None = None
    detail: str | None = None


class RateLimit(_Event, frozen=True, tag="rate_limit"):
    """Rate-limit information: on the API the response's ``anthropic-ratelimit-*`` headers (in
    ``limits``), on the CLI its rate-limit notices (``status``, ``resets_at``)."""

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
    | HookRan
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
