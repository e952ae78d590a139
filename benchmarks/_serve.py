"""A FakeAnthropicServer in its own process, so the client's CPU time is the client's alone.

``python -m benchmarks._serve --latency 0.05 --blocks 20`` prints the base URL on its first line,
serves every ``POST /v1/messages`` with the same reply (``blocks`` text blocks of 40 characters,
one SSE event every ``latency`` seconds), and exits when its standard input closes, printing the
CPU seconds it used. With ``--read PATH`` a prompt starting "turn " is answered with a call of
the Read tool on PATH instead, and the tool's result with a short acknowledgement.
"""

from __future__ import annotations

import argparse
import sys
import time

from claude_unified import TextBlock
from claude_unified.testing import FakeAnthropicServer, tool_call
from claude_unified.testing._script import Reply
from claude_unified.testing._server import _HTTPServer

from ._data import prose


def reply(blocks: int) -> Reply:
    return Reply(tuple(TextBlock(prose(40, seed=i)) for i in range(blocks)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--read", help="answer each turn with a Read of this file")
    args = parser.parse_args()
    step = reply(args.blocks)
    # hundreds of clients connect at once: a short accept backlog would reset some of them
    _HTTPServer.request_queue_size = 2048
    with FakeAnthropicServer(latency=args.latency, max_recorded=10) as server:
        if args.read:  # the follow-up (the tool's result) gets the fake's acknowledgement
            server.on("turn ", tool_call("Read", {"file_path": args.read}, text="Reading."))
        else:
            server.on(lambda request: True, step)
        print(server.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin
    print(f"{time.process_time():.3f}", flush=True)


if __name__ == "__main__":
    main()
