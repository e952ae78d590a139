"""The command's own faults: a reader that goes away (``claude-unified … | head -1``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from claude_unified.testing import FakeAnthropicServer, reply


@pytest.fixture
def long_answer(fake: FakeAnthropicServer) -> dict[str, str]:
    fake.queue(reply("\n".join(f"line {i} of a long answer" for i in range(20_000))))
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_UNIFIED_"))
    }
    env.update(ANTHROPIC_API_KEY="sk-ant-test-pipe", ANTHROPIC_BASE_URL=fake.url)
    return env


@pytest.mark.parametrize("command", ["send", "stream", "events"])
def test_a_closed_pipe_exits_quietly(long_answer: dict[str, str], command: str) -> None:
    """The reader takes one line and leaves: no traceback, exit 141 (128 + SIGPIPE). ``send``
    writes its reply in one go, which the kernel may take whole before the reader leaves."""
    producer = subprocess.Popen(
        [sys.executable, "-m", "claude_unified", command, "--backend", "api", "tell me"],
        env=long_answer,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert producer.stdout is not None and producer.stderr is not None
    first = producer.stdout.readline()
    producer.stdout.close()  # what `head -1` does after its line
    stderr = producer.stderr.read().decode()
    code = producer.wait(timeout=60)
    assert first
    assert "Traceback" not in stderr
    assert "BrokenPipeError" not in stderr
    assert stderr == ""
    assert code == 141 or (command == "send" and code == 0)


def test_a_pipe_read_to_the_end_still_exits_zero(long_answer: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "claude_unified", "send", "--backend", "api", "tell me"],
        env=long_answer,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(b"\n") >= 20_000
