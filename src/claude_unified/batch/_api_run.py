"""``run_via_batches_api``: batch items run through the Message Batches API.

A batch runs asynchronously on the API side at half the list price: the job submits its items
in one or more batches, polls them with backoff, then streams each ended batch's results
(JSONL, in any order, matched back to items by ``custom_id``). With a state file, a restarted
job re-attaches to the batches it already created instead of paying for them twice.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeAlias, TypeVar

import anyio
import anyio.to_thread
import msgspec

from .._config import Config
from .._events import TurnError, Usage
from .._exceptions import ERROR_TYPE_STATUS, APIStatusError, ConfigError, status_error
from .._files import write_atomically
from .._normalize import MessageAccumulator
from .._pricing import cost_usd
from . import _api_wire as bw
from ._api_client import BatchesClient
from ._api_plan import (
    MAX_BATCH_BYTES,
    MAX_BATCH_REQUESTS,
    BatchState,
    CustomIds,
    SubmittedBatch,
    build_request,
    decode_state,
    encode_state,
    item_model,
    split_requests,
)
from ._types import BatchItem, BatchResult

__all__ = [
    "BatchesClient",
    "ProgressCallback",
    "RequestCounts",
    "ResultCallback",
    "batch_result",
    "run_via_batches_api",
]

RequestCounts = bw.RequestCounts
ProgressCallback: TypeAlias = Callable[[RequestCounts], object]
ResultCallback: TypeAlias = Callable[[BatchResult], object]

_T = TypeVar("_T")
VIA = "batches_api"
_CANNOT_CANCEL = frozenset({400, 404, 409})


async def run_via_batches_api(
    items: Sequence[BatchItem],
    config: Config,
    *,
    on_result: ResultCallback | None = None,
    progress: ProgressCallback | None = None,
    poll_initial: float = 10.0,
    poll_max: float = 60.0,
    state_path: str | os.PathLike[str] | None = None,
    cancel_event: anyio.Event | None = None,
    max_requests: int = MAX_BATCH_REQUESTS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> list[BatchResult]:
    """Run ``items`` through the Message Batches API; return their results in input order.

    Items are submitted in as few batches as the limits allow (``max_requests`` requests and
    ``max_bytes`` encoded bytes per batch), then polled every ``poll_initial`` seconds, doubling
    up to ``poll_max``. ``progress`` (sync or async) gets the summed ``request_counts`` of the
    job's batches after every poll; ``on_result`` (sync or async) gets each result as its batch's
    results arrive. Costs carry the 50% batch discount.

    ``state_path``: a JSON file recording the job's batches, written atomically after each one
    is created. When it already exists, the job re-attaches to those batches and submits only the
    items they do not hold (``on_result`` then sees every item's result again, including any
    delivered before the restart). The file is kept afterwards, so running the same job again
    reads the same results without paying twice; delete it to submit afresh.

    ``cancel_event``: once set, no further batch is submitted, every open batch is canceled,
    and the job still collects what finished; the rest come back with ``error.kind`` "canceled".

    Raises ``ValueError`` for duplicate item ids or a request too large for one batch, and the
    usual ``APIStatusError``/``TransportError`` when the API cannot be used at all.
    """
    ids = CustomIds([item.id for item in items])
    async with BatchesClient(config) as client:
        job = _Job(
            client,
            items,
            config,
            ids,
            on_result=on_result,
            progress=progress,
            cancel_event=cancel_event,
        )
        state = await job.submit(
            Path(state_path) if state_path is not None else None,
            max_requests=max_requests,
            max_bytes=max_bytes,
        )
        await job.poll([batch.id for batch in state.batches], poll_initial, poll_max)
        return await job.finish()


class _Job:
    """One call of ``run_via_batches_api``: its items, their results so far, its callbacks."""

    def __init__(
        self,
        client: BatchesClient,
        items: Sequence[BatchItem],
        config: Config,
        ids: CustomIds,
        *,
        on_result: ResultCallback | None,
        progress: ProgressCallback | None,
        cancel_event: anyio.Event | None,
    ):
        self._client = client
        self._items = items
        self._by_id = {item.id: item for item in items}
        self._config = config
        self._ids = ids
        self._on_result = on_result
        self._progress = progress
        self._cancel_event = cancel_event
        self._results: dict[str, BatchResult] = {}

    @property
    def _cancel_requested(self) -> bool:
        return self._cancel_event is not None and self._cancel_event.is_set()

    async def submit(
        self, state_path: Path | None, *, max_requests: int, max_bytes: int
    ) -> BatchState:
        """Create batches for the items no recorded batch holds; record each one."""
        state = await _load_state(state_path)
        held = {custom_id for batch in state.batches for custom_id in batch.custom_ids}
        requests = [
            build_request(item, custom_id, self._config)
            for item in self._items
            if (custom_id := self._ids.custom_id(item.id)) not in held
        ]
        for chunk in split_requests(requests, max_requests=max_requests, max_bytes=max_bytes):
            if self._cancel_requested:
                break
            batch = await self._client.create(chunk)
            submitted = SubmittedBatch(batch.id, [request.custom_id for request in chunk])
            state = msgspec.structs.replace(state, batches=(*state.batches, submitted))
            if state_path is not None:
                await anyio.to_thread.run_sync(write_atomically, state_path, encode_state(state))
        return state

    async def poll(self, batch_ids: Sequence[str], initial: float, ceiling: float) -> None:
        """Poll until every batch has ended, collecting each one's results as it ends."""
        latest: dict[str, bw.MessageBatch] = {}
        open_ids = list(batch_ids)
        delay, canceled = initial, False
        while open_ids:
            for batch_id in open_ids:
                latest[batch_id] = await self._client.retrieve(batch_id)
            await _notify(self._progress, _sum_counts(latest.values()))
            for batch_id in open_ids:
                if latest[batch_id].ended:
                    await self._collect(batch_id)
            open_ids = [batch_id for batch_id in open_ids if not latest[batch_id].ended]
            if open_ids and self._cancel_requested and not canceled:
                await self._cancel(open_ids)
                delay, canceled = initial, True
                continue
            if open_ids:
                await self._pause(delay)
                delay = min(delay * 2, ceiling)

    async def _pause(self, seconds: float) -> None:
        """Sleep between polls; a cancel request cuts the sleep short."""
        if self._cancel_event is None or self._cancel_event.is_set():
            await anyio.sleep(seconds)
            return
        with anyio.move_on_after(seconds):
            await self._cancel_event.wait()

    async def _cancel(self, batch_ids: Sequence[str]) -> None:
        for batch_id in batch_ids:
            try:
                await self._client.cancel(batch_id)
            except APIStatusError as exc:
                # a batch that ended since the last poll can no longer be canceled: that is fine
                if exc.status_code not in _CANNOT_CANCEL:
                    raise

    async def _collect(self, batch_id: str) -> None:
        async with contextlib.aclosing(self._client.results(batch_id)) as lines:
            async for line in lines:
                item_id = self._ids.item_id(line.custom_id)
                if item_id is None or item_id in self._results:
                    continue  # a request of no item of this call, or one already seen
                item = self._by_id[item_id]
                await self._deliver(batch_result(item, line.result, self._config))

    async def _deliver(self, result: BatchResult) -> None:
        self._results[result.id] = result
        await _notify(self._on_result, result)

    async def finish(self) -> list[BatchResult]:
        """Every item's result in input order; items no batch answered get an error result."""
        if self._cancel_requested:
            missing = TurnError("canceled", "the job was canceled before this item was submitted")
        else:
            missing = TurnError("missing", "no batch returned a result for this item")
        for item in self._items:
            if item.id not in self._results:
                await self._deliver(_failed(item, missing))
        return [self._results[item.id] for item in self._items]


def _sum_counts(batches: Iterable[bw.MessageBatch]) -> bw.RequestCounts:
    return sum((batch.request_counts for batch in batches), bw.RequestCounts())


async def _notify(callback: Callable[[_T], object] | None, value: _T) -> None:
    if callback is None:
        return
    outcome = callback(value)
    if inspect.isawaitable(outcome):
        await outcome


# --------------------------------------------------------------------------- results

_NOT_RUN = {
    "canceled": "the batch was canceled before this request ran",
    "expired": "the batch expired (24 h after creation) before this request ran",
}


def batch_result(item: BatchItem, outcome: bw.BatchResultOutcome, config: Config) -> BatchResult:
    """The ``BatchResult`` of one result line."""
    if not isinstance(outcome, bw.SucceededResult):
        return _failed(item, _outcome_error(outcome))
    accumulator = MessageAccumulator("api")
    accumulator.feed_response(outcome.message)
    message = accumulator.message()
    usage = message.usage or Usage()
    return BatchResult(
        id=item.id,
        text=message.text,
        usage=usage,
        cost_usd=cost_usd(message.model or item_model(item, config), usage, batch=True),
        via=VIA,
        user_data=item.user_data,
    )


def _failed(item: BatchItem, error: TurnError) -> BatchResult:
    return BatchResult(id=item.id, is_error=True, error=error, via=VIA, user_data=item.user_data)


def _outcome_error(
    outcome: bw.ErroredResult | bw.CanceledResult | bw.ExpiredResult | bw.UnknownResult,
) -> TurnError:
    if isinstance(outcome, bw.ErroredResult):
        detail = outcome.error.error
        status = ERROR_TYPE_STATUS.get(detail.type, 500)
        exc = status_error(
            status,
            detail.message or detail.type,
            error_type=detail.type,
            request_id=outcome.error.request_id,
        )
        return TurnError("api_status", str(exc), status, exc.request_id)
    if isinstance(outcome, bw.UnknownResult):
        kind = outcome.raw.get("type")
        return TurnError("unknown_result", f"the API returned a result of unknown type {kind!r}")
    kind = "canceled" if isinstance(outcome, bw.CanceledResult) else "expired"
    return TurnError(kind, _NOT_RUN[kind])


# --------------------------------------------------------------------------- state file


async def _load_state(path: Path | None) -> BatchState:
    if path is None:
        return BatchState()
    try:
        data = await anyio.Path(path).read_bytes()
    except FileNotFoundError:
        return BatchState()
    try:
        return decode_state(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(
            f"{path} is not a batch state file ({exc}); delete it to submit the job afresh",
            field="state_path",
        ) from exc
