"""Worker for row 6: the same multi-turn conversation through each library and through raw pipes,
all against the real CLI and one fake server. Runs with an environment built from nothing (and,
where the machine allows, in a network namespace with only loopback), so no library can see the
caller's keys or config, or reach a network. Prints one JSON object: seconds per turn by contender
(the first turn of a session counted from the start of the session, process start included).

``python -m benchmarks._cli_turns --cli PATH --root DIR --sessions 3 --turns 6``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import msgspec

from claude_unified import Config, Conversation, Result
from claude_unified.backends._protocol import SessionSpec
from claude_unified.backends.cli import build_argv
from claude_unified.testing._cli_env import isolated_cli_env

Turns = Callable[[list[str]], Awaitable[list[float]]]


class _Envelope(msgspec.Struct):
    type: str = ""


_envelope = msgspec.json.Decoder(_Envelope)


def _start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._serve", "--blocks=3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _clock() -> float:
    return time.perf_counter()


# --------------------------------------------------------------------------- contenders


def raw_pipes(cli: str, cwd: str) -> Turns:
    """The CLI alone: our argv, one stream-json user line per turn, read until ``result``."""
    argv = build_argv(cli, SessionSpec(), Config())
    encoder = msgspec.json.Encoder()

    async def turns(prompts: list[str]) -> list[float]:
        out: list[float] = []
        start = _clock()
        async with await anyio.open_process(argv, cwd=cwd, stderr=subprocess.DEVNULL) as proc:
            assert proc.stdin is not None
            assert proc.stdout is not None
            buffer = b""
            for prompt in prompts:
                line = {"type": "user", "message": {"role": "user", "content": prompt}}
                start = start if not out else _clock()
                await proc.stdin.send(encoder.encode(line) + b"\n")
                done = False
                while not done:
                    buffer += await proc.stdout.receive(1 << 20)
                    *lines, buffer = buffer.split(b"\n")
                    done = any(x and _envelope.decode(x).type == "result" for x in lines)
                out.append(_clock() - start)
            await proc.stdin.aclose()
            await proc.wait()
        return out

    return turns


def ours(cli: str, cwd: str) -> Turns:
    config = Config(backend="cli", cli_path=cli, cwd=cwd)

    async def turns(prompts: list[str]) -> list[float]:
        out: list[float] = []
        start = _clock()
        async with Conversation(config) as conv:
            for prompt in prompts:
                start = start if not out else _clock()
                async for event in conv.send(prompt):
                    if isinstance(event, Result) and event.is_error:
                        raise RuntimeError(f"turn failed: {event.error}")
                out.append(_clock() - start)
        return out

    return turns


def agent_sdk(cli: str, cwd: str) -> Turns:
    from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient, ResultMessage

    options = ClaudeAgentOptions(cli_path=cli, cwd=cwd, include_partial_messages=True)

    async def turns(prompts: list[str]) -> list[float]:
        out: list[float] = []
        start = _clock()
        async with ClaudeSDKClient(options=options) as client:
            for prompt in prompts:
                start = start if not out else _clock()
                await client.query(prompt)
                async for message in client.receive_response():
                    if isinstance(message, ResultMessage) and message.is_error:
                        raise RuntimeError(f"turn failed: {message}")
                out.append(_clock() - start)
        return out

    return turns


def claudestream(cli: str, cwd: str) -> Turns:
    from claudestream import AsyncSession, SessionConfig

    config = SessionConfig(model="claude-opus-5-5", profile="default", binary=cli, cwd=cwd)

    async def turns(prompts: list[str]) -> list[float]:
        out: list[float] = []
        start = _clock()
        async with AsyncSession(config) as session:
            for prompt in prompts:
                start = start if not out else _clock()
                async for _event in session.send(prompt):
                    pass
                out.append(_clock() - start)
        return out

    return turns


# --------------------------------------------------------------------------- main


async def main(args: argparse.Namespace) -> dict[str, Any]:
    server, url = _start_server()
    try:
        root = Path(args.root)
        env = isolated_cli_env(url, root / "cli")
        work = root / "work"
        work.mkdir(parents=True, exist_ok=True)
        os.environ.clear()  # every library inherits exactly the isolated environment
        os.environ.update(env)
        makers: dict[str, Callable[[str, str], Turns]] = {"raw": raw_pipes, "ours": ours}
        skipped: dict[str, str] = {}
        for name, maker in (("claude_agent_sdk", agent_sdk), ("claudestream", claudestream)):
            try:
                maker(args.cli, str(work))
                makers[name] = maker
            except ImportError as exc:
                skipped[name] = f"not installed ({exc})"
        times: dict[str, list[list[float]]] = {name: [] for name in makers}
        names = list(makers)
        for session in range(args.sessions):
            order = names[session % len(names) :] + names[: session % len(names)]
            for name in order:
                prompts = [f"turn {i + 1} of session {session + 1}" for i in range(args.turns)]
                try:
                    times[name].append(await makers[name](args.cli, str(work))(prompts))
                except Exception as exc:  # reported, not fatal: the other contenders still count
                    skipped[name] = f"failed: {type(exc).__name__}: {exc}"[:300]
        return {"times": times, "skipped": skipped, "offline": args.offline}
    finally:
        server.communicate("", timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--cli", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--offline", default="loopback-only network namespace")
    result = anyio.run(main, parser.parse_args())
    print(json.dumps(result))
