"""Conversation: history, turns, and the agent loop on the API path.

A turn is one ``send()``: it yields events and always ends with a ``Result``. A failed turn ends
with ``Result(is_error=True)`` carrying the text produced so far; ``ask()`` raises the matching
exception instead. A turn left early (``break``, cancellation, a new ``send()``) is finished in
the background of the next call: the API stream is closed, the CLI turn is interrupted and drained
to its result, so nothing of it leaks into the next turn.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from types import TracebackType
from typing import Any

import anyio
import msgspec

from . import _wire as w
from ._config import Config
from ._events import (
    ApiRetry,
    ContentBlock,
    Event,
    Message,
    PermissionDecision,
    PermissionRequest,
    RateLimit,
    Result,
    SessionStarted,
    TextBlock,
    TextDelta,
    ToolResult,
    ToolResultBlock,
    TurnError,
    Usage,
)
from ._exceptions import (
    APIStatusError,
    ClaudeError,
    TurnLimitError,
    status_error,
)
from ._normalize import CliNormalizer, MessageAccumulator
from ._permissions import Allow, Ask, Decision, Deny, Policy, ToolCall
from ._pricing import cost_usd
from ._session import SavedConversation, read_saved, write_saved
from ._toolhost import ToolHost, decision_fields, unanswered_denial
from ._tools import Tool
from .backends._protocol import (
    Backend,
    Exchange,
    PermissionAnswer,
    PermissionQuery,
    ResponseStarted,
    RetryNotice,
    SessionSpec,
    ToolInvocation,
    ToolOutcome,
)

__all__ = ["Conversation", "Reply", "Turn"]

_DRAIN_TIMEOUT_S = 30.0


class Reply(msgspec.Struct, frozen=True):
    """What ``ask()`` returns: final text, last assistant message, the Result, every event."""

    text: str
    message: Message | None
    result: Result
    events: list[Event]


class _Verdict:
    __slots__ = ("decided_by", "decision")

    def __init__(self) -> None:
        self.decision: Decision = Ask()
        self.decided_by = "policy"


class Turn:
    """One turn's event stream. Iterate it (``async for``); it ends with a ``Result``."""

    def __init__(
        self, conversation: Conversation, prompt: str | list[ContentBlock], on_text: Any = None
    ):
        self._conversation = conversation
        self._prompt = prompt
        self._on_text: Callable[[str], object] | None = on_text
        self._agen: AsyncIterator[Event] | None = None
        self.exchange_id = str(uuid.uuid4())
        self.result: Result | None = None
        self.exception: ClaudeError | None = None
        self.closed = False

    def __aiter__(self) -> Turn:
        return self

    async def __anext__(self) -> Event:
        if self.closed:
            raise StopAsyncIteration
        if self._agen is None:
            await self._conversation._begin(self)
            self._agen = self._conversation._run(self, self._prompt)
        try:
            event = await self._agen.__anext__()
        except BaseException:
            self.closed = True
            raise
        if self._on_text is not None and isinstance(event, TextDelta):
            self._on_text(event.text)
        return event

    async def aclose(self) -> None:
        """Finish this turn now: drain or discard whatever it has not yielded yet."""
        if self.closed:
            return
        self.closed = True
        if self._agen is not None:
            await self._agen.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> Turn:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def raise_for_error(self) -> None:
        """Raise the typed exception for a failed turn (no-op for a successful one)."""
        if self.result is not None and self.result.is_error:
            raise self.exception or exception_from_result(self.result)


class Conversation:
    """A multi-turn conversation over any backend. Use as an async context manager."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        backend: Backend | str | None = None,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        policy: Policy | None = None,
    ):
        self.config = config if config is not None else Config.load()
        self._backend_arg = backend
        self.host = ToolHost(tools, policy)
        self.backend: Backend | None = None
        self.history: list[Message] = []
        self.session_id: str | None = self.config.session_id or self.config.resume
        self._cli = CliNormalizer(self.host.normalize)
        self._current: Turn | None = None
        self._lock = anyio.Lock()
        self._pending: dict[str, Decision | None] = {}
        self._announced: SessionStarted | None = None
        self._interrupt_requested = False
        self._broken: str | None = None

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Conversation:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        if self.backend is not None:
            return
        from .backends import resolve_backend

        backend = resolve_backend(self.config, self._backend_arg)
        await backend.open(self._session_spec())
        self.backend = backend

    async def aclose(self) -> None:
        """Finish any running turn, then close the backend (both steps survive cancellation)."""
        if self._current is not None:
            await self._current.aclose()
        if self.backend is not None:
            backend, self.backend = self.backend, None
            await backend.aclose()

    def _session_spec(self) -> SessionSpec:
        cfg = self.config
        return SessionSpec(
            model=cfg.model,
            max_tokens=cfg.max_tokens,
            system_prompt=cfg.system_prompt,
            append_system_prompt=cfg.append_system_prompt,
            max_turns=cfg.max_turns,
            permission_mode=cfg.permission_mode,
            cwd=cfg.cwd,
            tools=self.host.specs,
            session_id=cfg.session_id,
            resume=cfg.resume,
            fork_session=cfg.fork_session,
            env=cfg.env,
            extra_args=cfg.cli_args,
        )

    # ---------------------------------------------------------------- public API

    def send(
        self, prompt: str | list[ContentBlock], *, on_text: Callable[[str], object] | None = None
    ) -> Turn:
        """Start a turn; iterate the returned ``Turn`` for its events."""
        return Turn(self, prompt, on_text)

    async def ask(self, prompt: str | list[ContentBlock]) -> Reply:
        """Run a turn to completion and return its ``Reply``; raise if the turn failed."""
        turn = self.send(prompt)
        events = [event async for event in turn]
        assert turn.result is not None
        turn.raise_for_error()
        message = next((m for m in reversed(self.history) if m.role == "assistant"), None)
        return Reply(turn.result.text, message, turn.result, events)

    def respond(self, request: PermissionRequest, decision: Decision) -> None:
        """Answer a ``PermissionRequest`` (before asking for the next event)."""
        if request.request_id not in self._pending:
            raise ClaudeError(
                f"permission request {request.request_id} for {request.name} is not waiting "
                "for an answer (answer it before iterating further)"
            )
        if isinstance(decision, Ask):
            raise ClaudeError("respond() needs Allow(...) or Deny(...), not Ask()")
        self._pending[request.request_id] = decision

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save this conversation to a JSON file; continue it later with ``restore()``.

        An API conversation is saved with its whole history; a CLI conversation by its session
        id (the CLI keeps the history itself and resumes it).
        """
        name = self.backend.name if self.backend is not None else self.config.backend
        write_saved(
            path,
            SavedConversation(
                backend=name,
                session_id=self.session_id,
                model=self.config.model,
                history=list(self.history),
            ),
        )

    @classmethod
    def restore(
        cls,
        path: str | os.PathLike[str],
        config: Config | None = None,
        *,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        policy: Policy | None = None,
    ) -> Conversation:
        """A conversation continuing one saved with ``save()`` (open it with ``async with``)."""
        saved = read_saved(path)
        config = config if config is not None else Config.load()
        if saved.backend == "cli":
            config = config.replace(backend="cli", resume=saved.session_id)
        elif config.backend == "auto":
            config = config.replace(backend=saved.backend)
        conversation = cls(config, tools=tools, policy=policy)
        if saved.backend != "cli":
            conversation.history = list(saved.history)
            conversation.session_id = saved.session_id
        return conversation

    async def set_model(self, model: str | None) -> None:
        """Use another model from the next request on (``None``: the backend's default)."""
        self.config = self.config.replace(model=model)
        setter = getattr(self.backend, "set_model", None)
        if setter is not None:
            await setter(model)

    async def set_permission_mode(self, mode: str) -> None:
        """Change the CLI's permission mode (and the config) for the following turns."""
        self.config = self.config.replace(permission_mode=mode)
        setter = getattr(self.backend, "set_permission_mode", None)
        if setter is not None:
            await setter(mode)

    async def interrupt(self) -> None:
        """Stop the running turn; it ends with an error Result and the conversation stays usable."""
        self._interrupt_requested = True
        if self.backend is not None:
            await self.backend.interrupt()

    # ---------------------------------------------------------------- turn machinery

    async def _begin(self, turn: Turn) -> None:
        if self.backend is None:
            raise ClaudeError(
                "the conversation is not open: use `async with Conversation(...) as conv:` "
                "(or `await conv.open()` and later `await conv.aclose()`)"
            )
        if self._current is not None and self._current is not turn:
            await self._current.aclose()
        if self._broken is not None:
            raise ClaudeError(f"{self._broken}; open a new Conversation to go on")
        self._current = turn
        self._interrupt_requested = False

    async def _run(self, turn: Turn, prompt: str | list[ContentBlock]) -> AsyncIterator[Event]:
        async with self._lock:
            assert self.backend is not None
            runner = self._run_cli if self.backend.drives_tool_loop else self._run_api
            # aclosing: a turn left early must finish (drain the CLI, repair the history) now,
            # not whenever the inner generator happens to be collected.
            async with aclosing(runner(turn, prompt)) as events:
                async for event in events:
                    if isinstance(event, SessionStarted):
                        if event == self._announced:
                            continue
                        self._announced = event
                        self.session_id = event.session_id or self.session_id
                    if isinstance(event, Result):
                        turn.result = event
                    yield event

    def _exchange(self, prompt: str | list[ContentBlock], turn_id: str) -> Exchange:
        cfg = self.config
        return Exchange(
            prompt=prompt,
            history=tuple(self.history),
            turn_id=turn_id,
            model=cfg.model,
            max_tokens=cfg.max_tokens,
            system=_system_text(cfg),
            tools=self.host.specs,
            stream=cfg.stream,
        )

    # ---------------------------------------------------------------- API path

    async def _run_api(
        self, turn: Turn, prompt: str | list[ContentBlock]
    ) -> AsyncGenerator[Event, None]:
        assert self.backend is not None
        tally = _Tally(self.host.normalize)
        if self.session_id is None:
            self.session_id = str(uuid.uuid4())
        yield SessionStarted(
            backend=self.backend.name,
            session_id=self.session_id,
            # optional on a Backend: the model it uses when the config names none
            model=self.config.model or getattr(self.backend, "default_model", None),
            tools=sorted(self.host.tools),
            cwd=self.config.cwd,
        )
        self._append_user(prompt)
        failure: tuple[TurnError, ClaudeError | None] | None = None
        try:
            async for event in self._api_rounds(turn, tally):
                yield event
        except _Interrupted:
            failure = (TurnError("interrupted", "the turn was interrupted"), None)
        except ClaudeError as exc:
            exc.partial_text = tally.text_so_far
            failure = (_turn_error(exc), exc)
        finally:
            self._answer_open_tool_uses()
        if failure is not None:
            self._keep_partial(tally.acc)
            yield self._failed_result(turn, *failure, tally)
            return
        last = tally.last
        yield Result(
            session_id=self.session_id,
            stop_reason=last.stop_reason if last else None,
            text=last.text if last else "",
            usage=tally.usage,
            cost_usd=tally.cost,
            duration_s=time.monotonic() - tally.started,
            num_turns=tally.rounds,
        )

    async def _api_rounds(self, turn: Turn, tally: _Tally) -> AsyncIterator[Event]:
        """Request, run tools, request again, until the model stops calling tools."""
        max_turns = self.config.max_turns
        while True:
            if max_turns is not None and tally.rounds >= max_turns:
                raise TurnLimitError(
                    f"the model was still calling tools after max_turns={max_turns} rounds; "
                    "raise max_turns to let it continue",
                    max_turns=max_turns,
                )
            tally.next_round()
            async for event in self._api_request(tally.acc, turn.exchange_id):
                yield event
            if not tally.acc.complete:
                raise _Interrupted
            last = tally.finish_round()
            self.history.append(last)
            if last.stop_reason == "pause_turn":
                continue
            if last.stop_reason != "tool_use" or not last.tool_uses:
                return
            results: list[ToolResultBlock] = []
            async for event in self._api_tools(last, results):
                yield event
            self.history.append(Message(role="user", content=list(results)))
            if self._interrupt_requested:
                raise _Interrupted

    def _failed_result(
        self, turn: Turn, error: TurnError, exc: ClaudeError | None, tally: _Tally
    ) -> Result:
        turn.exception = exc
        return Result(
            session_id=self.session_id,
            text=tally.text_so_far,
            is_error=True,
            error=error,
            usage=tally.usage,
            duration_s=time.monotonic() - tally.started,
            num_turns=tally.rounds,
        )

    async def _api_request(self, acc: MessageAccumulator, turn_id: str) -> AsyncIterator[Event]:
        assert self.backend is not None
        exchange = self._exchange(self._prompt_of_last_user(), turn_id)
        async for frame in self.backend.exchange(exchange):
            if isinstance(frame, w.MessageResponse):
                for event in acc.feed_response(frame):
                    yield event
            elif isinstance(frame, RetryNotice):
                yield ApiRetry(
                    frame.attempt, frame.max_retries, frame.delay_s, frame.status, frame.error
                )
            elif isinstance(frame, ResponseStarted):
                if frame.rate_limits:
                    yield RateLimit(limits=frame.rate_limits)
            elif isinstance(frame, _API_EVENTS):
                for event in acc.feed(frame):
                    yield event
        if self._interrupt_requested:
            raise _Interrupted

    def _prompt_of_last_user(self) -> str | list[ContentBlock]:
        return self.history[-1].content if self.history else ""

    async def _api_tools(
        self, message: Message, results: list[ToolResultBlock]
    ) -> AsyncIterator[Event]:
        """Judge every tool_use of ``message`` in order, run the allowed ones concurrently,
        and fill ``results`` with one tool_result per tool_use, in order."""
        calls = [
            ToolCall(id=b.id, name=self.host.normalize(b.name), input=b.input)
            for b in message.tool_uses
        ]
        outcomes: list[ToolOutcome | None] = [None] * len(calls)
        interrupted = False
        for i, call in enumerate(calls):
            if interrupted:
                outcomes[i] = ToolOutcome(_INTERRUPTED, is_error=True)
                continue
            verdict = _Verdict()
            async for event in self._judge(call, verdict):
                yield event
            decision = verdict.decision
            if isinstance(decision, Deny):
                outcomes[i] = ToolOutcome(decision.message, is_error=True)
                interrupted = decision.interrupt
            elif isinstance(decision, Allow) and decision.updated_input is not None:
                calls[i] = msgspec.structs.replace(call, input=decision.updated_input)

        async def run(i: int) -> None:
            outcomes[i] = await self.host.run(calls[i])

        if interrupted:  # Deny(interrupt=True) ends the turn, as on the CLI
            self._interrupt_requested = True
        else:
            async with anyio.create_task_group() as tg:
                for i, outcome in enumerate(outcomes):
                    if outcome is None:
                        tg.start_soon(run, i)
        for call, maybe in zip(calls, outcomes, strict=True):
            outcome = maybe or ToolOutcome(_INTERRUPTED, is_error=True)  # allowed, never run
            content = _INTERRUPTED if interrupted and not outcome.is_error else outcome.content
            is_error = outcome.is_error or interrupted
            results.append(ToolResultBlock(call.id, content, is_error))
            yield ToolResult(call.id, call.name, content, is_error)

    def _append_user(self, prompt: str | list[ContentBlock]) -> None:
        """Add the user's prompt; after an interrupted tool round it joins the pending results."""
        if self.history and self.history[-1].role == "user":
            pending = self.history.pop()
            blocks: list[ContentBlock] = (
                [TextBlock(pending.content)]
                if isinstance(pending.content, str)
                else list(pending.content)
            )
            blocks += [TextBlock(prompt)] if isinstance(prompt, str) else prompt
            self.history.append(Message(role="user", content=blocks))
        else:
            self.history.append(Message(role="user", content=prompt))

    def _answer_open_tool_uses(self) -> None:
        """A turn left while its tools were pending (a ``break`` at a ToolUse or a permission
        request, a cancellation): give every unanswered tool_use an error result, because the
        API rejects a history with a tool_use that has no tool_result."""
        if not self.history or self.history[-1].role != "assistant":
            return
        uses = self.history[-1].tool_uses
        if uses:
            results = [ToolResultBlock(u.id, _ABANDONED, is_error=True) for u in uses]
            self.history.append(Message(role="user", content=list(results)))

    def _keep_partial(self, acc: MessageAccumulator) -> None:
        """Keep the text of a message cut short (even mid-block), so the model's words are not
        lost and the next prompt starts a clean user message. Unfinished tool calls are dropped:
        a tool_use without its result would make the next request invalid."""
        partial = acc.text_blocks_so_far()
        if partial and self.history and self.history[-1].role == "user":
            self.history.append(Message(role="assistant", content=list(partial)))

    # ---------------------------------------------------------------- permissions

    async def _judge(self, call: ToolCall, verdict: _Verdict) -> AsyncIterator[Event]:
        """Ask the policy (and, on Ask, the consumer); yield the request and the decision."""
        decision = await self.host.decide(call)
        decided_by = "policy"
        if isinstance(decision, Ask):
            request = PermissionRequest(str(uuid.uuid4()), call.id, call.name, call.input)
            self._pending[request.request_id] = None
            try:
                yield request
            finally:
                answer = self._pending.pop(request.request_id, None)
            decision = answer if answer is not None else unanswered_denial(call.name)
            decided_by = "user" if answer is not None else "policy"
        verdict.decision, verdict.decided_by = decision, decided_by
        yield PermissionDecision(
            tool_use_id=call.id,
            name=call.name,
            decided_by=decided_by,  # type: ignore[arg-type]
            **decision_fields(decision),
        )

    # ---------------------------------------------------------------- CLI path

    async def _run_cli(
        self, turn: Turn, prompt: str | list[ContentBlock]
    ) -> AsyncGenerator[Event, None]:
        assert self.backend is not None
        frames = self.backend.exchange(self._exchange(prompt, turn.exchange_id))
        finished = False
        try:
            async for frame in frames:
                if isinstance(frame, PermissionQuery):
                    async for event in self._cli_permission(frame):
                        yield event
                elif isinstance(frame, ToolInvocation):
                    yield await self._cli_tool(frame)
                elif isinstance(frame, _CLI_LINES):
                    for event in self._cli.feed(frame):
                        finished = finished or isinstance(event, Result)
                        yield event
        except ClaudeError as exc:
            exc.partial_text = "".join(m.text for m in self._cli.messages if m.role == "assistant")
            finished = True
            tally = _Tally(self.host.normalize)
            tally.text_parts.append(exc.partial_text)
            yield self._failed_result(turn, _turn_error(exc), exc, tally)
        finally:
            if not finished:
                await self._drain_cli(frames)
        self.history.extend(self._cli.messages)
        self._cli.messages.clear()

    async def _cli_permission(self, frame: PermissionQuery) -> AsyncIterator[Event]:
        call = ToolCall(
            id=frame.tool_use_id, name=self.host.normalize(frame.name), input=frame.input
        )
        verdict = _Verdict()
        async for event in self._judge(call, verdict):
            yield event
        self._cli.note_decided(call.id)
        decision = verdict.decision
        if isinstance(decision, Allow):
            await frame.reply(PermissionAnswer("allow", updated_input=decision.updated_input))
        else:
            assert isinstance(decision, Deny)
            await frame.reply(
                PermissionAnswer("deny", message=decision.message, interrupt=decision.interrupt)
            )

    async def _cli_tool(self, frame: ToolInvocation) -> ToolResult:
        call = ToolCall(
            id=frame.tool_use_id, name=self.host.normalize(frame.name), input=frame.input
        )
        outcome = await self.host.run(call)
        self._cli.note_own_result(call.id)
        await frame.reply(outcome)
        return ToolResult(call.id, call.name, outcome.content, outcome.is_error)

    async def _drain_cli(self, frames: AsyncIterator[Any]) -> None:
        """A CLI turn abandoned before its result: interrupt it and read it to the end."""
        assert self.backend is not None
        with anyio.CancelScope(shield=True), anyio.move_on_after(_DRAIN_TIMEOUT_S) as scope:
            try:
                await self.backend.interrupt()
                async for frame in frames:
                    if isinstance(frame, PermissionQuery):
                        await frame.reply(
                            PermissionAnswer("deny", message="the turn was abandoned")
                        )
                    elif isinstance(frame, ToolInvocation):
                        await frame.reply(ToolOutcome("the turn was abandoned", is_error=True))
                    elif isinstance(frame, _CLI_LINES):
                        self._cli.feed(frame)
            except ClaudeError:  # the transport is gone (e.g. cancelled with its conversation)
                scope.cancel()
        if scope.cancelled_caught:
            # Stop the process only: the backend's own resources are released by aclose(),
            # in the order they were entered.
            self._broken = "the previous turn could not be finished, so its process was stopped"
            terminate = getattr(self.backend, "terminate", None)
            if terminate is not None:
                with anyio.CancelScope(shield=True):
                    await terminate()


class _Interrupted(Exception):
    pass


class _Tally:
    """What one API-path turn has accumulated so far, across its request rounds."""

    def __init__(self, normalize_name: Callable[[str], str]):
        self._normalize_name = normalize_name
        self.started = time.monotonic()
        self.acc = MessageAccumulator("api", normalize_name)
        self.usage = Usage()
        self.cost: float | None = 0.0
        self.rounds = 0
        self.text_parts: list[str] = []
        self.last: Message | None = None

    def next_round(self) -> None:
        self.acc = MessageAccumulator("api", self._normalize_name)
        self.rounds += 1

    def finish_round(self) -> Message:
        last = self.last = self.acc.message()
        usage = last.usage or Usage()
        self.usage = self.usage + usage
        price = cost_usd(last.model, usage)
        self.cost = None if price is None or self.cost is None else self.cost + price
        self.text_parts.append(last.text)
        # `last` goes into the history now: a failure after this point has no partial message
        self.acc = MessageAccumulator("api", self._normalize_name)
        return last

    @property
    def text_so_far(self) -> str:
        pending = self.acc.partial_text if not self.acc.complete else ""
        return "".join(self.text_parts) + pending


_ABANDONED = "The tool was not run: the turn was ended before it could run."
_INTERRUPTED = "The user doesn't want to proceed with this tool use. The turn was interrupted."
_API_EVENTS = (
    w.MessageStartEvent,
    w.ContentBlockStartEvent,
    w.ContentBlockDeltaEvent,
    w.ContentBlockStopEvent,
    w.MessageDeltaEvent,
    w.MessageStopEvent,
    w.UnknownApiEvent,
)
_CLI_LINES = (
    w.SystemLine,
    w.AssistantLine,
    w.UserLine,
    w.StreamEventLine,
    w.ResultLine,
    w.RateLimitLine,
    w.UnknownLine,
)


def _system_text(config: Config) -> str | None:
    parts = [p for p in (config.system_prompt, config.append_system_prompt) if p]
    return "\n\n".join(parts) or None


def _turn_error(exc: ClaudeError) -> TurnError:
    if isinstance(exc, APIStatusError):
        return TurnError("api_status", str(exc), exc.status_code, exc.request_id)
    if isinstance(exc, TurnLimitError):
        return TurnError("max_turns", str(exc))
    return TurnError(type(exc).__name__, str(exc))


def exception_from_result(result: Result) -> ClaudeError:
    """The exception ``ask()`` raises for a failed Result that did not come from an exception."""
    error = result.error or TurnError("error", "the turn failed")
    exc: ClaudeError
    if error.status_code is not None:
        exc = status_error(error.status_code, error.message, request_id=error.request_id)
    elif error.kind == "max_turns":
        exc = TurnLimitError(error.message, max_turns=result.num_turns)
    else:
        exc = ClaudeError(f"{error.kind}: {error.message}")
    exc.partial_text = result.text
    return exc
