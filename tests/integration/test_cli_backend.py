"""CliBackend on the real ``claude`` CLI (pinned version) against FakeAnthropicServer."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import anyio
import pytest

import claude_unified as cu
from claude_unified.backends.cli import CliBackend
from claude_unified.testing import FakeAnthropicServer, error, reply
from claude_unified.testing.pytest_plugin import CliTestEnv

pytestmark = [pytest.mark.anyio, pytest.mark.cli]

# one simple command (no `;`): allow rules never match chained shell commands
LONG_TOOL = "BASH: python3 -c \"__import__('time').sleep(30)\""


def kinds(events: list[cu.Event]) -> list[str]:
    return [type(e).__name__ for e in events if not isinstance(e, cu.Unknown)]


async def collect(conv: cu.Conversation, prompt: str) -> list[cu.Event]:
    return [event async for event in conv.send(prompt)]


def result_of(events: list[cu.Event]) -> cu.Result:
    result = events[-1]
    assert isinstance(result, cu.Result), kinds(events)
    return result


def children_running(env: CliTestEnv) -> list[int]:
    """This test's processes still running the CLI binary: its children, orphans left by them
    (told apart from other tests' CLIs on the machine by their throwaway HOME), and zombies,
    which are leaks too."""
    found = []
    real = os.path.realpath(env.cli_path)
    home = f"HOME={env.env['HOME']}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = os.readlink(entry / "exe")
        except OSError:
            exe = ""
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if (exe == real and home in _environ(entry)) or (ppid == os.getpid() and "claude" in stat):
            found.append(int(entry.name))
    return found


def _environ(entry: Path) -> list[bytes]:
    try:
        return (entry / "environ").read_bytes().split(b"\0")
    except OSError:
        return []


async def test_multi_turn_memory_in_one_process(claude_cli_env: CliTestEnv) -> None:
    async with cu.Conversation(claude_cli_env.config()) as conv:
        first = await collect(conv, "first turn hello")
        backend = conv.backend
        assert isinstance(backend, CliBackend)
        pid = backend.pid
        second = await collect(conv, "second turn")
        assert backend.pid == pid
    started = [e for e in first if isinstance(e, cu.SessionStarted)]
    assert len(started) == 1
    assert started[0].backend == "cli"
    assert started[0].cli_version == "2.1.330"
    assert started[0].session_id
    assert conv.session_id == started[0].session_id
    assert result_of(first).text == "ECHO: first turn hello"
    assert result_of(second).text == "ECHO: second turn"
    # turn 2 went out with turn 1 in its history: the CLI remembers within one process
    last = claude_cli_env.server.requests[-1].json
    assert last is not None
    texts = str(last["messages"])
    assert "first turn hello" in texts
    assert "ECHO: first turn hello" in texts
    # the second SessionStarted is suppressed: same session
    assert not any(isinstance(e, cu.SessionStarted) for e in second)


async def test_partial_message_deltas(claude_cli_env: CliTestEnv) -> None:
    async with cu.Conversation(claude_cli_env.config()) as conv:
        events = await collect(conv, "partial hello")
    deltas = [e.text for e in events if isinstance(e, cu.TextDelta)]
    assert len(deltas) >= 1
    assert "".join(deltas) == "ECHO: partial hello"
    assert kinds(events)[-2:] == ["Text", "Result"]
    result = result_of(events)
    assert result.cost_usd is not None and result.cost_usd > 0
    assert result.usage.input_tokens > 0
    assert result.num_turns == 1


async def test_permission_allow_runs_the_tool(claude_cli_env: CliTestEnv) -> None:
    policy = cu.allow_list(["Bash(touch:*)"])
    async with cu.Conversation(claude_cli_env.config(), policy=policy) as conv:
        events = await collect(conv, "BASH: touch allowed.txt")
    decision = next(e for e in events if isinstance(e, cu.PermissionDecision))
    assert (decision.behavior, decision.decided_by, decision.name) == ("allow", "policy", "Bash")
    assert Path(claude_cli_env.cwd, "allowed.txt").exists()
    tool_result = next(e for e in events if isinstance(e, cu.ToolResult))
    assert not tool_result.is_error
    assert not result_of(events).is_error


async def test_permission_deny_keeps_turn_going(claude_cli_env: CliTestEnv) -> None:
    policy = cu.deny_list(["Bash(touch:*)"], message="no touching")
    async with cu.Conversation(claude_cli_env.config(), policy=policy) as conv:
        events = await collect(conv, "BASH: touch denied.txt")
    decision = next(e for e in events if isinstance(e, cu.PermissionDecision))
    assert decision.behavior == "deny"
    assert not Path(claude_cli_env.cwd, "denied.txt").exists()
    tool_result = next(e for e in events if isinstance(e, cu.ToolResult))
    assert tool_result.is_error
    result = result_of(events)
    assert not result.is_error
    assert result.text.startswith("TOOL_RESULT_SEEN is_error=true")


async def test_permission_deny_with_interrupt_ends_turn(claude_cli_env: CliTestEnv) -> None:
    policy = cu.callback(lambda name, input: cu.Deny("stop right there", interrupt=True))
    async with cu.Conversation(claude_cli_env.config(), policy=policy) as conv:
        events = await collect(conv, "BASH: touch denied2.txt")
        after = await collect(conv, "still there?")
    result = result_of(events)
    assert result.is_error
    assert result.error is not None and result.error.kind == "interrupted"
    assert not Path(claude_cli_env.cwd, "denied2.txt").exists()
    # the next prompt travels in the same user message as the rejected tool_result
    assert not result_of(after).is_error
    last = claude_cli_env.server.requests[-1].json
    assert last is not None
    final_user = last["messages"][-1]
    assert final_user["role"] == "user"
    assert "still there?" in str(final_user["content"])
    assert "tool_result" in str(final_user["content"])


async def test_ask_answered_by_the_consumer(claude_cli_env: CliTestEnv) -> None:
    async with cu.Conversation(claude_cli_env.config()) as conv:
        events = []
        async for event in conv.send("BASH: touch asked.txt"):
            events.append(event)
            if isinstance(event, cu.PermissionRequest):
                conv.respond(event, cu.Allow())
    decision = next(e for e in events if isinstance(e, cu.PermissionDecision))
    assert (decision.behavior, decision.decided_by) == ("allow", "user")
    assert Path(claude_cli_env.cwd, "asked.txt").exists()


async def test_interrupt_while_a_tool_runs_then_clean_turn(claude_cli_env: CliTestEnv) -> None:
    policy = cu.allow_list(["Bash(python3:*)"])
    async with cu.Conversation(claude_cli_env.config(), policy=policy) as conv:
        events: list[cu.Event] = []
        with anyio.fail_after(20):
            async for event in conv.send(LONG_TOOL):
                events.append(event)
                if isinstance(event, cu.PermissionDecision):
                    assert event.behavior == "allow"
                    await anyio.sleep(0.5)  # the tool is running now
                    await conv.interrupt()
        result = result_of(events)
        assert result.is_error
        assert result.error is not None and result.error.kind == "interrupted"
        after = await collect(conv, "after the interrupt")
    assert not result_of(after).is_error
    last = claude_cli_env.server.requests[-1].json
    assert last is not None
    assert "after the interrupt" in str(last["messages"][-1]["content"])


async def test_529_forever_gives_retries_and_error_result(
    claude_cli_env: CliTestEnv, fake_anthropic_server: FakeAnthropicServer
) -> None:
    fake_anthropic_server.on("overload me", error(529))
    env = {**claude_cli_env.env, "CLAUDE_CODE_MAX_RETRIES": "2"}
    async with cu.Conversation(claude_cli_env.config(env=env)) as conv:
        events = await collect(conv, "overload me")
        with pytest.raises(cu.OverloadedError):
            await conv.ask("overload me")
    retries = [e for e in events if isinstance(e, cu.ApiRetry)]
    assert len(retries) == 2
    assert all(r.status == 529 for r in retries)
    assert all(r.delay_s > 0 for r in retries)
    result = result_of(events)
    assert result.is_error
    assert result.error is not None and result.error.status_code == 529
    assert not any(isinstance(e, cu.Text) for e in events)  # the CLI's error text is not a reply


async def test_429_with_retry_after_then_success(
    claude_cli_env: CliTestEnv, fake_anthropic_server: FakeAnthropicServer
) -> None:
    fake_anthropic_server.on("rate limited", error(429, headers={"retry-after": "1"}), times=1)
    env = {**claude_cli_env.env, "CLAUDE_CODE_MAX_RETRIES": "2"}
    async with cu.Conversation(claude_cli_env.config(env=env)) as conv:
        events = await collect(conv, "rate limited")
    retry = next(e for e in events if isinstance(e, cu.ApiRetry))
    assert retry.status == 429
    assert retry.delay_s >= 1.0
    assert result_of(events).text == "ECHO: rate limited"


async def test_kill_9_mid_turn_raises_process_error(claude_cli_env: CliTestEnv) -> None:
    policy = cu.allow_list(["Bash(python3:*)"])
    async with cu.Conversation(claude_cli_env.config(), policy=policy) as conv:
        backend = conv.backend
        assert isinstance(backend, CliBackend)
        turn = conv.send(LONG_TOOL)
        events = []
        with anyio.fail_after(20):
            async for event in turn:
                events.append(event)
                if isinstance(event, cu.PermissionDecision):
                    assert event.behavior == "allow"
                    await anyio.sleep(0.3)  # the tool is running now
                    assert backend.pid is not None
                    os.kill(backend.pid, signal.SIGKILL)
        result = result_of(events)
        assert result.is_error
        with pytest.raises(cu.ProcessError) as info:
            turn.raise_for_error()
    assert info.value.signal == signal.SIGKILL
    assert "I'll use Bash." in info.value.partial_text
    assert info.value.argv and "-p" in info.value.argv


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # line size is backend-independent here
async def test_a_50_mb_line(claude_cli_env: CliTestEnv) -> None:
    big = "y" * 50_000_000
    claude_cli_env.server.on("BIG LINE", reply(big))
    async with cu.Conversation(claude_cli_env.config()) as conv:
        answer = await conv.ask("BIG LINE please")
        assert len(answer.text) == len(big)
        # the session survives the giant line and still answers (here the CLI itself refuses
        # a history holding 50 MB of text, which it reports as an ordinary error result)
        after = await collect(conv, "small after big")
    assert isinstance(after[-1], cu.Result)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # 100 real CLI starts: run once
async def test_100_open_close_cycles_leave_no_process(claude_cli_env: CliTestEnv) -> None:
    config = claude_cli_env.config()
    before = set(children_running(claude_cli_env))

    async def cycle() -> None:
        async with cu.Conversation(config):
            pass

    async def worker(n: int) -> None:
        for _ in range(n):
            await cycle()

    async with anyio.create_task_group() as tg:  # two at a time: a 2-core machine
        tg.start_soon(worker, 50)
        tg.start_soon(worker, 50)
    after = set(children_running(claude_cli_env))
    assert after <= before, f"left behind: {after - before}"


async def test_cancelled_caller_leaves_no_process(claude_cli_env: CliTestEnv) -> None:
    policy = cu.allow_list(["Bash(python3:*)"])
    before = set(children_running(claude_cli_env))
    started = anyio.current_time()
    with anyio.move_on_after(3) as scope:
        async with cu.Conversation(claude_cli_env.config(), policy=policy) as conv:
            await conv.ask(LONG_TOOL)  # the tool sleeps 30 s: the scope cancels us first
    assert scope.cancelled_caught
    assert anyio.current_time() - started < 15  # shutdown is bounded, not the drain's 30 s
    assert set(children_running(claude_cli_env)) <= before


async def test_resume_by_session_id(claude_cli_env: CliTestEnv) -> None:
    async with cu.Conversation(claude_cli_env.config()) as conv:
        await conv.ask("remember the word pelican")
        session_id = conv.session_id
    assert session_id
    async with cu.Conversation(claude_cli_env.config(resume=session_id)) as resumed:
        answer = await resumed.ask("what was the word?")
    assert answer.text == "ECHO: what was the word?"
    last = claude_cli_env.server.requests[-1].json
    assert last is not None
    assert "pelican" in str(last["messages"])


async def test_set_model_and_permission_mode(claude_cli_env: CliTestEnv) -> None:
    async with cu.Conversation(claude_cli_env.config()) as conv:
        await conv.set_model("claude-other-test")
        await conv.set_permission_mode("acceptEdits")
        events = await collect(conv, "which model?")
    started = next(e for e in events if isinstance(e, cu.SessionStarted))
    assert started.model == "claude-other-test"
    assert started.permission_mode == "acceptEdits"
    last = claude_cli_env.server.requests[-1].json
    assert last is not None and last["model"] == "claude-other-test"


async def test_missing_cli_names_where_it_looked(tmp_path: Path) -> None:
    config = cu.Config(backend="cli", cli_path=str(tmp_path / "no-such-claude"))
    with pytest.raises(cu.CLINotFoundError) as info:
        async with cu.Conversation(config):
            pass
    assert "no-such-claude" in str(info.value)


async def test_same_text_conversation_on_api_and_cli(claude_cli_env: CliTestEnv) -> None:
    server = claude_cli_env.server
    api_config = cu.Config(backend="api", api_key="sk-ant-test", base_url=server.url)
    transcripts = []
    for config in (api_config, claude_cli_env.config()):
        async with cu.Conversation(config) as conv:
            turns = [await collect(conv, "hello one"), await collect(conv, "hello two")]
        transcripts.append(
            [
                [(type(e).__name__, getattr(e, "text", None)) for e in turn if _comparable(e)]
                for turn in turns
            ]
        )
    api, cli = transcripts
    assert api == cli
    assert api[0][-1] == ("Result", "ECHO: hello one")


def _comparable(event: cu.Event) -> bool:
    """Events both transports produce for a plain text turn (deltas may split differently)."""
    return isinstance(event, cu.SessionStarted | cu.Text | cu.Result)


async def test_save_and_restore_a_cli_conversation(
    claude_cli_env: CliTestEnv, tmp_path: Path
) -> None:
    path = tmp_path / "cli-conversation.json"
    async with cu.Conversation(claude_cli_env.config()) as conv:
        await conv.ask("remember the word heron")
        conv.save(path)
    restored = cu.Conversation.restore(path, claude_cli_env.config())
    async with restored:
        await restored.ask("and the word?")
        assert restored.session_id == conv.session_id
    last = claude_cli_env.server.requests[-1].json
    assert last is not None
    assert "heron" in str(last["messages"])


async def test_breaking_out_early_leaves_the_next_turn_clean(claude_cli_env: CliTestEnv) -> None:
    async with cu.Conversation(claude_cli_env.config()) as conv:
        async for event in conv.send("first turn to abandon"):
            if isinstance(event, cu.TextDelta):
                break
        events = await collect(conv, "second turn")
    texts = [e.text for e in events if isinstance(e, cu.Text)]
    assert texts == ["ECHO: second turn"]
    assert [type(e).__name__ for e in events].count("Result") == 1
    assert result_of(events).text == "ECHO: second turn"
