"""Turns: the event stream of one ``send()``, its ``Reply``, and the machinery both transports'
turn loops share (the exchange request, the permission judgement)."""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, Protocol, TypeAlias

import msgspec
from typing_extensions import TypeVar

from ._config import Config
from ._events import (
    ContentBlock,
    Event,
    Message,
    PermissionDecision,
    PermissionRequest,
    Result,
    TextDelta,
    TurnError,
)
from ._exceptions import (
    APIStatusError,
    BudgetExceededError,
    ClaudeError,
    TurnLimitError,
    status_error,
)
from ._hooks import HookSet, HookTally, PreToolUseInput
from ._normalize import CliNormalizer
from ._permissions import Allow, Ask, Decision, Deny, ToolCall
from ._settings import RequestSettings
from ._toolhost import ToolHost, decision_fields, unanswered_denial
from .backends._protocol import (
    Backend,
    Exchange,
    PermissionContext,
)

__all__ = [
    "EventLane",
    "Reply",
    "Streamed",
    "Turn",
    "TurnCore",
    "TurnDriver",
    "exception_from_result",
    "turn_error",
]


OutputT = TypeVar("OutputT", default=Any)
BatchT = TypeVar("BatchT")


class Reply(msgspec.Struct, Generic[OutputT], frozen=True):
    """What ``ask()`` returns: final text, last assistant message, the Result, every event,
    and, when ``output=T`` was asked for, the reply validated as a ``T`` (else ``None``)."""

    text: str
    message: Message | None
    result: Result
    events: list[Event]
    output: OutputT | None = None


class Verdict:
    """The judgement of one tool call: the call as it will run (a hook may have rewritten its
    input), the decision and who made it."""

    __slots__ = ("call", "decided_by", "decision", "rewritten")

    def __init__(self, call: ToolCall) -> None:
        self.call = call
        self.decision: Decision = Ask()
        self.decided_by = "policy"
        self.rewritten = False  # a hook replaced the model's input


class EventLane(Generic[BatchT]):
    """A fast lane for one response stream's events, past the turn's generator layers.

    The layers of a turn (the conversation, the agent loop, its rounds, its requests) are async
    generators, and a value passed up through them pays one hop per layer. A stream's events
    need none of what the layers do, so the layer that reads the stream yields an ``EventLane``
    instead, once; the ``Turn`` then awaits ``read()`` directly, which returns the next network
    read's frames (``StopAsyncIteration`` when the stream has ended), and turns them into events
    with the plain function ``events()``: no coroutine frame of ours between the turn and the
    read. At the end the turn resumes the generators, and the layer that yielded the lane
    raises whatever ``read()`` or ``events()`` raised (``raise_failure()``), so every layer sees
    an error or a cancellation exactly where it would have met it."""

    __slots__ = ("events", "failure", "read")

    def __init__(
        self, read: Callable[[], Awaitable[BatchT]], events: Callable[[BatchT], list[Event]]
    ):
        self.read = read
        self.events = events
        self.failure: BaseException | None = None

    def raise_failure(self) -> None:
        """Raise what ended the lane, if it did not simply run out."""
        failure, self.failure = self.failure, None
        if failure is not None:
            raise failure


Streamed: TypeAlias = Event | EventLane[Any]
"""What a turn's generator layers yield: events, or a lane for a stream's events."""


class TurnDriver(Protocol):
    """What a ``Turn`` needs of the conversation that made it (``Conversation``)."""

    async def _begin(self, turn: Turn) -> None: ...

    def _run(self, turn: Turn, prompt: str | list[ContentBlock]) -> AsyncIterator[Streamed]: ...


class Turn:
    """One turn's event stream. Iterate it (``async for``); it ends with a ``Result``."""

    def __init__(
        self,
        conversation: TurnDriver,
        prompt: str | list[ContentBlock],
        on_text: Any = None,
        settings: RequestSettings | None = None,
    ):
        self._conversation = conversation
        self._prompt = prompt
        self.settings = settings if settings is not None else RequestSettings()
        self._on_text: Callable[[str], object] | None = on_text
        self._agen: AsyncIterator[Streamed] | None = None
        self._lane: EventLane[Any] | None = None
        self._ready: deque[Event] = deque()  # the rest of the lane's last batch
        self.exchange_id = str(uuid.uuid4())
        self.result: Result | None = None
        self.exception: ClaudeError | None = None
        self.closed = False
        self.busy = False  # a task is waiting for this turn's next event

    def __aiter__(self) -> Turn:
        return self

    async def __anext__(self) -> Event:
        ready = self._ready
        if ready:
            event = ready.popleft()
        else:
            self.busy = True
            try:
                lane = self._lane
                batch: list[Event] | None = None
                if lane is not None:  # the hot path: a stream's next read, past every layer
                    try:
                        batch = lane.events(await lane.read())
                    except StopAsyncIteration:
                        batch = None
                    except BaseException as exc:  # raised by the layer that yielded the lane
                        lane.failure, batch = exc, None
                    if batch is None:
                        self._lane = None
                if batch:
                    event = batch[0]
                    if len(batch) > 1:  # one read, one event: no queue
                        ready.extend(batch)
                        ready.popleft()
                else:
                    event = await self._next()
            finally:
                self.busy = False
        if self._on_text is not None and type(event) is TextDelta:
            self._on_text(event.text)
        return event

    async def _pull(self, lane: EventLane[Any]) -> list[Event] | None:
        """The lane's next events; at its end (or failure) the turn goes back to its layers."""
        try:
            batch: list[Event] | None = lane.events(await lane.read())
        except StopAsyncIteration:
            batch = None
        except BaseException as exc:  # raised by the layer that yielded the lane
            lane.failure, batch = exc, None
        if batch is None:
            self._lane = None
        return batch

    async def _next(self) -> Event:
        """The next event, resuming the turn's layers (and following the lanes they yield)."""
        if self.closed:
            raise StopAsyncIteration
        agen = self._agen
        if agen is None:
            await self._conversation._begin(self)
            agen = self._agen = self._conversation._run(self, self._prompt)
        try:
            while True:
                lane = self._lane
                if lane is not None:
                    batch = await self._pull(lane)
                    if batch:
                        self._ready.extend(batch[1:])
                        return batch[0]
                    continue
                item = await agen.__anext__()
                if type(item) is EventLane:
                    self._lane = item
                    continue
                assert not isinstance(item, EventLane)
                return item
        except BaseException:
            self.closed = True
            self._lane = None
            raise

    async def aclose(self) -> None:
        """Finish this turn now: drain or discard whatever it has not yielded yet."""
        if self.closed:
            return
        self.closed = True
        self._lane = None
        self._ready.clear()
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


class TurnCore:
    """State and steps shared by the API and CLI turn loops (mixed into ``Conversation``)."""

    config: Config
    host: ToolHost
    backend: Backend | None
    history: list[Message]
    session_id: str | None
    hooks: HookSet
    _screened: dict[str, Verdict]  # CLI: calls judged at PreToolUse, awaiting can_use_tool
    _hook_matchers: dict[str, str | None]  # CLI: callback id → the matcher it was registered with
    _cli: CliNormalizer
    _pending: dict[str, Decision | None]
    _interrupt_requested: bool
    _broken: str | None
    _turn_settings: RequestSettings

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
            settings=self._turn_settings,
        )

    async def _judge(self, verdict: Verdict) -> AsyncIterator[Event]:
        """The whole judgement of a call: ``_screen``, then ``_settle``."""
        async for event in self._screen(verdict):
            yield event
        async for event in self._settle(verdict):
            yield event

    async def _screen(self, verdict: Verdict) -> AsyncIterator[Event]:
        """PreToolUse hooks, then the policy, without asking anyone yet.

        A hook's Deny decides (``decided_by="hook"``). A hook's Allow skips the question an
        Ask would raise, but never overrides the policy's Deny: a deny rule means the same
        whatever the hooks say. An input a hook rewrote is what the policy judges and what runs.
        """
        call = verdict.call
        tally = HookTally()
        if self.hooks.has("PreToolUse"):
            payload = PreToolUseInput(
                event="PreToolUse",
                session_id=self.session_id,
                tool_use_id=call.id,
                name=call.name,
                input=call.input,
            )
            for ran in await self.hooks.run(payload, tally, call=call):
                yield ran
        if tally.denied is not None:
            verdict.decision, verdict.decided_by = Deny(tally.denied), "hook"
            return
        if tally.updated_input is not None:
            verdict.call = call = msgspec.structs.replace(call, input=tally.updated_input)
            verdict.rewritten = True
        decision = await self.host.decide(call)
        if isinstance(decision, Ask) and tally.allowed:
            decision, verdict.decided_by = Allow(), "hook"
        verdict.decision = self._with_input(decision, verdict)

    async def _settle(
        self, verdict: Verdict, context: PermissionContext | None = None
    ) -> AsyncIterator[Event]:
        """On Ask, ask the consumer (a PermissionRequest); then yield the PermissionDecision."""
        call = verdict.call
        if isinstance(verdict.decision, Ask):
            ctx = context or PermissionContext()
            request = PermissionRequest(
                str(uuid.uuid4()),
                call.id,
                call.name,
                call.input,
                blocked_path=ctx.blocked_path,
                decision_reason=ctx.decision_reason,
                suggestions=ctx.suggestions,
            )
            self._pending[request.request_id] = None
            try:
                yield request
            finally:
                answer = self._pending.pop(request.request_id, None)
            decision = answer if answer is not None else unanswered_denial(call.name)
            verdict.decided_by = "user" if answer is not None else "policy"
            verdict.decision = self._with_input(decision, verdict)
        decision = verdict.decision
        yield PermissionDecision(
            tool_use_id=call.id,
            name=call.name,
            decided_by=verdict.decided_by,  # type: ignore[arg-type]
            **decision_fields(decision),
        )

    @staticmethod
    def _with_input(decision: Decision, verdict: Verdict) -> Decision:
        """An Allow that runs the call as judged (with a hook's rewritten input)."""
        if verdict.rewritten and isinstance(decision, Allow) and decision.updated_input is None:
            return Allow(updated_input=verdict.call.input)
        return decision


def _system_text(config: Config) -> str | None:
    parts = [p for p in (config.system_prompt, config.append_system_prompt) if p]
    return "\n\n".join(parts) or None


def turn_error(exc: ClaudeError) -> TurnError:
    if isinstance(exc, APIStatusError):
        return TurnError("api_status", str(exc), exc.status_code, exc.request_id)
    if isinstance(exc, TurnLimitError):
        return TurnError("max_turns", str(exc))
    if isinstance(exc, BudgetExceededError):
        return TurnError("budget_exhausted", str(exc))
    return TurnError(type(exc).__name__, str(exc))


def exception_from_result(result: Result) -> ClaudeError:
    """The exception ``ask()`` raises for a failed Result that did not come from an exception."""
    error = result.error or TurnError("error", "the turn failed")
    exc: ClaudeError
    if error.status_code is not None:
        exc = status_error(error.status_code, error.message, request_id=error.request_id)
    elif error.kind == "max_turns":
        exc = TurnLimitError(error.message, max_turns=result.num_turns)
    elif error.kind == "budget_exhausted":
        exc = BudgetExceededError(error.message)
    else:
        exc = ClaudeError(f"{error.kind}: {error.message}")
    exc.partial_text = result.text
    return exc
