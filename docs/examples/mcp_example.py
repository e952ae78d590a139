"""External MCP servers: their tools, named mcp__<server>__<tool>, on either backend."""

from __future__ import annotations

import claude_unified as cu


async def main(config: cu.Config, command: str, args: list[str]) -> str:
    config = config.replace(
        mcp_servers={
            "echo": {"command": command, "args": args, "env": {"ECHO_PREFIX": "> "}},
            # an HTTP server: {"url": "https://mcp.example.com/mcp",
            #                  "headers": {"Authorization": "Bearer ..."}}
        }
    )
    # a server's tools are asked for by default, like any tool you did not register yourself
    policy = cu.allow_list(["mcp__echo__echo"])
    async with cu.Conversation(config, policy=policy) as conv:
        reply = await conv.ask("Say hi through the echo server.")
        for event in reply.events:
            if isinstance(event, cu.ToolResult):
                print(event.name, "->", event.content)  # mcp__echo__echo -> {"result":"> hi"}
        return reply.text
