"""Synchronous facades: the async objects, driven from ordinary threads through one portal.

Every sync object delegates to its async counterpart, which runs on one event-loop thread shared
by the whole process (an anyio blocking portal, started on first use and stopped at interpreter
exit). A call blocks only the calling thread, so the sync API also works from a thread that runs
an event loop of its own, as in a notebook: that loop simply waits.

A turn's events reach the calling thread without a portal round trip, a lock or a Python call
per event. One task on the portal thread iterates the async turn and hands its events over in
batches, reading at most ``_AHEAD`` events ahead of the consumer's loop. It never reads past a
``PermissionRequest`` (the answer given with ``respond()`` must be in place before the turn goes
on) nor past a ``PermissionDecision`` (leaving the loop there must still keep the tool from
running).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import inspect
import os
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterator, Sequence
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from functools import partial
from itertools import repeat
from typing import Any, Protocol, Self, TypeVar, cast, overload

import anyio
from anyio.abc import TaskGroup
from anyio.from_thread import BlockingPortal
from typing_extensions import Unpack

from ._config import Config
from ._conversation import Conversation, Reply, RequestOptions, Turn, exception_from_result
from ._events import (
    ContentBlock,
    Event,
    Message,
    PermissionDecision,
    PermissionRequest,
    Result,
    TextDelta,
)
from ._exceptions import ClaudeError
from ._hooks import Hook
from ._permissions import Decision, Policy
from ._tools import Tool
from .backends._protocol import Backend

__all__ = ["PORTAL_THREAD_NAME", "SharedPortal", "SyncConversation", "SyncTurn", "portal"]

T = TypeVar("T")

PORTAL_THREAD_NAME = "claude-unified-portal"
_AHEAD = 4096
_LINGER = 0.003  # how long a ready event may wait for more to join its batch: never seen
_CLOSE_GRACE = 10.0
_OLD_LOOP_GRACE = 5.0  # how long a new portal waits for an ended one's thread to finish
_PAUSE_AFTER = frozenset((PermissionRequest, PermissionDecision))

# --------------------------------------------------------------------------- the portal thread


class _Escaped(Exception):
    """A ``BaseException`` other than a cancellation (``SystemExit``, ``KeyboardInterrupt``, a
    test framework's failure) that left a call on the portal thread, carried back whole to the
    calling thread. Left as it is, it would stop the portal for the whole process."""

    def __init__(self, error: BaseException):
        super().__init__(repr(error))
        self.error = error


def _escaping(exc: BaseException) -> BaseException:
    """What to raise on the portal thread for ``exc``: ``exc`` itself if the portal survives it."""
    if isinstance(exc, Exception | anyio.get_cancelled_exc_class()):
        return exc
    return _Escaped(exc)


async def _contained(func: Callable[..., Any], *args: Any) -> Any:
    try:
        result = func(*args)
        return await result if inspect.isawaitable(result) else result
    except BaseException as exc:
        raised = _escaping(exc)
        if raised is exc:
            raise
        raise raised from None


class _ContainedContext:
    """An async context manager whose ``BaseException``s leave it as ``_Escaped``."""

    def __init__(self, target: AbstractAsyncContextManager[Any]) -> None:
        self._target = target

    async def __aenter__(self) -> Any:
        return await _contained(self._target.__aenter__)

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        result: bool | None = await _contained(self._target.__aexit__, *exc_info)
        return result


class _Unwrapped:
    """The calling thread's side of a held context: ``_Escaped`` becomes what it carries."""

    def __init__(self, held: AbstractContextManager[Any]) -> None:
        self._held = held

    def __enter__(self) -> Any:
        try:
            return self._held.__enter__()
        except _Escaped as escaped:
            raise escaped.error from None

    def __exit__(self, *exc_info: Any) -> bool | None:
        try:
            return self._held.__exit__(*exc_info)
        except _Escaped as escaped:
            raise escaped.error from None


class SharedPortal:
    """The process's blocking portal, as the sync facades use it. Whatever a call raises reaches
    the calling thread, and nothing it raises can stop the portal for the calls after it.

    Starting a task and running a callback do not wait for the loop thread: each waiting
    hand-over costs the calling thread a trip to the loop thread and back (two thread switches),
    which is most of what a short sync turn costs beyond its async counterpart.
    """

    def __init__(
        self, portal: BlockingPortal, loop: asyncio.AbstractEventLoop, tasks: TaskGroup
    ) -> None:
        self._portal = portal
        self._loop = loop  # the portal thread always runs asyncio (see _serve)
        self._tasks = tasks
        self._context = contextvars.copy_context()  # made on the loop thread: anyio works in it

    @overload
    def call(self, func: Callable[..., Awaitable[T]], *args: Any) -> T: ...

    @overload
    def call(self, func: Callable[..., T], *args: Any) -> T: ...

    def call(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` on the portal thread and wait for its result."""
        try:
            return self._portal.call(_contained, func, *args)
        except _Escaped as escaped:
            raise escaped.error from None

    def start_task_soon(self, func: Callable[..., Awaitable[T]], *args: Any) -> Future[T]:
        """Start ``func(*args)`` as a task on the portal thread, without waiting for it to start.
        The future holds its outcome; cancelling the future cancels the task."""
        future: Future[T] = Future()
        self._loop.call_soon_threadsafe(
            self._tasks.start_soon, _into_future, future, func, args, context=self._context.copy()
        )
        return future

    def call_soon(self, func: Callable[..., object], *args: Any) -> None:
        """Run the plain function ``func(*args)`` on the portal thread soon; do not wait."""
        self._loop.call_soon_threadsafe(func, *args, context=self._context.copy())

    def stop(self) -> None:
        """Stop serving; what still runs there is cancelled first."""
        self._portal.call(self._portal.stop, True)

    def wrap_async_context_manager(
        self, target: AbstractAsyncContextManager[T]
    ) -> AbstractContextManager[T]:
        """A sync context manager entering and exiting ``target`` in one portal task."""
        return _Unwrapped(self._portal.wrap_async_context_manager(_ContainedContext(target)))


async def _into_future(future: Future[T], func: Callable[..., Awaitable[T]], args: Any) -> None:
    """Run ``func(*args)`` into ``future``. Nothing it raises reaches the task group (that would
    stop the portal); a cancelled ``future`` cancels the run, from whichever thread."""
    if future.cancelled():
        return
    loop = asyncio.get_running_loop()
    with anyio.CancelScope() as scope:

        def on_done(done: Future[T]) -> None:
            if done.cancelled():
                with contextlib.suppress(RuntimeError):  # the loop is gone: nothing to cancel
                    loop.call_soon_threadsafe(scope.cancel)

        future.add_done_callback(on_done)
        try:
            result = await func(*args)
        except anyio.get_cancelled_exc_class():
            future.cancel()
            raise
        except BaseException as exc:  # SystemExit and the like too: held by the future
            if future.set_running_or_notify_cancel():
                future.set_exception(exc)
        else:
            if future.set_running_or_notify_cancel():
                future.set_result(result)


class _PortalThread:
    """The process's one portal: started on first use (thread-safe), stopped at exit, and
    started again if its event loop ever ended (a ``SystemExit`` raised in a task of its own
    stops an asyncio loop however it is caught elsewhere)."""

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Drop the portal without stopping it (in a forked child, whose copy has no thread)."""
        self._lock = threading.Lock()
        self._portal: SharedPortal | None = None
        self._thread: threading.Thread | None = None
        self._ended = threading.Event()

    def _running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._ended.is_set()

    def get(self) -> SharedPortal:
        portal = self._portal
        if portal is None or not self._running():
            portal = self._start()
        self.refuse_own_thread()
        return portal

    def refuse_own_thread(self) -> None:
        """Blocking on the portal from its own thread would wait forever: fail instead."""
        if self._thread is not None and threading.current_thread() is self._thread:
            raise ClaudeError(
                "the sync API cannot be used on claude_unified's own event-loop thread "
                "(from a tool or a policy callback, say); use the async API there"
            )

    def _start(self) -> SharedPortal:
        with self._lock:
            if self._portal is None or not self._running():
                old = self._thread
                if old is not None and old is not threading.current_thread():
                    # its portal has ended: let its loop finish closing first
                    old.join(_OLD_LOOP_GRACE)
                ready: Future[SharedPortal] = Future()
                ended = threading.Event()
                thread = threading.Thread(
                    target=_serve, args=(ready, ended), name=PORTAL_THREAD_NAME, daemon=True
                )
                thread.start()
                self._portal, self._thread, self._ended = ready.result(), thread, ended
            return self._portal

    def stop(self) -> None:
        """Stop the thread; what still runs there (objects never closed) is cancelled first."""
        with self._lock:
            served, thread = self._portal, self._thread
            self.forget()
        if served is not None and thread is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # it stopped on its own meanwhile
                served.stop()
            thread.join()


def _serve(ready: Future[SharedPortal], ended: threading.Event) -> None:
    """The portal thread: an asyncio loop serving one portal until it is stopped. ``ended`` is
    set as soon as the portal stops serving, before the loop has finished closing."""

    async def serve() -> None:
        async with BlockingPortal() as portal, anyio.create_task_group() as tasks:
            ready.set_result(SharedPortal(portal, asyncio.get_running_loop(), tasks))
            try:
                await portal.sleep_until_stopped()
            finally:
                ended.set()
                tasks.cancel_scope.cancel()

    try:
        anyio.run(serve)
    except BaseException as exc:  # the loop ended abnormally; the next get() starts another
        if not ready.done():
            ready.set_exception(exc)
    finally:
        ended.set()


_PORTAL = _PortalThread()
atexit.register(_PORTAL.stop)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_PORTAL.forget)


def portal() -> SharedPortal:
    """The shared portal, started on first use (and again if it ever stopped). Refuses to be
    used from its own thread."""
    return _PORTAL.get()


# --------------------------------------------------------------------------- turns


class _EventSource(Protocol):
    """What a ``SyncTurn`` iterates: a ``Turn`` or any async generator of events."""

    def __anext__(self) -> Awaitable[Event]: ...

    def aclose(self) -> Awaitable[None]: ...


class _End:
    """The last item of a turn's queue: how the turn ended (``error`` None: normally)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class _Pump:
    """Iterates an event source in one portal task and hands its items to one thread.

    One task does all the iterating and the closing: a turn holds its conversation's lock from
    one event to the next, and an anyio lock must be released by the task that acquired it.

    The hand-over takes no lock: the producer appends to ``ready`` and the consumer pops from
    it, both atomic. The consumer takes everything ready at once with :meth:`take_all`, which is
    also how it says it has finished with everything it took before: the producer, stopped
    after a pause event or ``_AHEAD`` events ahead of the loop (ready, or taken and not yet
    reached), goes on from there.

    A waiting consumer first lingers ``_LINGER`` seconds so that a fast stream reaches it in
    batches (one wake-up per batch, not per event); the producer cuts that short after a pause
    event, at the end and when it stops ahead. If nothing came, the consumer asks to be woken by
    the very next item, so an idle stream gains no latency. So no event waits longer than the
    linger, and a fast stream costs one wake-up per few hundred events: each costs a thread
    switch and moves the interpreter's working set between the two threads' cores. (Watching
    the source's awaits to hand a burst over the moment the source waits instead cost every
    event a Python-level step, more than the wake-ups it saved.)

    Each side announces a wait before checking its condition once more, and the other checks
    for the announcement after changing the condition, so no wake-up is lost.
    """

    def __init__(
        self, source: _EventSource, interrupt: Callable[[], Awaitable[None]] | None
    ) -> None:
        self._source = source
        self._interrupt = interrupt
        self.ready: deque[Event | _End] = deque()  # read, not yet taken by the consumer
        self.ended = False  # the consumer has taken the end of the source
        self._task: Future[None] | None = None
        self._waiter: anyio.Event | None = None  # set while the producer waits for the consumer
        self._reading = False  # the producer awaits the source's next event
        self._stopping = False
        self._finished = threading.Event()
        self._hungry = False  # the consumer waits for items: done with all it took before
        self._eager = False  # the consumer waits for anything: wake it with the next item
        self._wake = threading.Event()  # the consumer sleeps on it
        self._room = _AHEAD  # how many the producer may read ahead: less what the consumer holds

    # ------------------------------------------------------------ the consuming thread

    def take_all(self) -> list[Event | _End]:
        """Everything ready, waiting for something if nothing is. Called only once the consumer
        is done with all it took before, which lets a waiting producer go on."""
        ready = self.ready
        if not ready:
            self._wait_for_items()
        self._eager = self._hungry = False  # before taking: these are not finished with
        count = len(ready)
        self._room = _AHEAD - count
        return list(map(deque.popleft, repeat(ready, count)))  # no Python frame per item

    def _wait_for_items(self) -> None:
        if self._task is None:
            self._task = portal().start_task_soon(self._produce)
        self._hungry = True
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            portal().call_soon(waiter.set)
        ready, wake = self.ready, self._wake
        wake.clear()
        if not ready:
            wake.wait(_LINGER)
        while not ready:
            wake.clear()
            self._eager = True
            if not ready:
                wake.wait()

    def close(self) -> None:
        """Finish the source the way a loop left early does: at its next event.

        A read in progress is interrupted first; a source that does not yield within
        ``_CLOSE_GRACE`` seconds after that, or that cannot be interrupted, is cancelled.
        What was read and not taken is dropped; the end is all that is left to take.
        """
        if self._task is None or self.ended:
            return  # nothing was started, or everything was taken
        if not self._finished.is_set():
            if self._interrupt is None:
                self._task.cancel()
            else:
                portal().call(self._stop, self._interrupt)
                if not self._finished.wait(_CLOSE_GRACE):
                    self._task.cancel()
            self._finished.wait()
        self.ready.clear()
        self.ready.append(_End(None))

    def abandon(self) -> None:
        """Cancel the producing task without waiting (for garbage collection: never blocks)."""
        if self._task is not None:
            self._task.cancel()

    # ------------------------------------------------------------ the portal thread

    async def _stop(self, interrupt: Callable[[], Awaitable[None]]) -> None:
        self._stopping = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.set()
        elif self._reading:
            await interrupt()

    async def _produce(self) -> None:
        end: _End | None = None  # not made up front: an error's message costs a secrets scrub
        try:
            end = await self._read()
        finally:
            self.ready.append(end or _End(ClaudeError("the turn was closed before it finished")))
            self._wake.set()  # nothing comes after the end
            try:
                with anyio.CancelScope(shield=True):
                    await self._source.aclose()
            finally:
                self._finished.set()

    async def _read(self) -> _End | None:
        """Read until the source ends (its end) or the pump is stopped (None)."""
        ready, source = self.ready, self._source
        while not self._stopping:
            self._reading = True
            try:
                event = await source.__anext__()
            except StopAsyncIteration:
                return _End(None)
            except anyio.get_cancelled_exc_class():
                raise
            except BaseException as exc:  # handed over whole: the consumer raises it
                return _End(exc)
            self._reading = False
            ready.append(event)
            if type(event) in _PAUSE_AFTER or len(ready) >= self._room:
                await self._wait_for_consumer()
            elif self._eager:
                self._eager = False
                self._wake.set()
        return None

    async def _wait_for_consumer(self) -> None:
        """Wait until the consumer has taken everything ready and asks for more (or it is
        stopped): it has then finished with a pause event, and a read-ahead is used up.

        The consumer's wake-up is only a nudge: it may come before the consumer has taken the
        last item, so the condition is checked again each time.
        """
        while not self._stopping:
            waiter = self._waiter = anyio.Event()
            self._eager = False
            self._wake.set()  # a lingering consumer may take what is ready now
            if not self.ready and self._hungry:  # in this order: _hungry is cleared before a take
                break
            await waiter.wait()
        self._waiter = None


class SyncTurn:
    """One turn's events for synchronous code: iterate it with ``for``; it ends with a ``Result``.

    ``on_text`` is called in the iterating thread, just before each ``TextDelta`` is returned.
    Leaving the loop early is fine: the rest of the turn is drained or discarded on ``close()``,
    on the conversation's next ``send()``/``ask()``, or when the object is garbage collected.
    """

    def __init__(
        self,
        source: _EventSource,
        on_text: Callable[[str], object] | None = None,
        *,
        interrupt: Callable[[], Awaitable[None]] | None = None,
    ):
        self._source = source
        self._pump = _Pump(source, interrupt)
        self._on_text = on_text
        self._events = self._iterate()
        self.result: Result | None = None

    def __iter__(self) -> Iterator[Event]:
        return self._events

    def __next__(self) -> Event:
        return next(self._events)

    def _iterate(self) -> Generator[Event, None, None]:
        pump, on_text = self._pump, self._on_text
        while True:
            batch = pump.take_all()
            last = type(batch[-1])  # types compared by identity: isinstance costs more
            if on_text is None and last is not _End and last is not Result:
                # the bulk of a stream, nothing to do per event (an end only ever comes last)
                yield from cast(list[Event], batch)
                continue
            for item in batch:
                kind = type(item)
                if kind is _End:
                    pump.ended = True
                    error = cast(_End, item).error
                    if error is not None:
                        raise error
                    return
                event = cast(Event, item)
                if kind is Result:
                    self.result = cast(Result, event)
                elif kind is TextDelta and on_text is not None:
                    on_text(cast(TextDelta, event).text)
                yield event

    def close(self) -> None:
        """Finish the turn now: what it has not yielded yet is drained or discarded."""
        self._pump.close()
        with contextlib.suppress(ValueError):  # called from on_text: the loop ends at once
            self._events.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        self._pump.abandon()

    def raise_for_error(self) -> None:
        """Raise the typed exception of a failed turn (no-op for a successful one)."""
        if isinstance(self._source, Turn):
            self._source.raise_for_error()
        elif self.result is not None and self.result.is_error:
            raise exception_from_result(self.result)


# --------------------------------------------------------------------------- facades


class SyncFacade:
    """An async context manager held open by one task on the portal thread.

    Async objects that own a task group (the CLI backend does) must be entered and exited in
    the same task, so the portal's ``wrap_async_context_manager`` holds them.
    """

    def __init__(self, target: AbstractAsyncContextManager[Any]) -> None:
        self._target = target
        self._held: AbstractContextManager[Any] | None = None

    def open(self) -> None:
        if self._held is None:
            held = portal().wrap_async_context_manager(self._target)
            held.__enter__()
            self._held = held

    def close(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.__exit__(None, None, None)

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def require_open(self) -> None:
        if self._held is None:
            name = type(self).__name__
            raise ClaudeError(
                f"the {name} is not open: use `with {name}(...) as ...:` "
                "(or call open() and later close())"
            )


class SyncConversation(SyncFacade):
    """``Conversation`` for synchronous code: the same methods, blocking.

    Use it as ``with SyncConversation(config) as conv:``. Everything runs on the shared portal
    thread, so another thread may call ``interrupt()`` while one iterates a turn.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        backend: Backend | str | None = None,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        policy: Policy | None = None,
        hooks: Sequence[Hook] = (),
    ):
        self._adopt(Conversation(config, backend=backend, tools=tools, policy=policy, hooks=hooks))

    def _adopt(self, conversation: Conversation) -> None:
        self._conversation = conversation
        super().__init__(conversation)
        self._turn: SyncTurn | None = None

    @classmethod
    def restore(
        cls,
        path: str | os.PathLike[str],
        config: Config | None = None,
        *,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        policy: Policy | None = None,
        hooks: Sequence[Hook] = (),
    ) -> SyncConversation:
        """A conversation continuing one saved with ``save()`` (open it with ``with``)."""
        restored = cls.__new__(cls)
        conversation = Conversation.restore(path, config, tools=tools, policy=policy, hooks=hooks)
        restored._adopt(conversation)
        return restored

    @property
    def config(self) -> Config:
        """The configuration the conversation uses."""
        return self._conversation.config

    @property
    def history(self) -> list[Message]:
        """The messages so far, oldest first."""
        return self._conversation.history

    @property
    def session_id(self) -> str | None:
        """The session id, once the backend has reported one."""
        return self._conversation.session_id

    def close(self) -> None:
        """Finish any running turn, then close the backend."""
        self._finish_turn()
        super().close()

    def send(
        self,
        prompt: str | list[ContentBlock],
        *,
        on_text: Callable[[str], object] | None = None,
        output: type[Any] | None = None,
        **options: Unpack[RequestOptions],
    ) -> SyncTurn:
        """Start a turn; iterate the returned ``SyncTurn`` for its events.

        A turn of this conversation still open is finished first. Events may be read ahead of
        the loop (up to 4096), but never past a permission request or decision.
        """
        self.require_open()
        self._finish_turn()
        turn = self._conversation.send(prompt, output=output, **options)
        self._turn = SyncTurn(turn, on_text, interrupt=self._conversation.interrupt)
        return self._turn

    @overload
    def ask(
        self,
        prompt: str | list[ContentBlock],
        *,
        output: None = None,
        **options: Unpack[RequestOptions],
    ) -> Reply: ...

    @overload
    def ask(
        self,
        prompt: str | list[ContentBlock],
        *,
        output: type[T],
        **options: Unpack[RequestOptions],
    ) -> Reply[T]: ...

    def ask(
        self,
        prompt: str | list[ContentBlock],
        *,
        output: type[Any] | None = None,
        **options: Unpack[RequestOptions],
    ) -> Reply[Any]:
        """Run a turn to completion and return its ``Reply``; raise if the turn failed."""
        self.require_open()
        self._finish_turn()
        return portal().call(partial(self._conversation.ask, prompt, output=output, **options))

    def count_tokens(self, prompt: str | list[ContentBlock] | None = None) -> int:
        """The input tokens of the next request (API backend only); see ``Conversation``."""
        self.require_open()
        return portal().call(self._conversation.count_tokens, prompt)

    def respond(self, request: PermissionRequest, decision: Decision) -> None:
        """Answer a ``PermissionRequest`` (before asking for the next event)."""
        portal().call(self._conversation.respond, request, decision)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save this conversation to a JSON file; continue it later with ``restore()``."""
        portal().call(self._conversation.save, path)

    def set_model(self, model: str | None) -> None:
        """Use another model from the next request on (``None``: the backend's default)."""
        portal().call(self._conversation.set_model, model)

    def set_permission_mode(self, mode: str) -> None:
        """Change the CLI's permission mode (and the config) for the following turns."""
        portal().call(self._conversation.set_permission_mode, mode)

    def interrupt(self) -> None:
        """Stop the running turn (from any thread); it ends with an error ``Result``."""
        portal().call(self._conversation.interrupt)

    def _finish_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.close()
