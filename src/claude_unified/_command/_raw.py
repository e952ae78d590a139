"""Command-line helpers that talk to a backend directly, below the Conversation layer."""

from __future__ import annotations

import sys
import uuid

import msgspec

from .._config import Config
from .._events import Message
from ..backends import resolve_backend
from ..backends._protocol import (
    Exchange,
    HookAnswer,
    HookQuery,
    HookRegistration,
    PermissionAnswer,
    PermissionQuery,
    SessionSpec,
    ToolInvocation,
    ToolOutcome,
)

__all__ = ["count_tokens", "print_raw_frames"]

_encoder = msgspec.json.Encoder()
_RAW_DENIAL = "raw frame mode answers no permission requests"


def _exchange(config: Config, prompt: str) -> Exchange:
    return Exchange(
        prompt=prompt,
        history=(Message(role="user", content=prompt),),
        turn_id=str(uuid.uuid4()),
        model=config.model,
        max_tokens=config.max_tokens,
        system=config.system_prompt,
        stream=config.stream,
    )


async def print_raw_frames(config: Config, prompt: str) -> int:
    """Print each wire frame of one exchange as ``{"frame": <kind>, "value": <frame>}``."""
    backend = resolve_backend(config)
    # PreToolUse is registered so that the CLI's read-only tools are refused too
    gate = HookRegistration("PreToolUse", None, 60.0, "hook_0")
    spec = SessionSpec(model=config.model, cwd=config.cwd, env=config.env, hooks=(gate,))
    await backend.open(spec)
    try:
        async for frame in backend.exchange(_exchange(config, prompt)):
            if isinstance(frame, PermissionQuery):
                await frame.reply(PermissionAnswer("deny", message=_RAW_DENIAL))
                value: object = {"tool_use_id": frame.tool_use_id, "name": frame.name}
            elif isinstance(frame, ToolInvocation):
                await frame.reply(ToolOutcome(_RAW_DENIAL, is_error=True))
                value = {"tool_use_id": frame.tool_use_id, "name": frame.name}
            elif isinstance(frame, HookQuery):
                event = str(frame.input.get("hook_event_name", ""))
                deny = "deny" if event == "PreToolUse" else None
                await frame.reply(HookAnswer(event=event, permission=deny, reason=_RAW_DENIAL))
                value = {"callback_id": frame.callback_id, "input": frame.input}
            else:
                value = frame
            line = _encoder.encode({"frame": type(frame).__name__, "value": value})
            sys.stdout.write(line.decode() + "\n")
            sys.stdout.flush()
    finally:
        await backend.aclose()
    return 0


async def count_tokens(config: Config, prompt: str) -> int:
    """Input tokens of ``prompt`` as the API counts them (the CLI backend raises)."""
    from .._chat import ChatClient

    async with ChatClient(config.replace(record_path=None)) as chat:  # a count is not a session
        return await chat.count_tokens(prompt)
