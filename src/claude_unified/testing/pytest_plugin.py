"""pytest plugin (entry point ``pytest11``): fixtures for testing code that uses claude_unified.

- ``fake_anthropic_server``: a running ``FakeAnthropicServer``, with ``ANTHROPIC_BASE_URL`` and a
  dummy ``ANTHROPIC_API_KEY`` pointing at it for the duration of the test.
- ``claude_cli_env``: everything needed to run the real ``claude`` CLI offline against that
  server (throwaway HOME and TMPDIR, dummy key, telemetry off, low retries) as a ``CliTestEnv``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from .._config import Config
from .._exceptions import CLINotFoundError
from ..backends._discovery import find_cli
from ._cli_env import isolated_cli_env, test_cli_path
from ._server import FakeAnthropicServer

__all__ = ["CliTestEnv"]

DUMMY_KEY = "sk-ant-test"


class CliTestEnv(msgspec.Struct, frozen=True):
    """An isolated environment for the real CLI: its binary, env, working dir and fake server."""

    cli_path: str
    env: dict[str, str]
    cwd: str
    server: FakeAnthropicServer

    def config(self, **overrides: Any) -> Config:
        """A ``Config`` for the CLI backend in this environment (overrides win)."""
        values: dict[str, Any] = {
            "backend": "cli",
            "cli_path": self.cli_path,
            "env": self.env,
            "cwd": self.cwd,
        }
        values.update(overrides)
        return Config(**values)


@pytest.fixture
def fake_anthropic_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropicServer]:
    """A running FakeAnthropicServer; ANTHROPIC_BASE_URL points at it during the test."""
    with FakeAnthropicServer() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", DUMMY_KEY)
        monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
        yield server


def _cli_for_tests() -> Path:
    pinned = test_cli_path()
    if pinned is not None:
        if not pinned.exists():
            pytest.fail(f"CLAUDE_UNIFIED_TEST_CLI points at {pinned}, which does not exist")
        return pinned
    try:
        return find_cli()
    except CLINotFoundError as exc:
        message = (
            "the claude CLI is needed for this test and was not found. Install the pinned "
            "version (nox installs it for you: `nox -s tests`), or set CLAUDE_UNIFIED_TEST_CLI "
            f"to a claude binary. Details: {exc}"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def claude_cli_env(fake_anthropic_server: FakeAnthropicServer, tmp_path: Path) -> CliTestEnv:
    """The real CLI, isolated, aimed at ``fake_anthropic_server``. In CI a missing CLI fails."""
    cli = _cli_for_tests()
    env = isolated_cli_env(fake_anthropic_server.url, tmp_path / "cli")
    work = tmp_path / "work"
    work.mkdir()
    return CliTestEnv(str(cli), env, str(work), fake_anthropic_server)
