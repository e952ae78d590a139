"""Batch jobs: many independent prompts, run concurrently, each in a fresh conversation.

``run_batch`` runs them and returns every result; ``iter_batch`` hands results over as they
complete and can be stopped gracefully; ``run_batch_sync`` blocks. One failing item never stops
the batch: it becomes a ``BatchResult`` with ``is_error=True``. Retries of one request are the
backend's own (``attempts`` counts them); rate limits slow the whole batch through one shared
``AdaptiveLimiter``. How each item runs (one shared HTTP client on the API, warm processes on
the CLI) is the business of ``_batch_engine``.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from functools import partial
from types import TracebackType
from typing import Any, Self, TypeAlias

import anyio
import msgspec
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._config import Config
from .._events import ApiRetry, Event, Result, TurnError
from .._exceptions import ClaudeError
from .._hooks import Hook
from .._permissions import Policy
from .._turn import turn_error
from ._engine import engine_for
from ._limiter import AdaptiveLimiter, Ticket
from ._types import BatchItem, BatchResult, ItemSetup, Tools, metadata_hint

__all__ = [
    "BatchRun",
    "ItemInput",
    "ResultCallback",
    "iter_batch",
    "run_batch",
    "run_batch_sync",
]

ItemInput: TypeAlias = str | BatchItem | Mapping[str, Any]
"""A prompt (its id is its index), a ``BatchItem``, or a mapping with BatchItem's fields."""

ResultCallback: TypeAlias = Callable[[BatchResult], object]
"""Called with each result as it completes; may be sync or async."""

BACKPRESSURE_STATUSES = frozenset({429, 529})
"""Statuses that slow the whole batch down (rate limited, overloaded)."""


def _to_item(raw: ItemInput, index: int) -> BatchItem | BatchResult:
    """The item, or a failed result saying why it is not one."""
    if isinstance(raw, BatchItem):
        return raw
    if isinstance(raw, str):
        return BatchItem(id=str(index), prompt=raw)
    try:
        return msgspec.convert(dict(raw) if isinstance(raw, Mapping) else raw, BatchItem)
    except msgspec.ValidationError as exc:
        item_id = raw.get("id") if isinstance(raw, Mapping) else None
        return _failure(
            str(item_id) if item_id is not None else str(index),
            TurnError(
                "invalid_item", f"item {index} is not a valid BatchItem: {metadata_hint(exc)}"
            ),
            via="input",
        )


def _failure(
    item_id: str,
    error: TurnError,
    *,
    via: str,
    duration_s: float = 0.0,
    attempts: int = 1,
    user_data: dict[str, Any] | None = None,
) -> BatchResult:
    return BatchResult(
        id=item_id,
        is_error=True,
        error=error,
        duration_s=duration_s,
        attempts=attempts,
        via=via,
        user_data=user_data,
    )


class _RetryWatch:
    """Counts an item's attempts and passes rate-limit retries on to the shared limiter."""

    def __init__(self, limiter: AdaptiveLimiter, ticket: Ticket):
        self._limiter = limiter
        self._ticket = ticket
        self.attempts = 1

    def saw(self, event: ApiRetry) -> None:
        self.attempts += 1
        if event.status in BACKPRESSURE_STATUSES:
            self._limiter.rate_limited(self._ticket, event.delay_s)

    def finished(self, result: BatchResult) -> None:
        """A final rate-limit failure (retries used up, or none allowed) also slows the batch."""
        error = result.error
        if error is not None and error.status_code in BACKPRESSURE_STATUSES:
            self._limiter.rate_limited(self._ticket)
        self._limiter.release(self._ticket, success=not result.is_error)


class BatchRun:
    """A running batch, from ``iter_batch``. Use ``async with``, then ``async for`` its results
    in completion order. ``stop()`` stops taking new items; the ones in flight finish and are
    still delivered. Leaving the ``async with`` early cancels the items still running.

    ``max_budget_usd`` caps the whole run: once the results so far cost that much, no further
    item starts, and each one left gets a ``budget_exhausted`` result (items in flight finish).
    ``spent_usd`` is the cost of the results so far.
    """

    def __init__(
        self,
        items: Iterable[ItemInput],
        config: Config | None = None,
        *,
        concurrency: int | None = None,
        tools: Tools = (),
        policy: Policy | None = None,
        hooks: Sequence[Hook] = (),
        max_budget_usd: float | None = None,
    ):
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if max_budget_usd is not None and max_budget_usd < 0:
            raise ValueError(f"max_budget_usd must be 0 or more, got {max_budget_usd}")
        self.max_budget_usd = max_budget_usd
        self.spent_usd = 0.0
        config = config if config is not None else Config.load()
        self._engine, size = engine_for(config, concurrency, ItemSetup(tools, policy, hooks))
        self.limiter = AdaptiveLimiter(size)
        self._items = items
        self._stopping = False
        self._done = False
        self._feed_scope: anyio.CancelScope | None = None
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        self._recv: MemoryObjectReceiveStream[tuple[int, BatchResult]] | None = None

    @property
    def via(self) -> str:
        """How items run: "api", "cli", or the backend's name."""
        return self._engine.via

    @property
    def processes_started(self) -> int:
        """CLI processes started so far (0 on other paths)."""
        return self._engine.processes_started

    def stop(self) -> None:
        """Take no new items; items in flight finish and their results are still delivered."""
        self._stopping = True
        self._engine.finish()
        if self._feed_scope is not None:
            self._feed_scope.cancel()

    async def __aenter__(self) -> Self:
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            await stack.enter_async_context(self._engine)
            self._tg = await stack.enter_async_context(anyio.create_task_group())
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        # unbounded: an item never waits for the consumer, and a send never fails (the
        # stream is closed only after every task has ended)
        send, self._recv = anyio.create_memory_object_stream[tuple[int, BatchResult]](math.inf)
        self._tg.start_soon(self._drive, send)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._stack is not None
        assert self._tg is not None
        assert self._recv is not None
        if exc_type is not None or not self._done:
            self._tg.cancel_scope.cancel()
        try:
            # the consumer's own exception (if any) propagates as it is once we return
            await self._stack.__aexit__(None, None, None)
        finally:
            self._recv.close()

    def __aiter__(self) -> AsyncIterator[BatchResult]:
        return self._results()

    async def _results(self) -> AsyncIterator[BatchResult]:
        async for _, result in self.indexed():
            yield result

    async def indexed(self) -> AsyncIterator[tuple[int, BatchResult]]:
        """Results with the index of their item in the input, in completion order."""
        if self._recv is None:
            raise RuntimeError("use `async with iter_batch(...) as run:` before iterating")
        async for pair in self._recv:
            yield pair

    # ---------------------------------------------------------------- running

    async def _drive(self, send: MemoryObjectSendStream[tuple[int, BatchResult]]) -> None:
        async with send:
            async with anyio.create_task_group() as items:
                try:
                    with anyio.CancelScope() as self._feed_scope:
                        if not self._stopping:
                            await self._feed(items, send)
                finally:
                    self._engine.finish()
            self._done = True

    async def _feed(
        self, items: TaskGroup, send: MemoryObjectSendStream[tuple[int, BatchResult]]
    ) -> None:
        seen: set[str] = set()
        for index, raw in enumerate(self._items):
            item = _to_item(raw, index)
            if isinstance(item, BatchItem) and item.id in seen:
                error = TurnError("duplicate_id", f"item {index} repeats the id {item.id!r}")
                item = _failure(item.id, error, via="input")
            if isinstance(item, BatchResult):
                send.send_nowait((index, item))
                continue
            seen.add(item.id)
            ticket = await self.limiter.acquire()
            if self._over_budget():
                self.limiter.release(ticket, success=True)
                send.send_nowait((index, self._over_budget_result(item.id)))
                continue
            items.start_soon(self._run_item, index, item, ticket, send)

    def _over_budget(self) -> bool:
        budget = self.max_budget_usd
        return budget is not None and self.spent_usd >= budget

    def _over_budget_result(self, item_id: str) -> BatchResult:
        message = (
            f"the batch's max_budget_usd={self.max_budget_usd:g} is spent "
            f"(${self.spent_usd:.6f}); the item was not run"
        )
        return _failure(item_id, TurnError("budget_exhausted", message), via="budget")

    async def _run_item(
        self,
        index: int,
        item: BatchItem,
        ticket: Ticket,
        send: MemoryObjectSendStream[tuple[int, BatchResult]],
    ) -> None:
        watch = _RetryWatch(self.limiter, ticket)
        started = time.monotonic()
        try:
            result = await self._turn(item, watch, started)
        except BaseException:
            self.limiter.release(ticket, success=False)
            raise
        watch.finished(result)
        self.spent_usd += result.cost_usd or 0.0
        send.send_nowait((index, result))

    async def _turn(self, item: BatchItem, watch: _RetryWatch, started: float) -> BatchResult:
        """Run one item to its result. Any exception fails the item, never the batch."""
        via = self._engine.via
        result: Result | None = None

        def on_event(event: Event) -> None:
            nonlocal result
            if isinstance(event, ApiRetry):
                watch.saw(event)
            elif isinstance(event, Result):
                result = event

        try:
            await self._engine.turn(item, on_event)
        except Exception as exc:  # the kinds a turn's own failure has (budget_exhausted, …)
            error = (
                turn_error(exc)
                if isinstance(exc, ClaudeError)
                else TurnError(type(exc).__name__, str(exc))
            )
            elapsed = time.monotonic() - started
            return _failure(
                item.id,
                error,
                via=via,
                duration_s=elapsed,
                attempts=watch.attempts,
                user_data=item.user_data,
            )
        assert result is not None, "every turn ends with a Result"
        return BatchResult(
            id=item.id,
            text=result.text,
            is_error=result.is_error,
            error=result.error,
            usage=result.usage,
            cost_usd=result.cost_usd,
            duration_s=time.monotonic() - started,
            attempts=watch.attempts,
            via=via,
            user_data=item.user_data,
        )


def iter_batch(
    items: Iterable[ItemInput],
    config: Config | None = None,
    *,
    concurrency: int | None = None,
    tools: Tools = (),
    policy: Policy | None = None,
    hooks: Sequence[Hook] = (),
    max_budget_usd: float | None = None,
) -> BatchRun:
    """Run a batch, handing results over as they complete::

        async with iter_batch(prompts, config) as run:
            async for result in run:
                ...

    ``items`` is read lazily, as permits free up. See ``run_batch`` for the arguments.
    """
    return BatchRun(
        items,
        config,
        concurrency=concurrency,
        tools=tools,
        policy=policy,
        hooks=hooks,
        max_budget_usd=max_budget_usd,
    )


async def run_batch(
    items: Iterable[ItemInput],
    config: Config | None = None,
    *,
    concurrency: int | None = None,
    on_result: ResultCallback | None = None,
    tools: Tools = (),
    policy: Policy | None = None,
    hooks: Sequence[Hook] = (),
    max_budget_usd: float | None = None,
) -> list[BatchResult]:
    """Run every item, each as one fresh conversation; return the results in input order.

    ``items``: prompts (a prompt's id is its index as a string), ``BatchItem``s, or mappings
    with BatchItem's fields (a malformed one becomes a failed result). ``concurrency``: the most
    items in flight (default 16 on the API, ``min(2, cores)`` on the CLI); rate limits lower it
    for a while. ``on_result`` (sync or async) sees each result as it completes. ``tools``,
    ``policy`` and ``hooks`` apply to every item's conversation. ``max_budget_usd`` caps the
    whole run (see ``BatchRun``); an item's own ``max_budget_usd`` (or the config's) caps each
    item.
    """
    collected: list[tuple[int, BatchResult]] = []
    async with iter_batch(
        items,
        config,
        concurrency=concurrency,
        tools=tools,
        policy=policy,
        hooks=hooks,
        max_budget_usd=max_budget_usd,
    ) as run:
        async for index, result in run.indexed():
            collected.append((index, result))
            if on_result is not None:
                outcome = on_result(result)
                if inspect.isawaitable(outcome):
                    await outcome
    collected.sort(key=lambda pair: pair[0])
    return [result for _, result in collected]


def run_batch_sync(
    items: Iterable[ItemInput],
    config: Config | None = None,
    *,
    concurrency: int | None = None,
    on_result: ResultCallback | None = None,
    tools: Tools = (),
    policy: Policy | None = None,
    hooks: Sequence[Hook] = (),
    max_budget_usd: float | None = None,
) -> list[BatchResult]:
    """``run_batch``, blocking. It runs on the library's event-loop thread (the one the sync
    facades share), so it also works where an event loop is already running; a sync
    ``on_result`` is called on that thread."""
    from .._sync import portal

    return portal().call(
        partial(
            run_batch,
            items,
            config,
            concurrency=concurrency,
            on_result=on_result,
            tools=tools,
            policy=policy,
            hooks=hooks,
            max_budget_usd=max_budget_usd,
        )
    )
