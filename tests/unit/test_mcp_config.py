"""Config.mcp_servers: validation, secrets, files, and what the CLI is given."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import msgspec
import pytest

import claude_unified as cu
from claude_unified.backends._mcp import mcp_config
from claude_unified.backends._protocol import SessionSpec, ToolSpec
from claude_unified.backends.cli import _private_file, build_argv

TOKEN = "ghp_secret_token_0123456789abcdef"
BEARER = "Bearer secret-header-value-987654321"
SERVERS: Any = {  # dicts are converted; cu.McpServerConfig is the typed spelling
    "fs": {"command": "mcp-fs", "args": ["/srv"], "env": {"GITHUB_TOKEN": TOKEN, "LEVEL": "3"}},
    "web": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": BEARER}},
}


def test_servers_are_typed_and_secrets_hidden() -> None:
    config = cu.Config(mcp_servers=SERVERS)
    assert config.mcp_servers["fs"] == cu.McpServerConfig(
        command="mcp-fs", args=("/srv",), env={"GITHUB_TOKEN": TOKEN, "LEVEL": "3"}
    )
    assert config.mcp_servers["web"].url == "https://mcp.example.com/mcp"
    shown = repr(config)
    assert TOKEN not in shown and BEARER not in shown and "'3'" not in shown
    assert "GITHUB_TOKEN" in shown and "Authorization" in shown
    assert TOKEN in config.secrets and BEARER in config.secrets


@pytest.mark.parametrize(
    ("server", "problem"),
    [
        ({"command": "x", "url": "http://a"}, "either 'command' (stdio) or 'url' (HTTP)"),
        ({}, "either 'command' (stdio) or 'url' (HTTP)"),
        ({"url": "ftp://a"}, "must start with http:// or https://"),
        ({"url": "http://a", "env": {"K": TOKEN}}, "'args' and 'env' are for a stdio server"),
        ({"command": "x", "headers": {"Authorization": BEARER}}, "'headers' are for an HTTP"),
        ({"command": ""}, "'command' must not be empty"),
        ({"command": "x", "envv": {}}, "unknown field `envv`"),
        ({"command": 3}, "Expected `str | null`, got `int`"),
    ],
)
def test_a_bad_server_is_one_config_error_quoting_no_secret(
    server: dict[str, Any], problem: str
) -> None:
    with pytest.raises(cu.ConfigError) as caught:
        cu.Config(mcp_servers={"s": server})  # type: ignore[dict-item]
    assert caught.value.field == "mcp_servers"
    assert problem in str(caught.value)
    assert TOKEN not in str(caught.value) and BEARER not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "problem"),
    [("claude_unified", "is the library's own"), ("two words", "invalid MCP server name")],
)
def test_server_names_become_tool_names(name: str, problem: str) -> None:
    with pytest.raises(cu.ConfigError, match=problem):
        cu.Config(mcp_servers={name: cu.McpServerConfig(command="x")})


def test_servers_load_from_a_file_naming_the_source(tmp_path: Path) -> None:
    (tmp_path / "claude-unified.toml").write_text(
        '[mcp_servers.fs]\ncommand = "mcp-fs"\nargs = ["/srv"]\n'
        '[mcp_servers.web]\nurl = "https://x/mcp"\nheaders = { Authorization = "Bearer t" }\n'
    )
    config = cu.Config.load(cwd=tmp_path, environ={})
    assert config.mcp_servers["fs"].args == ("/srv",)
    assert config.mcp_servers["web"].headers == {"Authorization": "Bearer t"}
    (tmp_path / "claude-unified.toml").write_text('[mcp_servers.fs]\nurl = "nope"\n')
    with pytest.raises(cu.ConfigError) as caught:
        cu.Config.load(cwd=tmp_path, environ={})
    assert caught.value.field == "mcp_servers"
    assert "claude-unified.toml" in str(caught.value)


def test_the_cli_gets_both_our_server_and_the_external_ones() -> None:
    config = cu.Config(mcp_servers=SERVERS)
    entries = msgspec.json.decode(mcp_config(True, config.mcp_servers))["mcpServers"]
    assert entries == {
        "claude_unified": {"type": "sdk", "name": "claude_unified"},
        "fs": {
            "type": "stdio",
            "command": "mcp-fs",
            "args": ["/srv"],
            "env": {"GITHUB_TOKEN": TOKEN, "LEVEL": "3"},
        },
        "web": {
            "type": "http",
            "url": "https://mcp.example.com/mcp",
            "headers": {"Authorization": BEARER},
        },
    }
    assert set(msgspec.json.decode(mcp_config(False, config.mcp_servers))["mcpServers"]) == {
        "fs",
        "web",
    }


def test_the_cli_reads_the_servers_from_a_private_file_not_argv() -> None:
    config = cu.Config(backend="cli", mcp_servers=SERVERS)
    session = SessionSpec(tools=(ToolSpec("add", "Add.", {"type": "object"}),))
    path = _private_file(mcp_config(True, config.mcp_servers))
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        argv = build_argv("claude", session, config, mcp_config_path=path)
        assert f"--mcp-config={path}" in argv
        assert not any(TOKEN in a or BEARER in a for a in argv)
        with pytest.raises(ValueError, match="pass its path"):
            build_argv("claude", session, config)
    finally:
        os.unlink(path)
