"""In-process backends for tests: scripted (``FakeBackend``) or computed (``FunctionBackend``).

Both render each step to the exact Messages API stream bytes the HTTP fake server would send and
decode them with the library's own decoders, so the real core (normalizer, ToolHost, agent loop,
policies) runs unchanged. No network, no subprocess.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from itertools import count

import anyio

from .._config import Config
from .._events import Message, TextBlock, ToolResultBlock
from .._exceptions import ClaudeError, status_error
from .._wire import decode_api_event
from ..backends._protocol import Exchange, Frame, SessionSpec
from ..backends._retry import server_wait
from ._script import ErrorReply, Reply, Step, render_stream, reply

__all__ = ["FakeBackend", "FunctionBackend", "StepFunction", "fake_backend"]

StepFunction = Callable[[Exchange], "Step | str | Awaitable[Step | str]"]
_FAKE_MODEL = "claude-fake"


class _InProcessBackend:
    """Shared machinery: record requests, render a step, stop on interrupt."""

    name = "fake"
    drives_tool_loop = False
    default_model = _FAKE_MODEL

    def __init__(self) -> None:
        self.requests: list[Exchange] = []
        self.session: SessionSpec | None = None
        self._interrupted = False
        self._ids = count(1)
        self._history = _HistoryChars()

    async def open(self, session: SessionSpec) -> None:
        self.session = session

    async def interrupt(self) -> None:
        self._interrupted = True

    async def aclose(self) -> None:
        return None

    def exchange(self, request: Exchange) -> AsyncIterator[Frame]:
        return self._exchange(request)

    async def _exchange(self, request: Exchange) -> AsyncIterator[Frame]:
        self.requests.append(request)
        self._interrupted = False
        step = await self._next_step(request)
        if isinstance(step, ErrorReply):
            raise status_error(
                step.status,
                step.message,
                error_type=step.error_type,
                request_id=f"req_fake_{next(self._ids)}",
                retry_after=server_wait(dict(step.headers)),
            )
        bodies = render_stream(
            step,
            model=request.model or _FAKE_MODEL,
            input_tokens=max(1, self._history.count(request.history) // 4),
            message_id=f"msg_fake_{next(self._ids)}",
        )
        for body in bodies:
            if self._interrupted:
                return
            yield decode_api_event(body)
            await anyio.lowlevel.checkpoint()

    async def _next_step(self, request: Exchange) -> Step:
        raise NotImplementedError

    @property
    def last_request(self) -> Exchange:
        if not self.requests:
            raise AssertionError("the fake backend has received no request yet")
        return self.requests[-1]


class FakeBackend(_InProcessBackend):
    """Plays scripted steps in order, one per model request.

    ``FakeBackend([reply("Hello"), tool_call("add", {"a": 2, "b": 3}), reply("5")])``; append more
    with ``queue()``; ``requests`` records what the core sent. When the steps run out it raises,
    or with ``echo=True`` replies with the last user message's text.
    """

    def __init__(self, steps: Iterable[Step | str] = (), *, echo: bool = False):
        super().__init__()
        self._steps: deque[Step] = deque(_as_step(s) for s in steps)
        self.echo = echo

    def queue(self, *steps: Step | str) -> FakeBackend:
        """Answer the next exchanges with ``steps`` in order (a string is a text reply).

        Returns the backend, for chaining."""
        self._steps.extend(_as_step(s) for s in steps)
        return self

    @property
    def remaining(self) -> int:
        """How many queued steps have not been used yet."""
        return len(self._steps)

    async def _next_step(self, request: Exchange) -> Step:
        if not self._steps and self.echo:
            return reply(_last_user_text(request))
        if not self._steps:
            raise ClaudeError(
                f"FakeBackend has no scripted step left for request {len(self.requests)} "
                f"(last user message: {_last_user_text(request)!r}); "
                "add one with fake.queue(reply(...))"
            )
        return self._steps.popleft()


def fake_backend(config: Config) -> FakeBackend:
    """``backend="fake"`` in a config (registered as an entry point of the package): a
    ``FakeBackend`` with nothing scripted yet, which echoes each prompt back until steps are
    queued (``claude-unified send --backend fake hi`` prints ``hi``)."""
    return FakeBackend(echo=True)


class FunctionBackend(_InProcessBackend):
    """Computes each response with ``fn(request)`` (sync or async) returning a step or a str."""

    def __init__(self, fn: StepFunction):
        super().__init__()
        self._fn = fn

    async def _next_step(self, request: Exchange) -> Step:
        result = self._fn(request)
        if inspect.isawaitable(result):
            result = await result
        return _as_step(result)


def _as_step(step: Step | str) -> Step:
    if isinstance(step, Reply | ErrorReply):
        return step
    if isinstance(step, str):
        return reply(step)
    raise TypeError(
        f"a fake step must be a reply(...), tool_call(...), error(...) or str, got {step!r}"
    )


def _last_user_text(request: Exchange) -> str:
    for message in reversed(request.history):
        if message.role != "user":
            continue
        if isinstance(message.content, str):
            return message.content
        texts = [b.text for b in message.content if isinstance(b, TextBlock)]
        if texts:
            return "\n".join(texts)
        if any(isinstance(b, ToolResultBlock) for b in message.content):
            return "<tool results>"
    return ""


class _HistoryChars:
    """The characters in a request's history, from which the fake estimates its input tokens.

    A conversation's history grows from one request to the next, so each message is measured
    once: the part already counted is recognised as the same messages (compared in C, by
    identity first) and only what follows it is measured. A history changed anywhere else is
    counted again whole. Measuring it all on every request made a long fake conversation cost
    time in proportion to the square of its length."""

    __slots__ = ("_chars", "_seen")

    def __init__(self) -> None:
        self._seen: tuple[Message, ...] = ()
        self._chars = 0

    def count(self, history: Sequence[Message]) -> int:
        seen = self._seen
        if tuple(history[: len(seen)]) != seen:
            seen, self._chars = (), 0
        self._chars += sum(len(m.text) for m in history[len(seen) :])
        self._seen = tuple(history)
        return self._chars
