"""Batch items on the Claude Code CLI: a pool of warm processes, reset between items.

Starting a CLI process costs ~0.6-0.7 s and ~0.8 s of CPU, while a turn in a running process
takes ~0.1-0.4 s, so a batch that started one process per item would spend most of its time
starting processes. The pool instead keeps ``size`` processes and gives each item a fresh context
in a process that is already running: after an item, ``/clear`` is sent as a user message. The
CLI (2.1.330) answers it locally, without an API request, in ~0.05 s: it prints a
``conversation_reset`` line and a result under a new session id, drops the history and resets
its cumulative cost. The next prompt's request then carries no earlier message, only a short
record that ``/clear`` ran. A model chosen with ``set_model`` survives the reset, so the pool
sets each item's model before its turn.

A reset that fails (an error result, no new session id, a timeout, a dead process) retires the
process, and so does reaching ``max_uses`` items. A retired process is replaced in the
background, so the next item rarely waits for a start. The processes are started ahead of need:
all ``size`` of them when the batch begins, before the first item asks for one.

A process's system prompt and budget are fixed when it starts (``--system-prompt``,
``--max-budget-usd``), so processes are keyed by both: an item with a system prompt or a
``max_budget_usd`` of its own gets a process started with it (an idle process with another key
makes room). The budget holds per item because ``/clear`` resets what the CLI counts against it.
Other per-item settings a process cannot change (effort, an output type) restart it for the
item, as a conversation does. ``max_tokens`` has no CLI flag and does not apply on this path.

Each process belongs to one keeper task, which opens it, runs every turn in it and closes it:
the CLI backend must be closed by the task that opened it, and a turn cut short is finished
(interrupted and drained) by the task that runs it. An item hands its prompt to the keeper and
waits; cancelling the item cancels the turn inside the keeper, which then retires the process.
A keeper is never cancelled itself, so the pool waits for starts in progress (about a second)
when it closes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Self

import anyio
from anyio.abc import TaskGroup

from .._config import Config
from .._conversation import Conversation
from .._events import Event, Result
from .._settings import refuse_spent_budget
from ..backends.cli import CLEAR_COMMAND, CliBackend
from ._types import BatchItem, ItemSetup, request_options

__all__ = ["CLEAR_COMMAND", "CliPool"]
_RESET_TIMEOUT_S = 15.0
_MAX_USES = 100
"""Items per process before it is replaced, which bounds whatever a long-lived process keeps."""


class _Key(NamedTuple):
    """What a process is started with that no later turn can change."""

    system_prompt: str | None
    max_budget_usd: float | None


class _Start:
    """One process start asked for by an item; ``error`` says why it failed."""

    error: Exception | None = None


class _Job:
    """One item's turn, run by a keeper on behalf of the item's task."""

    def __init__(self, item: BatchItem, model: str | None, on_event: Callable[[Event], None]):
        self.item = item
        self.model = model
        self.on_event = on_event
        self.done = anyio.Event()
        self.error: Exception | None = None
        self.cancelled = False
        self.scope: anyio.CancelScope | None = None

    def cancel(self) -> None:
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()


class _Slot:
    """One running CLI process (as an open Conversation) and the keeper's mailbox."""

    def __init__(self, conversation: Conversation, key: _Key):
        self.conversation = conversation
        self.key = key
        self.uses = 0
        self.retired = False
        self._job: _Job | None = None
        self._wakeup = anyio.Event()

    def submit(self, job: _Job) -> None:
        self._job = job
        self._wakeup.set()

    def retire(self) -> None:
        self.retired = True
        self._wakeup.set()

    async def next_job(self) -> _Job | None:
        """The next job, or ``None`` once the process is retired."""
        while self._job is None and not self.retired:
            await self._wakeup.wait()
            self._wakeup = anyio.Event()
        job, self._job = self._job, None
        return job

    async def run(self, job: _Job) -> None:
        """The job's turn; cancelling ``job`` cancels it here, in the keeper's task."""
        with anyio.CancelScope() as job.scope:
            if job.cancelled:
                job.scope.cancel()
            try:
                if self.conversation.config.model != job.model:
                    await self.conversation.set_model(job.model)
                options = request_options(job.item)
                async with self.conversation.send(job.item.prompt, **options) as turn:
                    async for event in turn:
                        job.on_event(event)
            except Exception as exc:
                job.error = exc
        job.done.set()

    async def reset(self) -> bool:
        """Start a fresh context with ``/clear``; True when the CLI confirmed it."""
        before = self.conversation.session_id
        result: Result | None = None
        with anyio.move_on_after(_RESET_TIMEOUT_S):
            async with self.conversation.send(CLEAR_COMMAND) as turn:
                async for event in turn:
                    if isinstance(event, Result):
                        result = event
        self.conversation.history.clear()
        return (
            result is not None
            and not result.is_error
            and result.session_id is not None
            and result.session_id != before
        )


class CliPool:
    """Warm CLI processes for a batch (an engine of ``BatchRun``). ``size`` bounds the processes
    starting, idle or in use; one being retired may still be exiting while its replacement
    starts."""

    via = "cli"

    def __init__(
        self,
        config: Config,
        size: int,
        setup: ItemSetup,
        *,
        max_uses: int = _MAX_USES,
    ):
        self._config = config
        self._size = size
        self._setup = setup
        self._max_uses = max_uses
        self._idle: list[_Slot] = []
        self._live = 0  # processes starting, idle or in use
        self._finished = False
        self._changed: anyio.Event | None = None
        self._tg: TaskGroup | None = None
        self.processes_started = 0

    async def __aenter__(self) -> Self:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        key = _Key(self._config.system_prompt, self._config.max_budget_usd)
        for _ in range(self._size):
            self._prestart(key)
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close every process once its turn (if any) and any start in progress are over; each
        keeper closes its own process. When the batch is being cancelled, the turns of the
        cancelled items are interrupted and drained first."""
        assert self._tg is not None
        self._finished = True
        with anyio.CancelScope(shield=True):
            await self._wind_down()
        await self._tg.__aexit__(None, None, None)

    def finish(self) -> None:
        self._finished = True

    async def turn(self, item: BatchItem, on_event: Callable[[Event], None]) -> None:
        """Run ``item`` in a warm process, passing each event to ``on_event``."""
        key = _Key(
            item.system if item.system is not None else self._config.system_prompt,
            item.max_budget_usd if item.max_budget_usd is not None else self._config.max_budget_usd,
        )
        refuse_spent_budget(key.max_budget_usd, 0.0, "item")  # 0: no process is needed to say so
        slot = await self._acquire(key)
        job = _Job(item, item.model or self._config.model, on_event)
        slot.submit(job)
        try:
            await job.done.wait()
        except BaseException:
            job.cancel()
            with anyio.CancelScope(shield=True):
                await job.done.wait()
            raise
        if job.error is not None:
            raise job.error

    # ---------------------------------------------------------------- processes

    async def _acquire(self, key: _Key) -> _Slot:
        start: _Start | None = None
        while True:
            idle = next((s for s in self._idle if s.key == key), None)
            if idle is not None:
                self._idle.remove(idle)
                return idle
            if start is not None and start.error is not None:
                raise start.error
            if self._live < self._size:
                start = self._prestart(key, force=True)
            elif self._idle:  # every idle process has another system prompt: make room
                self._retire(self._idle.pop(0), replace=False)
                continue
            await self._wait_for_change()

    def _prestart(self, key: _Key, *, force: bool = False) -> _Start | None:
        """Start a process in the background; it joins the idle ones when ready."""
        if (self._finished and not force) or self._live >= self._size:
            return None
        self._live += 1
        start = _Start()
        assert self._tg is not None, "use the pool with `async with`"
        self._tg.start_soon(self._keep, key, start)
        return start

    async def _keep(self, key: _Key, start: _Start) -> None:
        """Open a process, serve its jobs until it is retired, then close it.

        All of it is shielded: only retirement ends a process, never a cancellation of the
        pool. The backend's reader task runs in a task group entered here, so a cancellation
        reaching this task would also stop the reading, and a turn being cut short (through its
        job) could then never see the CLI acknowledge the interrupt.
        """
        with anyio.CancelScope(shield=True):
            slot = await self._open(key, start)
            if slot is None:
                return
            try:
                await self._serve(slot)
            finally:
                await slot.conversation.aclose()

    async def _open(self, key: _Key, start: _Start) -> _Slot | None:
        config = self._config
        if key != (config.system_prompt, config.max_budget_usd):
            config = config.replace(
                system_prompt=key.system_prompt, max_budget_usd=key.max_budget_usd
            )
        backend = CliBackend(config)
        conversation = self._setup.conversation(config, backend)
        try:
            await conversation.open()
        except Exception as exc:
            # set before anyone is woken: an item that saw no error would start another
            start.error = exc  # reported by the item that asked for this start, if any
            self._live -= 1
            self._notify()
            await backend.aclose()
            return None
        self.processes_started += 1
        slot = _Slot(conversation, key)
        self._make_idle(slot)
        return slot

    async def _serve(self, slot: _Slot) -> None:
        while (job := await slot.next_job()) is not None:
            await slot.run(job)
            slot.uses += 1
            if job.cancelled or job.error is not None or not await self._reusable(slot):
                self._retire(slot)
            else:
                self._make_idle(slot)

    async def _reusable(self, slot: _Slot) -> bool:
        if slot.uses >= self._max_uses:
            return False
        try:
            return await slot.reset()
        except Exception:  # a process that cannot even be reset is not worth keeping
            return False

    def _make_idle(self, slot: _Slot) -> None:
        self._idle.append(slot)
        self._notify()

    def _retire(self, slot: _Slot, *, replace: bool = True) -> None:
        """Let the keeper close the process and, while items may still come, start another."""
        self._live -= 1
        slot.retire()
        if replace:
            self._prestart(slot.key)
        self._notify()

    async def _wind_down(self) -> None:
        """Retire every process as soon as it is idle, until none is left."""
        while True:
            while self._idle:
                self._retire(self._idle.pop())
            if self._live == 0:
                return
            await self._wait_for_change()

    async def _wait_for_change(self) -> None:
        if self._changed is None:
            self._changed = anyio.Event()
        await self._changed.wait()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None
