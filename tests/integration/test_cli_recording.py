"""A session of the real CLI, recorded through ``Config.record_path`` and replayed."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

import claude_unified as cu
from claude_unified.testing import ReplayBackend, ReplayMismatch, override
from claude_unified.testing.pytest_plugin import CliTestEnv

pytestmark = [pytest.mark.anyio, pytest.mark.cli]


@cu.tool
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


PROMPTS = [
    "BASH: pwd && echo $HOME",
    'TOOL: mcp__claude_unified__add {"a": 2, "b": 3}',
    "and that is all",
]


async def session(config: cu.Config, policy: cu.Policy) -> list[list[cu.Event]]:
    turns = []
    async with cu.Conversation(config, tools=[add], policy=policy) as conv:
        for prompt in PROMPTS:
            turns.append([event async for event in conv.send(prompt)])
    return turns


def zeroed(events: list[cu.Event]) -> list[cu.Event]:
    return [
        msgspec.structs.replace(e, duration_s=0.0) if isinstance(e, cu.Result) else e
        for e in events
    ]


async def test_a_recorded_cli_session_replays_to_the_same_events(
    claude_cli_env: CliTestEnv, tmp_path: Path
) -> None:
    path = tmp_path / "cli.jsonl"
    policy = cu.allow_list(["Bash", "add"])
    live = await session(claude_cli_env.config(record_path=str(path)), policy)
    tool_output = next(e for e in live[0] if isinstance(e, cu.ToolResult))
    assert claude_cli_env.cwd in str(tool_output.content)  # the paths really went through
    with override(backend=ReplayBackend(path)):
        replayed = await session(claude_cli_env.config(), policy)
    assert [zeroed(turn) for turn in replayed] == [zeroed(turn) for turn in live]
    added = next(e for e in live[1] if isinstance(e, cu.ToolResult))
    assert (added.name, added.content) == ("add", "5")
    recording = path.read_text()
    for machine_path in (claude_cli_env.cwd, claude_cli_env.env["HOME"]):
        assert machine_path not in recording
    assert "<cwd>" in recording
    assert "<home>" in recording


async def test_a_different_decision_is_a_replay_mismatch(
    claude_cli_env: CliTestEnv, tmp_path: Path
) -> None:
    path = tmp_path / "cli.jsonl"
    async with cu.Conversation(
        claude_cli_env.config(record_path=str(path)), policy=cu.allow_list(["Bash"])
    ) as conv:
        await conv.ask("BASH: touch recorded.txt")
    with override(backend=ReplayBackend(path)):
        async with cu.Conversation(cu.Config(), policy=cu.deny_list(["Bash"])) as conv:
            with pytest.raises(ReplayMismatch) as info:
                await conv.ask("BASH: touch recorded.txt")
    # the policy answers the CLI's PreToolUse hook: allow there, or "ask" to deny at can_use_tool
    message = str(info.value)
    assert "exchange 1: HookAnswer differs from the recording" in message
    assert '"permission":"ask"' in message
    assert '"permission":"allow"' in message
