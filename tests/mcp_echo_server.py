"""A stdio MCP server written with the official ``mcp`` package, for the MCP tests.

Tools: ``echo(text)`` returns the text (and the value of ``$ECHO_PREFIX`` before it, to show the
configured env reached the server); ``fail()`` raises, so a tool error travels back as one.
``--crash`` exits at once, before the handshake (a server that fails to start); ``--hang``
never answers. ``--http PORT`` serves Streamable HTTP on 127.0.0.1:PORT/mcp instead of stdio,
with a tool ``authorization()`` returning the request's Authorization header.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from mcp.server.mcpserver import Context, MCPServer

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


def authorization(ctx: Context[Any, Any]) -> str:
    """The Authorization header of the HTTP request."""
    request = ctx.request_context.request
    return str(request.headers.get("authorization") if request is not None else None)


if __name__ == "__main__":
    if "--crash" in sys.argv:
        sys.exit(3)
    if "--hang" in sys.argv:
        time.sleep(3600)
    if "--http" in sys.argv:
        server.tool()(authorization)
        port = int(sys.argv[sys.argv.index("--http") + 1])
        server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        server.run()
