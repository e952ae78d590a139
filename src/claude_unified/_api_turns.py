"""The agent loop on the API path: request, judge and run tools, send results, until the model
stops calling tools or ``max_turns`` is reached (mixed into ``Conversation``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing

import anyio
import msgspec

from . import _wire as w
from ._events import (
    ApiRetry,
    ContentBlock,
    Event,
    Message,
    RateLimit,
    Result,
    SessionStarted,
    TextBlock,
    ToolResult,
    ToolResultBlock,
    TurnError,
    Usage,
    retry_reason,
)
from ._exceptions import (
    ClaudeError,
    ConfigError,
    TurnLimitError,
)
from ._hooks import HookTally, PostToolUseInput, StopInput, UserPromptSubmitInput
from ._normalize import MessageAccumulator
from ._permissions import Allow, Deny, ToolCall
from ._pricing import cost_usd
from ._settings import refuse_spent_budget
from ._turn import EventLane, Streamed, Turn, TurnCore, Verdict, turn_error
from .backends._protocol import (
    Backend,
    Exchange,
    Frame,
    FrameBatches,
    ResponseStarted,
    RetryNotice,
    ToolOutcome,
    closing,
)

__all__ = ["DEFAULT_MAX_TURNS", "ApiTurns"]

DEFAULT_MAX_TURNS = 100
"""Request rounds one API-path turn may take when ``max_turns`` is not set: enough for long
tool work, and a bound on a model that keeps calling a tool it is denied."""


class ApiTurns(TurnCore):
    """The library runs the tool loop: for backends with ``drives_tool_loop = False``."""

    spent_usd: float
    _tools_scope: anyio.CancelScope | None = None  # while the turn's tools run

    async def _run_api(
        self, turn: Turn, prompt: str | list[ContentBlock]
    ) -> AsyncGenerator[Streamed, None]:
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
        if self.hooks.has("UserPromptSubmit"):
            said = HookTally()
            payload = UserPromptSubmitInput(
                event="UserPromptSubmit", session_id=self.session_id, prompt=_text_of(prompt)
            )
            for ran in await self.hooks.run(payload, said):
                yield ran
            if said.denied is not None:  # as on the CLI: no request, no error, prompt dropped
                yield Result(
                    session_id=self.session_id,
                    text=f"UserPromptSubmit operation blocked by hook:\n{said.denied}\n\n"
                    f"Original prompt: {payload.prompt}",
                    duration_s=time.monotonic() - tally.started,
                )
                return
            if said.context is not None:
                context = _reminder(f"UserPromptSubmit hook additional context: {said.context}")
                prompt = [context, *_blocks(prompt)]
        self._append_user(prompt)
        failure: tuple[TurnError, ClaudeError | None] | None = None
        try:
            async with closing(self._api_rounds(turn, tally)) as events:
                async for event in events:
                    yield event
        except _Interrupted:
            failure = (TurnError("interrupted", "the turn was interrupted"), None)
        except ClaudeError as exc:
            exc.partial_text = tally.text_so_far
            failure = (turn_error(exc), exc)
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

    async def _api_rounds(self, turn: Turn, tally: _Tally) -> AsyncIterator[Streamed]:
        """Request, run tools, request again, until the model stops calling tools."""
        max_turns = self.config.max_turns or DEFAULT_MAX_TURNS
        while True:
            if tally.rounds >= max_turns:
                which = "max_turns" if self.config.max_turns else "the default max_turns"
                raise TurnLimitError(
                    f"the model was still calling tools after {which}={max_turns} rounds; "
                    "raise max_turns to let it continue",
                    max_turns=max_turns,
                )
            self._check_budget()
            tally.next_round()
            async with closing(self._api_request(tally.acc, turn.exchange_id)) as events:
                async for event in events:
                    yield event
            if not tally.acc.complete:
                raise _Interrupted
            last = tally.finish_round()
            self._spend(last)
            if last.content:  # the API rejects an empty assistant message sent back to it
                self.history.append(last)
            if last.stop_reason == "pause_turn":
                continue
            if last.stop_reason != "tool_use" or not last.tool_uses:
                reason = None
                if self.hooks.has("Stop") and tally.stop_blocks < STOP_BLOCK_CAP:
                    said = HookTally()
                    payload = StopInput(
                        event="Stop",
                        session_id=self.session_id,
                        stop_hook_active=tally.stop_blocks > 0,
                        last_message=last.text,
                    )
                    for ran in await self.hooks.run(payload, said):
                        yield ran
                    reason = said.continue_reason or said.denied
                if reason is None:
                    return
                # as the CLI does: the turn goes on, and the model reads the hook's reason
                tally.stop_blocks += 1
                feedback = TextBlock(f"Stop hook feedback:\n{reason}")
                self.history.append(Message(role="user", content=[feedback]))
                continue
            results: list[ContentBlock] = []
            async with closing(self._api_tools(last, results)) as events:
                async for event in events:
                    yield event
            self.history.append(Message(role="user", content=list(results)))
            if self._interrupt_requested:
                raise _Interrupted

    def _check_budget(self) -> None:
        """Before each request: stop once ``max_budget_usd`` is spent."""
        refuse_spent_budget(self._turn_settings.max_budget_usd, self.spent_usd, "conversation")

    def _spend(self, message: Message) -> None:
        """Add a request's cost (its usage times the price table) to the conversation's spend."""
        price = cost_usd(message.model, message.usage or Usage())
        if price is None and self._turn_settings.max_budget_usd is not None:
            raise ConfigError(
                f"max_budget_usd cannot be kept: there is no price for model {message.model!r} "
                "in the price table",
                field="max_budget_usd",
            )
        self.spent_usd += price or 0.0

    def _failed_result(
        self, turn: Turn, error: TurnError, exc: ClaudeError | None, tally: _Tally
    ) -> Result:
        turn.exception = exc
        # an interrupted turn reports the stop reason of its last message, as the CLI does
        last = tally.last if error.kind == "interrupted" else None
        return Result(
            session_id=self.session_id,
            stop_reason=last.stop_reason if last is not None else None,
            text=tally.text_so_far,
            is_error=True,
            error=error,
            usage=tally.usage,
            duration_s=time.monotonic() - tally.started,
            num_turns=tally.rounds,
        )

    async def _api_request(self, acc: MessageAccumulator, turn_id: str) -> AsyncIterator[Streamed]:
        """One request: its stream's events go up through an ``EventLane``, a read at a time."""
        assert self.backend is not None
        exchange = self._exchange(self._prompt_of_last_user(), turn_id)
        batches = _frame_batches(self.backend, exchange)
        async with aclosing(batches):
            lane = EventLane(batches.__anext__, _StreamEvents(acc).events)
            yield lane
            lane.raise_failure()
        if self._interrupt_requested:
            raise _Interrupted

    def _prompt_of_last_user(self) -> str | list[ContentBlock]:
        return self.history[-1].content if self.history else ""

    async def _api_tools(
        self, message: Message, results: list[ContentBlock]
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
            verdict = Verdict(call)
            async with closing(self._judge(verdict)) as events:
                async for event in events:
                    yield event
            decision = verdict.decision
            if isinstance(decision, Deny):
                # an interrupting Deny keeps its message on the PermissionDecision; the model
                # reads the CLI's words for a rejected call, as it does there
                refusal = _INTERRUPTED if decision.interrupt else decision.message
                outcomes[i] = ToolOutcome(refusal, is_error=True)
                interrupted = decision.interrupt
            elif isinstance(decision, Allow) and decision.updated_input is not None:
                calls[i] = msgspec.structs.replace(call, input=decision.updated_input)
        ran = [outcome is None for outcome in outcomes]

        async def run(i: int) -> None:
            outcomes[i] = await self.host.run(calls[i])

        if interrupted:  # Deny(interrupt=True) ends the turn, as on the CLI
            self._interrupt_requested = True
        else:
            # interrupt() cancels this scope: tools still running are stopped at once
            with anyio.CancelScope() as scope:
                self._tools_scope = scope
                if self._interrupt_requested:
                    scope.cancel()
                try:
                    async with anyio.create_task_group() as tg:
                        for i, outcome in enumerate(outcomes):
                            if outcome is None:
                                tg.start_soon(run, i)
                finally:
                    self._tools_scope = None
        async with closing(self._report_tools(calls, outcomes, ran, interrupted, results)) as out:
            async for event in out:
                yield event

    async def _report_tools(
        self,
        calls: list[ToolCall],
        outcomes: list[ToolOutcome | None],
        ran: list[bool],
        interrupted: bool,
        results: list[ContentBlock],
    ) -> AsyncIterator[Event]:
        """One ToolResult per call, in order, each followed by its PostToolUse hooks."""
        contexts: list[TextBlock] = []
        for call, maybe, did_run in zip(calls, outcomes, ran, strict=True):
            # allowed, but stopped by interrupt() (or never started)
            outcome = maybe or ToolOutcome(_STOPPED, is_error=True)
            content = _INTERRUPTED if interrupted and not outcome.is_error else outcome.content
            is_error = outcome.is_error or interrupted
            results.append(ToolResultBlock(call.id, content, is_error))
            yield ToolResult(call.id, call.name, content, is_error)
            if did_run and not interrupted and self.hooks.has("PostToolUse"):
                async for event in self._post_tool_use(call, outcome, contexts):
                    yield event
        results.extend(contexts)  # text after the results: context for the model

    async def _post_tool_use(
        self, call: ToolCall, outcome: ToolOutcome, contexts: list[TextBlock]
    ) -> AsyncIterator[Event]:
        said = HookTally()
        payload = PostToolUseInput(
            event="PostToolUse",
            session_id=self.session_id,
            tool_use_id=call.id,
            name=call.name,
            input=call.input,
            response=outcome.content,
        )
        for ran in await self.hooks.run(payload, said, call=call):
            yield ran
        for text in (said.denied, said.context):
            if text is not None:
                note = f"PostToolUse:{call.name} hook additional context: {text}"
                contexts.append(_reminder(note))

    def _stop_tools(self) -> None:
        """Stop the tools running for the current turn, if any (``interrupt()``)."""
        if self._tools_scope is not None:
            self._tools_scope.cancel()

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


class _Interrupted(Exception):
    pass


def _frame_batches(backend: Backend, exchange: Exchange) -> FrameBatches:
    """The exchange's frames a network read at a time, from backends that can say so."""
    batches: Callable[[Exchange], FrameBatches] | None = getattr(backend, "exchange_batches", None)
    if batches is not None:
        return batches(exchange)
    return _one_by_one(backend.exchange(exchange))


async def _one_by_one(frames: AsyncIterator[Frame]) -> AsyncGenerator[list[Frame], None]:
    async for frame in frames:
        yield [frame]


class _StreamEvents:
    """Turns a stream's frame batches into events for an ``EventLane``, one read at a time."""

    __slots__ = ("_acc",)

    def __init__(self, acc: MessageAccumulator):
        self._acc = acc

    def events(self, batch: list[Frame]) -> list[Event]:
        """The events of one network read's frames."""
        acc = self._acc
        if len(batch) == 1:
            frame = batch[0]
            if type(frame) is w.ContentBlockDeltaEvent:  # one read, one delta
                return acc.feed_delta(frame.index, frame.delta)
        events: list[Event] = []
        for frame in batch:
            if isinstance(frame, _API_EVENTS):  # the bulk: tested first, deltas first
                events += acc.feed(frame)
            elif isinstance(frame, w.MessageResponse):
                events += acc.feed_response(frame)
            elif isinstance(frame, RetryNotice):
                events.append(
                    ApiRetry(
                        frame.attempt,
                        frame.max_retries,
                        frame.delay_s,
                        frame.status,
                        retry_reason(frame.status, frame.error),
                        frame.error,
                    )
                )
            elif isinstance(frame, ResponseStarted) and frame.rate_limits:
                events.append(RateLimit(limits=frame.rate_limits))
        return events


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
        self.stop_blocks = 0  # times a Stop hook continued this turn

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


def _text_of(prompt: str | list[ContentBlock]) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(b.text for b in prompt if isinstance(b, TextBlock))


def _blocks(prompt: str | list[ContentBlock]) -> list[ContentBlock]:
    return [TextBlock(prompt)] if isinstance(prompt, str) else list(prompt)


def _reminder(text: str) -> TextBlock:
    """Context for the model from a hook, marked the way Claude Code marks such text."""
    return TextBlock(f"<system-reminder>\n{text}\n</system-reminder>")


STOP_BLOCK_CAP = 9
"""How many times in a row Stop hooks may continue one turn (the CLI's limit)."""

_ABANDONED = "The tool was not run: the turn was ended before it could run."

_INTERRUPTED = (
    "The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it "
    "was a file edit, the new_string was NOT written to the file). STOP what you are doing and "
    "wait for the user to tell you how to proceed."
)
"""What the model reads for the calls of a message a ``Deny(interrupt=True)`` ended: the CLI's
own text for them, so the model reads the same on both backends."""

_STOPPED = "The tool was stopped before it finished: the user interrupted the turn."

# isinstance stops at the first match, and a miss on a Struct class costs more than a hit: the
# most frequent event comes first
_API_EVENTS = (
    w.ContentBlockDeltaEvent,
    w.MessageStartEvent,
    w.ContentBlockStartEvent,
    w.ContentBlockStopEvent,
    w.MessageDeltaEvent,
    w.MessageStopEvent,
    w.UnknownApiEvent,
)
