"""``claude-unified repl``: a multi-turn conversation on the terminal.

Replies stream as they arrive. When the policy says Ask, the person at the terminal answers.
Ctrl-C during a turn interrupts that turn and returns to the prompt; at the prompt, Ctrl-D (end
of input) or ``/exit`` leaves.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Sequence

import anyio
import msgspec

from .._config import Config
from .._conversation import Conversation
from .._events import Event, PermissionRequest
from .._permissions import Allow, Deny, Policy
from .._tools import Tool

__all__ = ["run_repl"]

_EXIT_WORDS = frozenset({"/exit", "/quit"})


async def _read_line(prompt: str) -> str | None:
    """One line from stdin without blocking the event loop; ``None`` at end of input."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = await anyio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
    return line.rstrip("\n") if line else None


async def _answer(request: PermissionRequest) -> Allow | Deny:
    shown = msgspec.json.encode(request.input).decode()[:200]
    answer = await _read_line(f"Allow {request.name} {shown}? [y/N] ")
    if answer is not None and answer.strip().lower() in ("y", "yes"):
        return Allow()
    return Deny("denied at the terminal")


async def _interrupt_on_ctrl_c(conv: Conversation, task_status: anyio.abc.TaskStatus[None]) -> None:
    with anyio.open_signal_receiver(signal.SIGINT) as signals:
        task_status.started()
        async for _ in signals:
            sys.stderr.write("\n[interrupting]\n")
            await conv.interrupt()


async def _turn(conv: Conversation, prompt: str, printer: Callable[[Event], None]) -> None:
    async with anyio.create_task_group() as tg:
        await tg.start(_interrupt_on_ctrl_c, conv)
        async for event in conv.send(prompt):
            printer(event)
            if isinstance(event, PermissionRequest):
                conv.respond(event, await _answer(event))
        tg.cancel_scope.cancel()


async def run_repl(
    config: Config,
    tools: Sequence[Tool],
    policy: Policy | None,
    printer: Callable[[Event], None],
) -> int:
    async with Conversation(config, tools=tools, policy=policy) as conv:
        while (line := await _read_line("> ")) is not None:
            if line.strip() in _EXIT_WORDS:
                break
            if line.strip():
                await _turn(conv, line, printer)
    return 0
