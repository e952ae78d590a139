"""The library as an MCP client of ``Config.mcp_servers``, for the API path (the CLI connects
to them itself).

Each server's tools join the ToolHost as ``mcp__<server>__<tool>``, the names the CLI gives
them, so the same rules, policies and hooks apply on both backends. The official ``mcp``
package (the ``claude-unified[mcp]`` extra) is imported only when a server is configured.

Every connection lives in a task of its own, started on open and ended on close: the ``mcp``
client's task groups are then entered and exited by one task, whichever tasks call the tools.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from typing import IO, Any

import anyio
import anyio.abc
import msgspec

from ._events import ContentBlock, ImageBlock, TextBlock
from ._exceptions import ConfigError, ConnectError, ProcessError
from ._mcp_config import McpServerConfig
from ._tools import Tool, ToolFailed

__all__ = ["START_TIMEOUT", "McpConnections"]

START_TIMEOUT = 60.0
"""Seconds a server has to start and list its tools (a first ``npx`` download can be slow)."""

_STDERR_TAIL = 4096


def _import_mcp() -> Any:
    try:
        import mcp
        from mcp.client.stdio import StdioServerParameters
    except ImportError as exc:
        raise ConfigError(
            "Config.mcp_servers needs the 'mcp' package on the API backend: "
            "pip install 'claude-unified[mcp]'",
            field="mcp_servers",
        ) from exc
    return mcp, StdioServerParameters


class _Link:
    """One server's connection, run by its own task until ``closed`` is set."""

    def __init__(self, name: str, server: McpServerConfig):
        self.name = name
        self.server = server
        self.client: Any = None
        self.closed = anyio.Event()
        self.started = False
        self.stderr: IO[str] | None = None

    async def run(self, *, task_status: anyio.abc.TaskStatus[list[Tool]]) -> None:
        mcp, stdio_params = _import_mcp()
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as stderr:
            self.stderr = stderr
            try:
                if await self._serve(mcp.Client(self._target(mcp, stdio_params)), task_status):
                    return
                failure: Exception = TimeoutError(f"no answer within {START_TIMEOUT:g} s")
            except Exception as exc:
                if self.started:
                    return  # a failure after the start: the calls made since reported it
                failure = exc
            raise self._start_failure(failure) from failure

    async def _serve(self, client: Any, task_status: anyio.abc.TaskStatus[list[Tool]]) -> bool:
        """Connect, list the tools, report them, then wait for the close. False: too slow."""
        with anyio.CancelScope(deadline=anyio.current_time() + START_TIMEOUT) as startup:
            async with client:
                tools = await self._tools(client)
                startup.deadline = math.inf  # from here on the connection lives until closed
                self.client, self.started = client, True
                task_status.started(tools)
                try:
                    await self.closed.wait()
                finally:
                    self.client = None
        return not startup.cancelled_caught

    def _target(self, mcp: Any, stdio_params: Any) -> Any:
        server = self.server
        if server.url is None:
            params = stdio_params(command=server.command, args=list(server.args), env=server.env)
            return mcp.client.stdio.stdio_client(params, errlog=self.stderr)
        import httpx2

        http = httpx2.AsyncClient(headers=server.headers, timeout=START_TIMEOUT)
        return mcp.client.streamable_http.streamable_http_client(server.url, http_client=http)

    async def _tools(self, client: Any) -> list[Tool]:
        found: list[Tool] = []
        cursor = None
        while True:
            listing = await client.list_tools(cursor=cursor)
            found += [
                self._tool(t.name, t.description or "", t.input_schema) for t in listing.tools
            ]
            cursor = listing.next_cursor
            if not cursor:
                return found

    def _tool(self, name: str, description: str, schema: dict[str, Any]) -> Tool:
        async def call(arguments: dict[str, Any]) -> str | list[ContentBlock]:
            client = self.client
            if client is None:
                raise ToolFailed(f"the MCP server {self.name!r} is not connected")
            result = await client.call_tool(name, arguments)
            content = _content(result)
            if result.is_error:
                raise ToolFailed(content)
            return content

        return Tool(f"mcp__{self.name}__{name}", description, schema, call)

    def _start_failure(self, exc: Exception) -> Exception:
        what = f"the MCP server {self.name!r} failed to start: {type(exc).__name__}: {exc}"
        if self.server.url is not None:
            return ConnectError(what, url=self.server.url)
        tail = ""
        if self.stderr is not None and not self.stderr.closed:
            self.stderr.seek(0)
            tail = self.stderr.read()[-_STDERR_TAIL:]
        argv = [self.server.command or "", *self.server.args]
        return ProcessError(what, stderr_tail=tail, argv=argv)


def _content(result: Any) -> str | list[ContentBlock]:
    """A tool result as the CLI hands it to the model: the structured content, when the tool
    gave one, as compact JSON text; else each content item as a block."""
    if result.structured_content is not None:
        return msgspec.json.encode(result.structured_content).decode()
    return [_block(item) for item in result.content]


def _block(item: Any) -> ContentBlock:
    """An MCP content item as the block the CLI makes of it."""
    if item.type == "text":
        return TextBlock(item.text)
    if item.type == "image":
        return ImageBlock({"type": "base64", "media_type": item.mime_type, "data": item.data})
    return TextBlock(item.model_dump_json(by_alias=True, exclude_none=True))


class McpConnections:
    """The open connections to every configured server."""

    def __init__(self, servers: Mapping[str, McpServerConfig]):
        self._links = [_Link(name, server) for name, server in servers.items()]
        self._tg: anyio.abc.TaskGroup | None = None

    async def open(self) -> list[Tool]:
        """Start every server and list its tools; a server that fails raises and none stays."""
        _import_mcp()  # a missing extra fails before any process starts
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        tools: list[Tool] = []
        try:
            for link in self._links:
                tools += await self._tg.start(link.run)
        except BaseException:
            await self.aclose()
            raise
        return tools

    async def aclose(self) -> None:
        """Close every connection, stopping its server process."""
        for link in self._links:
            link.closed.set()
        if self._tg is not None:  # exited unshielded: its scope must be the innermost
            tg, self._tg = self._tg, None
            await tg.__aexit__(None, None, None)
