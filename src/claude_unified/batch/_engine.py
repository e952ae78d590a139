"""How the items of a batch run, depending on the backend the config resolves to.

- the Messages API: one ``httpx.AsyncClient`` (one connection pool, one TLS session per
  connection) serves every item. Each item gets its own ``ApiBackend`` built with ``client=``,
  rather than all items sharing one opened backend, because an ``ApiBackend`` holds per-exchange
  state (the read scope that ``interrupt()`` cancels) and closes what it owns in ``aclose()``;
  a backend per item keeps both per item while the pool is shared;
- the Claude Code CLI: a pool of warm processes, each reset between items (``_cli_pool``);
- anything else (fakes, entry points): a fresh ``Conversation`` per item.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, Self

import anyio

from .._config import Config
from .._events import Event
from .._hooks import HookSet
from ._types import BatchItem, ItemSetup, item_config

if TYPE_CHECKING:
    import httpx

    from ..backends._protocol import Backend

__all__ = ["CLI_CONCURRENCY", "DEFAULT_CONCURRENCY", "Engine", "engine_for", "item_config"]

DEFAULT_CONCURRENCY = 16
"""Items in flight on the API path (and for other non-CLI backends) unless told otherwise."""
CLI_CONCURRENCY = min(2, os.cpu_count() or 1)
"""A CLI process takes ~200 MB and most of a core while it starts: two at once on 2 cores."""


class Engine(Protocol):
    """How the items of one batch run: each as one fresh conversation."""

    via: str
    processes_started: int

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def turn(self, item: BatchItem, on_event: Callable[[Event], None]) -> None:
        """Run ``item`` as one fresh conversation, passing each event to ``on_event``."""

    def finish(self) -> None:
        """No more items will come: stop preparing for them."""


class _ConversationEngine:
    """A fresh ``Conversation`` per item; on the API path all of them share one HTTP client."""

    processes_started = 0

    def __init__(
        self,
        config: Config,
        setup: ItemSetup,
        *,
        via: str,
        client: httpx.AsyncClient | None = None,
    ):
        self.via = via
        self._config = config
        self._setup = setup
        self._client = client

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            with anyio.CancelScope(shield=True):
                await self._client.aclose()

    async def turn(self, item: BatchItem, on_event: Callable[[Event], None]) -> None:
        config = item_config(self._config, item)
        backend: Backend | None = None
        if self._client is not None:
            from ..backends.api import ApiBackend

            backend = ApiBackend(config, client=self._client)
        conversation = self._setup.conversation(config, backend)
        # the turn is closed by this task even when it is cancelled
        async with conversation, conversation.send(item.prompt) as turn:
            async for event in turn:
                on_event(event)

    def finish(self) -> None:
        """Nothing is prepared ahead on this path."""


def engine_for(config: Config, concurrency: int | None, setup: ItemSetup) -> tuple[Engine, int]:
    """The engine for the backend ``config`` resolves to, and the concurrency to use."""
    from ..backends import resolve_backend
    from ..backends.api import ApiBackend
    from ..backends.cli import CliBackend

    probe = resolve_backend(config)
    if not probe.drives_tool_loop:  # before any item runs: the same refusal for every one
        HookSet(setup.hooks).refuse_cli_only(probe.name)
    if isinstance(probe, CliBackend):
        from ._cli_pool import CliPool

        size = concurrency or CLI_CONCURRENCY
        return CliPool(config, size, setup), size
    size = concurrency or DEFAULT_CONCURRENCY
    if isinstance(probe, ApiBackend):
        from ..backends._http import make_client

        client = make_client(config)
        return _ConversationEngine(config, setup, via="api", client=client), size
    return _ConversationEngine(config, setup, via=probe.name), size
