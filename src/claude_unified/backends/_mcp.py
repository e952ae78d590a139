"""The in-process MCP server through which the CLI reaches the library's own tools.

The CLI is given ``--mcp-config`` naming an ``"sdk"`` server; it then speaks JSON-RPC to us inside
``mcp_message`` control requests. Listing tools is answered here from the session's tool specs;
``tools/call`` is not: the backend hands it to the core as a ``ToolInvocation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from .._events import ContentBlock, ImageBlock, JsonObject, TextBlock
from .._exceptions import ProtocolError
from .._mcp_config import McpServerConfig
from .._permissions import OWN_MCP_SERVER
from .._version import __version__
from ._protocol import ToolOutcome, ToolSpec

__all__ = ["MCP_CONFIG", "InvalidMcpMessage", "JsonRpcRequest", "McpServer", "mcp_config"]

_OWN_ENTRY = {"type": "sdk", "name": OWN_MCP_SERVER}
MCP_CONFIG = msgspec.json.encode({"mcpServers": {OWN_MCP_SERVER: _OWN_ENTRY}}).decode()


def mcp_config(own_tools: bool, servers: Mapping[str, McpServerConfig]) -> bytes:
    """The CLI's ``--mcp-config``: our in-process server (when there are tools of ours) beside
    the external servers of ``Config.mcp_servers``."""
    entries: dict[str, object] = {OWN_MCP_SERVER: _OWN_ENTRY} if own_tools else {}
    entries.update({name: server.cli_entry() for name, server in servers.items()})
    return msgspec.json.encode({"mcpServers": entries})


_DEFAULT_PROTOCOL = "2025-11-25"
_INVALID_REQUEST = -32600
_METHOD_NOT_FOUND = -32601
_INVALID_PARAMS = -32602


class InvalidMcpMessage(ProtocolError):
    """A JSON-RPC message we cannot act on; ``response`` is the JSON-RPC error answering it."""

    def __init__(self, message: str, response: JsonObject):
        super().__init__(message)
        self.response = response


class JsonRpcRequest(msgspec.Struct, frozen=True):
    method: str
    id: int | str | None = None
    params: JsonObject = msgspec.field(default_factory=dict)
    jsonrpc: str = "2.0"


class ToolCallParams(msgspec.Struct, frozen=True):
    name: str
    arguments: JsonObject = msgspec.field(default_factory=dict)
    meta: JsonObject = msgspec.field(default_factory=dict, name="_meta")


class _McpTool(msgspec.Struct, frozen=True):
    name: str
    description: str
    inputSchema: JsonObject


class McpServer:
    """Answers the MCP methods that need no decision; recognises ``tools/call``."""

    def __init__(self, tools: tuple[ToolSpec, ...]):
        self._tools = [_McpTool(t.name, t.description, t.input_schema) for t in tools]

    @staticmethod
    def parse(message: JsonObject) -> JsonRpcRequest:
        """The request in ``message``; ``InvalidMcpMessage`` (-32600) when it is not one."""
        try:
            return msgspec.convert(message, JsonRpcRequest)
        except msgspec.ValidationError as exc:
            raw_id = message.get("id")
            request_id = raw_id if isinstance(raw_id, int | str) else None
            raise _invalid(request_id, _INVALID_REQUEST, f"Invalid request: {exc}") from exc

    def answer(self, request: JsonRpcRequest) -> JsonObject:
        """The JSON-RPC response to any method except ``tools/call``."""
        if request.method == "initialize":
            return _result(
                request,
                {
                    "protocolVersion": request.params.get("protocolVersion", _DEFAULT_PROTOCOL),
                    "capabilities": {"tools": {"listChanged": False}},
                    "serverInfo": {"name": OWN_MCP_SERVER, "version": __version__},
                },
            )
        if request.method.startswith("notifications/"):
            return {"jsonrpc": "2.0", "result": {}}
        if request.method == "tools/list":
            return _result(request, {"tools": msgspec.to_builtins(self._tools)})
        if request.method == "ping":
            return _result(request, {})
        return _error(request.id, _METHOD_NOT_FOUND, f"Method not found: {request.method}")

    @staticmethod
    def call_params(request: JsonRpcRequest) -> ToolCallParams:
        """The params of a ``tools/call``; ``InvalidMcpMessage`` (-32602) when malformed."""
        try:
            return msgspec.convert(request.params, ToolCallParams)
        except msgspec.ValidationError as exc:
            raise _invalid(request.id, _INVALID_PARAMS, f"Invalid params: {exc}") from exc

    @staticmethod
    def call_result(request: JsonRpcRequest, outcome: ToolOutcome) -> JsonObject:
        return _result(
            request, {"content": _mcp_content(outcome.content), "isError": outcome.is_error}
        )


def _result(request: JsonRpcRequest, result: JsonObject) -> JsonObject:
    return {"jsonrpc": "2.0", "id": request.id, "result": result}


def _error(request_id: int | str | None, code: int, message: str) -> JsonObject:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def _invalid(request_id: int | str | None, code: int, message: str) -> InvalidMcpMessage:
    return InvalidMcpMessage(message, _error(request_id, code, message))


def _mcp_content(content: str | list[ContentBlock]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    out: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, TextBlock):
            out.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock) and block.source.get("type") == "base64":
            out.append(
                {
                    "type": "image",
                    "data": block.source.get("data", ""),
                    "mimeType": block.source.get("media_type", "image/png"),
                }
            )
        else:
            out.append({"type": "text", "text": msgspec.json.encode(block).decode()})
    return out
