"""``Config.mcp_servers``: the external MCP servers a conversation connects to.

Plain data, validated when the config is built. A server is either a command the library (API
path) or the CLI starts and talks to over stdio, or an HTTP URL. ``env`` and ``headers`` often
hold credentials: their values never appear in a repr or an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

from ._exceptions import ConfigError
from ._permissions import OWN_MCP_SERVER
from ._secrets import secret_values

__all__ = ["McpServerConfig", "check_mcp_servers"]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,48}$")


class McpServerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One external MCP server: ``command`` (+ ``args``, ``env``) for stdio, or ``url``
    (+ ``headers``) for Streamable HTTP."""

    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = msgspec.field(default_factory=dict)
    url: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        # ValueError: msgspec reports it with the path of the server that is wrong
        if (self.command is None) == (self.url is None):
            raise ValueError("an MCP server needs either 'command' (stdio) or 'url' (HTTP)")
        if self.url is not None:
            if self.args or self.env:
                raise ValueError("'args' and 'env' are for a stdio server ('command')")
            if not self.url.startswith(("http://", "https://")):
                raise ValueError("an MCP server 'url' must start with http:// or https://")
        elif self.headers:
            raise ValueError("'headers' are for an HTTP server ('url')")
        elif not self.command:
            raise ValueError("an MCP server 'command' must not be empty")

    def __repr__(self) -> str:
        if self.url is not None:
            return f"McpServerConfig(url={self.url!r}, headers={_hidden(self.headers)})"
        return (
            f"McpServerConfig(command={self.command!r}, args={self.args!r}, "
            f"env={_hidden(self.env)})"
        )

    @property
    def secrets(self) -> list[str]:
        """The values of ``env`` and ``headers`` under secret-looking names (scrubbed from
        every error, as ``Config.env``'s are). A repr hides every value."""
        return secret_values(self.env) + secret_values(self.headers)

    def cli_entry(self) -> dict[str, object]:
        """This server as an entry of the CLI's ``--mcp-config``."""
        if self.url is not None:
            return {"type": "http", "url": self.url, "headers": self.headers}
        return {"type": "stdio", "command": self.command, "args": list(self.args), "env": self.env}


def _hidden(values: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k!r}: '***'" for k in values) + "}"


def check_mcp_servers(servers: Mapping[str, McpServerConfig]) -> None:
    """Server names become part of tool names (``mcp__<server>__<tool>``)."""
    for name in servers:
        if name == OWN_MCP_SERVER:
            raise ConfigError(
                f"the MCP server name {OWN_MCP_SERVER!r} is the library's own; choose another",
                field="mcp_servers",
            )
        if not _NAME.match(name):
            raise ConfigError(
                f"invalid MCP server name {name!r}: use 1-48 letters, digits, '_' and '-'",
                field="mcp_servers",
            )
