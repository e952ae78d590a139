"""``claude-unified demo``: a scripted conversation against the built-in fake Messages API.

It needs no credentials and no CLI: the model's side is played by ``FakeAnthropicServer`` on
loopback, and everything else — HTTP, streaming, the tool loop, the permission policy — is the
real library.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from .._config import Config
from .._conversation import Conversation
from .._events import Event, Result
from .._permissions import allow_list, deny_list, first_match
from .._tools import tool

__all__ = ["run_demo"]

_DEMO_KEY = "sk-demo-not-a-real-key"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def run_demo(printer: Callable[[Event], None]) -> int:
    """Play two turns: one tool call the policy allows, one it denies."""
    from ..testing import FakeAnthropicServer, reply, tool_call

    async with FakeAnthropicServer() as server:
        server.queue(
            tool_call("add", {"a": 2, "b": 3}, text="Let me add those."),
            reply("2 + 3 = 5."),
            tool_call("Write", {"file_path": "note.txt", "content": "hi"}, text="I'll save it."),
            reply("I was not allowed to write the file, so nothing was saved."),
        )
        config = Config(backend="api", api_key=_DEMO_KEY, base_url=server.url)
        policy = first_match(
            allow_list(["add"]), deny_list(["Write"], message="the demo writes no files")
        )
        failed = False
        async with Conversation(config, tools=[add], policy=policy) as conv:
            for prompt in ("What is 2 + 3? Use the add tool.", "Save a note saying hi."):
                sys.stderr.write(f"\n> {prompt}\n")
                async for event in conv.send(prompt):
                    printer(event)
                    if isinstance(event, Result):
                        failed = failed or event.is_error
    return 1 if failed else 0
