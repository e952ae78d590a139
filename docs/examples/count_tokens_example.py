"""Token counting before sending (API backend)."""

from __future__ import annotations

import claude_unified as cu


async def main(config: cu.Config) -> tuple[int, int]:
    async with cu.ChatClient(config) as chat:
        one_call = await chat.count_tokens("How long is this prompt?")
    async with cu.Conversation(config) as conv:
        await conv.ask("Hello")
        next_request = await conv.count_tokens("And the next question?")
    return one_call, next_request
