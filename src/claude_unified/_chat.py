"""Stateless chat: ``ChatClient``, ``query()``, and their synchronous forms.

Every call is independent: it starts from the prompt (or the explicit message list) it is given
and keeps nothing afterwards. Over a stateless transport (the API) a client opens its backend
once, so all its calls share one connection pool, and each call is a fresh ``Conversation`` on
that open backend, seeded with the messages of the call. The CLI keeps a session per process,
so there each call runs in a fresh CLI process of its own, started and stopped by the call; an
explicit message history cannot be handed to it (``ConfigError``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Self, TypeAlias, TypeVar, cast, overload

import msgspec
from typing_extensions import Unpack

from ._config import Config, ConfigFields
from ._conversation import Conversation, Reply, RequestOptions
from ._events import ContentBlock, Event, Message
from ._exceptions import ClaudeError, ConfigError
from ._hooks import Hook, HookSet
from ._permissions import Policy
from ._settings import REQUEST_SETTING_NAMES, reject_unknown
from ._sync import SyncFacade, SyncTurn, portal
from ._tools import Tool
from .backends import resolve_backend
from .backends._protocol import Backend

__all__ = ["ChatClient", "ChatOptions", "Prompt", "SyncChatClient", "query", "query_sync"]

T = TypeVar("T")

Prompt: TypeAlias = str | Sequence[Message | Mapping[str, Any]]
"""A prompt, or an explicit message list ending with the user's message (dicts are converted)."""


class ChatOptions(RequestOptions, total=False):
    """Per-call settings. A missing ``system``/``model``/``max_tokens``/``max_budget_usd`` (or
    ``None``) keeps the client's configuration; the request settings override it as given."""

    system: str | None  # replaces Config.system_prompt (append_system_prompt still follows)
    model: str | None
    max_tokens: int | None  # sent to the API; the CLI chooses its own output limit
    max_budget_usd: float | None
    tools: Sequence[Tool | Callable[..., Any]]
    policy: Policy | None
    hooks: Sequence[Hook]  # replaces the client's hooks for this call


_CALL_FIELDS = {"system": "system_prompt", "model": "model", "max_tokens": "max_tokens"}
_CALL_FIELDS |= {"max_budget_usd": "max_budget_usd"}
_OPTION_NAMES = frozenset({*_CALL_FIELDS, *REQUEST_SETTING_NAMES, "tools", "policy", "hooks"})


class ChatClient:
    """Independent calls to Claude, with no history kept between them.

    Use as ``async with ChatClient(config) as chat:``. Calls may run concurrently on the API
    backend. On the CLI each call starts its own process (about half a second). ``hooks`` run
    in every call (a call's own ``hooks=`` option replaces them), as in a ``Conversation``.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        backend: Backend | str | None = None,
        hooks: Sequence[Hook] = (),
    ):
        self.config = config if config is not None else Config.load()
        self.hooks = tuple(hooks)
        HookSet(self.hooks)  # a wrong item fails here, not at the first call
        self._backend_arg = backend
        self._is_open = False
        self._owner: Conversation | None = None  # opened the shared backend, closes it
        self._shared: Backend | None = None  # the open backend every call uses (stateless only)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Open the backend once for all calls (a stateful backend is opened by each call)."""
        if self._is_open:
            return
        backend = resolve_backend(self.config, self._backend_arg)
        if not backend.drives_tool_loop:
            owner = Conversation(self.config, backend=backend)
            await owner.open()
            self._owner, self._shared = owner, backend
        self._is_open = True

    async def aclose(self) -> None:
        """Close the backend (idempotent); ``async with`` does this for you."""
        owner, self._owner, self._shared = self._owner, None, None
        self._is_open = False
        if owner is not None:
            await owner.aclose()

    @overload
    async def chat(
        self, prompt: Prompt, *, output: None = None, **options: Unpack[ChatOptions]
    ) -> Reply: ...

    @overload
    async def chat(
        self, prompt: Prompt, *, output: type[T], **options: Unpack[ChatOptions]
    ) -> Reply[T]: ...

    async def chat(
        self, prompt: Prompt, *, output: type[Any] | None = None, **options: Unpack[ChatOptions]
    ) -> Reply[Any]:
        """One call: its ``Reply``; raises the typed exception if the call failed.

        ``output=T`` asks for a structured reply: ``reply.output`` is a validated ``T``.
        """
        async with self._call(prompt, options, output) as (conversation, content):
            return await conversation.ask(content, output=output, **_request_options(options))

    async def stream(
        self,
        prompt: Prompt,
        *,
        on_text: Callable[[str], object] | None = None,
        **options: Unpack[ChatOptions],
    ) -> AsyncGenerator[Event, None]:
        """One call's events as they come. To leave early, iterate inside
        ``contextlib.aclosing(chat.stream(...))`` so the call is finished right there."""
        async with (
            self._call(prompt, options) as (conversation, content),
            conversation.send(content, on_text=on_text, **_request_options(options)) as turn,
        ):
            async for event in turn:
                yield event

    async def collect(self, prompt: Prompt, **options: Unpack[ChatOptions]) -> list[Event]:
        """One call's events, all of them."""
        return [event async for event in self.stream(prompt, **options)]

    async def count_tokens(self, messages: Prompt, **options: Unpack[ChatOptions]) -> int:
        """The input tokens ``messages`` would take as one call (tools and system included),
        counted by the API's free ``count_tokens`` endpoint; the CLI backend raises."""
        async with self._call(messages, options) as (conversation, content):
            return await conversation.count_tokens(content)

    @asynccontextmanager
    async def _call(
        self, prompt: Prompt, options: ChatOptions, output: type[Any] | None = None
    ) -> AsyncIterator[tuple[Conversation, str | list[ContentBlock]]]:
        """The conversation one call runs in, and the content of its prompt.

        On a backend with a process per call, the call's request settings (and output type)
        are its process's: they go into its config, so the process starts with them.
        """
        reject_unknown(options, _OPTION_NAMES, "ChatClient option")
        if not self._is_open:
            raise ClaudeError(
                "the ChatClient is not open: use `async with ChatClient(...) as chat:` "
                "(or `await chat.open()` and later `await chat.aclose()`)"
            )
        history, content = _split_prompt(prompt)
        config = _call_config(self.config, options)
        tools, policy = options.get("tools", ()), options.get("policy")
        hooks = options.get("hooks", self.hooks)
        if self._shared is not None:
            shared = self._shared
            conversation = Conversation(
                config, backend=shared, tools=tools, policy=policy, hooks=hooks
            )
            yield _on_open_backend(shared, conversation, history), content
            return
        if history:
            raise ConfigError(
                "this backend keeps its own session (the CLI does), so it cannot take an "
                "explicit message history. Pass the prompt as a str (or a one-message list), "
                "use the API backend, or continue a session with Conversation and resume.",
                field="backend",
            )
        config = config.with_changes(_request_options(options))
        conversation = Conversation(
            config, backend=self._backend_arg, tools=tools, policy=policy, hooks=hooks
        )
        conversation.output_type = output
        async with conversation:
            yield conversation, content


def _on_open_backend(
    backend: Backend, conversation: Conversation, history: list[Message]
) -> Conversation:
    """``conversation``, made for one call, put on the client's open backend, starting from
    ``history``.

    Setting ``backend`` is what makes it open (``Conversation.open()`` keeps a backend it has,
    so the checks it makes on opening are made here). It is never closed: the backend belongs
    to the client, and each call finishes its turn.
    """
    conversation.hooks.refuse_cli_only(backend.name)  # a shared backend is a stateless one
    conversation.backend = backend
    conversation.history = history
    return conversation


def _split_prompt(prompt: Prompt) -> tuple[list[Message], str | list[ContentBlock]]:
    """The messages before the last one, and the content of the last (the user's prompt)."""
    if isinstance(prompt, str):
        return [], prompt
    messages = [m if isinstance(m, Message) else msgspec.convert(dict(m), Message) for m in prompt]
    if not messages or messages[-1].role != "user":
        raise ValueError("a message list must end with a user message: it is this call's prompt")
    return messages[:-1], messages[-1].content


def _call_config(config: Config, options: ChatOptions) -> Config:
    given = {
        field: options[name]  # type: ignore[literal-required]
        for name, field in _CALL_FIELDS.items()
        if options.get(name) is not None
    }
    return config.with_changes(given) if given else config


def _request_options(options: ChatOptions) -> RequestOptions:
    """The request settings among a call's options."""
    picked = {k: v for k, v in options.items() if k in REQUEST_SETTING_NAMES}
    return cast("RequestOptions", picked)


@overload
async def query(
    prompt: Prompt,
    *,
    config: Config | None = None,
    output: None = None,
    hooks: Sequence[Hook] = (),
    **overrides: Unpack[ConfigFields],
) -> str: ...


@overload
async def query(
    prompt: Prompt,
    *,
    config: Config | None = None,
    output: type[T],
    hooks: Sequence[Hook] = (),
    **overrides: Unpack[ConfigFields],
) -> T: ...


async def query(
    prompt: Prompt,
    *,
    config: Config | None = None,
    output: type[Any] | None = None,
    hooks: Sequence[Hook] = (),
    **overrides: Unpack[ConfigFields],
) -> Any:
    """Ask once and return the answer's text, or with ``output=T`` the reply validated as a
    ``T`` (raises the typed exception if the call failed).

    ``config`` defaults to ``Config.load()``; keyword arguments override its fields.
    ``hooks`` run as in a ``Conversation``.
    """
    config = config if config is not None else Config.load()
    if overrides:
        config = config.with_changes(overrides)
    async with ChatClient(config, hooks=hooks) as chat:
        reply = await chat.chat(prompt, output=output)
    return reply.output if output is not None else reply.text


@overload
def query_sync(
    prompt: Prompt,
    *,
    config: Config | None = None,
    output: None = None,
    hooks: Sequence[Hook] = (),
    **overrides: Unpack[ConfigFields],
) -> str: ...


@overload
def query_sync(
    prompt: Prompt,
    *,
    config: Config | None = None,
    output: type[T],
    hooks: Sequence[Hook] = (),
    **overrides: Unpack[ConfigFields],
) -> T: ...


def query_sync(
    prompt: Prompt,
    *,
    config: Config | None = None,
    output: type[Any] | None = None,
    hooks: Sequence[Hook] = (),
    **overrides: Unpack[ConfigFields],
) -> Any:
    """``query()`` for synchronous code: it runs on the shared portal thread; this blocks."""
    call = partial(query, prompt, config=config, output=output, hooks=hooks, **overrides)
    return portal().call(call)


class SyncChatClient(SyncFacade):
    """``ChatClient`` for synchronous code: ``with SyncChatClient(config) as chat:``, blocking."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        backend: Backend | str | None = None,
        hooks: Sequence[Hook] = (),
    ):
        self._client = ChatClient(config, backend=backend, hooks=hooks)
        super().__init__(self._client)

    @property
    def config(self) -> Config:
        """The configuration this client uses."""
        return self._client.config

    @overload
    def chat(
        self, prompt: Prompt, *, output: None = None, **options: Unpack[ChatOptions]
    ) -> Reply: ...

    @overload
    def chat(
        self, prompt: Prompt, *, output: type[T], **options: Unpack[ChatOptions]
    ) -> Reply[T]: ...

    def chat(
        self, prompt: Prompt, *, output: type[Any] | None = None, **options: Unpack[ChatOptions]
    ) -> Reply[Any]:
        """One call: its ``Reply``; raises the typed exception if the call failed."""
        self.require_open()
        return portal().call(partial(self._client.chat, prompt, output=output, **options))

    def count_tokens(self, messages: Prompt, **options: Unpack[ChatOptions]) -> int:
        """The input tokens ``messages`` would take as one call (API backend only)."""
        self.require_open()
        return portal().call(partial(self._client.count_tokens, messages, **options))

    def stream(
        self,
        prompt: Prompt,
        *,
        on_text: Callable[[str], object] | None = None,
        **options: Unpack[ChatOptions],
    ) -> SyncTurn:
        """One call's events as they come (``on_text`` runs in the iterating thread)."""
        self.require_open()
        return SyncTurn(self._client.stream(prompt, **options), on_text)

    def collect(self, prompt: Prompt, **options: Unpack[ChatOptions]) -> list[Event]:
        """One call's events, all of them."""
        self.require_open()
        return portal().call(partial(self._client.collect, prompt, **options))
