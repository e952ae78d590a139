"""A scripted stand-in for the ``claude`` executable, and checks for what a test leaves behind.

``StubCli`` writes a small Python program named ``claude`` that speaks just enough stream-json
(``--version``, ``initialize``, ``interrupt``, one reply per user line) and acts out the faults a
test scripts for each turn: chosen lines, silence, sleeps, crashes, helper processes. Everything
it reads from stdin is appended to a log, so a test can check what the library answered.

Actions of a turn (a list of dicts, run in order when the turn's user line arrives):

- ``{"line": {...}}`` print one JSON line; ``{"raw": "text"}`` print text as it is
- ``{"stream": ["He", "llo"], "stop": bool}`` a streamed assistant message (stopped or cut off)
- ``{"result": "text"}`` a successful ``result`` line (the turn's end)
- ``{"sleep": s}`` wait, still answering control requests; ``{"hang": true}`` stop for good
- ``{"await": "request_id"}`` wait for our answer to a control request the stub sent
- ``{"exit": code}``; ``{"kill": 9}`` the stub signals itself
- ``{"spawn": ["sleep", "300"], "setsid": bool}`` start a helper, its pid written to ``pids``

``on_interrupt``: ``"abort"`` (answer and end the running turn with an error result),
``"ack"`` (answer, carry on with the turn) or ``"silent"`` (never answer).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from claude_unified import Config

_PROGRAM = r"""
import json, os, select, signal, subprocess, sys, time
from collections import deque

if "--version" in sys.argv:
    print("2.1.330 (Claude Code)")
    sys.exit(0)
script = json.load(open(os.environ["STUB_SCRIPT"]))
log = open(os.environ["STUB_LOG"], "a")
pids = open(os.environ["STUB_PIDS"], "a")
turns = deque(script.get("turns", []))
on_interrupt = script.get("on_interrupt", "abort")
if script.get("ignore_term"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def out(obj):
    sys.stdout.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")
    sys.stdout.flush()


def result(text, subtype="success", is_error=False):
    return {"type": "result", "subtype": subtype, "is_error": is_error, "result": text,
            "num_turns": 1, "duration_ms": 5, "total_cost_usd": 0.0, "session_id": "stub-session",
            "usage": {"input_tokens": 1, "output_tokens": 1}}


def stream(chunks, stop, n=[0]):
    n[0] += 1
    mid = "msg_stub_%d" % n[0]
    def ev(e):
        out({"type": "stream_event", "event": e, "session_id": "stub-session"})
    ev({"type": "message_start", "message": {"id": mid, "type": "message", "role": "assistant",
        "model": "claude-stub", "content": [], "usage": {"input_tokens": 1, "output_tokens": 0}}})
    ev({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    for c in chunks:
        ev({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": c}})
    if stop:
        ev({"type": "content_block_stop", "index": 0})
        ev({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 1}})
        ev({"type": "message_stop"})


actions = deque()
waiting = deque()
answered = set()
wake = 0.0
buf = b""


def start_next():
    global actions
    if not actions and waiting and time.monotonic() >= wake:  # one turn at a time
        prompt = waiting.popleft()
        actions = deque(turns.popleft() if turns else [{"result": "ECHO: " + prompt}])


def handle(line):
    global actions, wake
    log.write(line.decode() + "\n")
    log.flush()
    msg = json.loads(line)
    kind = msg.get("type")
    if kind == "control_request":
        sub = msg["request"].get("subtype")
        rid = msg["request_id"]
        ok = {"type": "control_response",
              "response": {"subtype": "success", "request_id": rid, "response": {}}}
        if sub == "initialize":
            if script.get("init", "answer") == "answer":
                out(ok)
        elif sub == "interrupt":
            if on_interrupt != "silent":
                out(ok)
            if on_interrupt == "abort" and (actions or time.monotonic() < wake):
                actions.clear()
                wake = 0.0
                out(result("interrupted", "error_during_execution", True))
        else:
            out(ok)
    elif kind == "control_response":
        answered.add(msg["response"].get("request_id"))
    elif kind == "user":
        content = msg["message"]["content"]
        waiting.append(content if isinstance(content, str) else json.dumps(content))


def run():
    global wake
    while actions and time.monotonic() >= wake:
        a = actions[0]
        if "await" in a and a["await"] not in answered:
            wake = time.monotonic() + 0.02
            return
        actions.popleft()
        if "line" in a:
            out(a["line"])
        elif "raw" in a:
            out(a["raw"])
        elif "stream" in a:
            stream(a["stream"], a.get("stop", True))
        elif "result" in a:
            out(result(a["result"]))
        elif "sleep" in a:
            wake = time.monotonic() + a["sleep"]
        elif "hang" in a:
            while True:
                time.sleep(3600)
        elif "exit" in a:
            sys.exit(a["exit"])
        elif "kill" in a:
            os.kill(os.getpid(), a["kill"])
        elif "spawn" in a:
            child = subprocess.Popen(a["spawn"], start_new_session=a.get("setsid", False),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
            pids.write("%d\n" % child.pid)
            pids.flush()
    start_next()


while True:
    timeout = max(0.0, wake - time.monotonic()) if actions or waiting else None
    ready, _, _ = select.select([0], [], [], timeout)
    if ready:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            sys.exit(0)
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                handle(line)
        start_next()
    run()
"""


class StubCli:
    """A stand-in ``claude`` in ``root`` acting out ``turns`` (see the module docstring)."""

    def __init__(self, root: Path, turns: Sequence[list[dict[str, Any]]] = (), **script: Any):
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.path = root / "claude"
        self.path.write_text(f"#!{sys.executable}\n{_PROGRAM}")
        self.path.chmod(0o755)
        self.log = root / "stdin.jsonl"
        self.pids_file = root / "pids"
        self.script = root / "script.json"
        self.script.write_text(json.dumps({"turns": list(turns), **script}))
        for f in (self.log, self.pids_file):
            f.touch()

    def config(self, **overrides: Any) -> Config:
        env = {
            "STUB_SCRIPT": str(self.script),
            "STUB_LOG": str(self.log),
            "STUB_PIDS": str(self.pids_file),
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",  # nothing listens: the stub needs no API
        }
        values: dict[str, Any] = {
            "backend": "cli",
            "cli_path": str(self.path),
            "env": env,
            "inherit_env": False,
            "cwd": str(self.root),
        }
        values.update(overrides)
        return Config(**values)

    def received(self) -> list[dict[str, Any]]:
        """Every line the library wrote to the stub's stdin, in order."""
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def answer_to(self, request_id: str) -> dict[str, Any]:
        """Our ``control_response`` body for the stub's request ``request_id``."""
        for line in self.received():
            response = line.get("response", {})
            if line.get("type") == "control_response" and response.get("request_id") == request_id:
                return dict(response)
        raise AssertionError(f"no answer to {request_id} in {self.received()}")

    def helper_pids(self) -> list[int]:
        return [int(p) for p in self.pids_file.read_text().split()]


# --------------------------------------------------------------------------- leftovers


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone only once reaped: it is alive here)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def children() -> set[int]:
    """This process's live or unreaped children (anything the library forgot counts)."""
    found = set()
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == me:
            found.add(int(entry.name))
    return found


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


class Leftovers:
    """Snapshot of child processes and fds; :meth:`check` asserts they are back to it.

    A helper thread may still be closing its pipe when a conversation's ``aclose`` returns, so
    the check waits (boundedly) for things to settle before it fails.
    """

    def __init__(self) -> None:
        self.children = children()
        self.fds = open_fds()

    async def check(self, *extra_pids: int) -> None:
        for _ in range(100):
            new_children = children() - self.children
            new_fds = open_fds() - self.fds
            running = [p for p in extra_pids if alive(p)]
            if not (new_children or new_fds or running):
                return
            await anyio.sleep(0.05)
        raise AssertionError(
            f"left behind: children {sorted(new_children)}, fds {_targets(new_fds)}, "
            f"helpers {running}"
        )


def _targets(fds: set[int]) -> dict[int, str]:
    found = {}
    for fd in sorted(fds):
        try:
            found[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            found[fd] = "?"
    return found
