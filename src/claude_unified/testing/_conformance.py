"""``check_backend``: the behaviour every Backend must show under the real core.

Each scenario opens a new ``Conversation`` over a new backend from the factory and checks the
public events: several turns in one session, a tool loop, permissions asked and answered,
interrupting a turn, unknown content tolerated, and an API error surfaced as an error Result and
a typed exception. The model's side is scripted with the same steps the fakes take; scenarios
always run in the same order with the same prompts, so a recording of the suite replays.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio

from .._config import Config
from .._conversation import Conversation
from .._events import (
    ApiRetry,
    Event,
    PermissionDecision,
    PermissionRequest,
    RateLimit,
    Result,
    TextBlock,
    TextDelta,
    ThinkingDelta,
    ToolInputDelta,
    ToolResult,
    ToolUse,
    Unknown,
    UnknownBlock,
)
from .._exceptions import RequestTooLargeError
from .._permissions import OWN_MCP_SERVER, Allow, Ask, Decision, Deny, Policy, allow_list, callback
from .._tools import tool
from ..backends._protocol import Backend
from ._script import Reply, Step, error, message, reply, stall, tool_call

__all__ = ["check_backend"]

_TURN_TIMEOUT_S = 20.0
# Events that may come or not, depending on the transport.
_INCIDENTAL = (TextDelta, ThinkingDelta, ToolInputDelta, Unknown, RateLimit, ApiRetry)


async def check_backend(
    factory: Callable[[Config], Backend],
    *,
    config: Config | None = None,
    script: Callable[..., object] | None = None,
) -> None:
    """Run the conformance scenarios on backends made by ``factory(config)``.

    ``script(*steps)`` queues the model's responses: ``FakeBackend.queue`` or
    ``FakeAnthropicServer.queue``. Leave it out for a ``ReplayBackend``: its recording holds
    them. ``config`` (default ``Config()``) is given to the factory and to each conversation.
    A failed check raises ``AssertionError`` (``TimeoutError`` for a turn that hangs) with a
    note naming the scenario.
    """
    suite = _Suite(factory, config or Config(), script)
    for scenario in _SCENARIOS:
        try:
            with anyio.fail_after(_TURN_TIMEOUT_S * 3):
                await scenario(suite)
        except (AssertionError, TimeoutError) as exc:
            exc.add_note(f"check_backend scenario: {scenario.__name__.lstrip('_')}")
            raise


class _Suite:
    """What the scenarios share: the factory, the script and a recorded ``add`` tool."""

    def __init__(
        self,
        factory: Callable[[Config], Backend],
        config: Config,
        script: Callable[..., object] | None,
    ):
        self._factory = factory
        self._config = config
        self._script = script
        self._drives_tool_loop = False
        self.calls: list[tuple[int, int]] = []

        @tool
        def add(a: int, b: int) -> str:
            """Add two integers."""
            self.calls.append((a, b))
            return str(a + b)

        self._add = add

    def conversation(self, policy: Policy | None = None) -> Conversation:
        backend = self._factory(self._config)
        self._drives_tool_loop = backend.drives_tool_loop
        self.calls.clear()
        return Conversation(self._config, backend=backend, tools=[self._add], policy=policy)

    def queue(self, *steps: Step) -> None:
        if self._script is not None:
            self._script(*steps)

    def add_call(self, a: int, b: int) -> Reply:
        """The model calling ``add``, named as the model sees it: a backend that runs the tool
        loop reaches the library's tools through its in-process MCP server."""
        name = f"mcp__{OWN_MCP_SERVER}__add" if self._drives_tool_loop else "add"
        return tool_call(name, {"a": a, "b": b})


# --------------------------------------------------------------------------- helpers


async def _collect(events: AsyncIterator[Event]) -> list[Event]:
    with anyio.fail_after(_TURN_TIMEOUT_S):
        return [event async for event in events]


async def _answering(conv: Conversation, prompt: str, decision: Decision) -> list[Event]:
    """One turn, answering every PermissionRequest with ``decision``."""
    events: list[Event] = []
    with anyio.fail_after(_TURN_TIMEOUT_S):
        async for event in conv.send(prompt):
            events.append(event)
            if isinstance(event, PermissionRequest):
                conv.respond(event, decision)
    return events


def _kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events if not isinstance(e, _INCIDENTAL)]


def _expect(events: list[Event], *kinds: str) -> None:
    assert _kinds(events) == list(kinds), f"events {_kinds(events)}, expected {list(kinds)}"


def _of(events: list[Event], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def _one(events: list[Event], kind: type[Any]) -> Any:
    found = _of(events, kind)
    assert len(found) == 1, f"expected one {kind.__name__}, got {found}"
    return found[0]


def _result(events: list[Event]) -> Result:
    result = events[-1] if events else None
    assert isinstance(result, Result), f"the turn did not end with a Result: {_kinds(events)}"
    return result


def _ok(events: list[Event], text: str) -> None:
    result = _result(events)
    assert not result.is_error, f"the turn failed: {result.error}"
    assert result.text == text, f"Result.text {result.text!r}, expected {text!r}"


# --------------------------------------------------------------------------- scenarios


async def _multi_turn(suite: _Suite) -> None:
    suite.queue(reply("first answer"), reply("second answer"))
    async with suite.conversation() as conv:
        first = await _collect(conv.send("Say something."))
        second = await _collect(conv.send("Say more."))
    _expect(first, "SessionStarted", "Text", "Result")
    _expect(second, "Text", "Result")
    _ok(first, "first answer")
    _ok(second, "second answer")
    ids = {_result(first).session_id, _result(second).session_id, conv.session_id}
    assert len(ids) == 1, f"one session expected, got ids {ids}"
    assert None not in ids, "the session has no id"


async def _tool_loop(suite: _Suite) -> None:
    async with suite.conversation(policy=allow_list(["add"])) as conv:
        suite.queue(suite.add_call(2, 3), reply("The sum is 5."))
        events = await _collect(conv.send("What is 2+3?"))
    _expect(
        events, "SessionStarted", "ToolUse", "PermissionDecision", "ToolResult", "Text", "Result"
    )
    use = _one(events, ToolUse)
    assert (use.name, use.input) == ("add", {"a": 2, "b": 3}), use
    decision = _one(events, PermissionDecision)
    assert (decision.behavior, decision.decided_by) == ("allow", "policy"), decision
    result = _one(events, ToolResult)
    assert (result.name, result.content, result.is_error) == ("add", "5", False), result
    assert suite.calls == [(2, 3)], f"the tool ran with {suite.calls}"
    _ok(events, "The sum is 5.")


async def _permission(suite: _Suite) -> None:
    async with suite.conversation(policy=callback(lambda name, input: Ask())) as conv:
        suite.queue(suite.add_call(1, 1), reply("allowed"), suite.add_call(2, 2), reply("denied"))
        allowed = await _answering(conv, "Add 1 and 1.", Allow())
        denied = await _answering(conv, "Add 2 and 2.", Deny("not now"))
    asked = ("ToolUse", "PermissionRequest", "PermissionDecision", "ToolResult", "Text", "Result")
    _expect(allowed, "SessionStarted", *asked)
    _expect(denied, *asked)
    for events, behavior in ((allowed, "allow"), (denied, "deny")):
        decision = _one(events, PermissionDecision)
        assert (decision.behavior, decision.decided_by) == (behavior, "user"), decision
    assert not _one(allowed, ToolResult).is_error
    assert _one(denied, ToolResult).is_error
    assert _one(denied, PermissionDecision).message == "not now"
    assert suite.calls == [(1, 1)], f"the tool ran with {suite.calls}"
    _ok(allowed, "allowed")
    _ok(denied, "denied")


async def _interrupt(suite: _Suite) -> None:
    slow = reply("a partial answer that goes on").with_fault(stall(60, after_events=3))
    suite.queue(slow, reply("after the interrupt"))
    async with suite.conversation() as conv:
        events: list[Event] = []
        with anyio.fail_after(_TURN_TIMEOUT_S):
            async for event in conv.send("Tell me a long story."):
                events.append(event)
                if isinstance(event, TextDelta) and len(_of(events, TextDelta)) == 1:
                    await conv.interrupt()
        after = await _collect(conv.send("Still there?"))
    result = _result(events)
    assert result.is_error, "the interrupted turn ended without an error Result"
    assert result.error is not None, result
    assert result.error.kind == "interrupted", result.error
    _ok(after, "after the interrupt")


async def _unknown_content(suite: _Suite) -> None:
    novel = UnknownBlock({"type": "future_block", "detail": 1})
    suite.queue(message([novel, TextBlock("still fine")], stop_reason="end_turn"))
    async with suite.conversation() as conv:
        events = await _collect(conv.send("Show me something new."))
    unknown = [e for e in _of(events, Unknown) if e.raw.get("type") == "future_block"]
    assert unknown, f"the unknown block was dropped: {events}"
    _ok(events, "still fine")


async def _api_error(suite: _Suite) -> None:
    suite.queue(error(413), reply("recovered"))
    async with suite.conversation() as conv:
        turn = conv.send("Send something huge.")
        events = await _collect(turn)
        after = await _collect(conv.send("Try again."))
    result = _result(events)
    assert result.is_error, f"no error Result: {result}"
    assert result.error is not None, result
    assert result.error.status_code == 413, result.error
    try:
        turn.raise_for_error()
    except RequestTooLargeError:
        pass
    else:
        raise AssertionError("raise_for_error() did not raise RequestTooLargeError")
    _ok(after, "recovered")


_SCENARIOS: tuple[Callable[[_Suite], Awaitable[None]], ...] = (
    _multi_turn,
    _tool_loop,
    _permission,
    _interrupt,
    _unknown_content,
    _api_error,
)
