"""Fixtures of the fault matrix: one fake server per module, and checks every case ends with."""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Iterator

import pytest

import claude_unified as cu
from claude_unified.testing import FakeAnthropicServer

SECRET = "sk-ant-fault-matrix-secret-0042"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as srv:
        yield srv


@pytest.fixture
def fake(server: FakeAnthropicServer) -> FakeAnthropicServer:
    server.reset()
    return server


def _open_fds() -> dict[int, str]:
    found = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return found


@contextlib.contextmanager
def fd_guard(server: FakeAnthropicServer | None = None) -> Iterator[None]:
    """Fails when the block leaves a file descriptor open for good. The fake server runs in this
    process: its handler threads are let finish first (the client hung up, so they end soon)."""
    before = set(_open_fds())
    yield
    deadline = time.monotonic() + 10
    while True:
        # a handler thread stops tracking its socket just before it closes it
        leaked = {fd: target for fd, target in _open_fds().items() if fd not in before}
        settled = server is None or not server._connections
        if (settled and not leaked) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not leaked, f"file descriptors left open: {leaked}"


def api_config(server: FakeAnthropicServer, **overrides: object) -> cu.Config:
    values: dict[str, object] = {
        "backend": "api",
        "api_key": SECRET,
        "base_url": server.url,
        "max_retries": 0,
        "idle_timeout": 5.0,
        "timeout": 30.0,
        "model": "claude-sonnet-5-5",
    }
    values.update(overrides)
    return cu.Config(**values)  # type: ignore[arg-type]


def assert_history_valid(history: list[cu.Message]) -> None:
    """What the real API accepts: roles alternate from a user message; no empty assistant
    message; every tool_use is answered by a tool_result in the next message."""
    if not history:
        return
    assert history[0].role == "user"
    for before, after in itertools.pairwise(history):
        assert before.role != after.role, [m.role for m in history]
    for i, message in enumerate(history):
        if message.role == "assistant":
            assert message.content, f"message {i} is an empty assistant message"
            uses = {u.id for u in message.tool_uses}
            if uses:
                answered = history[i + 1].content if i + 1 < len(history) else []
                blocks = [] if isinstance(answered, str) else answered
                ids = {b.tool_use_id for b in blocks if isinstance(b, cu.ToolResultBlock)}
                assert uses <= ids, f"tool_use {uses - ids} has no tool_result"
