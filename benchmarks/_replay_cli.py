"""A stand-in for the CLI that replays one recorded turn of the real one, at its recorded pace.

``python -m benchmarks._replay_cli --transcript FILE [CLI ARGS...]`` speaks stream-json on its
standard streams: it answers every control request with an empty success, and answers every user
line with the recorded stdout of one real turn, each read of the recording written on its own at
its recorded offset from the user line. ``--version`` prints the version of the CLI it was
recorded from. Its other arguments (the CLI's flags) are ignored.

Every client then gets the very same bytes at the very same times, so what one client adds to a
turn over another is measured without the real CLI's differences from process to process (its
turns vary by tens of percent between processes, far more than any client adds). It sleeps
between writes, so it leaves the machine's cores to the client being measured.

The transcript file is JSON: ``{"version": "2.1.330", "reads": [[seconds, text], ...]}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import BinaryIO

import msgspec


class Transcript(msgspec.Struct):
    version: str
    reads: list[tuple[float, str]]


class _Incoming(msgspec.Struct):
    type: str = ""
    request_id: str = ""


_incoming = msgspec.json.Decoder(_Incoming)
_encoder = msgspec.json.Encoder()


def _answer(request_id: str) -> bytes:
    response = {"subtype": "success", "request_id": request_id, "response": {}}
    return _encoder.encode({"type": "control_response", "response": response}) + b"\n"


def _replay(out: BinaryIO, reads: list[tuple[float, bytes]]) -> None:
    start = time.perf_counter()
    for offset, data in reads:
        wait = start + offset - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        out.write(data)
        out.flush()


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
    reads = [(offset, text.encode()) for offset, text in transcript.reads]
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        incoming = _incoming.decode(line)
        if incoming.type == "control_request":
            out.write(_answer(incoming.request_id))
            out.flush()
        elif incoming.type == "user":
            _replay(out, reads)


if __name__ == "__main__":
    main()
