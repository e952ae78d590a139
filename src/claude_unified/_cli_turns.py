"""Turns on a backend that runs the tool loop itself (the CLI): its frames become events, and
its permission queries and calls of the library's tools are answered here (mixed into
``Conversation``)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import anyio

from . import _wire as w
from ._events import (
    ContentBlock,
    Event,
    Result,
    ToolResult,
)
from ._exceptions import (
    ClaudeError,
)
from ._permissions import Allow, Deny, ToolCall
from ._turn import Turn, TurnCore, Verdict, turn_error
from .backends._protocol import (
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
        call = ToolCall(
            id=frame.tool_use_id, name=self.host.normalize(frame.name), input=frame.input
        )
        verdict = Verdict()
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


_CLI_LINES = (
    w.SystemLine,
    w.AssistantLine,
    w.UserLine,
    w.StreamEventLine,
    w.ResultLine,
    w.RateLimitLine,
    w.UnknownLine,
)
