"""A stand-in for the CLI that replays one recorded turn of the real one, at its recorded pace.

``python _replay_cli.py --transcript FILE [CLI ARGS...]`` speaks stream-json on its standard
streams. It answers every control request with an empty success, and every user line with the
recorded stdout of one real turn, each read of the recording written on its own at its recorded
offset. A read that asks the client something (a ``control_request``, such as a hook callback) is
followed by a wait for the client's ``control_response``, and the reads after it keep their
recorded offsets from that answer. A recorded hook callback is sent to the callback id the client
registered for ``PreToolUse`` in its ``initialize``. ``--version`` prints the version of the CLI
the turn was recorded from; the CLI's own flags are ignored.

Every client then gets the very same bytes at the very same pace, so what one client adds to a
turn over another is measured without the real CLI's variation from turn to turn (tens of
percent, far more than any client adds). It sleeps between writes, leaving the machine's cores to
the client being measured.

The transcript file is JSON: ``{"version": "2.1.330", "reads": [[seconds, text], ...]}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, BinaryIO

import msgspec

_ASKS = b'"type":"control_request"'


class Transcript(msgspec.Struct):
    version: str
    reads: list[tuple[float, str]]


class _Incoming(msgspec.Struct):
    type: str = ""
    request_id: str = ""
    request: dict[str, Any] = msgspec.field(default_factory=dict)


_incoming = msgspec.json.Decoder(_Incoming)
_encoder = msgspec.json.Encoder()


def segments(reads: list[tuple[float, bytes]]) -> list[list[tuple[float, bytes]]]:
    """The reads split after each one that asks the client something, each part's offsets
    counted from the read that ended the part before (the moment the client was asked)."""
    parts: list[list[tuple[float, bytes]]] = [[]]
    since, asking = 0.0, False
    for offset, data in reads:
        parts[-1].append((offset - since, data))
        at = data.find(_ASKS)
        asking = asking or at >= 0
        if asking and b"\n" in data[max(at, 0) :]:  # the asking line is complete
            parts.append([])
            since, asking = offset, False
    return [part for part in parts if part]


class Replay:
    def __init__(self, transcript: Transcript, out: BinaryIO, into: BinaryIO):
        self._parts = segments([(t, text.encode()) for t, text in transcript.reads])
        self._out, self._in = out, into
        self._callback: bytes | None = None  # the client's PreToolUse callback id

    def serve(self) -> None:
        while line := self._in.readline():
            self._take(line)

    def _take(self, line: bytes) -> str:
        """Handle one line from the client; its type."""
        incoming = _incoming.decode(line)
        if incoming.type == "control_request":
            if incoming.request.get("subtype") == "initialize":
                self._note_hooks(incoming.request.get("hooks") or {})
            response = {"subtype": "success", "request_id": incoming.request_id, "response": {}}
            self._write(_encoder.encode({"type": "control_response", "response": response}) + b"\n")
        elif incoming.type == "user":
            self._turn()
        return incoming.type

    def _note_hooks(self, hooks: dict[str, Any]) -> None:
        for matcher in hooks.get("PreToolUse", []):
            for callback in matcher.get("hookCallbackIds", []):
                self._callback = _encoder.encode(callback)

    def _turn(self) -> None:
        for number, part in enumerate(self._parts):
            if number:  # the part before asked: wait for the answer
                while (line := self._in.readline()) and self._take(line) != "control_response":
                    pass
            start = time.perf_counter()
            for offset, data in part:
                wait = start + offset - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                self._write(self._addressed(data))

    def _addressed(self, data: bytes) -> bytes:
        """``data`` with a recorded hook callback sent to the client's own callback id."""
        if self._callback is None or b'"callback_id":' not in data:
            return data
        head, _, rest = data.partition(b'"callback_id":')
        _old, _, tail = rest[1:].partition(b'"')
        return head + b'"callback_id":' + self._callback + tail

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._out.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transcript", required=True)
    parser.add_argument("--version", action="store_true")
    args, _cli_flags = parser.parse_known_args()
    with open(args.transcript, "rb") as file:
        transcript = msgspec.json.decode(file.read(), type=Transcript)
    if args.version:
        print(f"{transcript.version} (Claude Code)")
        return
    Replay(transcript, sys.stdout.buffer, sys.stdin.buffer).serve()


if __name__ == "__main__":
    main()
