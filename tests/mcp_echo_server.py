"""A stdio MCP server written with the official ``mcp`` package, for the MCP tests.

Tools: ``echo(text)`` returns the text (and the value of ``$ECHO_PREFIX`` before it, to show the
configured env reached the server); ``fail()`` raises, so a tool error travels back as one.
``--crash`` exits at once, before the handshake (a server that fails to start).
"""

from __future__ import annotations

import os
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("echo")


@server.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return os.environ.get("ECHO_PREFIX", "") + text


@server.tool()
def pid() -> str:
    """The server's process id."""
    return str(os.getpid())


@server.tool()
def fail() -> str:
    """Always fails."""
    raise RuntimeError("the echo server was asked to fail")


if __name__ == "__main__":
    if "--crash" in sys.argv:
        sys.exit(3)
    server.run()
