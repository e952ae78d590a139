"""ToolHost: the default policy, dispatch, and failures turned into error results."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

import claude_unified as cu
from claude_unified._toolhost import ToolHost
from claude_unified.backends import resolve_backend
from claude_unified.backends.cli import CliBackend

pytestmark = pytest.mark.anyio


@cu.tool
def shout(text: str) -> str:
    """Upper-case the text."""
    return text.upper()


async def test_default_policy_allows_own_and_read_only_tools_but_asks_for_writes(
    tmp_path: Path,
) -> None:
    host = ToolHost([shout, *cu.builtin_tools(root=tmp_path)])
    decide = host.decide
    assert isinstance(await decide(cu.ToolCall(id="1", name="shout", input={})), cu.Allow)
    assert isinstance(await decide(cu.ToolCall(id="2", name="Read", input={})), cu.Allow)
    assert isinstance(await decide(cu.ToolCall(id="3", name="Grep", input={})), cu.Allow)
    for name in ("Write", "Edit", "Bash"):
        assert isinstance(await decide(cu.ToolCall(id="4", name=name, input={})), cu.Ask)
    assert isinstance(await decide(cu.ToolCall(id="5", name="Unknown", input={})), cu.Ask)


async def test_run_turns_failures_into_error_results() -> None:
    @cu.tool
    def broken(n: int) -> str:
        """Always fails."""
        raise RuntimeError(f"broken {n}")

    host = ToolHost([shout, broken])
    ok = await host.run(cu.ToolCall(id="1", name="shout", input={"text": "a"}))
    assert (ok.content, ok.is_error) == ("A", False)
    failed = await host.run(cu.ToolCall(id="2", name="broken", input={"n": 1}))
    assert failed.is_error
    assert failed.content == "Error: RuntimeError: broken 1"
    bad = await host.run(cu.ToolCall(id="3", name="shout", input={"text": 5}))
    assert bad.is_error
    assert "text" in str(bad.content)
    missing = await host.run(cu.ToolCall(id="4", name="nope", input={}))
    assert missing.is_error
    assert "registered: broken, shout" in str(missing.content)


def test_duplicate_tool_names_are_refused() -> None:
    with pytest.raises(ValueError, match="shout"):
        ToolHost([shout, shout])


def test_auto_backend_uses_the_same_cli_search_as_doctor(tmp_path: Path) -> None:
    fake_cli = tmp_path / "claude"
    fake_cli.write_text("#!/bin/sh\necho '2.1.330 (Claude Code)'\n")
    fake_cli.chmod(fake_cli.stat().st_mode | stat.S_IEXEC)
    backend = resolve_backend(cu.Config(cli_path=str(fake_cli), base_url="http://127.0.0.1:9"))
    assert isinstance(backend, CliBackend)
    with pytest.raises(cu.ConfigError, match="ANTHROPIC_API_KEY"):
        resolve_backend(cu.Config(cli_path=str(tmp_path / "missing")))
