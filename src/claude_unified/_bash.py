"""Bash for the built-in tools: one command, its output bounded, and nothing left running.

The command runs in a session and process group of its own. When it ends, times out or is
cancelled, the group is killed, and so is every process that carries the command's marker in
its environment (found through ``/proc`` on Linux), which catches jobs that left the group with
``setsid``. Elsewhere only the group is killed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
from pathlib import Path

import anyio
import anyio.abc

__all__ = ["run_bash"]

_DRAIN_GRACE_S = 1.0  # how long to wait for output after the command's process group is killed
_MARKER = "CLAUDE_UNIFIED_BASH_JOB"


class _HeadTail:
    """Keeps the first and last bytes of a stream within ``limit`` and counts what fell out."""

    def __init__(self, limit: int):
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        del self.tail[: max(0, len(self.tail) - self.tail_limit)]

    def text(self) -> str:
        head = self.head.decode(errors="replace")
        tail = self.tail.decode(errors="replace")
        cut = self.total - len(self.head) - len(self.tail)
        if cut == 0:
            return (self.head + self.tail).decode(errors="replace")
        return f"{head}\n[output truncated: {cut} of {self.total} bytes cut]\n{tail}"


async def run_bash(
    command: str, cwd: Path, seconds: float, limit: int
) -> tuple[str, int | None, bool]:
    """Run ``command``; return (bounded output, exit code, timed out).

    The command gets its own process group, which is killed when bash exits, when the timeout
    expires or when the caller is cancelled. A job that leaves the group (``setsid``, a daemon)
    is found by a marker in its environment, inherited from the command, and killed too.
    """
    output = _HeadTail(limit)
    marker = f"{_MARKER}={secrets.token_hex(16)}"
    process = await anyio.open_process(
        ["/bin/bash", "-c", command],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, _MARKER: marker.partition("=")[2]},
    )
    try:
        drained = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_drain, process, output, drained)
            with anyio.move_on_after(seconds) as deadline:
                await process.wait()
            _kill_group(process.pid)
            with anyio.move_on_after(_DRAIN_GRACE_S):
                await drained.wait()
            tg.cancel_scope.cancel()
    finally:
        _kill_group(process.pid)
        _kill_marked(marker.encode())
        with anyio.CancelScope(shield=True):
            await process.aclose()
    return output.text(), process.returncode, deadline.cancelled_caught


async def _drain(process: anyio.abc.Process, output: _HeadTail, drained: anyio.Event) -> None:
    assert process.stdout is not None
    async for chunk in process.stdout:
        output.add(chunk)
    drained.set()


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is already gone
        os.killpg(pgid, signal.SIGKILL)


def _kill_marked(marker: bytes) -> None:
    """Kill every process started with ``marker`` in its environment (Linux: ``/proc``).

    ``/proc/PID/environ`` is the environment a process was started with, so a job that cleared
    its own environment afterwards is still found; one started with a fresh environment
    (``env -i``) is not.
    """
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:  # no /proc here: only the process group is killed
        return
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                started_with = fh.read().split(b"\0")
        except OSError:  # gone, or not ours to read
            continue
        if marker in started_with:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
