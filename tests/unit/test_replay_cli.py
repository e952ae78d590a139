"""The benchmarks' stand-in CLI: it replays a recorded turn, waits for the client's answer to
each request the recording makes of it, and sends hook callbacks to the client's own id."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from benchmarks._replay_cli import segments

pytestmark = pytest.mark.anyio

REPLAY = Path(__file__).resolve().parents[2] / "benchmarks" / "_replay_cli.py"
HOOK_CALL = (
    b'{"type":"control_request","request_id":"r1","request":{"subtype":"hook_callback",'
    b'"callback_id":"recorded","input":{}}}\n'
)
RESULT = b'{"type":"result","subtype":"success"}\n'


def test_a_turn_splits_after_each_complete_line_that_asks_the_client() -> None:
    reads = [
        (0.001, b'{"type":"system"}\n'),
        (0.002, HOOK_CALL[:30]),  # the asking line arrives in two reads
        (0.003, HOOK_CALL[30:]),
        (0.010, RESULT),
    ]
    parts = segments(reads)
    assert [[data for _t, data in part] for part in parts] == [
        [b'{"type":"system"}\n', HOOK_CALL[:30], HOOK_CALL[30:]],
        [RESULT],
    ]
    assert parts[1][0][0] == pytest.approx(0.007)  # counted from the moment it asked


async def test_the_replay_waits_for_the_answer_and_addresses_the_clients_hook(
    tmp_path: Path,
) -> None:
    transcript = tmp_path / "turn.json"
    reads = [[0.0, '{"type":"system"}\n'], [0.001, HOOK_CALL.decode()], [0.002, RESULT.decode()]]
    transcript.write_text(json.dumps({"version": "2.1.330", "reads": reads}))
    argv = [sys.executable, str(REPLAY), f"--transcript={transcript}", "-p", "--verbose"]
    async with await anyio.open_process(argv) as proc:
        cli = _Pipes(proc)
        hooks = {"PreToolUse": [{"matcher": None, "hookCallbackIds": ["mine"]}]}
        initialize = {"subtype": "initialize", "hooks": hooks}
        await cli.send({"type": "control_request", "request_id": "i", "request": initialize})
        assert (await cli.line())["response"]["request_id"] == "i"
        await cli.send({"type": "user", "message": {"role": "user", "content": "hi"}})
        assert (await cli.line())["type"] == "system"
        assert (await cli.line())["request"]["callback_id"] == "mine"
        with anyio.move_on_after(0.3) as waited:  # nothing more until the client answers
            await cli.line()
        assert waited.cancelled_caught
        answer = {"subtype": "success", "request_id": "r1", "response": {}}
        await cli.send({"type": "control_response", "response": answer})
        assert (await cli.line())["type"] == "result"
        assert proc.stdin is not None
        await proc.stdin.aclose()
        with anyio.fail_after(10):
            assert await proc.wait() == 0


class _Pipes:
    """JSON lines to and from the replay program."""

    def __init__(self, proc: Process):
        self._proc = proc
        self._buffer = b""

    async def send(self, value: object) -> None:
        assert self._proc.stdin is not None
        await self._proc.stdin.send(json.dumps(value).encode() + b"\n")

    async def line(self) -> Any:
        assert self._proc.stdout is not None
        while b"\n" not in self._buffer:
            with anyio.fail_after(10):
                self._buffer += await self._proc.stdout.receive()
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)
