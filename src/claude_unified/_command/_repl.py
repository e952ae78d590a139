"""``claude-unified repl``: a multi-turn conversation on the terminal.

Replies stream as they arrive. When the policy says Ask, the person at the terminal answers.
Ctrl-C during a turn interrupts that turn and returns to the prompt; at the prompt, Ctrl-C,
Ctrl-D (end of input) or ``/exit`` leaves. On a terminal, lines are read with ``readline``
(line editing, and a history kept in ``$XDG_STATE_HOME/claude-unified/history``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.lowlevel
import msgspec

from .._config import Config
from .._conversation import Conversation
from .._events import Event, PermissionRequest
from .._permissions import Allow, Deny, Policy
from .._tools import Tool
from .._version import __version__

__all__ = ["history_path", "run_repl"]

_EXIT_WORDS = frozenset({"/exit", "/quit"})
_HISTORY_LINES = 1000


def history_path() -> Path:
    """Where the repl keeps its history: ``$XDG_STATE_HOME/claude-unified/history``."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "claude-unified" / "history"


@contextlib.contextmanager
def _line_editing() -> Iterator[bool]:
    """On a terminal: readline with the history file, saved on the way out, and the terminal's
    settings put back however the repl ends. Yields whether ``input()`` is the reader."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        yield False
        return
    try:
        import readline
        import termios
    except ImportError:  # no readline on this platform: plain lines
        yield False
        return
    saved = termios.tcgetattr(sys.stdin.fileno())
    path = history_path()
    with contextlib.suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(_HISTORY_LINES)
    try:
        yield True
    finally:
        termios.tcsetattr(sys.stdin.fileno(), termios.TCSANOW, saved)
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)


class _Lines:
    """Reads lines on a daemon thread, so that a prompt left waiting (Ctrl-C, the end of the
    conversation) never keeps the process alive, and the event loop never blocks on input."""

    def __init__(self, use_input: bool):
        self._use_input = use_input

    def _read(self, prompt: str) -> str | None:
        if self._use_input:
            try:
                return input(prompt)
            except EOFError:
                return None
        sys.stderr.write(prompt)
        sys.stderr.flush()
        line = sys.stdin.readline()
        return line.rstrip("\n") if line else None

    async def read(self, prompt: str) -> str | None:
        """One line (without its newline), or ``None`` at the end of input."""
        done = anyio.Event()
        box: list[str | None] = []
        token = anyio.lowlevel.current_token()

        def deliver(line: str | None) -> None:
            box.append(line)
            done.set()

        def work() -> None:
            line = self._read(prompt)
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                anyio.from_thread.run_sync(deliver, line, token=token)

        threading.Thread(target=work, name="claude-unified-repl-input", daemon=True).start()
        await done.wait()
        return box[0]


async def _answer(lines: _Lines, request: PermissionRequest) -> Allow | Deny:
    shown = msgspec.json.encode(request.input).decode()[:200]
    answer = await lines.read(f"Allow {request.name} {shown}? [y/N] ")
    if answer is not None and answer.strip().lower() in ("y", "yes"):
        return Allow()
    return Deny("denied at the terminal")


async def _interrupt_on_ctrl_c(conv: Conversation, task_status: anyio.abc.TaskStatus[None]) -> None:
    with anyio.open_signal_receiver(signal.SIGINT) as signals:
        task_status.started()
        async for _ in signals:
            sys.stderr.write("\n[interrupting]\n")
            await conv.interrupt()


async def _turn(
    conv: Conversation, lines: _Lines, prompt: str, printer: Callable[[Event], None]
) -> None:
    async with anyio.create_task_group() as tg:
        await tg.start(_interrupt_on_ctrl_c, conv)
        async for event in conv.send(prompt):
            printer(event)
            if isinstance(event, PermissionRequest):
                conv.respond(event, await _answer(lines, event))
        tg.cancel_scope.cancel()


async def _prompt(lines: _Lines) -> str | None:
    """The next line at the prompt; ``None`` on Ctrl-D, Ctrl-C or ``/exit``."""
    line: str | None = None
    async with anyio.create_task_group() as tg:

        async def read() -> None:
            nonlocal line
            line = await lines.read("> ")
            tg.cancel_scope.cancel()

        tg.start_soon(read)
        with anyio.open_signal_receiver(signal.SIGINT) as signals:
            async for _ in signals:
                tg.cancel_scope.cancel()
                break
    if line is None:  # Ctrl-D or Ctrl-C: leave the shell's prompt on a line of its own
        sys.stderr.write("\n")
        return None
    return None if line.strip() in _EXIT_WORDS else line


def _banner(conv: Conversation, config: Config) -> str:
    backend = conv.backend.name if conv.backend is not None else config.backend
    model = config.model or getattr(conv.backend, "default_model", None) or "the CLI's default"
    return (
        f"claude-unified {__version__} repl: backend {backend}, model {model} "
        "(Ctrl-D or /exit leaves)\n"
    )


async def run_repl(
    config: Config,
    tools: Sequence[Tool],
    policy: Policy | None,
    printer: Callable[[Event], None],
) -> int:
    """Run the repl until the person at the terminal leaves; the exit code is 0."""
    with _line_editing() as use_input:
        lines = _Lines(use_input)
        async with Conversation(config, tools=tools, policy=policy) as conv:
            sys.stderr.write(_banner(conv, config))
            sys.stderr.flush()
            while (line := await _prompt(lines)) is not None:
                if line.strip():
                    await _turn(conv, lines, line, printer)
    return 0
