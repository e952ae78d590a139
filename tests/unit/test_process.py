"""ManagedProcess: line framing, stderr ring, writes, and the shutdown ladder (no zombies)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
import time
from pathlib import Path

import anyio
import pytest

from claude_unified._exceptions import ProcessError
from claude_unified.backends._process import LineTooLongError, ManagedProcess, redact_argv

pytestmark = pytest.mark.anyio

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

ECHO = """
import sys
for line in sys.stdin.buffer:
    sys.stdout.buffer.write(line)
    sys.stdout.flush()
"""

# Prints "ready", then ignores SIGTERM and stdin EOF: only SIGKILL ends it.
STUBBORN = """
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
while True:
    time.sleep(60)
"""


def script(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


async def start(
    code: str, *, stderr_limit: int = 64 * 1024, max_line_bytes: int | None = None
) -> ManagedProcess:
    return await ManagedProcess.start(
        script(code),
        env=dict(os.environ),
        cwd=None,
        stderr_limit=stderr_limit,
        max_line_bytes=max_line_bytes,
    )


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def children_of(pid: int) -> set[int]:
    """Every process (zombies included) whose parent is ``pid``."""
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            children.add(int(entry.name))
    return children


async def wait_until_dead(pid: int) -> bool:
    """A killed process may take a moment to leave the process table; allow up to 3 s."""
    for _ in range(150):
        if not is_running(pid):
            return True
        await anyio.sleep(0.02)
    return False


def assert_reaped(pid: int) -> None:
    """``pid`` was our child and has been waited for: the kernel no longer knows it as one."""
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


# --- stdout framing -----------------------------------------------------------------------


async def test_echo_round_trip() -> None:
    async with await start(ECHO) as proc:
        for payload in (b'{"type":"user"}', b"caf\xc3\xa9 \x00 binary", b"x" * 200_000):
            await proc.send_line(payload)
            assert await proc.receive_line() == payload
        await proc.close_stdin()
        assert await proc.receive_line() is None
    assert proc.returncode == 0


async def test_many_lines_and_blank_lines_in_one_write() -> None:
    code = """
    import sys
    sys.stdout.write("".join(f"line {i}\\n" for i in range(20000)) + "\\n\\nend\\n")
    """
    async with await start(code) as proc:
        lines = []
        while (line := await proc.receive_line()) is not None:
            lines.append(line)
    assert lines == [f"line {i}".encode() for i in range(20000)] + [b"", b"", b"end"]


async def test_receive_lines_returns_every_line_of_a_read_at_once() -> None:
    code = """
    import sys
    sys.stdout.write("a\\nb\\nc")
    sys.stdout.flush()
    sys.stdin.readline()
    sys.stdout.write("d\\n\\ne\\n")
    """
    async with await start(code) as proc:
        assert await proc.receive_lines() == [b"a", b"b"]  # "c" waits for its newline
        await proc.send_line(b"go")
        got: list[bytes] = []
        while (lines := await proc.receive_lines()) is not None:
            assert lines  # never an empty batch
            got += lines
        assert got == [b"cd", b"", b"e"]
        assert await proc.receive_lines() is None


async def test_receive_lines_returns_the_lines_before_an_oversize_one_then_raises() -> None:
    code = """
    import sys
    sys.stdout.write("one\\ntwo\\n" + "x" * 500 + "\\nthree\\n")
    """
    async with await start(code, max_line_bytes=100) as proc:
        first = await proc.receive_lines()
        while first is not None and len(first) < 2:  # the pipe may split the write
            more = await proc.receive_lines()
            first = first + (more or [])
        assert first == [b"one", b"two"]
        with pytest.raises(LineTooLongError):
            await proc.receive_lines()
        assert await proc.receive_line() == b"three"
        assert await proc.receive_line() is None


async def test_50_mb_line_is_read_intact_and_fast() -> None:
    pattern = bytes(byte for byte in range(256) if byte != ord("\n"))
    repeats = 50 * 1024 * 1024 // len(pattern) + 1
    code = f"""
    import sys
    sys.stdout.buffer.write({pattern!r} * {repeats} + b"\\nnext\\n")
    """
    async with await start(code) as proc:
        began = time.perf_counter()
        line = await proc.receive_line()
        elapsed = time.perf_counter() - began
        assert await proc.receive_line() == b"next"
    assert line is not None
    assert len(line) > 50 * 1024 * 1024
    assert line == pattern * repeats
    assert elapsed < 10, f"reading 50 MB took {elapsed:.1f} s"


async def test_final_line_without_newline_is_returned() -> None:
    async with await start("import sys; sys.stdout.write('first\\nlast without newline')") as proc:
        assert await proc.receive_line() == b"first"
        assert await proc.receive_line() == b"last without newline"
        assert await proc.receive_line() is None
        assert await proc.receive_line() is None


async def test_oversize_line_is_skipped_and_the_stream_stays_usable() -> None:
    code = """
    import sys
    sys.stdout.write("short\\n" + "e" * 100 + "\\n" + "y" * 5000 + "\\nnext\\n" + "z" * 300)
    """
    async with await start(code, max_line_bytes=100) as proc:
        assert await proc.receive_line() == b"short"
        assert await proc.receive_line() == b"e" * 100  # exactly at the limit is fine
        with pytest.raises(LineTooLongError) as excinfo:
            await proc.receive_line()
        assert (excinfo.value.size, excinfo.value.limit) == (5000, 100)
        assert isinstance(excinfo.value, ProcessError)
        assert await proc.receive_line() == b"next"
        with pytest.raises(LineTooLongError):  # an oversize unterminated last line
            await proc.receive_line()
        assert await proc.receive_line() is None


async def test_receive_after_aclose_returns_none() -> None:
    proc = await start(STUBBORN)
    assert await proc.receive_line() == b"ready"
    await proc.aclose(grace=0.1, term_timeout=0.1)
    with anyio.fail_after(2):
        assert await proc.receive_line() is None


# --- stderr ring buffer ---------------------------------------------------------------------


async def test_stderr_is_bounded_and_its_tail_is_in_errors() -> None:
    code = """
    import sys
    chunk = b"e" * 65536 + b"\\n"
    for _ in range(160):  # about 10 MB
        sys.stderr.buffer.write(chunk)
    sys.stderr.buffer.write(b"FINAL WORDS\\n")
    sys.exit(3)
    """
    async with await start(code, stderr_limit=4096) as proc:
        assert await proc.receive_line() is None
        assert await proc.wait() == 3
        everything = proc.stderr_tail(max_chars=10**9)
        assert len(everything.encode()) <= 4096
        assert everything.endswith("FINAL WORDS")
        assert len(proc.stderr_tail(max_chars=5)) == 5
        error = proc.error("the CLI died")
    assert error.exit_code == 3
    assert error.signal is None
    assert error.stderr_tail.endswith("FINAL WORDS")
    assert "FINAL WORDS" in str(error)
    assert "exit code 3" in str(error)
    assert list(error.argv) == proc.argv


async def test_error_while_running_has_no_exit_code() -> None:
    async with await start(ECHO) as proc:
        error = proc.error("still running")
        assert (error.exit_code, error.signal) == (None, None)


# --- writing --------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"   ", b"\r", b"\t\r", b"a\nb", b"line\n"])
async def test_send_line_refuses_blank_or_multi_line_data(data: bytes) -> None:
    async with await start(ECHO) as proc:
        with pytest.raises(ValueError, match="non-blank line"):
            await proc.send_line(data)


async def test_send_after_exit_raises_with_exit_code() -> None:
    async with await start("import sys; print('oops', file=sys.stderr); sys.exit(5)") as proc:
        assert await proc.wait() == 5
        with pytest.raises(ProcessError) as excinfo:
            await proc.send_line(b"{}")
    assert excinfo.value.exit_code == 5
    assert "exited" in str(excinfo.value)
    assert excinfo.value.stderr_tail == "oops"


async def test_send_to_a_child_that_just_died_reports_its_exit_code() -> None:
    code = "import os, sys; sys.stdin.readline(); os.close(0); sys.exit(7)"
    async with await start(code) as proc:
        await proc.send_line(b"first")
        with pytest.raises(ProcessError) as excinfo:
            await send_until_refused(proc)
    assert excinfo.value.exit_code == 7


async def send_until_refused(proc: ManagedProcess) -> None:
    """Keep writing: the broken pipe may only show on a later write than the first."""
    with anyio.fail_after(5):
        for _ in range(1000):
            await proc.send_line(b"x" * 65536)
            await anyio.sleep(0.01)


async def test_send_after_close_stdin_raises() -> None:
    async with await start(ECHO) as proc:
        await proc.close_stdin()
        await proc.close_stdin()
        with pytest.raises(ProcessError, match="stdin is closed"):
            await proc.send_line(b"{}")


async def test_a_send_cancelled_part_way_leaves_stdin_unusable() -> None:
    async with await start("import time; time.sleep(60)") as proc:  # never reads stdin
        with anyio.move_on_after(0.2) as scope:
            await proc.send_line(b"x" * (4 * 1024 * 1024))  # far more than a pipe holds
        assert scope.cancelled_caught
        with pytest.raises(ProcessError, match="interrupted part-way"):
            await proc.send_line(b"{}")
        await proc.aclose(grace=0.1)


async def test_a_send_cancelled_before_writing_does_no_harm() -> None:
    async with await start(ECHO) as proc:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await proc.send_line(b"never sent")
        await proc.send_line(b"sent")
        assert await proc.receive_line() == b"sent"


async def test_concurrent_sends_never_interleave() -> None:
    code = """
    import sys
    for line in sys.stdin.buffer:
        body = line.rstrip(b"\\n")
        sys.stdout.write(f"{len(body)} {len(set(body))}\\n")
        sys.stdout.flush()
    """
    async with await start(code) as proc:
        lines = [bytes([65 + i]) * 300_000 for i in range(20)]  # each bigger than a pipe
        async with anyio.create_task_group() as tg:
            for line in lines:
                tg.start_soon(proc.send_line, line)
            replies = [await proc.receive_line() for _ in lines]
    assert replies == [b"300000 1"] * len(lines)


# --- spawning and redaction -----------------------------------------------------------------


async def test_spawn_failure_names_the_redacted_argv(tmp_path: Path) -> None:
    argv = [str(tmp_path / "missing-claude"), "--api-key", "sk-secret-value", "-p"]
    with pytest.raises(ProcessError) as excinfo:
        await ManagedProcess.start(argv, env={}, cwd=None)
    assert "missing-claude" in str(excinfo.value)
    assert "sk-secret-value" not in str(excinfo.value)
    assert list(excinfo.value.argv) == [argv[0], "--api-key", "***", "-p"]


async def test_spawn_failure_for_a_file_that_is_not_executable(tmp_path: Path) -> None:
    target = tmp_path / "claude"
    target.write_text("#!/bin/sh\n")
    with pytest.raises(ProcessError, match="claude"):
        await ManagedProcess.start([str(target)], env={}, cwd=None)


async def test_spawn_failure_for_a_missing_cwd(tmp_path: Path) -> None:
    with pytest.raises(ProcessError, match="no-such-dir"):
        await ManagedProcess.start(script(ECHO), env={}, cwd=tmp_path / "no-such-dir")


async def test_start_uses_exactly_the_given_env_and_cwd(tmp_path: Path) -> None:
    code = "import os, json; print(json.dumps([dict(os.environ), os.getcwd()]))"
    env = {"ONLY_THIS": "1"}
    async with await ManagedProcess.start(script(code), env=env, cwd=tmp_path) as proc:
        line = await proc.receive_line()
    assert line is not None
    seen_env, seen_cwd = json.loads(line)
    assert seen_env.get("ONLY_THIS") == "1"
    assert "HOME" not in seen_env
    assert seen_cwd == str(tmp_path)  # pytest's tmp_path is already resolved


async def test_custom_redaction_is_what_argv_shows() -> None:
    proc = await ManagedProcess.start(
        script(ECHO), env=dict(os.environ), cwd=None, redact=lambda argv: ["<hidden>"]
    )
    async with proc:
        assert proc.argv == ["<hidden>"]
        assert proc.error("x").argv == ("<hidden>",)


def test_redact_argv() -> None:
    prompt = "p" * 500
    argv = [
        "claude",
        "--api-key",
        "sk-1",
        "--api-key=sk-2",
        "--auth-token",
        "tok",
        "--client-secret=shh",
        "--model",
        "sonnet",
        "--append-system-prompt",
        prompt,
        "--mcp-config",
        '{"mcpServers":{"x":{"env":{"GH":"secret"}}}}',
        "--mcp-config",
        "servers.json",
        "--settings={}",
        "-p",
    ]
    redacted = redact_argv(argv)
    assert redacted[:10] == [
        "claude",
        "--api-key",
        "***",
        "--api-key=***",
        "--auth-token",
        "***",
        "--client-secret=***",
        "--model",
        "sonnet",
        "--append-system-prompt",
    ]
    assert redacted[10].startswith("p" * 200)
    assert redacted[10].endswith("[300 more chars]")
    assert redacted[11:] == [
        "--mcp-config",
        "***",
        "--mcp-config",
        "servers.json",
        "--settings=***",
        "-p",
    ]
    assert argv[2] == "sk-1"  # the input is not modified


# --- shutdown ladder ------------------------------------------------------------------------


async def test_clean_exit_on_stdin_close_needs_no_signal() -> None:
    proc = await start(ECHO)
    began = time.perf_counter()
    assert await proc.aclose() == 0
    assert time.perf_counter() - began < 3
    assert await proc.aclose() == 0  # idempotent


async def test_child_that_ignores_stdin_gets_sigterm() -> None:
    proc = await start("import time; print('ready', flush=True); time.sleep(60)")
    assert await proc.receive_line() == b"ready"
    assert await proc.aclose(grace=0.2, term_timeout=5) == -15
    assert proc.error("stopped").signal == 15


async def test_child_that_ignores_sigterm_is_killed() -> None:
    proc = await start(STUBBORN)
    assert await proc.receive_line() == b"ready"
    began = time.perf_counter()
    assert await proc.aclose(grace=0.2, term_timeout=0.3) == -9
    assert time.perf_counter() - began < 3
    error = proc.error("killed")
    assert (error.exit_code, error.signal) == (None, 9)


@linux_only
@pytest.mark.parametrize("leader_exits_on_eof", [True, False])
async def test_grandchildren_die_with_the_group(leader_exits_on_eof: bool) -> None:
    code = f"""
    import subprocess, sys, time
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print(helper.pid, flush=True)
    if {leader_exits_on_eof}:
        sys.stdin.read()
    else:
        time.sleep(60)
    """
    proc = await start(code)
    line = await proc.receive_line()
    assert line is not None
    grandchild = int(line)
    assert is_running(grandchild)
    await proc.aclose(grace=0.3, term_timeout=1)
    assert not is_running(proc.pid)
    assert_reaped(proc.pid)
    assert await wait_until_dead(grandchild), "the grandchild outlived aclose"


@linux_only
async def test_cancelled_caller_still_gets_a_reaped_child() -> None:
    proc = await start(STUBBORN)
    assert await proc.receive_line() == b"ready"
    began = time.perf_counter()
    with anyio.move_on_after(0.05):
        await proc.aclose(grace=0.3, term_timeout=0.3)
    assert time.perf_counter() - began >= 0.55, "the ladder was cut short by the cancellation"
    assert proc.returncode == -9
    assert not is_running(proc.pid)
    assert_reaped(proc.pid)


@linux_only
async def test_cancelled_before_aclose_still_reaps() -> None:
    proc = await start(STUBBORN)
    assert await proc.receive_line() == b"ready"
    with anyio.CancelScope() as scope:
        scope.cancel()
        await proc.aclose(grace=0.1, term_timeout=0.1)
    assert proc.returncode == -9
    assert_reaped(proc.pid)


async def test_concurrent_aclose_calls_share_one_ladder() -> None:
    proc = await start(STUBBORN)
    assert await proc.receive_line() == b"ready"
    results: list[int | None] = []

    async def close() -> None:
        results.append(await proc.aclose(grace=0.1, term_timeout=0.1))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(close)
    assert results == [-9, -9, -9]


@linux_only
async def test_start_aclose_cycles_leave_no_children_or_threads() -> None:
    me = os.getpid()
    before = children_of(me)
    for i in range(100):
        proc = await start("import sys; sys.stdin.read()")
        if i % 10 == 0:
            with anyio.move_on_after(0):  # some closes run from an already-cancelled scope
                await proc.aclose()
        else:
            await proc.aclose()
        assert proc.returncode == 0
    assert children_of(me) - before == set()
    drains = [t for t in threading.enumerate() if t.name.startswith("claude-unified-stderr-")]
    assert drains == []
