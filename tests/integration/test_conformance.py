"""``check_backend`` on every backend the project ships, and FakeBackend against ApiBackend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

import claude_unified as cu
from claude_unified.backends import Backend
from claude_unified.backends._protocol import Exchange, Frame
from claude_unified.backends.api import ApiBackend
from claude_unified.backends.cli import CliBackend
from claude_unified.testing import (
    FakeAnthropicServer,
    FakeBackend,
    RecordingBackend,
    ReplayBackend,
    Step,
    check_backend,
    thinking,
    tool_call,
    tool_calls,
)
from claude_unified.testing.pytest_plugin import DUMMY_KEY, CliTestEnv

pytestmark = pytest.mark.anyio

MODEL = "claude-sonnet-5-5"


def api_config(server: FakeAnthropicServer) -> cu.Config:
    return cu.Config(api_key=DUMMY_KEY, base_url=server.url, max_retries=0, model=MODEL)


async def test_fake_backend_conforms() -> None:
    fake = FakeBackend()
    await check_backend(lambda config: fake, script=fake.queue)
    assert fake.remaining == 0


async def test_api_backend_conforms(fake_anthropic_server: FakeAnthropicServer) -> None:
    config = api_config(fake_anthropic_server)
    await check_backend(ApiBackend, config=config, script=fake_anthropic_server.queue)


@pytest.mark.cli
async def test_cli_backend_and_a_replay_of_it_conform(
    claude_cli_env: CliTestEnv, tmp_path: Path
) -> None:
    path = tmp_path / "cli.jsonl"
    await check_backend(
        lambda config: RecordingBackend(CliBackend(config), path),
        config=claude_cli_env.config(),
        script=claude_cli_env.server.queue,
    )
    replay = ReplayBackend(path)
    assert (replay.name, replay.drives_tool_loop) == ("cli", True)
    await check_backend(lambda config: replay)  # no CLI, no server: the recording answers
    assert replay.remaining == 0


async def test_a_backend_that_hides_errors_fails_the_suite() -> None:
    class Forgetful(FakeBackend):
        async def _exchange(self, request: Exchange) -> AsyncIterator[Frame]:
            try:
                async for frame in super()._exchange(request):
                    yield frame
            except cu.ClaudeError:
                return

    fake = Forgetful()
    with pytest.raises(AssertionError) as info:
        await check_backend(lambda config: fake, script=fake.queue)
    assert "check_backend scenario: api_error" in getattr(info.value, "__notes__", [])


# --------------------------------------------------------------------------- parity


@cu.tool
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


@cu.tool
def mul(a: int, b: int) -> str:
    """Multiply two integers."""
    return str(a * b)


@cu.tool
def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


POLICY = cu.first_match(cu.allow_list(["add"]), cu.deny_list(["mul"], message="no multiplying"))
STEPS: list[Step] = [
    tool_calls(("add", {"a": 2, "b": 3}), ("mul", {"a": 4, "b": 5}), text="Working on it."),
    tool_call("shout", {"text": "quiet"}),
    thinking("All tools answered.", "Done: 5, no product, QUIETER."),
]


async def tool_loop(config: cu.Config, backend: Backend | None = None) -> list[cu.Event]:
    events: list[cu.Event] = []
    tools = (add, mul, shout)
    async with cu.Conversation(config, backend=backend, tools=tools, policy=POLICY) as conv:
        async for event in conv.send("Use the tools."):
            events.append(event)
            if isinstance(event, cu.PermissionRequest):  # shout: the policy asks
                conv.respond(event, cu.Allow(updated_input={"text": "quieter"}))
    return events


def blanked(event: cu.Event) -> cu.Event:
    """Blank what differs by construction: ids the core makes up, the backend's name, and
    usage (each fake estimates tokens its own way)."""
    if isinstance(event, cu.SessionStarted):
        return msgspec.structs.replace(event, backend="", session_id=None)
    if isinstance(event, cu.PermissionRequest):
        return msgspec.structs.replace(event, request_id="")
    if isinstance(event, cu.Result):
        return msgspec.structs.replace(
            event, session_id=None, usage=cu.Usage(), cost_usd=None, duration_s=0.0
        )
    return event


def comparable(events: list[cu.Event]) -> list[cu.Event]:
    deltas = (cu.TextDelta, cu.ThinkingDelta, cu.ToolInputDelta)
    return [blanked(e) for e in events if not isinstance(e, deltas)]


async def test_fake_backend_runs_a_tool_loop_as_the_api_backend_does(
    fake_anthropic_server: FakeAnthropicServer,
) -> None:
    fake_anthropic_server.queue(*STEPS)
    over_http = await tool_loop(api_config(fake_anthropic_server))
    in_process = await tool_loop(cu.Config(model=MODEL), FakeBackend(STEPS))
    assert comparable(in_process) == comparable(over_http)
    kinds = [type(e).__name__ for e in comparable(over_http)]
    assert kinds == [
        "SessionStarted",
        "Text",
        "ToolUse",
        "ToolUse",
        "PermissionDecision",
        "PermissionDecision",
        "ToolResult",
        "ToolResult",
        "ToolUse",
        "PermissionRequest",
        "PermissionDecision",
        "ToolResult",
        "Thinking",
        "Text",
        "Result",
    ]
    results = [(e.content, e.is_error) for e in over_http if isinstance(e, cu.ToolResult)]
    assert results == [("5", False), ("no multiplying", True), ("QUIETER", False)]
