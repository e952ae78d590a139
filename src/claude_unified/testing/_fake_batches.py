"""The fake Message Batches API, independent of HTTP.

``FakeBatches`` keeps the batches created on a ``FakeAnthropicServer`` and answers the batch
endpoints. Each request of a batch is answered like ``POST /v1/messages`` (rules, then the queue,
then the default scheme; an ``error(...)`` step becomes an ``errored`` result; wire faults are not
acted out). A rule's predicate sees each batch request as a ``RecordedRequest`` whose ``body`` and
``json`` are that request's ``params``.

Processing is lazy and driven by the clock: a batch's requests finish one after another, evenly
spread over ``processing_s`` seconds from its creation, and are looked at whenever the batch is.
``processing_s=None`` holds every batch until :meth:`FakeBatches.finish`.
"""

from __future__ import annotations

import random
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, NamedTuple, TypeAlias
from urllib.parse import parse_qs

import msgspec

from claude_unified.testing._fake_api import (
    DEFAULT_MODEL,
    ApiRequest,
    PromptCache,
    RecordedRequest,
    Script,
    parse_request,
)
from claude_unified.testing._script import ErrorReply, error, render_error, render_message

__all__ = ["BatchResponse", "FakeBatches"]

PREFIX = "/v1/messages/batches"
MAX_REQUESTS = 100_000
EXPIRY_S = 24 * 3600

_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_ROUTE = re.compile(r"/v1/messages/batches(?:/(?P<id>[^/]+)(?P<action>/cancel|/results)?)?/?")

Outcome: TypeAlias = Literal["succeeded", "errored", "canceled", "expired"]


class BatchResponse(NamedTuple):
    status: int
    body: bytes
    content_type: str = "application/json"


# --------------------------------------------------------------------------- wire shapes


class _RequestIn(msgspec.Struct, frozen=True):
    custom_id: str
    params: msgspec.Raw


class _CreateIn(msgspec.Struct, frozen=True):
    requests: list[_RequestIn]


class _Counts(msgspec.Struct, frozen=True):
    processing: int
    succeeded: int
    errored: int
    canceled: int
    expired: int


class _BatchOut(msgspec.Struct, frozen=True, tag="message_batch", tag_field="type"):
    id: str
    processing_status: str
    request_counts: _Counts
    created_at: str
    expires_at: str
    ended_at: str | None
    cancel_initiated_at: str | None
    archived_at: str | None
    results_url: str | None


class _Page(msgspec.Struct, frozen=True):
    data: list[_BatchOut]
    has_more: bool
    first_id: str | None
    last_id: str | None


class _Deleted(msgspec.Struct, frozen=True, tag="message_batch_deleted", tag_field="type"):
    id: str


class _Result(msgspec.Struct, frozen=True, tag_field="type"):
    pass


class _Succeeded(_Result, frozen=True, tag="succeeded"):
    message: msgspec.Raw


class _Errored(_Result, frozen=True, tag="errored"):
    error: msgspec.Raw


class _Canceled(_Result, frozen=True, tag="canceled"):
    pass


class _Expired(_Result, frozen=True, tag="expired"):
    pass


class _ResultLine(msgspec.Struct, frozen=True):
    custom_id: str
    result: _Result


_create_decoder = msgspec.json.Decoder(_CreateIn)
_encoder = msgspec.json.Encoder()


def _rfc3339(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- state


@dataclass
class _Entry:
    custom_id: str
    record: RecordedRequest
    body: ApiRequest
    outcome: Outcome | None = None
    result: _Result | None = None


@dataclass
class _Batch:
    id: str
    created: float
    entries: list[_Entry]
    status: str = "in_progress"
    cancel_initiated: float | None = None
    ended: float | None = None
    done: int = 0

    def counts(self) -> _Counts:
        tally = Counter(entry.outcome for entry in self.entries)
        return _Counts(
            processing=tally[None],
            succeeded=tally["succeeded"],
            errored=tally["errored"],
            canceled=tally["canceled"],
            expired=tally["expired"],
        )


class FakeBatches:
    """The batches of one fake server. ``processing_s``: seconds a batch takes from creation to
    its end (``None``: until :meth:`finish`); ``max_requests``: the most requests one batch may
    hold. Thread-safe."""

    def __init__(self, script: Script, cache: PromptCache) -> None:
        self.processing_s: float | None = 0.0
        self.max_requests = MAX_REQUESTS
        self._script = script
        self._cache = cache
        self._lock = threading.Lock()
        self._batches: dict[str, _Batch] = {}

    # ------------------------------------------------------------------ test controls

    @property
    def ids(self) -> list[str]:
        """The ids of the batches created so far (and not deleted), oldest first."""
        with self._lock:
            return list(self._batches)

    def finish(self, limit: int | None = None) -> None:
        """Process every waiting request now, or only the next ``limit`` of each batch."""
        with self._lock:
            for batch in self._batches.values():
                if batch.status == "in_progress":
                    end = len(batch.entries) if limit is None else batch.done + limit
                    self._process(batch, end, time.time())

    def expire(self) -> None:
        """End every open batch as if 24 hours had passed: waiting requests expire."""
        with self._lock:
            for batch in self._batches.values():
                if batch.status != "ended":
                    self._end(batch, "expired", time.time())

    def clear(self) -> None:
        with self._lock:
            self._batches.clear()

    # ------------------------------------------------------------------ HTTP

    def handle(self, request: RecordedRequest, base_url: str) -> BatchResponse | ErrorReply:
        """Answer one request to a path under ``/v1/messages/batches``."""
        route = _ROUTE.fullmatch(request.path)
        if route is None:
            return error(404, message=f"{request.method} {request.path} is not part of the API")
        batch_id, action = route["id"], route["action"] or ""
        with self._lock:
            if batch_id is None:
                if request.method == "POST":
                    return self._create(request, base_url)
                if request.method == "GET":
                    return self._list(request.query, base_url)
            else:
                batch = self._batches.get(batch_id)
                if batch is None:
                    return error(404, message=f"no message batch with id {batch_id!r}")
                self._advance(batch, time.time())
                answer = self._on_batch(request.method, action, batch, base_url)
                if answer is not None:
                    return answer
        return error(405, message=f"{request.method} is not allowed on {request.path}")

    def _on_batch(
        self, method: str, action: str, batch: _Batch, base_url: str
    ) -> BatchResponse | ErrorReply | None:
        if (method, action) == ("GET", ""):
            return self._json(self._view(batch, base_url))
        if (method, action) == ("POST", "/cancel"):
            if batch.status == "in_progress":
                batch.status, batch.cancel_initiated = "canceling", time.time()
            return self._json(self._view(batch, base_url))
        if (method, action) == ("GET", "/results"):
            return self._results(batch)
        if (method, action) == ("DELETE", ""):
            if batch.status != "ended":
                return error(400, message=f"batch {batch.id} has not ended; cancel it first")
            del self._batches[batch.id]
            return self._json(_Deleted(batch.id))
        return None

    @staticmethod
    def _json(value: object) -> BatchResponse:
        return BatchResponse(200, _encoder.encode(value))

    def _create(self, request: RecordedRequest, base_url: str) -> BatchResponse | ErrorReply:
        try:
            body = _create_decoder.decode(request.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return error(400, message=f"malformed batch create body: {exc}")
        problem = self._invalid(body.requests)
        if problem is not None:
            return error(400, message=problem)
        entries: list[_Entry] = []
        for index, item in enumerate(body.requests):
            raw = bytes(item.params)
            data, params, text = parse_request(raw)
            if params is None:
                return error(400, message=f"requests.{index}.params: not a Messages create body")
            record = msgspec.structs.replace(request, body=raw, json=data, last_user_text=text)
            entries.append(_Entry(item.custom_id, record, params))
        batch = _Batch(f"msgbatch_fake_{secrets.token_hex(12)}", time.time(), entries)
        self._batches[batch.id] = batch
        return self._json(self._view(batch, base_url))

    def _invalid(self, requests: list[_RequestIn]) -> str | None:
        if not 1 <= len(requests) <= self.max_requests:
            return f"requests: a batch holds 1 to {self.max_requests} requests, got {len(requests)}"
        seen: set[str] = set()
        for index, item in enumerate(requests):
            if not _CUSTOM_ID.fullmatch(item.custom_id):
                return f"requests.{index}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$"
            if item.custom_id in seen:
                return f"requests.{index}.custom_id: {item.custom_id!r} is not unique"
            seen.add(item.custom_id)
        return None

    def _list(self, query: str, base_url: str) -> BatchResponse | ErrorReply:
        args = {name: values[-1] for name, values in parse_qs(query).items()}
        limit_text = args.get("limit", "20")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 1000:
            return error(400, message="limit: must be an integer from 1 to 1000")
        newest_first = list(reversed(self._batches.values()))
        ids = [batch.id for batch in newest_first]
        start, stop = 0, len(newest_first)
        for cursor, is_after in (("after_id", True), ("before_id", False)):
            if cursor in args:
                if args[cursor] not in ids:
                    return error(404, message=f"{cursor}: no message batch {args[cursor]!r}")
                if is_after:
                    start = ids.index(args[cursor]) + 1
                else:
                    stop = ids.index(args[cursor])
        window = newest_first[start:stop]
        before = "before_id" in args and "after_id" not in args
        page = window[-int(limit_text) :] if before else window[: int(limit_text)]
        now = time.time()
        for batch in page:
            self._advance(batch, now)
        data = [self._view(batch, base_url) for batch in page]
        return self._json(
            _Page(
                data=data,
                has_more=len(page) < len(window),
                first_id=data[0].id if data else None,
                last_id=data[-1].id if data else None,
            )
        )

    def _results(self, batch: _Batch) -> BatchResponse | ErrorReply:
        if batch.status != "ended":
            return error(404, message=f"the results of {batch.id} are ready once it has ended")
        lines = [
            _ResultLine(entry.custom_id, entry.result)
            for entry in batch.entries
            if entry.result is not None  # every entry of an ended batch has its result
        ]
        shuffled = random.sample(lines, len(lines))
        if len(lines) > 1 and shuffled == lines:
            shuffled.reverse()  # clients must key by custom_id: never hand them input order
        body = b"".join(_encoder.encode(line) + b"\n" for line in shuffled)
        return BatchResponse(200, body, "application/binary")

    def _view(self, batch: _Batch, base_url: str) -> _BatchOut:
        ended = batch.status == "ended"
        return _BatchOut(
            id=batch.id,
            processing_status=batch.status,
            request_counts=batch.counts(),
            created_at=_rfc3339(batch.created) or "",
            expires_at=_rfc3339(batch.created + EXPIRY_S) or "",
            ended_at=_rfc3339(batch.ended),
            cancel_initiated_at=_rfc3339(batch.cancel_initiated),
            archived_at=None,
            results_url=f"{base_url}{PREFIX}/{batch.id}/results" if ended else None,
        )

    # ------------------------------------------------------------------ processing

    def _advance(self, batch: _Batch, now: float) -> None:
        """Bring a batch up to date: finish the requests due by ``now``; a canceling batch ends
        on its next look, its unfinished requests canceled."""
        if batch.status == "canceling":
            self._end(batch, "canceled", now)
        elif batch.status == "in_progress" and self.processing_s is not None:
            total = len(batch.entries)
            if self.processing_s <= 0:
                due = total
            else:
                due = int(total * (now - batch.created) / self.processing_s)
            self._process(batch, due, now)

    def _process(self, batch: _Batch, end: int, now: float) -> None:
        for entry in batch.entries[batch.done : min(end, len(batch.entries))]:
            entry.outcome, entry.result = self._answer(entry.record, entry.body)
            batch.done += 1
        if batch.done == len(batch.entries):
            self._end(batch, None, now)

    def _answer(self, record: RecordedRequest, body: ApiRequest) -> tuple[Outcome, _Result]:
        request_id = f"req_fake_{secrets.token_hex(12)}"
        try:
            step = self._script.choose(record, body)
            plan = self._cache.plan(body, len(record.body))
        except msgspec.ValidationError as exc:
            step = error(400, message=f"malformed request: {exc}")
        if isinstance(step, ErrorReply):
            return "errored", _Errored(msgspec.Raw(render_error(step, request_id=request_id)))
        message = render_message(
            step,
            model=body.model or DEFAULT_MODEL,
            message_id=f"msg_fake_{secrets.token_hex(12)}",
            **plan._asdict(),
        )
        return "succeeded", _Succeeded(msgspec.Raw(message))

    @staticmethod
    def _end(batch: _Batch, leftover: Literal["canceled", "expired"] | None, now: float) -> None:
        """End a batch; requests not processed yet get the ``leftover`` outcome."""
        if leftover is not None:
            result: _Result = _Canceled() if leftover == "canceled" else _Expired()
            for entry in batch.entries[batch.done :]:
                entry.outcome, entry.result = leftover, result
        batch.status, batch.ended = "ended", now
