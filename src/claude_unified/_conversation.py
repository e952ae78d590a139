"""Conversation: history, lifecycle and the public API; the turn loops live in ``_api_turns``
(the library runs the tools) and ``_cli_turns`` (the CLI does).

A turn is one ``send()``: it yields events and always ends with a ``Result``. A failed turn ends
with ``Result(is_error=True)`` carrying the text produced so far; ``ask()`` raises the matching
exception instead. A turn left early (``break``, cancellation, a new ``send()``) is finished in
the background of the next call: the API stream is closed, the CLI turn is interrupted and drained
to its result, so nothing of it leaks into the next turn. A turn started while another task is
still waiting for the running turn's events fails at once with ``ClaudeError``: a conversation
runs one turn at a time.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from types import TracebackType
from typing import Any, TypedDict, TypeVar, overload

import anyio
import msgspec
from typing_extensions import Unpack

from ._api_turns import ApiTurns
from ._cli_turns import CliTurns
from ._config import Config
from ._events import (
    ContentBlock,
    Message,
    PermissionRequest,
    Result,
    SessionStarted,
)
from ._exceptions import (
    ClaudeError,
    ConfigError,
)
from ._hooks import Hook, HookSet
from ._mcp_client import McpConnections
from ._normalize import CliNormalizer
from ._output import output_schema, parse_output
from ._permissions import Ask, Decision, Policy, allow_list, deny_list, first_match
from ._session import SavedConversation, read_saved, write_saved
from ._settings import (
    REQUEST_SETTING_NAMES,
    Effort,
    RequestSettings,
    ServiceTier,
    ThinkingSetting,
    reject_unknown,
)
from ._toolhost import ToolHost
from ._tools import Tool
from ._turn import Reply, Streamed, Turn, Verdict, exception_from_result
from .backends._protocol import (
    Backend,
    HookRegistration,
    SessionSpec,
)

__all__ = ["Conversation", "Reply", "RequestOptions", "Turn", "exception_from_result"]

T = TypeVar("T")


class RequestOptions(TypedDict, total=False):
    """Request settings one turn or call may override (see ``Config`` for each)."""

    temperature: float | None
    top_p: float | None
    top_k: int | None
    stop_sequences: tuple[str, ...] | list[str]
    tool_choice: str | None
    thinking: ThinkingSetting
    effort: Effort | None
    metadata: dict[str, str] | None
    service_tier: ServiceTier | None
    extra_body: dict[str, Any]
    max_budget_usd: float | None


class Conversation(ApiTurns, CliTurns):
    """A multi-turn conversation over any backend. Use as an async context manager."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        backend: Backend | str | None = None,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        policy: Policy | None = None,
        hooks: Sequence[Hook] = (),
    ):
        self.config = config if config is not None else Config.load()
        self._backend_arg = backend
        self.host = ToolHost(tools, policy)
        self.host.policy = _with_rules(self.config, self.host.policy)
        self.hooks = HookSet(hooks)
        self._hook_registrations = tuple(
            HookRegistration(event, matcher, timeout, f"hook_{i}")
            for i, (event, matcher, timeout) in enumerate(self.hooks.registrations())
        )
        self._hook_matchers = {r.callback_id: r.matcher for r in self._hook_registrations}
        self._screened: dict[str, Verdict] = {}
        self.backend: Backend | None = None
        self.history: list[Message] = []
        self.session_id: str | None = self.config.session_id or self.config.resume
        self._cli = CliNormalizer(self.host.normalize)
        self._mcp: McpConnections | None = None  # external MCP servers, on the API path
        self._mcp_tools: list[str] = []
        self._current: Turn | None = None
        self._lock = anyio.Lock()
        self._pending: dict[str, Decision | None] = {}
        self._announced: SessionStarted | None = None
        self._interrupt_requested = False
        self._broken: str | None = None
        self._turn_settings = RequestSettings.of(self.config)
        self.output_type: type[Any] | None = None
        """The structured output every turn asks for, when it is fixed at open (the CLI takes
        its JSON schema when its process starts: ``ChatClient`` sets it for a call)."""
        self.spent_usd = 0.0
        """What this conversation's API requests have cost so far (``max_budget_usd``)."""

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
        """Start the backend (for the CLI, the process); ``async with`` does this for you."""
        if self.backend is not None:
            return
        from .backends import resolve_backend

        backend = resolve_backend(self.config, self._backend_arg)
        if not backend.drives_tool_loop:
            try:
                self.hooks.refuse_cli_only(backend.name)
            except ConfigError:
                await backend.aclose()
                raise
        if self.config.mcp_servers and not backend.drives_tool_loop:
            await self._connect_mcp()  # the CLI connects to them itself
        try:
            await backend.open(self._session_spec())
        except BaseException:
            await self._close_mcp()
            raise
        self.backend = backend

    async def aclose(self) -> None:
        """Finish any running turn, then close the backend (both steps survive cancellation).

        A turn that another task is iterating right now cannot be finished from here: closing
        the backend under it ends it with an error ``Result``.
        """
        if self._current is not None and not self._current.busy:
            await self._current.aclose()
        if self.backend is not None:
            backend, self.backend = self.backend, None
            try:
                await backend.aclose()
            finally:
                await self._close_mcp()

    async def _connect_mcp(self) -> None:
        connections = McpConnections(self.config.mcp_servers)
        tools = await connections.open()
        self._mcp, self._mcp_tools = connections, [t.name for t in tools]
        self.host.add_remote(tools)

    async def _close_mcp(self) -> None:
        if self._mcp is not None:
            connections, self._mcp = self._mcp, None
            for name in self._mcp_tools:
                del self.host.tools[name]
            await connections.aclose()

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
            settings=RequestSettings.of(cfg, _schema_of(self.output_type)),
            hooks=self._hook_registrations,
        )

    def send(
        self,
        prompt: str | list[ContentBlock],
        *,
        on_text: Callable[[str], object] | None = None,
        output: type[Any] | None = None,
        **options: Unpack[RequestOptions],
    ) -> Turn:
        """Start a turn; iterate the returned ``Turn`` for its events.

        ``options`` override the config's request settings for this turn; ``output`` asks for
        a structured reply matching that type's schema (``ask()`` validates it).
        """
        return Turn(self, prompt, on_text, self._settings_for(options, output))

    @overload
    async def ask(
        self,
        prompt: str | list[ContentBlock],
        *,
        output: None = None,
        **options: Unpack[RequestOptions],
    ) -> Reply: ...

    @overload
    async def ask(
        self,
        prompt: str | list[ContentBlock],
        *,
        output: type[T],
        **options: Unpack[RequestOptions],
    ) -> Reply[T]: ...

    async def ask(
        self,
        prompt: str | list[ContentBlock],
        *,
        output: type[Any] | None = None,
        **options: Unpack[RequestOptions],
    ) -> Reply[Any]:
        """Run a turn to completion and return its ``Reply``; raise if the turn failed.

        With ``output=T`` (a msgspec Struct, dataclass or TypedDict) the reply is requested in
        that shape and ``reply.output`` is it, validated; ``OutputValidationError`` otherwise.
        """
        turn = self.send(prompt, output=output, **options)
        events = [event async for event in turn]
        assert turn.result is not None
        turn.raise_for_error()
        message = next((m for m in reversed(self.history) if m.role == "assistant"), None)
        text = turn.result.text
        parsed = parse_output(text, output) if output is not None else None
        return Reply(text, message, turn.result, events, parsed)

    async def count_tokens(self, prompt: str | list[ContentBlock] | None = None) -> int:
        """The input tokens of the next request: the history (plus ``prompt`` when given), the
        tools and the system prompt, counted by the API's free ``count_tokens`` endpoint.

        API backend only: the CLI builds its own requests, so there is nothing to count here.
        """
        if self.backend is None:
            raise ClaudeError("the conversation is not open: use `async with Conversation(...)`")
        counter = getattr(self.backend, "count_tokens", None)
        if counter is None:
            raise ClaudeError(
                f"count_tokens needs the API backend; the {self.backend.name} backend builds "
                "its own requests, so their tokens cannot be counted beforehand"
            )
        history = list(self.history)
        if prompt is not None:
            history.append(Message(role="user", content=prompt))
        if not history:
            raise ClaudeError("nothing to count yet: pass a prompt, or count after a turn")
        exchange = msgspec.structs.replace(
            self._exchange(history[-1].content, "count_tokens"), history=tuple(history)
        )
        count: int = await counter(exchange)
        return count

    def _settings_for(self, options: RequestOptions, output: type[Any] | None) -> RequestSettings:
        reject_unknown(options, REQUEST_SETTING_NAMES, "request option")
        config = self.config.with_changes(options) if options else self.config
        return RequestSettings.of(config, _schema_of(output))

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
        hooks: Sequence[Hook] = (),
    ) -> Conversation:
        """A conversation continuing one saved with ``save()`` (open it with ``async with``)."""
        saved = read_saved(path)
        config = config if config is not None else Config.load()
        if saved.backend == "cli":
            config = config.replace(backend="cli", resume=saved.session_id)
        elif config.backend == "auto":
            config = config.replace(backend=saved.backend)
        conversation = cls(config, tools=tools, policy=policy, hooks=hooks)
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
        self.config = self.config.with_changes({"permission_mode": mode})
        setter = getattr(self.backend, "set_permission_mode", None)
        if setter is not None:
            await setter(mode)

    async def interrupt(self) -> None:
        """Stop the running turn; it ends with an error Result and the conversation stays usable.

        On the API path a tool the library is running is stopped too (cancelled; a sync tool's
        thread is left to finish on its own, its result dropped) and answered with an error
        result, so the history stays valid."""
        self._interrupt_requested = True
        self._stop_tools()
        if self.backend is not None:
            await self.backend.interrupt()

    async def _begin(self, turn: Turn) -> None:
        if self.backend is None:
            raise ClaudeError(
                "the conversation is not open: use `async with Conversation(...) as conv:` "
                "(or `await conv.open()` and later `await conv.aclose()`)"
            )
        current = self._current
        if current is not None and current is not turn:
            if current.busy:
                raise ClaudeError(
                    "another turn is running on this conversation (in another task); one "
                    "conversation runs one turn at a time: await that turn first, or use one "
                    "Conversation per concurrent task"
                )
            await current.aclose()
        if self._broken is not None:
            raise ClaudeError(f"{self._broken}; open a new Conversation to go on")
        self._current = turn
        self._interrupt_requested = False

    async def _run(self, turn: Turn, prompt: str | list[ContentBlock]) -> AsyncIterator[Streamed]:
        async with self._lock:
            assert self.backend is not None
            runner = self._run_cli if self.backend.drives_tool_loop else self._run_api
            self._turn_settings = turn.settings
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


def _with_rules(config: Config, policy: Policy) -> Policy:
    """``disallowed_tools`` and ``allowed_tools`` ahead of the policy, on every backend."""
    if not config.allowed_tools and not config.disallowed_tools:
        return policy
    return first_match(deny_list(config.disallowed_tools), allow_list(config.allowed_tools), policy)


def _schema_of(output: type[Any] | None) -> dict[str, Any] | None:
    return output_schema(output) if output is not None else None
