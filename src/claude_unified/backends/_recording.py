"""Recording backend sessions to JSON lines, for ``ReplayBackend`` to play back.

The file holds one object per line. Each ``open()`` writes a header, ``{"backend": "cli",
"drives_tool_loop": true, "default_model": null, "format": 1}``; every exchange then writes
``{"exchange": n, "frame": <kind>, "value": <value>}`` lines, numbered on from the file's last
exchange:

- ``Exchange``: the request's new user content (``{"prompt": …}``), checked on replay;
- one line per frame, ``<kind>`` being the frame's type name (``StreamEventLine``,
  ``MessageStartEvent`` …); ``PermissionQuery``, ``ToolInvocation`` and ``HookQuery`` keep
  their data only;
- ``PermissionAnswer`` / ``ToolOutcome`` / ``HookAnswer``: the core's answer to one of those,
  by tool_use_id (for a hook, ``<callback id>#<n-th hook query of the exchange>``);
- ``Error``: a ``ClaudeError`` the exchange raised.

Secrets and machine paths are scrubbed from every line (see ``_scrub``). Streamed deltas of a
block are held until the block's next frame arrives and scrubbed together, so that a secret or
path split across two of them is found too. Record one conversation at a time per file:
concurrent writers would interleave their exchanges.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

import msgspec

from .. import _exceptions
from .. import _wire as w
from .._events import ContentBlock, JsonObject
from .._exceptions import ClaudeError
from ._protocol import (
    Backend,
    Exchange,
    Frame,
    HookQuery,
    PermissionQuery,
    SessionSpec,
    ToolInvocation,
    closing,
)
from ._scrub import Scrubber

__all__ = [
    "FORMAT",
    "Answer",
    "Entry",
    "ErrorRecord",
    "Header",
    "HookRequest",
    "Line",
    "RecordingBackend",
    "RequestRecord",
    "ToolRequest",
    "error_record",
    "read_lines",
    "rebuild_error",
]

FORMAT = 1
_T = TypeVar("_T")


class Header(msgspec.Struct, frozen=True, kw_only=True):
    """What a replay needs to stand in for the recorded backend."""

    backend: str
    drives_tool_loop: bool
    default_model: str | None = None
    format: int = FORMAT


class Entry(msgspec.Struct, frozen=True):
    exchange: int
    frame: str
    value: Any


class RequestRecord(msgspec.Struct, frozen=True):
    prompt: str | list[ContentBlock]


class ToolRequest(msgspec.Struct, frozen=True):
    """The data of a ``PermissionQuery`` or ``ToolInvocation`` (its ``reply`` is not data)."""

    tool_use_id: str
    name: str
    input: JsonObject


class HookRequest(msgspec.Struct, frozen=True):
    """The data of a ``HookQuery``; ``key`` names its answer."""

    key: str
    callback_id: str
    input: JsonObject


class Answer(msgspec.Struct, Generic[_T], frozen=True):
    """The core's answer (a ``PermissionAnswer`` or ``ToolOutcome``) to one tool request."""

    tool_use_id: str
    answer: _T


class ErrorRecord(msgspec.Struct, frozen=True):
    """A ``ClaudeError``: its class name, ``args`` and plain-data attributes."""

    type: str
    args: list[Any]
    attrs: dict[str, Any]


_PLAIN = (str, int, float, bool, tuple, list, type(None))


def error_record(exc: ClaudeError) -> ErrorRecord:
    attrs = {k: v for k, v in vars(exc).items() if not k.startswith("_") and isinstance(v, _PLAIN)}
    return ErrorRecord(type(exc).__name__, list(exc.args), attrs)


def rebuild_error(record: ErrorRecord) -> ClaudeError:
    """The exception again, built the way unpickling builds one: the class's ``__init__`` is
    skipped (the error classes take different keyword arguments), ``args`` and attributes are
    set. A class this version does not know becomes a plain ``ClaudeError``."""
    cls = getattr(_exceptions, record.type, None)
    if not (isinstance(cls, type) and issubclass(cls, ClaudeError)):
        cls = ClaudeError
    exc = cls.__new__(cls)
    exc.args = tuple(record.args)
    vars(exc).update(record.attrs)
    return exc


class Line(msgspec.Struct, frozen=True):
    """Any line of a recording, read back: a header has ``backend`` set, an entry ``frame``."""

    exchange: int = 0
    frame: str = ""
    value: msgspec.Raw = msgspec.Raw(b"null")
    backend: str | None = None
    drives_tool_loop: bool = False
    default_model: str | None = None
    format: int = FORMAT


_encoder = msgspec.json.Encoder()
_line_decoder = msgspec.json.Decoder(Line)


def read_lines(path: Path) -> list[Line]:
    """The lines of a recording; a missing file has none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    try:
        return [_line_decoder.decode(raw) for raw in data.splitlines() if raw.strip()]
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"{path} is not a claude_unified recording: {exc}") from exc


class RecordingBackend:
    """Wraps a backend and appends everything it exchanges with the core to ``path``.

    Other attributes (``set_model``, ``pid`` …) are the wrapped backend's. ``secrets`` are
    scrubbed besides the ones found by pattern and in the environment.
    """

    def __init__(
        self,
        inner: Backend,
        path: str | os.PathLike[str],
        *,
        secrets: Iterable[str | None] = (),
    ):
        self.inner = inner
        self.name = inner.name
        self.drives_tool_loop = inner.drives_tool_loop
        self.path = Path(path)
        self._secrets = tuple(secrets)
        self._scrubber: Scrubber | None = None
        self._file: IO[bytes] | None = None
        self._exchange = 0
        self._held: list[tuple[int, Frame, w.ContentBlockDeltaEvent]] = []
        self._hooks_seen = 0  # hook queries of the current exchange

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def open(self, session: SessionSpec) -> None:
        """Open the wrapped backend and start the recording file."""
        await self.inner.open(session)
        self._start(session)

    def _start(self, session: SessionSpec) -> None:
        self._scrubber = Scrubber(session, self._secrets)
        self._exchange = max((line.exchange for line in read_lines(self.path)), default=0)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("ab")
        self._write(
            Header(
                backend=self.name,
                drives_tool_loop=self.drives_tool_loop,
                default_model=getattr(self.inner, "default_model", None),
            )
        )

    async def interrupt(self) -> None:
        """Interrupt the wrapped backend's exchange."""
        await self.inner.interrupt()

    async def aclose(self) -> None:
        """Close the wrapped backend and finish the recording."""
        try:
            await self.inner.aclose()
        finally:
            if self._file is not None:
                self._file.close()
                self._file = None

    def exchange(self, request: Exchange) -> AsyncIterator[Frame]:
        """The wrapped backend's frames, each recorded (scrubbed) as it passes."""
        return self._exchange_frames(request)

    async def _exchange_frames(self, request: Exchange) -> AsyncIterator[Frame]:
        self._exchange += 1
        self._hooks_seen = 0
        number = self._exchange
        self._entry(number, "Exchange", RequestRecord(request.prompt))
        try:
            async with closing(self.inner.exchange(request)) as frames:
                async for frame in frames:
                    yield self._record(number, frame)
        except ClaudeError as exc:
            self._entry(number, "Error", error_record(exc))
            raise
        finally:
            self._release()

    def _record(self, number: int, frame: Frame) -> Frame:
        delta = _streamed_delta(frame)
        if delta is not None:
            self._hold(number, frame, delta)
            return frame
        kind = type(frame).__name__
        if isinstance(frame, PermissionQuery):
            self._entry(number, kind, ToolRequest(frame.tool_use_id, frame.name, frame.input))
            reply = self._answers(number, "PermissionAnswer", frame.tool_use_id, frame.reply)
            return msgspec.structs.replace(frame, reply=reply)
        if isinstance(frame, ToolInvocation):
            self._entry(number, kind, ToolRequest(frame.tool_use_id, frame.name, frame.input))
            outcome = self._answers(number, "ToolOutcome", frame.tool_use_id, frame.reply)
            return msgspec.structs.replace(frame, reply=outcome)
        if isinstance(frame, HookQuery):
            key = f"{frame.callback_id}#{self._hooks_seen}"
            self._hooks_seen += 1
            self._entry(number, kind, HookRequest(key, frame.callback_id, frame.input))
            answer = self._answers(number, "HookAnswer", key, frame.reply)
            return msgspec.structs.replace(frame, reply=answer)
        self._entry(number, kind, frame)
        return frame

    def _answers(
        self, number: int, kind: str, tool_use_id: str, reply: Callable[[_T], Awaitable[None]]
    ) -> Callable[[_T], Awaitable[None]]:
        """``reply``, recording the core's answer first."""

        async def recorded(answer: _T) -> None:
            self._entry(number, kind, Answer(tool_use_id, answer))
            await reply(answer)

        return recorded

    def _entry(self, number: int, kind: str, value: object) -> None:
        self._release()
        self._write(Entry(number, kind, value))

    def _hold(self, number: int, frame: Frame, delta: w.ContentBlockDeltaEvent) -> None:
        """Keep a streamed delta until its block's next frame (see the module docstring)."""
        if self._held and _block(self._held[-1][2]) != _block(delta):
            self._release()
        self._held.append((number, frame, delta))

    def _release(self) -> None:
        """Write the held deltas of one block."""
        held, self._held = self._held, []
        if not held or self._scrubber is None:
            return
        texts = self._scrubber.scrub_chunks([_delta_text(delta) for _, _, delta in held])
        for (number, frame, delta), text in zip(held, texts, strict=True):
            scrubbed = _with_delta_text(frame, delta, text)
            self._write(Entry(number, type(frame).__name__, scrubbed))

    def _write(self, line: msgspec.Struct) -> None:
        if self._file is None or self._scrubber is None:
            raise RuntimeError("RecordingBackend is not open")
        self._file.write(self._scrubber.scrub(_encoder.encode(line)) + b"\n")
        self._file.flush()


_TEXT_FIELD: dict[type[Any], str] = {
    w.TextDeltaBody: "text",
    w.InputJsonDeltaBody: "partial_json",
    w.ThinkingDeltaBody: "thinking",
}


def _streamed_delta(frame: Frame) -> w.ContentBlockDeltaEvent | None:
    """The text, JSON or thinking delta ``frame`` carries (on either transport), if any."""
    event = frame.event if isinstance(frame, w.StreamEventLine) else frame
    if isinstance(event, w.ContentBlockDeltaEvent) and type(event.delta) in _TEXT_FIELD:
        return event
    return None


def _block(delta: w.ContentBlockDeltaEvent) -> tuple[int, type[Any]]:
    return delta.index, type(delta.delta)


def _delta_text(delta: w.ContentBlockDeltaEvent) -> str:
    return str(getattr(delta.delta, _TEXT_FIELD[type(delta.delta)]))


def _with_delta_text(frame: Frame, delta: w.ContentBlockDeltaEvent, text: str) -> Frame:
    body = msgspec.structs.replace(delta.delta, **{_TEXT_FIELD[type(delta.delta)]: text})
    event = msgspec.structs.replace(delta, delta=body)
    if isinstance(frame, w.StreamEventLine):
        return msgspec.structs.replace(frame, event=event)
    return event
