"""CLI faults that need the real pinned CLI: an API that stalls under it, a cancel followed by
resync, kill -9 with a Bash command running, scopes and tasks around a real process."""

from __future__ import annotations

import os
import signal

import anyio
import pytest

import claude_unified as cu
from claude_unified.backends.cli import CliBackend
from claude_unified.testing import reply, stall
from claude_unified.testing.pytest_plugin import CliTestEnv

from ._cli_stub import Leftovers, alive

pytestmark = [pytest.mark.anyio, pytest.mark.cli]

HANG_GUARD_S = 90  # a bound on every case: a hang fails instead of stalling the suite
# one simple command (no `;`): allow rules never match chained shell commands
LONG_BASH = "BASH: python3 -c \"__import__('time').sleep(120)\""


async def usable(conv: cu.Conversation, n: int = 2) -> None:
    """Each of the next ``n`` turns gets its own answer."""
    for i in range(n):
        answer = await conv.ask(f"after {i}")
        assert answer.text == f"ECHO: after {i}"


def sleepers() -> list[int]:
    """Processes running the long Bash command of these tests."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if b"sleep(120)" in f.read() and int(entry) != os.getpid():
                        found.append(int(entry))
            except OSError:
                continue
    return found


async def started_sleepers() -> list[int]:
    """The long Bash command's processes, once it runs (the suite's hang guard bounds this)."""
    for _ in range(HANG_GUARD_S * 10):
        if found := sleepers():
            return found
        await anyio.sleep(0.1)
    raise AssertionError("the Bash command never started")


async def test_an_api_stall_under_the_cli_hits_idle_timeout(claude_cli_env: CliTestEnv) -> None:
    claude_cli_env.server.on("STALL", reply("never").with_fault(stall(60, after_events=3)), times=1)
    left = Leftovers()
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(claude_cli_env.config(idle_timeout=3)) as conv:
            with pytest.raises(cu.TimeoutError) as info:
                await conv.ask("STALL now")
            assert info.value.kind == "idle"
            await usable(conv)
    claude_cli_env.server.close()  # its stalled handler holds the server's end of a socket
    await left.check()


async def test_cancel_mid_stream_then_every_turn_gets_its_own_answer(
    claude_cli_env: CliTestEnv,
) -> None:
    claude_cli_env.server.on(
        "SLOW", reply("slow words").with_fault(stall(60, after_events=3)), times=1
    )
    left = Leftovers()
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(claude_cli_env.config()) as conv:
            with anyio.CancelScope() as scope:
                async for event in conv.send("SLOW please"):
                    if isinstance(event, cu.TextDelta):
                        scope.cancel()
            assert scope.cancelled_caught
            await usable(conv, 3)
    claude_cli_env.server.close()  # its stalled handler holds the server's end of a socket
    await left.check()


async def test_move_on_after_around_ask_returns_and_resyncs(claude_cli_env: CliTestEnv) -> None:
    claude_cli_env.server.on(
        "SLOW", reply("slow words").with_fault(stall(60, after_events=3)), times=1
    )
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(claude_cli_env.config()) as conv:
            with anyio.move_on_after(4) as scope:
                await conv.ask("SLOW please")
            assert scope.cancelled_caught
            await usable(conv)


async def test_kill_9_of_the_cli_reaps_its_bash_command(claude_cli_env: CliTestEnv) -> None:
    left = Leftovers()
    policy = cu.allow_list(["Bash(python3:*)"])
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(claude_cli_env.config(), policy=policy) as conv:
            backend = conv.backend
            assert isinstance(backend, CliBackend)
            events: list[cu.Event] = []

            async def turn() -> None:
                events.extend([event async for event in conv.send(LONG_BASH)])

            async with anyio.create_task_group() as tg:
                tg.start_soon(turn)
                running = await started_sleepers()
                await anyio.sleep(2.5)  # the CLI's descendants are noted once a second
                assert backend.pid is not None
                os.kill(backend.pid, signal.SIGKILL)
            result = events[-1]
            assert isinstance(result, cu.Result)
            assert result.is_error
            with pytest.raises(cu.ProcessError):
                await conv.ask("after")  # clearly closed
    await left.check(*running)
    assert not [pid for pid in running if alive(pid)]


async def test_closing_during_a_bash_command_reaps_it(claude_cli_env: CliTestEnv) -> None:
    left = Leftovers()
    policy = cu.allow_list(["Bash(python3:*)"])
    with anyio.fail_after(HANG_GUARD_S):
        conv = cu.Conversation(claude_cli_env.config(), policy=policy)
        await conv.open()
        async with anyio.create_task_group() as tg:

            async def turn() -> None:
                async for _event in conv.send(LONG_BASH):
                    pass

            tg.start_soon(turn)
            running = await started_sleepers()
            await conv.aclose()  # from another task than the turn's
    await left.check(*running)


async def test_open_inside_fail_after_and_close_in_another_task(
    claude_cli_env: CliTestEnv,
) -> None:
    left = Leftovers()
    conv = cu.Conversation(claude_cli_env.config())
    with anyio.fail_after(HANG_GUARD_S):
        await conv.open()
    await usable(conv, 1)
    with anyio.fail_after(HANG_GUARD_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(conv.aclose)
    await left.check()


async def test_two_concurrent_asks_on_the_real_cli(claude_cli_env: CliTestEnv) -> None:
    claude_cli_env.server.on(
        "FIRST", reply("first answer").with_fault(stall(1, after_events=3)), times=1
    )
    with anyio.fail_after(HANG_GUARD_S):
        async with cu.Conversation(claude_cli_env.config()) as conv:
            answers: list[str] = []
            started = anyio.Event()

            async def first() -> None:
                events = []
                async for event in conv.send("FIRST"):
                    started.set()
                    events.append(event)
                result = events[-1]
                assert isinstance(result, cu.Result)
                answers.append(result.text)

            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                await started.wait()
                with pytest.raises(cu.ClaudeError, match="another turn is running"):
                    await conv.ask("SECOND")
            assert answers == ["first answer"]
            await usable(conv, 1)
