"""Turns on a backend that runs the tool loop itself (the CLI): its frames become events, and
its permission queries and calls of the library's tools are answered here (mixed into
``Conversation``)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import anyio
import msgspec

from . import _wire as w
from ._events import (
    ContentBlock,
    Event,
    Result,
    ToolResult,
    ToolUse,
)
from ._exceptions import (
    ClaudeError,
)
from ._hooks import HookTally, cli_hook_input
from ._permissions import Allow, Ask, Deny, ToolCall
from ._turn import Turn, TurnCore, Verdict, turn_error
from .backends._protocol import (
    HookAnswer,
    HookQuery,
    PermissionAnswer,
    PermissionQuery,
    ToolInvocation,
    ToolOutcome,
)

__all__ = ["CliTurns"]

_DRAIN_TIMEOUT_S = 30.0


class CliTurns(TurnCore):
    """For backends with ``drives_tool_loop = True``."""

    async def _run_cli(
        self, turn: Turn, prompt: str | list[ContentBlock]
    ) -> AsyncGenerator[Event, None]:
        assert self.backend is not None
        frames = self.backend.exchange(self._exchange(prompt, turn.exchange_id))
        self._screened.clear()
        order = _ToolOrder()
        finished = False
        try:
            async for frame in frames:
                if isinstance(frame, PermissionQuery):
                    async for event in self._cli_permission(frame):
                        yield event
                elif isinstance(frame, ToolInvocation):
                    for event in order.sort([await self._cli_tool(frame)]):
                        yield event
                elif isinstance(frame, HookQuery):
                    for event in order.sort(await self._cli_hook(frame)):
                        yield event
                elif isinstance(frame, _CLI_LINES):
                    for event in order.sort(self._cli.feed(frame)):
                        finished = finished or isinstance(event, Result)
                        yield event
        except ClaudeError as exc:
            exc.partial_text = self._cli.partial_text()  # a message cut mid-stream included
            self._cli.abandon()
            finished = True
            turn.exception = exc
            yield Result(
                session_id=self.session_id,
                text=exc.partial_text,
                is_error=True,
                error=turn_error(exc),
            )
        finally:
            if not finished:
                await self._drain_cli(frames)
                self._cli.abandon()
            self.history.extend(self._cli.messages)
            self._cli.messages.clear()

    async def _cli_permission(self, frame: PermissionQuery) -> AsyncIterator[Event]:
        """The CLI asks. A call our PreToolUse hook already judged is not judged again: a
        Deny decided there is replied now, an Ask is put to the consumer now, with the CLI's
        context (blocked path, reason, suggestions)."""
        verdict = self._screened.pop(frame.tool_use_id, None)
        if verdict is None:  # the CLI asked without a PreToolUse first
            name = self.host.normalize(frame.name)
            verdict = Verdict(ToolCall(id=frame.tool_use_id, name=name, input=frame.input))
            async for event in self._judge(verdict):
                yield event
        elif isinstance(verdict.decision, Ask):
            async for event in self._settle(verdict, frame.context):
                yield event
        self._cli.note_decided(verdict.call.id)
        decision = verdict.decision
        if isinstance(decision, Allow):
            await frame.reply(PermissionAnswer("allow", updated_input=decision.updated_input))
        else:
            assert isinstance(decision, Deny)
            await frame.reply(
                PermissionAnswer("deny", message=decision.message, interrupt=decision.interrupt)
            )

    async def _cli_hook(self, frame: HookQuery) -> list[Event]:
        """Answer one ``hook_callback``, then hand over its events (answered first, so a
        consumer that stops reading never leaves the CLI waiting). A turn cancelled while its
        hooks run still answers: a PreToolUse is then denied, so nothing runs unjudged."""
        answered = False

        async def reply(answer: HookAnswer) -> None:
            nonlocal answered
            answered = True
            await frame.reply(answer)

        try:
            return await self._cli_hook_answer(msgspec.structs.replace(frame, reply=reply))
        finally:
            if not answered:
                with anyio.CancelScope(shield=True):
                    await frame.reply(frame.refusal("the turn was abandoned"))

    async def _cli_hook_answer(self, frame: HookQuery) -> list[Event]:
        payload = cli_hook_input(frame.input, self.host.normalize)
        if payload.event == "PreToolUse":
            return await self._cli_pre_tool(frame, payload)
        tally = HookTally()
        matcher = self._hook_matchers.get(frame.callback_id)
        ran = await self.hooks.run(payload, tally, call=_call_of(payload), cli_matcher=matcher)
        reason = tally.continue_reason if payload.event == "Stop" else tally.denied
        await frame.reply(
            HookAnswer(
                event=payload.event,
                block=reason is not None,
                reason=reason,
                additional_context=tally.context,
                system_message=tally.system_message,
            )
        )
        return list(ran)

    async def _cli_pre_tool(self, frame: HookQuery, payload: Any) -> list[Event]:
        """PreToolUse: the one policy judges every call here, the CLI's read-only ones too.

        An Allow is answered ``allow``. A Deny or an Ask is answered ``ask``, so the CLI sends
        ``can_use_tool`` next, where a Deny is replied (the model then reads the Deny's own
        message, as on the API, and an interrupt works as there) and an Ask is put to the
        consumer with the CLI's context.
        """
        verdict = Verdict(ToolCall(id=payload.tool_use_id, name=payload.name, input=payload.input))
        events = [event async for event in self._screen(verdict)]
        decision = verdict.decision
        if isinstance(decision, Allow):
            events += [event async for event in self._settle(verdict)]
            self._cli.note_decided(verdict.call.id)
        else:
            if isinstance(decision, Deny):
                events += [event async for event in self._settle(verdict)]
            self._screened[verdict.call.id] = verdict
        await frame.reply(
            HookAnswer(
                event="PreToolUse",
                permission="allow" if isinstance(decision, Allow) else "ask",
                updated_input=verdict.call.input if verdict.rewritten else None,
            )
        )
        return events

    async def _cli_tool(self, frame: ToolInvocation) -> ToolResult:
        call = ToolCall(
            id=frame.tool_use_id, name=self.host.normalize(frame.name), input=frame.input
        )
        outcome = await self.host.run(call)
        self._cli.note_own_result(call.id)
        await frame.reply(outcome)
        return ToolResult(call.id, call.name, outcome.content, outcome.is_error)

    async def _drain_cli(self, frames: AsyncIterator[Any]) -> None:
        """A CLI turn abandoned before its result: interrupt it and read it to the end.

        When the turn was cancelled its frames are closed already, and the backend skips the
        rest of it before the next turn; the interrupt is all that is left to do here, and a
        CLI that does not acknowledge it in time is stopped by the backend.
        """
        assert self.backend is not None
        limit = min(_DRAIN_TIMEOUT_S, self.config.idle_timeout)
        with anyio.CancelScope(shield=True), anyio.move_on_after(limit) as scope:
            try:
                await self.backend.interrupt()
                async for frame in frames:
                    if isinstance(frame, PermissionQuery):
                        await frame.reply(
                            PermissionAnswer("deny", message="the turn was abandoned")
                        )
                    elif isinstance(frame, ToolInvocation):
                        await frame.reply(ToolOutcome("the turn was abandoned", is_error=True))
                    elif isinstance(frame, HookQuery):
                        await frame.reply(frame.refusal("the turn was abandoned"))
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


class _ToolOrder:
    """Keeps each tool call's events after its ToolUse.

    The CLI may run a tool (and call our hooks for it) before it streams the end of the
    tool_use block, which is where the ToolUse event comes from. Events of a call whose ToolUse
    has not been yielded wait for it; any still waiting at the Result go out just before it.
    """

    __slots__ = ("held", "seen")

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.held: dict[str, list[Event]] = {}

    def sort(self, events: list[Event]) -> list[Event]:
        out: list[Event] = []
        for event in events:
            if isinstance(event, ToolUse):
                self.seen.add(event.id)
                out += [event, *self.held.pop(event.id, ())]
                continue
            if isinstance(event, Result):
                for waiting in self.held.values():
                    out += waiting
                self.held.clear()
            tool_use_id = getattr(event, "tool_use_id", None)
            if tool_use_id is not None and tool_use_id not in self.seen:
                self.held.setdefault(tool_use_id, []).append(event)
            else:
                out.append(event)
        return out


def _call_of(payload: Any) -> ToolCall | None:
    tool_use_id = getattr(payload, "tool_use_id", None)
    if tool_use_id is None:
        return None
    return ToolCall(id=tool_use_id, name=payload.name, input=payload.input)


_CLI_LINES = (
    w.SystemLine,
    w.AssistantLine,
    w.UserLine,
    w.StreamEventLine,
    w.ResultLine,
    w.RateLimitLine,
    w.UnknownLine,
)
