"""Request settings: defaults in the Config, overrides per call."""

from __future__ import annotations

import claude_unified as cu


async def main(config: cu.Config) -> list[str]:
    config = config.replace(
        temperature=0.2,
        stop_sequences=["END"],
        thinking=cu.ThinkingConfig(budget_tokens=4000),
        metadata={"user_id": "user-123"},
    )
    answers = []
    async with cu.ChatClient(config) as chat:
        reply = await chat.chat("Name a colour.")  # the config's settings
        answers.append(reply.text)
        reply = await chat.chat("Name a fruit.", temperature=1.0, thinking=None)  # this call only
        answers.append(reply.text)
    async with cu.Conversation(config) as conv:
        reply = await conv.ask("Pick a tool.", tool_choice="auto", effort="low")
        answers.append(reply.text)
    return answers
