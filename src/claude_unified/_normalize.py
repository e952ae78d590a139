"""Pure reducers from wire frames to public events. No I/O here.

``MessageAccumulator`` turns one streamed Messages API response into events plus the accumulated
``Message``. ``CliNormalizer`` handles the CLI's stream-json lines; its ``stream_event`` lines wrap
the very same API events, so it delegates them to a ``MessageAccumulator``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from . import _wire as w
from ._events import (
    ApiRetry,
    ContentBlock,
    Event,
    JsonObject,
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
    ToolResultBlock,
    ToolUse,
    ToolUseBlock,
    TurnError,
    Unknown,
    UnknownBlock,
    Usage,
    retry_reason,
)
from ._exceptions import ProtocolError, ToolInputError

Source = Literal["api", "cli"]
NameNormalizer = Callable[[str], str]

_json_input = msgspec.json.Decoder(JsonObject)
log = logging.getLogger(__name__)


_MAX_WARNED_KINDS = 256
_warned: set[tuple[str, str | None, str | None]] = set()


def unknown(source: Source, raw: JsonObject, index: int | None = None) -> Unknown:
    """An ``Unknown`` event for a frame this version does not model. The first frame of each
    kind (source, type, subtype) is logged as a WARNING, later ones at DEBUG, so a new CLI's
    extra status line shows once, not once a turn. Records name the type and keys, never the
    values, which may hold anything."""
    kind, subtype = _text_or_none(raw.get("type")), _text_or_none(raw.get("subtype"))
    key = (source, kind, subtype)
    level = logging.DEBUG if key in _warned else logging.WARNING
    if len(_warned) < _MAX_WARNED_KINDS:  # a hostile stream cannot grow it without bound
        _warned.add(key)
    if log.isEnabledFor(level):
        detail = f"{kind!r}" if kind is not None else "without a type"
        if subtype is not None:
            detail += f" (subtype {subtype!r})"
        keys = ", ".join(sorted(map(str, raw))) or "none"
        log.log(
            level,
            "%s frame %s is not modelled: it arrives as Unknown (keys: %s)",
            source.upper(),
            detail,
            keys,
        )
    return Unknown(source, raw, index)


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def overlay_usage(base: Usage, update: w.WireUsage | None) -> Usage:
    """Overlay the non-null fields of a (cumulative) wire usage onto ``base``. Never sums."""
    if update is None:
        return base
    return Usage(
        input_tokens=_pick(update.input_tokens, base.input_tokens),
        output_tokens=_pick(update.output_tokens, base.output_tokens),
        cache_creation_input_tokens=_pick(
            update.cache_creation_input_tokens, base.cache_creation_input_tokens
        ),
        cache_read_input_tokens=_pick(update.cache_read_input_tokens, base.cache_read_input_tokens),
        cache_creation=update.cache_creation or base.cache_creation,
        service_tier=update.service_tier or base.service_tier,
        inference_geo=update.inference_geo or base.inference_geo,
        speed=update.speed or base.speed,
        server_tool_use=update.server_tool_use or base.server_tool_use,
        output_tokens_details=update.output_tokens_details or base.output_tokens_details,
        extra={**(base.extra or {}), **(update.extra or {})} or None,
    )


def _pick(value: int | None, default: int) -> int:
    return default if value is None else value


class _BlockState:
    """One content block being streamed: its start block plus the chunks received so far.

    A block of a type this version does not model (``UnknownBlock``) still takes the deltas
    that have one meaning whatever the block: ``input_json_delta`` builds its ``input`` (e.g.
    ``mcp_tool_use``), ``compaction_delta`` sets its fields; so it is sent back exactly."""

    __slots__ = ("chunks", "citations", "fields", "signature", "start", "tool_id", "tool_name")

    def __init__(self, start: ContentBlock, normalize_name: NameNormalizer):
        self.start = start
        self.chunks: list[str] = []
        self.signature = ""
        self.citations: list[JsonObject] = []
        self.fields: JsonObject = {}  # set on an unknown block by a compaction_delta
        self.tool_id = self.tool_name = ""  # a tool call's, for each of its input deltas
        if isinstance(start, ToolUseBlock | ServerToolUseBlock):
            self.tool_id, self.tool_name = start.id, normalize_name(start.name)
        elif isinstance(start, UnknownBlock):
            tool_id, name = start.raw.get("id"), start.raw.get("name")
            self.tool_id = tool_id if isinstance(tool_id, str) else ""
            self.tool_name = normalize_name(name) if isinstance(name, str) else ""

    def finish(self, index: int) -> ContentBlock:
        start = self.start
        if isinstance(start, TextBlock):
            return TextBlock(
                start.text + "".join(self.chunks),
                citations=(start.citations or []) + self.citations or None,
            )
        if isinstance(start, ThinkingBlock):
            return ThinkingBlock(
                start.thinking + "".join(self.chunks), self.signature or start.signature
            )
        if isinstance(start, ToolUseBlock | ServerToolUseBlock):
            raw = "".join(self.chunks)
            parsed = _parse_tool_input(raw, index, start.name) if raw else start.input
            return msgspec.structs.replace(start, input=parsed)
        if isinstance(start, UnknownBlock) and (self.chunks or self.fields):
            raw_input = "".join(self.chunks)
            fields = dict(self.fields)
            if raw_input:
                fields["input"] = _parse_tool_input(raw_input, index, self.tool_name)
            return UnknownBlock({**start.raw, **fields})
        return start

    def partial_text(self) -> str:
        if isinstance(self.start, TextBlock):
            return self.start.text + "".join(self.chunks)
        return ""


def _parse_tool_input(raw: str, index: int, name: str) -> JsonObject:
    try:
        return _json_input.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ToolInputError(
            f"tool_use block {index} ({name}) has invalid JSON input: {exc}",
            index=index,
            tool_name=name,
            raw=raw.encode(),
        ) from exc


class MessageAccumulator:
    """Accumulates one assistant message from API stream events and emits public events."""

    def __init__(self, source: Source = "api", normalize_name: NameNormalizer = str):
        self.source: Source = source
        self._normalize_name = normalize_name
        self._blocks: dict[int, _BlockState] = {}
        self._done: dict[int, ContentBlock] = {}
        self.id = ""
        self.model = ""
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None
        self.stop_details: JsonObject | None = None
        self.container: JsonObject | None = None
        self.usage = Usage()
        self.complete = False

    def feed(self, event: w.ApiEvent) -> list[Event]:
        """Apply one stream event; return the public events it produces."""
        if isinstance(event, w.ContentBlockDeltaEvent):
            return self.feed_delta(event.index, event.delta)
        if isinstance(event, w.ContentBlockStartEvent):
            if event.index in self._blocks or event.index in self._done:
                # replacing the block would silently drop text the consumer has been shown
                raise ProtocolError(
                    f"a second content_block_start for index {event.index}",
                    raw=msgspec.json.encode(event),
                )
            return self._start(event.index, event.content_block)
        if isinstance(event, w.ContentBlockStopEvent):
            return self._stop(event.index)
        if isinstance(event, w.MessageStartEvent):
            head = event.message
            self.id, self.model = head.id, head.model
            self.stop_details, self.container = head.stop_details, head.container
            self.usage = overlay_usage(Usage(), head.usage)
        elif isinstance(event, w.MessageDeltaEvent):
            body = event.delta
            self.stop_reason = body.stop_reason or self.stop_reason
            self.stop_sequence = body.stop_sequence or self.stop_sequence
            self.stop_details = body.stop_details or self.stop_details
            self.container = body.container or self.container
            self.usage = overlay_usage(self.usage, event.usage)
        elif isinstance(event, w.MessageStopEvent):
            if self._blocks:
                open_blocks = ", ".join(map(str, sorted(self._blocks)))
                raise ProtocolError(
                    f"message_stop arrived while content block(s) {open_blocks} were still open",
                    raw=msgspec.json.encode(event),
                )
            self.complete = True
        elif isinstance(event, w.UnknownApiEvent):
            return [unknown(self.source, event.raw)]
        return []

    def feed_response(self, response: w.MessageResponse) -> list[Event]:
        """Apply a complete (non-streaming) response."""
        self.id, self.model = response.id, response.model
        self.stop_reason, self.stop_sequence = response.stop_reason, response.stop_sequence
        self.stop_details, self.container = response.stop_details, response.container
        self.usage = overlay_usage(Usage(), response.usage)
        events: list[Event] = []
        for index, block in enumerate(response.content):
            events += self._start(index, block)
            events += self._stop(index)
        self.complete = True
        return events

    def _start(self, index: int, block: ContentBlock) -> list[Event]:
        self._blocks[index] = _BlockState(block, self._normalize_name)
        if isinstance(block, UnknownBlock):
            return [unknown(self.source, block.raw, index)]
        return []

    def feed_delta(self, index: int, delta: w.DeltaBody) -> list[Event]:
        """Apply one ``content_block_delta`` (the bulk of a stream, so callable directly)."""
        state = self._blocks.get(index)
        if state is None:  # a delta for a block that never started: keep it, never crash
            return [unknown(self.source, {"type": "content_block_delta", "index": index})]
        if isinstance(delta, w.TextDeltaBody):
            state.chunks.append(delta.text)
            return [TextDelta(delta.text, index)]
        if isinstance(delta, w.InputJsonDeltaBody):
            state.chunks.append(delta.partial_json)
            return [ToolInputDelta(delta.partial_json, index, state.tool_id, state.tool_name)]
        if isinstance(delta, w.ThinkingDeltaBody):
            state.chunks.append(delta.thinking)
            return [ThinkingDelta(delta.thinking, index)]
        if isinstance(delta, w.SignatureDeltaBody):
            state.signature = delta.signature
        elif isinstance(delta, w.CitationsDeltaBody):
            state.citations.append(delta.citation)
        elif isinstance(delta, w.CompactionDeltaBody):
            state.fields.update(content=delta.content, encrypted_content=delta.encrypted_content)
        else:
            return [unknown(self.source, delta.raw, index)]
        return []

    def _stop(self, index: int) -> list[Event]:
        state = self._blocks.pop(index, None)
        if state is None:
            return []
        block = state.finish(index)
        self._done[index] = block
        event = self._finished(block, index)
        return [] if event is None else [event]

    def _finished(self, block: ContentBlock, index: int) -> Event | None:
        """The event of a finished block (an unknown block had its event at its start)."""
        if isinstance(block, TextBlock):
            return Text(block.text, index, block.citations)
        if isinstance(block, ThinkingBlock):
            return Thinking(block.thinking, block.signature, index)
        if isinstance(block, ToolUseBlock):
            return ToolUse(block.id, self._normalize_name(block.name), block.input)
        if isinstance(block, RedactedThinkingBlock):
            return RedactedThinking(block.data, index)
        if isinstance(block, ServerToolUseBlock):
            return ServerToolUse(block.id, block.name, block.input, index)
        return None

    def text_blocks_so_far(self) -> list[TextBlock]:
        """Every non-empty text block, finished or still streaming, in index order."""
        parts = {i: b.text for i, b in self._done.items() if isinstance(b, TextBlock)}
        parts.update({i: s.partial_text() for i, s in self._blocks.items()})
        return [TextBlock(parts[i]) for i in sorted(parts) if parts[i]]

    @property
    def partial_text(self) -> str:
        """All text so far, including blocks still streaming."""
        return "".join(block.text for block in self.text_blocks_so_far())

    def message(self) -> Message:
        """The message so far: finished blocks in index order. Thinking blocks without a
        signature (from an aborted stream) are dropped, since the API rejects them."""
        content = [
            block
            for _, block in sorted(self._done.items())
            if not (isinstance(block, ThinkingBlock) and not block.signature)
        ]
        return Message(
            role="assistant",
            content=content,
            id=self.id or None,
            model=self.model or None,
            stop_reason=self.stop_reason,
            stop_sequence=self.stop_sequence,
            usage=self.usage,
            stop_details=self.stop_details,
            container=self.container,
        )


class CliNormalizer:
    """Turns CLI stream-json lines into public events; one instance per conversation."""

    def __init__(self, normalize_name: NameNormalizer = str):
        self._normalize_name = normalize_name
        self._stream: MessageAccumulator | None = None
        self._streamed_ids: set[str] = set()
        self._tool_names: dict[str, str] = {}
        self._decided: set[str] = set()
        self._own_results: set[str] = set()
        self._cost_so_far = 0.0
        self._text_parts: list[str] = []
        self.session_id: str | None = None
        self.messages: list[Message] = []
        self._handlers: dict[type, Callable[[Any], list[Event]]] = {
            w.StreamEventLine: self._stream_event,
            w.AssistantLine: self._assistant,
            w.UserLine: self._user,
            w.SystemLine: self._system,
            w.ResultLine: self._result_events,
            w.RateLimitLine: self._rate_limit,
            w.UnknownLine: self._unknown,
        }

    def note_decided(self, tool_use_id: str) -> None:
        """The core decided this tool call itself (a PermissionDecision was already emitted)."""
        self._decided.add(tool_use_id)

    def note_own_result(self, tool_use_id: str) -> None:
        """The core ran this tool and emitted its ToolResult; skip the CLI's echo of it."""
        self._own_results.add(tool_use_id)

    def feed(self, line: w.CliLine) -> list[Event]:
        """Apply one CLI line. Control traffic is the backend's and the core's, not ours."""
        handler = self._handlers.get(type(line))
        return handler(line) if handler is not None else []

    def _result_events(self, line: w.ResultLine) -> list[Event]:
        return [self._result(line)]

    @staticmethod
    def _rate_limit(line: w.RateLimitLine) -> list[Event]:
        return [_rate_limit_event(line.rate_limit_info)]

    def _unknown(self, line: w.UnknownLine) -> list[Event]:
        if not w.ends_turn(line):
            return [unknown("cli", line.raw)]
        # a result line of an unexpected shape still ends the turn: kept whole, then failed
        result = self._result(w.ResultLine(subtype="error_malformed_result", is_error=True))
        message = "the CLI's result line has an unexpected shape (kept in the Unknown event)"
        failed = msgspec.structs.replace(result, error=TurnError("ProtocolError", message))
        return [unknown("cli", line.raw), failed]

    def _stream_event(self, line: w.StreamEventLine) -> list[Event]:
        if line.parent_tool_use_id is not None:
            return []  # sub-agent traffic stays inside the CLI's Task tool
        event = line.event
        if type(event) is w.ContentBlockDeltaEvent and self._stream is not None:
            # the bulk of a stream; a delta never yields a Text or ToolUse to track
            return self._stream.feed_delta(event.index, event.delta)
        if isinstance(event, w.MessageStartEvent):
            self._stream = MessageAccumulator("cli", self._normalize_name)
            self._streamed_ids.add(event.message.id)
        if self._stream is None:  # outside a message: nothing to add it to, so keep it raw
            return [] if type(event) is w.PingEvent else [unknown("cli", _builtins(line))]
        try:
            events = self._stream.feed(event)
        except ProtocolError as exc:
            # The CLI also prints the whole message as an assistant line: let that line carry
            # it instead of a stream that broke the protocol, and keep the faulty frame.
            self._streamed_ids.discard(self._stream.id)
            self._stream = None
            raw = {"type": "stream_event", "error": str(exc), "event": msgspec.to_builtins(event)}
            return [unknown("cli", raw)]
        self._track(events)
        if isinstance(event, w.MessageStopEvent):
            self._finish_stream()
        return events

    def _finish_stream(self) -> None:
        if self._stream is not None:
            self.messages.append(self._stream.message())
            self._stream = None

    def _assistant(self, line: w.AssistantLine) -> list[Event]:
        msg = line.message
        if line.parent_tool_use_id is not None or msg.id in self._streamed_ids or line.error:
            return []
        acc = MessageAccumulator("cli", self._normalize_name)
        events = acc.feed_response(
            w.MessageResponse(id=msg.id, model=msg.model, content=msg.content)
        )
        if msg.content and not events:
            # e.g. only a server_tool_use block: no public event models it, so keep it raw
            events = [unknown("cli", _builtins(line))]
        message = acc.message()
        last = self.messages[-1] if self.messages else None
        if msg.id and last is not None and last.id == msg.id and isinstance(last.content, list):
            # the CLI prints one line per block: lines sharing a message id are one message
            message = msgspec.structs.replace(last, content=[*last.content, *message.content])
            self.messages[-1] = message
        else:
            self.messages.append(message)
        self._track(events)
        return events

    def _track(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, ToolUse):
                self._tool_names[event.id] = event.name
            elif isinstance(event, Text):
                self._text_parts.append(event.text)

    def _user(self, line: w.UserLine) -> list[Event]:
        if line.is_replay or line.parent_tool_use_id is not None:
            return []
        content = line.message.content
        if isinstance(content, str):
            return []
        meta = {str(m.get("id")): m for m in line.tool_result_meta or () if isinstance(m, dict)}
        events: list[Event] = []
        for block in content:
            if not isinstance(block, ToolResultBlock) or block.tool_use_id in self._own_results:
                continue
            name = self._tool_names.get(block.tool_use_id, "")
            if block.tool_use_id not in self._decided and _cli_allowed(block, meta):
                events.append(
                    PermissionDecision(block.tool_use_id, name, "allow", decided_by="backend")
                )
            events.append(ToolResult(block.tool_use_id, name, block.content, block.is_error))
        return events

    def _system(self, line: w.SystemLine) -> list[Event]:
        if line.subtype == "init":
            self.session_id = line.session_id
            return [
                SessionStarted(
                    backend="cli",
                    session_id=line.session_id,
                    model=line.model,
                    tools=[self._normalize_name(t) for t in line.tools or []],
                    cwd=line.cwd,
                    cli_version=line.claude_code_version,
                    permission_mode=line.permission_mode,
                )
            ]
        if line.subtype == "api_retry":
            return [
                ApiRetry(
                    attempt=line.attempt or 0,
                    max_retries=line.max_retries or 0,
                    delay_s=(line.retry_delay_ms or 0) / 1000,
                    status=line.error_status,
                    error=retry_reason(line.error_status, line.error),
                    detail=line.error,
                )
            ]
        if line.subtype == "permission_denied" and line.tool_use_id:
            if line.tool_use_id in self._decided:  # the core decided it and said so already
                return []
            self._decided.add(line.tool_use_id)
            name = self._normalize_name(line.tool_name or "")
            return [
                PermissionDecision(
                    line.tool_use_id, name, "deny", message=line.message, decided_by="backend"
                )
            ]
        return []

    def partial_text(self) -> str:
        """This turn's assistant text so far, including a message still streaming."""
        parts = [m.text for m in self.messages if m.role == "assistant"]
        if self._stream is not None:
            parts.append(self._stream.partial_text)
        return "".join(parts)

    def abandon(self) -> None:
        """The turn ended without its result (cancelled, or the CLI failed): the text streamed
        so far joins ``messages`` and the per-turn state starts afresh."""
        if self._stream is not None:
            cut = self._stream.message()
            text = self._stream.text_blocks_so_far()
            self.messages.append(msgspec.structs.replace(cut, content=list(text)))
            self._stream = None
        self._text_parts = []
        self._decided.clear()
        self._own_results.clear()

    def _result(self, line: w.ResultLine) -> Result:
        self._finish_stream()
        cost = None
        if line.total_cost_usd is not None:
            cost = max(line.total_cost_usd - self._cost_so_far, 0.0)
            self._cost_so_far = line.total_cost_usd
        text = line.result if line.result is not None and not line.is_error else ""
        result = Result(
            session_id=line.session_id or self.session_id,
            stop_reason=line.stop_reason,
            text=text or "".join(self._text_parts),
            is_error=line.is_error or line.subtype != "success",
            error=_cli_turn_error(line),
            usage=overlay_usage(Usage(), line.usage),
            cost_usd=cost,
            duration_s=line.duration_ms / 1000,
            num_turns=line.num_turns,
        )
        self._text_parts = []
        self._decided.clear()
        self._own_results.clear()
        return result


def _builtins(value: msgspec.Struct) -> JsonObject:
    """A typed frame back as the JSON object it came from (its modelled fields)."""
    raw: JsonObject = msgspec.to_builtins(value)
    return raw


def _cli_allowed(block: ToolResultBlock, meta: dict[str, JsonObject]) -> bool:
    """Whether the CLI ran this tool on its own permission (so a backend Allow is the truth).

    The CLI's ``tool_result_meta`` says so: ``permission_decision.decision == "accept"``. A call
    it did not run (``non_execution_kind``: rejected, or cancelled by an interrupt) was never
    allowed. Without a record, a successful result means the tool ran; a failed one may never
    have reached a permission check (the CLI validates a built-in tool's input first).
    """
    record = meta.get(block.tool_use_id)
    if record is None:
        return not block.is_error
    decision = record.get("permission_decision")
    accepted = isinstance(decision, dict) and decision.get("decision") == "accept"
    return accepted and not record.get("non_execution_kind")


def _cli_turn_error(line: w.ResultLine) -> TurnError | None:
    if not line.is_error and line.subtype == "success":
        return None
    message = line.result or "; ".join(line.errors) or line.subtype
    if line.api_error_status is not None:
        kind = "api_status"
    elif line.terminal_reason == "max_turns" or line.subtype == "error_max_turns":
        kind = "max_turns"
    elif line.terminal_reason == "budget_exhausted" or line.subtype == "error_max_budget_usd":
        kind = "budget_exhausted"
    elif line.terminal_reason == "aborted_tools" or line.subtype == "error_during_execution":
        kind = "interrupted"
    else:
        kind = line.terminal_reason or line.subtype
    return TurnError(kind=kind, message=message, status_code=line.api_error_status)


def _rate_limit_event(info: JsonObject) -> Event:
    resets = info.get("resetsAt")
    return RateLimit(
        status=str(info.get("status")) if info.get("status") is not None else None,
        resets_at=str(resets) if resets is not None else None,
        limits={k: str(v) for k, v in info.items() if k not in ("status", "resetsAt")},
    )
