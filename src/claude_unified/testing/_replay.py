"""ReplayBackend: plays a recording back, exchange by exchange, checking the core's side.

The frames are decoded into the same typed frames the live backend yielded. What the core sends
is checked against the recording: each exchange's new user content, and every answer to a
``PermissionQuery``, ``ToolInvocation`` or ``HookQuery``. A difference raises
``ReplayMismatch`` naming the exchange and the frame.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, get_args

import msgspec

from ..backends._protocol import (
    Exchange,
    Frame,
    HookQuery,
    PermissionQuery,
    SessionSpec,
    ToolInvocation,
)
from ..backends._recording import (
    FORMAT,
    Answer,
    ErrorRecord,
    Header,
    HookRequest,
    Line,
    RequestRecord,
    ToolRequest,
    read_lines,
    rebuild_error,
)
from ..backends._scrub import Scrubber

__all__ = ["ReplayBackend", "ReplayMismatch"]


class ReplayMismatch(AssertionError):
    """The code under test did not do what the recorded session did."""


class _AnswerId(msgspec.Struct, frozen=True):
    tool_use_id: str


_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    cls.__name__: msgspec.json.Decoder(cls)
    for cls in get_args(Frame)
    if cls not in (PermissionQuery, ToolInvocation, HookQuery)
}
_tool_request = msgspec.json.Decoder(ToolRequest)
_hook_request = msgspec.json.Decoder(HookRequest)
_error_record = msgspec.json.Decoder(ErrorRecord)
_answer_id = msgspec.json.Decoder(_AnswerId)
_encoder = msgspec.json.Encoder()
_ANSWER_OF = {
    "PermissionQuery": "PermissionAnswer",
    "ToolInvocation": "ToolOutcome",
    "HookQuery": "HookAnswer",
}
_KINDS = {*_DECODERS, *_ANSWER_OF, *_ANSWER_OF.values(), "Exchange", "Error"}


class ReplayBackend:
    """Replays a recording made with ``Config(record_path=...)`` or ``RecordingBackend``.

    One instance plays the whole file: the n-th exchange any conversation starts gets the n-th
    recorded exchange, so share the instance (``override(backend=replay)``) across the
    conversations of a multi-session recording. ``name``, ``drives_tool_loop`` and
    ``default_model`` are the recorded backend's. ``interrupt()`` does nothing: the recorded
    frames already show what the live interrupt did.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        header, self._exchanges = _load(self.path)
        self.name = header.backend
        self.drives_tool_loop = header.drives_tool_loop
        self.default_model = header.default_model
        self._played = 0
        self._scrubber = Scrubber(SessionSpec())

    @property
    def remaining(self) -> int:
        """Recorded exchanges not played yet."""
        return len(self._exchanges) - self._played

    async def open(self, session: SessionSpec) -> None:
        """Start replaying; nothing is contacted."""
        self._scrubber = Scrubber(session)

    async def interrupt(self) -> None:
        """Stop the exchange being replayed."""
        return

    async def aclose(self) -> None:
        """End the replay."""
        return

    def exchange(self, request: Exchange) -> AsyncIterator[Frame]:
        """The recorded frames of the next exchange.

        Raises ``ReplayMismatch`` when the request differs from the recording."""
        return self._play(request)

    async def _play(self, request: Exchange) -> AsyncIterator[Frame]:
        if self._played >= len(self._exchanges):
            raise ReplayMismatch(
                f"{self.path.name} holds {len(self._exchanges)} exchanges; the code under test "
                f"started another one with {request.prompt!r}"
            )
        entries = self._exchanges[self._played]
        self._played += 1
        number = entries[0].exchange
        expected = {
            (e.frame, _answer_id.decode(e.value).tool_use_id): e.value
            for e in entries
            if e.frame in _ANSWER_OF.values()
        }
        for entry in entries:
            if entry.frame == "Exchange":
                self._check(number, "Exchange", RequestRecord(request.prompt), entry.value)
            elif entry.frame == "Error":
                raise rebuild_error(_error_record.decode(self._restore(entry.value)))
            elif entry.frame == "HookQuery":
                yield self._hook_frame(number, entry, expected)
            elif entry.frame in _ANSWER_OF:
                yield self._tool_frame(number, entry, expected)
            elif entry.frame in _DECODERS:
                yield _DECODERS[entry.frame].decode(self._restore(entry.value))
        if expected:
            kind, tool_use_id = next(iter(expected))
            raise ReplayMismatch(
                f"{self.path.name}, exchange {number}: the recording has a {kind} for "
                f"{tool_use_id} that the code under test never gave"
            )

    def _tool_frame(
        self, number: int, entry: Line, expected: dict[tuple[str, str], msgspec.Raw]
    ) -> PermissionQuery | ToolInvocation:
        data = _tool_request.decode(self._restore(entry.value))
        kind = _ANSWER_OF[entry.frame]

        async def reply(answer: Any) -> None:
            recorded = expected.pop((kind, data.tool_use_id), None)
            if recorded is None:
                raise ReplayMismatch(
                    f"{self.path.name}, exchange {number}: the code under test answered the "
                    f"{entry.frame} for {data.name} ({data.tool_use_id}) with {answer!r}; the "
                    "recording has no answer to it"
                )
            self._check(number, kind, Answer(data.tool_use_id, answer), recorded)

        frame = PermissionQuery if entry.frame == "PermissionQuery" else ToolInvocation
        return frame(data.tool_use_id, data.name, data.input, reply)

    def _hook_frame(
        self, number: int, entry: Line, expected: dict[tuple[str, str], msgspec.Raw]
    ) -> HookQuery:
        data = _hook_request.decode(self._restore(entry.value))

        async def reply(answer: Any) -> None:
            recorded = expected.pop(("HookAnswer", data.key), None)
            if recorded is None:
                raise ReplayMismatch(
                    f"{self.path.name}, exchange {number}: the code under test answered the "
                    f"hook query {data.key} with {answer!r}; the recording has no answer to it"
                )
            self._check(number, "HookAnswer", Answer(data.key, answer), recorded)

        return HookQuery(data.callback_id, data.input, reply)

    def _check(self, number: int, kind: str, live: msgspec.Struct, recorded: msgspec.Raw) -> None:
        sent = self._scrubber.scrub(_encoder.encode(live))
        if sent != bytes(recorded):
            raise ReplayMismatch(
                f"{self.path.name}, exchange {number}: {kind} differs from the recording\n"
                f"  code under test: {sent.decode()}\n"
                f"  recording:       {bytes(recorded).decode()}"
            )

    def _restore(self, raw: msgspec.Raw) -> bytes:
        return self._scrubber.restore(bytes(raw))


def _load(path: Path) -> tuple[Header, list[list[Line]]]:
    """The header and the exchanges (each a list of its entries, in file order)."""
    lines = read_lines(path)
    headers = [
        Header(
            backend=line.backend,
            drives_tool_loop=line.drives_tool_loop,
            default_model=line.default_model,
            format=line.format,
        )
        for line in lines
        if line.backend is not None
    ]
    if not headers:
        raise ValueError(f"{path} has no recording header; record with Config(record_path=...)")
    backends = {(h.backend, h.drives_tool_loop, h.default_model) for h in headers}
    if len(backends) > 1:
        raise ValueError(f"{path} mixes recordings of different backends: {sorted(backends)}")
    if any(h.format != FORMAT for h in headers):
        raise ValueError(f"{path} was written in another recording format (this reads {FORMAT})")
    exchanges: dict[int, list[Line]] = {}
    for line in lines:
        if line.backend is not None:
            continue
        if line.frame not in _KINDS:
            raise ValueError(f"{path}: unknown frame {line.frame!r} in exchange {line.exchange}")
        exchanges.setdefault(line.exchange, []).append(line)
    return headers[0], list(exchanges.values())
