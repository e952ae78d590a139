"""Worker for row 6: the same multi-turn conversation through each library and through raw pipes,
all against the real CLI and one fake server.

It runs with an environment built from nothing (and, where the machine allows, in a network
namespace with only loopback), so no library can see the caller's keys or config, or reach a
network. Every contender's session is open at the same time and the turns are interleaved (turn 2
of each contender, then turn 3 of each, ...), so a slow moment of the machine hits all of them
alike. Prints one JSON object: seconds per turn by contender, the first turn of a session counted
from the start of the session, process start included.

``python -m benchmarks._cli_turns --cli PATH --root DIR --sessions 3 --turns 6``

With ``--tool-turns`` every turn is one call of the CLI's Read tool, and the contenders measure
what judging each call costs: the CLI alone over raw pipes, without a hook (it runs a read-only
call without asking anyone) and with the one PreToolUse hook for every tool that the library
registers, answered "allow"; and ours, whose policy allows Read.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

import anyio
import msgspec

from claude_unified import Config, Conversation, Policy, Result, ToolResult, allow_list
from claude_unified._wire import OutgoingUserLine, OutgoingUserMessage
from claude_unified.backends._discovery import cli_version
from claude_unified.backends._protocol import SessionSpec
from claude_unified.backends.cli import build_argv
from claude_unified.testing._cli_env import isolated_cli_env


class _Envelope(msgspec.Struct):
    type: str = ""
    request_id: str = ""
    request: dict[str, Any] = msgspec.field(default_factory=dict)
    response: dict[str, Any] = msgspec.field(default_factory=dict)


_envelope = msgspec.json.Decoder(_Envelope)
_HOOK = "hook_0"
_encoder = msgspec.json.Encoder()


class Session(Protocol):
    async def start(self) -> None: ...
    async def turn(self, prompt: str) -> None: ...
    async def stop(self) -> None: ...


# --------------------------------------------------------------------------- contenders


class RawPipes:
    """The CLI alone: our argv and the very user line ours sends (so the CLI does the same
    work), one per turn, read until ``result``. Control requests (a tool call the CLI asks
    about) are answered "allow"; with ``hook`` it first registers, as the library does, one
    PreToolUse hook for every tool, and answers each of its calls "allow"."""

    hook = False

    def __init__(self, cli: str, cwd: str) -> None:
        self._argv = build_argv(cli, SessionSpec(), Config())
        self._cwd = cwd
        self._buffer = b""
        self.tool_results = 0  # tool results the CLI reported: the tool really ran
        self._sent = 0.0
        self.reads: list[tuple[float, bytes]] | None = None  # to record: each read, timed

    async def start(self) -> None:
        self._proc = await anyio.open_process(self._argv, cwd=self._cwd, stderr=subprocess.DEVNULL)
        if self.hook:
            hooks = {"PreToolUse": [{"matcher": None, "hookCallbackIds": [_HOOK], "timeout": 60}]}
            request = {"subtype": "initialize", "hooks": hooks}
            await self._send({"type": "control_request", "request_id": "init", "request": request})
            await self._read_until(lambda line: line.type == "control_response")

    async def turn(self, prompt: str) -> None:
        message = OutgoingUserMessage("user", prompt)
        line = OutgoingUserLine(message, uuid=str(uuid.uuid4()))
        self._sent = time.perf_counter()
        await self._send(line)
        await self._read_until(lambda line: line.type == "result")

    async def _send(self, value: object) -> None:
        assert self._proc.stdin is not None
        await self._proc.stdin.send(_encoder.encode(value) + b"\n")

    async def _read_until(self, done: Any) -> None:
        stdout = self._proc.stdout
        assert stdout is not None
        while True:
            chunk = await stdout.receive(1 << 20)
            if self.reads is not None:
                self.reads.append((time.perf_counter() - self._sent, chunk))
            self._buffer += chunk
            *lines, self._buffer = self._buffer.split(b"\n")
            for raw in filter(None, lines):
                line = _envelope.decode(raw)
                if line.type == "control_request":
                    await self._answer(line)
                elif line.type == "user" and b'"tool_result"' in raw:
                    self.tool_results += 1
                if done(line):
                    return

    async def _answer(self, line: _Envelope) -> None:
        request = line.request
        if request.get("subtype") == "hook_callback":
            allow = {"hookEventName": "PreToolUse", "permissionDecision": "allow"}
            answer: dict[str, Any] = {"hookSpecificOutput": allow}
        elif request.get("subtype") == "can_use_tool":
            answer = {"behavior": "allow", "updatedInput": request.get("input", {})}
        else:
            answer = {}
        response = {"subtype": "success", "request_id": line.request_id, "response": answer}
        await self._send({"type": "control_response", "response": response})

    async def stop(self) -> None:
        assert self._proc.stdin is not None
        await self._proc.stdin.aclose()
        await self._proc.wait()
        await self._proc.aclose()


class RawPipesWithHook(RawPipes):
    hook = True


class Ours:
    policy: Policy | None = None

    def __init__(self, cli: str, cwd: str) -> None:
        config = Config(backend="cli", cli_path=cli, cwd=cwd)
        self._conv = Conversation(config, policy=self.policy)
        self.tool_results = 0

    async def start(self) -> None:
        await self._conv.open()

    async def turn(self, prompt: str) -> None:
        async for event in self._conv.send(prompt):
            if isinstance(event, Result) and event.is_error:
                raise RuntimeError(f"turn failed: {event.error}")
            if isinstance(event, ToolResult) and not event.is_error:
                self.tool_results += 1

    async def stop(self) -> None:
        await self._conv.aclose()


class AgentSdk:
    def __init__(self, cli: str, cwd: str) -> None:
        from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient, ResultMessage

        self._result = ResultMessage
        options = ClaudeAgentOptions(cli_path=cli, cwd=cwd, include_partial_messages=True)
        self._client = ClaudeSDKClient(options=options)

    async def start(self) -> None:
        await self._client.connect()

    async def turn(self, prompt: str) -> None:
        await self._client.query(prompt)
        async for message in self._client.receive_response():
            if isinstance(message, self._result) and message.is_error:
                raise RuntimeError(f"turn failed: {message}")

    async def stop(self) -> None:
        await self._client.disconnect()


class ClaudeStream:
    def __init__(self, cli: str, cwd: str) -> None:
        from claudestream import AsyncSession, SessionConfig

        config = SessionConfig(model="claude-opus-5-5", profile="default", binary=cli, cwd=cwd)
        self._session = AsyncSession(config)

    async def start(self) -> None:
        await self._session.__aenter__()

    async def turn(self, prompt: str) -> None:
        async for _event in self._session.send(prompt):
            pass

    async def stop(self) -> None:
        await self._session.close()


class OursReading(Ours):
    policy = allow_list(["Read"])


TOOL_CONTENDERS: dict[str, Any] = {
    "raw": RawPipes,
    "raw_hook": RawPipesWithHook,
    "ours": OursReading,
}
CONTENDERS: dict[str, Any] = {
    "raw": RawPipes,
    "ours": Ours,
    "claude_agent_sdk": AgentSdk,
    "claudestream": ClaudeStream,
}
REPLAY_CONTENDERS: dict[str, Any] = {"raw": RawPipes, "ours": Ours}
REPLAY_TOOL_CONTENDERS: dict[str, Any] = {"raw_hook": RawPipesWithHook, "ours": OursReading}
_REPLAY_CLI = Path(__file__).with_name("_replay_cli.py")
_RECORDED_TURNS = 5


async def _record(cli: str, cwd: str, root: Path, maker: type[RawPipes]) -> tuple[str, float]:
    """Record turns of the real CLI over raw pipes (``maker``) and keep the one of median
    length as a transcript; a program that replays it, standing in for the CLI, and the turn's
    length."""
    session = maker(cli, cwd)
    await session.start()
    turns: list[list[tuple[float, bytes]]] = []
    try:
        await session.turn("turn 1")
        for number in range(_RECORDED_TURNS):
            session.reads = []
            await session.turn(f"turn {number + 2}")
            turns.append(session.reads)
    finally:
        await session.stop()
    turns.sort(key=lambda reads: reads[-1][0])
    reads = turns[len(turns) // 2]
    version = ".".join(map(str, await cli_version(cli)))
    transcript = root / "turn.json"
    body = {"version": version, "reads": [(t, chunk.decode()) for t, chunk in reads]}
    transcript.write_bytes(_encoder.encode(body))
    program = root / "replay-cli"
    program.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{_REPLAY_CLI}" --transcript="{transcript}" "$@"\n'
    )
    program.chmod(0o755)
    return str(program), reads[-1][0]


# --------------------------------------------------------------------------- main


def _start_server(read: Path | None) -> tuple[subprocess.Popen[str], str]:
    tool = [f"--read={read}"] if read is not None else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._serve", "--blocks=3", *tool],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


async def _session(
    number: int,
    turns: int,
    makers: dict[str, Any],
    cwd: str,
    cli: str,
    failed: dict[str, str],
    cpu_times: dict[int, dict[str, list[float]]],
    tool_ran: dict[str, int],
) -> dict[str, list[float]]:
    """One round: every contender's session open at once, turns interleaved. Wall seconds per
    turn by contender; this process's CPU seconds per turn go to ``cpu_times[number]``."""
    names = [name for name in makers if name not in failed]
    sessions: dict[str, Session] = {name: makers[name](cli, cwd) for name in names}
    out: dict[str, list[float]] = {name: [] for name in names}
    cpu_out = cpu_times.setdefault(number, {name: [] for name in names})
    try:
        for turn in range(turns):
            shift = (number + turn) % len(names)
            for name in names[shift:] + names[:shift]:
                if name in failed:
                    continue
                prompt = f"turn {turn + 1} of session {number + 1}"
                start, cpu = time.perf_counter(), time.process_time()
                try:
                    if turn == 0:
                        await sessions[name].start()
                    await sessions[name].turn(prompt)
                except Exception as exc:  # reported; the others still count
                    failed[name] = f"failed: {type(exc).__name__}: {exc}"[:300]
                    continue
                out[name].append(time.perf_counter() - start)
                cpu_out[name].append(time.process_time() - cpu)
    finally:
        for name, session in sessions.items():
            ran = getattr(session, "tool_results", 0)
            tool_ran[name] = tool_ran.get(name, 0) + ran
            try:
                await session.stop()
            except Exception as exc:  # a peer failing to stop must not hide results
                print(f"stopping a session failed: {exc!r}", file=sys.stderr)
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(args.root)
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    read = work / "notes.txt" if args.tool_turns else None
    if read is not None:
        read.write_text("Notes to read on every turn.\n")
    server, url = _start_server(read)
    try:
        env = isolated_cli_env(url, root / "cli")
        os.environ.clear()  # every library inherits exactly the isolated environment
        os.environ.update(env)
        # the CLI's own config folder, as its first run leaves it (claudestream's "default"
        # profile is this folder and must exist before a session is made)
        (Path(env["HOME"]) / ".claude").mkdir(exist_ok=True)
        cli, recorded = args.cli, None
        contenders = TOOL_CONTENDERS if args.tool_turns else CONTENDERS
        if args.replay:
            recorder = RawPipesWithHook if args.tool_turns else RawPipes
            cli, recorded = await _record(args.cli, str(work), root, recorder)
            contenders = REPLAY_TOOL_CONTENDERS if args.tool_turns else REPLAY_CONTENDERS
        makers: dict[str, Any] = {}
        skipped: dict[str, str] = {}
        for name, maker in contenders.items():
            try:
                maker(cli, str(work))  # peers that are not installed fail here
                makers[name] = maker
            except ImportError as exc:
                skipped[name] = f"not installed ({exc})"
            except Exception as exc:  # reported; the others still count
                skipped[name] = f"cannot start: {type(exc).__name__}: {exc}"[:300]
        times: dict[str, list[list[float]]] = {name: [] for name in makers}
        cpu: dict[str, list[list[float]]] = {name: [] for name in makers}
        cpu_times: dict[int, dict[str, list[float]]] = {}
        tool_ran: dict[str, int] = {}
        for number in range(args.sessions):
            done = await _session(
                number, args.turns, makers, str(work), cli, skipped, cpu_times, tool_ran
            )
            for name, values in done.items():
                if name not in skipped:
                    times[name].append(values)
                    cpu[name].append(cpu_times[number][name])
        if read is not None:  # every turn's Read must really have run, or nothing was measured
            for name, count in tool_ran.items():
                if name not in skipped and count < args.sessions * args.turns:
                    skipped[name] = f"failed: the Read ran {count} times, not on every turn"
        return {
            "times": times,
            "cpu": cpu,
            "skipped": skipped,
            "offline": args.offline,
            "recorded_s": recorded,
            "recorded_of": _RECORDED_TURNS,
        }
    finally:
        server.communicate("", timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--cli", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--offline", default="loopback-only network namespace")
    parser.add_argument("--tool-turns", action="store_true", help="one Read call per turn")
    parser.add_argument(
        "--replay", action="store_true", help="replay one recorded turn of the CLI instead"
    )
    result = anyio.run(main, parser.parse_args())
    print(json.dumps(result))
