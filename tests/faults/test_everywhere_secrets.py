"""Secrets never show: not in a repr, not in an error, whichever path made it (item: configured
secrets are scrubbed from every message, including text echoed back by the server or the CLI)."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from typing import Any

import anyio
import pytest

import claude_unified as cu
from claude_unified.testing import FakeAnthropicServer, error

from .conftest import api_config, fd_guard

PASSWORD = "pw-hunter2-in-the-url"
TOKEN = "plain-bearer-token-7f3a9c"  # not shaped like an API key: found only because configured
HEADER = "header-secret-0d9e8f7a"
ENV_SECRET = "env-secret-55aa66bb"


def test_password_in_base_url_is_not_in_the_repr() -> None:
    config = cu.Config(base_url=f"https://user:{PASSWORD}@api.example.com")
    assert PASSWORD not in repr(config)
    assert PASSWORD not in str(config)
    assert "user:***@api.example.com" in repr(config)


def test_password_in_base_url_is_not_in_a_config_error() -> None:
    with pytest.raises(cu.ConfigError) as info:
        cu.Config.load(environ={}, base_url=f"ftp://user:{PASSWORD}@api.example.com")
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in repr(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("env", {"SOME_TOKEN": 42, "PLAIN": ENV_SECRET}),
        ("extra_headers", {"x-custom": [HEADER]}),
        ("extra_headers", {"authorization": HEADER, "x-n": 1}),
    ],
)
def test_config_errors_never_echo_mapping_values(field: str, value: object) -> None:
    overrides: dict[str, Any] = {field: value}
    with pytest.raises(cu.ConfigError) as info:
        cu.Config.load(environ={}, **overrides)
    shown = f"{info.value} {info.value!r}"
    for secret in (ENV_SECRET, HEADER, "42"):
        assert secret not in shown
    assert info.value.field == field


@pytest.mark.anyio
async def test_password_in_base_url_is_not_in_a_connect_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with anyio.fail_after(20):
        config = cu.Config(
            backend="api",
            api_key="sk-ant-unused-0000",
            base_url=f"http://user:{PASSWORD}@127.0.0.1:{port}",
            max_retries=0,
        )
        async with cu.Conversation(config) as conv:
            turn = conv.send("hi")
            async for _ in turn:
                pass
    exc = turn.exception
    assert isinstance(exc, cu.ConnectError)
    assert turn.result is not None
    for shown in (str(exc), repr(exc), exc.url, str(turn.result)):
        assert PASSWORD not in shown


@pytest.mark.anyio
async def test_a_token_echoed_by_the_server_is_scrubbed(fake: FakeAnthropicServer) -> None:
    fake.queue(error(401, message=f"bad bearer token {TOKEN}; header {HEADER}"))
    config = api_config(fake, api_key=None, auth_token=TOKEN, extra_headers={"x-api-key": HEADER})
    with fd_guard(fake):
        async with cu.Conversation(config) as conv:
            with pytest.raises(cu.AuthenticationError) as info:
                await conv.ask("hi")
    for shown in (str(info.value), repr(info.value), info.value.args[0]):
        assert TOKEN not in shown
        assert HEADER not in shown
    assert "bad bearer token ***" in str(info.value)


def _echoing_cli(tmp_path: Path) -> str:
    """A stand-in ``claude`` that prints its credentials to stderr and fails."""
    script = tmp_path / "claude"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = --version ]; then echo "2.1.330 (Claude Code)"; exit 0; fi\n'
        'echo "auth failed for key $ANTHROPIC_API_KEY token $ANTHROPIC_AUTH_TOKEN" >&2\n'
        'echo "and $MY_SERVICE_PASSWORD" >&2\n'
        "exit 3\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


@pytest.mark.anyio
async def test_a_key_echoed_by_the_cli_on_stderr_is_scrubbed(tmp_path: Path) -> None:
    key = "cli-key-not-shaped-like-one-8822"
    config = cu.Config(
        backend="cli",
        cli_path=_echoing_cli(tmp_path),
        base_url="http://127.0.0.1:9",  # loopback: the test kit guard lets it through
        api_key=key,
        auth_token=TOKEN,
        env={"MY_SERVICE_PASSWORD": ENV_SECRET, "HOME": os.environ.get("HOME", "/")},
    )
    with fd_guard(), anyio.fail_after(30), pytest.raises(cu.ClaudeError) as info:
        async with cu.Conversation(config) as conv:
            await conv.ask("hi")
    exc = info.value
    shown = [str(exc), repr(exc), *map(str, exc.args)]
    if isinstance(exc, cu.ProcessError):
        shown += [exc.stderr_tail, *exc.argv]
    assert any("auth failed for key *** token ***" in s for s in shown), shown
    for text in shown:
        for secret in (key, TOKEN, ENV_SECRET):
            assert secret not in text
