"""Conversation: history, lifecycle and the public API; the turn loops live in ``_api_turns``
(the library runs the tools) and ``_cli_turns`` (the CLI does).

A turn is one ``send()``: it yields events and always ends with a ``Result``. A failed turn ends
with ``Result(is_error=True)`` carrying the text produced so far; ``ask()`` raises the matching
exception instead. A turn left early (``break``, cancellation, a new ``send()``) is finished in
the background of the next call: the API stream is closed, the CLI turn is interrupted and drained
to its result, so nothing of it leaks into the next turn.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from types import TracebackType
from typing import Any

import anyio

from ._api_turns import ApiTurns
from ._cli_turns import CliTurns
from ._config import Config
from ._events import (
    ContentBlock,
    Event,
    Message,
    PermissionRequest,
    Result,
    SessionStarted,
)
from ._exceptions import (
    ClaudeError,
)
from ._normalize import CliNormalizer
from ._permissions import Ask, Decision, Policy
from ._session import SavedConversation, read_saved, write_saved
from ._toolhost import ToolHost
from ._tools import Tool
from ._turn import Reply, Turn, exception_from_result
from .backends._protocol import (
    Backend,
    SessionSpec,
)

__all__ = ["Conversation", "Reply", "Turn", "exception_from_result"]


class Conversation(ApiTurns, CliTurns):
    """A multi-turn conversation over any backend. Use as an async context manager."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        backend: Backend | str | None = None,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        policy: Policy | None = None,
    ):
        self.config = config if config is not None else Config.load()
        self._backend_arg = backend
        self.host = ToolHost(tools, policy)
        self.backend: Backend | None = None
        self.history: list[Message] = []
        self.session_id: str | None = self.config.session_id or self.config.resume
        self._cli = CliNormalizer(self.host.normalize)
        self._current: Turn | None = None
        self._lock = anyio.Lock()
        self._pending: dict[str, Decision | None] = {}
        self._announced: SessionStarted | None = None
        self._interrupt_requested = False
        self._broken: str | None = None

    async def __aenter__(self) -> Conversation:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        if self.backend is not None:
            return
        from .backends import resolve_backend

        backend = resolve_backend(self.config, self._backend_arg)
        await backend.open(self._session_spec())
        self.backend = backend

    async def aclose(self) -> None:
        """Finish any running turn, then close the backend (both steps survive cancellation)."""
        if self._current is not None:
            await self._current.aclose()
        if self.backend is not None:
            backend, self.backend = self.backend, None
            await backend.aclose()

    def _session_spec(self) -> SessionSpec:
        cfg = self.config
        return SessionSpec(
            model=cfg.model,
            max_tokens=cfg.max_tokens,
            system_prompt=cfg.system_prompt,
            append_system_prompt=cfg.append_system_prompt,
            max_turns=cfg.max_turns,
            permission_mode=cfg.permission_mode,
            cwd=cfg.cwd,
            tools=self.host.specs,
            session_id=cfg.session_id,
            resume=cfg.resume,
            fork_session=cfg.fork_session,
            env=cfg.env,
            extra_args=cfg.cli_args,
        )

    def send(
        self, prompt: str | list[ContentBlock], *, on_text: Callable[[str], object] | None = None
    ) -> Turn:
        """Start a turn; iterate the returned ``Turn`` for its events."""
        return Turn(self, prompt, on_text)

    async def ask(self, prompt: str | list[ContentBlock]) -> Reply:
        """Run a turn to completion and return its ``Reply``; raise if the turn failed."""
        turn = self.send(prompt)
        events = [event async for event in turn]
        assert turn.result is not None
        turn.raise_for_error()
        message = next((m for m in reversed(self.history) if m.role == "assistant"), None)
        return Reply(turn.result.text, message, turn.result, events)

    def respond(self, request: PermissionRequest, decision: Decision) -> None:
        """Answer a ``PermissionRequest`` (before asking for the next event)."""
        if request.request_id not in self._pending:
            raise ClaudeError(
                f"permission request {request.request_id} for {request.name} is not waiting "
                "for an answer (answer it before iterating further)"
            )
        if isinstance(decision, Ask):
            raise ClaudeError("respond() needs Allow(...) or Deny(...), not Ask()")
        self._pending[request.request_id] = decision

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save this conversation to a JSON file; continue it later with ``restore()``.

        An API conversation is saved with its whole history; a CLI conversation by its session
        id (the CLI keeps the history itself and resumes it).
        """
        name = self.backend.name if self.backend is not None else self.config.backend
        write_saved(
            path,
            SavedConversation(
                backend=name,
                session_id=self.session_id,
                model=self.config.model,
                history=list(self.history),
            ),
        )

    @classmethod
    def restore(
        cls,
        path: str | os.PathLike[str],
        config: Config | None = None,
        *,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        policy: Policy | None = None,
    ) -> Conversation:
        """A conversation continuing one saved with ``save()`` (open it with ``async with``)."""
        saved = read_saved(path)
        config = config if config is not None else Config.load()
        if saved.backend == "cli":
            config = config.replace(backend="cli", resume=saved.session_id)
        elif config.backend == "auto":
            config = config.replace(backend=saved.backend)
        conversation = cls(config, tools=tools, policy=policy)
        if saved.backend != "cli":
            conversation.history = list(saved.history)
            conversation.session_id = saved.session_id
        return conversation

    async def set_model(self, model: str | None) -> None:
        """Use another model from the next request on (``None``: the backend's default)."""
        self.config = self.config.replace(model=model)
        setter = getattr(self.backend, "set_model", None)
        if setter is not None:
            await setter(model)

    async def set_permission_mode(self, mode: str) -> None:
        """Change the CLI's permission mode (and the config) for the following turns."""
        self.config = self.config.replace(permission_mode=mode)
        setter = getattr(self.backend, "set_permission_mode", None)
        if setter is not None:
            await setter(mode)

    async def interrupt(self) -> None:
        """Stop the running turn; it ends with an error Result and the conversation stays usable."""
        self._interrupt_requested = True
        if self.backend is not None:
            await self.backend.interrupt()

    async def _begin(self, turn: Turn) -> None:
        if self.backend is None:
            raise ClaudeError(
                "the conversation is not open: use `async with Conversation(...) as conv:` "
                "(or `await conv.open()` and later `await conv.aclose()`)"
            )
        if self._current is not None and self._current is not turn:
            await self._current.aclose()
        if self._broken is not None:
            raise ClaudeError(f"{self._broken}; open a new Conversation to go on")
        self._current = turn
        self._interrupt_requested = False

    async def _run(self, turn: Turn, prompt: str | list[ContentBlock]) -> AsyncIterator[Event]:
        async with self._lock:
            assert self.backend is not None
            runner = self._run_cli if self.backend.drives_tool_loop else self._run_api
            # aclosing: a turn left early must finish (drain the CLI, repair the history) now,
            # not whenever the inner generator happens to be collected.
            async with aclosing(runner(turn, prompt)) as events:
                async for event in events:
                    kind = type(event)  # by identity: cheaper than two isinstance misses
                    if kind is SessionStarted and isinstance(event, SessionStarted):
                        if event == self._announced:
                            continue
                        self._announced = event
                        self.session_id = event.session_id or self.session_id
                    elif kind is Result and isinstance(event, Result):
                        turn.result = event
                    yield event
