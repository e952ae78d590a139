"""External MCP servers (``Config.mcp_servers``) on both transports, against a real stdio MCP
server written with the official ``mcp`` package (``tests/mcp_echo_server.py``).

On the API the library is the MCP client; on the CLI the real pinned CLI connects to the server
itself and asks the library's policy through ``can_use_tool``. The events are the same.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

import claude_unified as cu
from claude_unified import _mcp_client
from claude_unified.backends.cli import CliBackend
from claude_unified.testing import FakeAnthropicServer, tool_call, tool_calls
from claude_unified.testing.pytest_plugin import CliTestEnv
from tests.integration.test_parity import (
    LEAD,
    UNANSWERED,
    Session,
    Side,
    allowed,
    denied,
    end,
    result,
    seen,
    text,
    use,
)
from tests.integration.test_parity import side as parity_side

SERVER = str(Path(__file__).parent.parent / "mcp_echo_server.py")
SECRET = "sk-mcp-secret-value-0123456789"
ECHO = "mcp__echo__echo"


def echo_server(*args: str) -> dict[str, Any]:
    return {
        "command": sys.executable,
        "args": [SERVER, *args],
        "env": {"ECHO_PREFIX": "> ", "ECHO_API_TOKEN": SECRET},
    }


@dataclass(frozen=True)
class McpSide(Side):
    """A side whose config names the echo server."""

    def config(self) -> cu.Config:
        return super().config().replace(mcp_servers={"echo": echo_server()})


@dataclass(frozen=True)
class HttpSide(Side):
    """A side whose config names the echo server served over HTTP, with a header."""

    url: str = ""

    def config(self) -> cu.Config:
        web = {"url": self.url, "headers": {"Authorization": f"Bearer {SECRET}"}}
        return super().config().replace(mcp_servers={"web": web})


@pytest.fixture
def http_echo() -> Iterator[str]:
    """The echo server over Streamable HTTP on a free loopback port; its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [sys.executable, SERVER, "--http", str(port)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:  # bounded by the test timeout; a server that died fails at once
            assert proc.poll() is None, "the HTTP echo server exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait()


@pytest.fixture
def side(parity: Side) -> McpSide:
    return McpSide(parity.transport, parity.server, parity.cwd, parity.cli)


# the parity suite's own fixture, registered here under another name so `side` can wrap it
parity = pytest.fixture(parity_side.__wrapped__, name="parity")  # type: ignore[attr-defined]

both = pytest.mark.parametrize(
    ("anyio_backend", "transport"),
    [
        pytest.param("asyncio", "api", id="api-asyncio"),
        pytest.param("trio", "api", id="api-trio"),
        pytest.param("asyncio", "cli", id="cli-asyncio", marks=pytest.mark.cli),
        pytest.param("trio", "cli", id="cli-trio", marks=pytest.mark.cli),
    ],
)
pytestmark = pytest.mark.anyio


@both
async def test_an_allowed_mcp_tool_runs_on_the_server(side: McpSide) -> None:
    prompt = "Echo hi through the echo server."
    async with Session(side, policy=cu.allow_list([ECHO])) as session:
        session.script(prompt, (ECHO, {"text": "hi"}))
        trace = await session.turn(prompt)
    assert trace.steps == [
        text(LEAD),
        use(ECHO, {"text": "hi"}),
        allowed(ECHO),
        result(ECHO, '{"result":"> hi"}'),  # the configured env reached the server
        text(seen('{"result":"> hi"}')),
        end(),
    ]
    assert trace.calls == [(ECHO, {"text": "hi"})]
    [outcome] = [e for e in trace.events if isinstance(e, cu.ToolResult)]
    assert outcome.content == '{"result":"> hi"}'  # the structured content, as the CLI sends it


@both
async def test_an_http_server_gets_its_headers(parity: Side, http_echo: str) -> None:
    side = HttpSide(parity.transport, parity.server, parity.cwd, parity.cli, http_echo)
    prompt = "Which authorization reached the web server?"
    name = "mcp__web__authorization"
    async with Session(side, policy=cu.allow_list(["mcp__web"])) as session:
        session.script(prompt, (name, {}))
        trace = await session.turn(prompt)
    answer = f'{{"result":"Bearer {SECRET}"}}'
    assert trace.steps == [
        text(LEAD),
        use(name, {}),
        allowed(name),
        result(name, answer),
        text(seen(answer)),
        end(),
    ]


@both
async def test_an_mcp_tool_is_asked_for_by_default(side: McpSide) -> None:
    prompt = "Echo unasked."
    message = UNANSWERED.format(name=ECHO)
    async with Session(side) as session:
        session.script(prompt, (ECHO, {"text": "x"}))
        trace = await session.turn(prompt)
    assert trace.steps == [
        text(LEAD),
        use(ECHO, {"text": "x"}),
        ("PermissionRequest", ECHO, {"text": "x"}),
        denied(ECHO, message),
        result(ECHO, message, is_error=True),
        text(seen(message, is_error=True)),
        end(),
    ]


@both
async def test_a_deny_rule_names_the_mcp_tool(side: McpSide) -> None:
    prompt = "Echo denied."
    policy = cu.first_match(cu.deny_list([ECHO]), cu.allow_all())
    async with Session(side, policy=policy) as session:
        session.script(prompt, (ECHO, {"text": "no"}))
        trace = await session.turn(prompt)
    [decision] = [e for e in trace.events if isinstance(e, cu.PermissionDecision)]
    [outcome] = [e for e in trace.events if isinstance(e, cu.ToolResult)]
    assert (decision.name, decision.behavior) == (ECHO, "deny")
    assert (outcome.name, outcome.is_error) == (ECHO, True)


@both
async def test_an_mcp_tool_error_is_an_error_result(side: McpSide) -> None:
    prompt = "Make the echo server fail."
    async with Session(side, policy=cu.allow_list(["mcp__echo__fail"])) as session:
        session.script(prompt, ("mcp__echo__fail", {}))
        trace = await session.turn(prompt)
    [outcome] = [e for e in trace.events if isinstance(e, cu.ToolResult)]
    assert outcome.is_error
    assert "Error executing tool fail" in str(outcome.content)
    assert trace.result.is_error is False


# --------------------------------------------------------------------------- API path


def api_config(server: FakeAnthropicServer, **servers: dict[str, Any]) -> cu.Config:
    config = cu.Config(backend="api", api_key="sk-ant-test", base_url=server.url)
    return config.replace(mcp_servers=servers or {"echo": echo_server()})


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_api_offers_the_server_tools_and_closes_the_server(
    fake_anthropic_server: FakeAnthropicServer,
) -> None:
    server = fake_anthropic_server
    server.queue(tool_call("mcp__echo__pid", {}), cu.testing.reply("done"))
    config = api_config(server)
    policy = cu.allow_list(["mcp__echo__pid"])
    async with cu.Conversation(config, policy=policy) as conv:
        reply = await conv.ask("pid?")
        [outcome] = [e for e in reply.events if isinstance(e, cu.ToolResult)]
        pid = int(msgspec.json.decode(str(outcome.content))["result"])
        assert alive(pid)
    assert not alive(pid)
    body = server.requests[0].json
    assert body is not None
    tools = {t["name"]: t for t in body["tools"]}
    assert set(tools) == {"mcp__echo__echo", "mcp__echo__pid", "mcp__echo__fail"}
    assert tools["mcp__echo__echo"]["description"] == "Echo the text back."
    assert tools["mcp__echo__echo"]["input_schema"]["required"] == ["text"]
    # the tool result the model got back
    last = server.requests[-1].json
    assert last is not None
    assert last["messages"][-1]["content"][0]["content"] == f'{{"result":"{pid}"}}'


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_api_runs_two_calls_of_one_message_at_once(
    fake_anthropic_server: FakeAnthropicServer,
) -> None:
    server = fake_anthropic_server
    server.queue(tool_calls((ECHO, {"text": "a"}), (ECHO, {"text": "b"})), cu.testing.reply("both"))
    async with cu.Conversation(api_config(server), policy=cu.allow_list([ECHO])) as conv:
        reply = await conv.ask("two")
    outcomes = [e for e in reply.events if isinstance(e, cu.ToolResult)]
    assert [(o.content, o.is_error) for o in outcomes] == [
        ('{"result":"> a"}', False),
        ('{"result":"> b"}', False),
    ]


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_a_server_that_fails_to_start_is_a_process_error_without_secrets(
    fake_anthropic_server: FakeAnthropicServer,
) -> None:
    config = api_config(fake_anthropic_server, echo=echo_server("--crash"))
    conv = cu.Conversation(config)
    with pytest.raises(cu.ProcessError) as caught:
        await conv.open()
    message = str(caught.value)
    assert "the MCP server 'echo' failed to start" in message
    assert SECRET not in message and SECRET not in repr(config)
    assert conv.backend is None
    assert fake_anthropic_server.requests == []
    await conv.aclose()  # closing a conversation that never opened is fine


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_a_server_that_never_answers_is_a_process_error(
    fake_anthropic_server: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_mcp_client, "START_TIMEOUT", 0.5)
    conv = cu.Conversation(api_config(fake_anthropic_server, echo=echo_server("--hang")))
    with pytest.raises(cu.ProcessError, match=r"no answer within 0\.5 s"):
        await conv.open()
    assert conv.backend is None


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_an_http_server_that_cannot_be_reached_is_a_connect_error(
    fake_anthropic_server: FakeAnthropicServer,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/mcp"  # bound, never listening
        headers = {"Authorization": f"Bearer {SECRET}"}
        conv = cu.Conversation(
            api_config(fake_anthropic_server, web={"url": url, "headers": headers})
        )
        with pytest.raises(cu.ConnectError, match="the MCP server 'web' failed to start") as caught:
            await conv.open()
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_a_missing_command_is_a_process_error(
    fake_anthropic_server: FakeAnthropicServer, tmp_path: Path
) -> None:
    missing = {"command": str(tmp_path / "no-such-server")}
    conv = cu.Conversation(api_config(fake_anthropic_server, gone=missing))
    with pytest.raises(cu.ProcessError, match="the MCP server 'gone' failed to start"):
        await conv.open()


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_closing_from_another_task_mid_call_stops_the_server(
    fake_anthropic_server: FakeAnthropicServer,
) -> None:
    server = fake_anthropic_server
    server.queue(tool_call("mcp__echo__pid", {}), cu.testing.reply("done"))
    conv = cu.Conversation(api_config(server), policy=cu.allow_list(["mcp__echo__pid"]))
    await conv.open()
    pids: list[int] = []
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            async for event in conv.send("pid?"):
                if isinstance(event, cu.ToolResult):
                    pids.append(int(msgspec.json.decode(str(event.content))["result"]))
                    tg.cancel_scope.cancel()

        tg.start_soon(run)
    await conv.aclose()
    assert pids and not alive(pids[0])


def test_a_missing_mcp_package_names_the_extra(
    fake_anthropic_server: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mcp", None)
    conv = cu.Conversation(api_config(fake_anthropic_server))
    with pytest.raises(cu.ConfigError, match=r"pip install 'claude-unified\[mcp\]'") as caught:
        anyio.run(conv.open)
    assert caught.value.field == "mcp_servers"


@both
async def test_a_server_rule_allows_every_tool_of_the_server(side: McpSide) -> None:
    prompt = "Echo by server rule."
    async with Session(side, policy=cu.allow_list(["mcp__echo"])) as session:
        session.script(prompt, (ECHO, {"text": "all"}))
        trace = await session.turn(prompt)
    assert allowed(ECHO) in trace.steps
    assert result(ECHO, '{"result":"> all"}') in trace.steps


@pytest.mark.cli
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_the_cli_config_file_lives_as_long_as_the_conversation(
    claude_cli_env: CliTestEnv,
) -> None:
    config = claude_cli_env.config(mcp_servers={"echo": echo_server()})
    async with cu.Conversation(config) as conv:
        backend = conv.backend
        assert isinstance(backend, CliBackend)
        path = backend._mcp_config_path
        assert path is not None
        entries = msgspec.json.decode(Path(path).read_bytes())["mcpServers"]
        assert entries["echo"]["env"]["ECHO_API_TOKEN"] == SECRET
        assert not any(
            SECRET in arg for arg in Path(f"/proc/{backend.pid}/cmdline").read_text().split("\0")
        )
    assert not Path(path).exists()
