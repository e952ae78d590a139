"""ApiBackend: the Anthropic Messages API over HTTP (httpx), streamed as server-sent events.

It moves bytes: builds the request body from Structs, frames the SSE stream, decodes each frame
with the core's typed decoders and yields them. Retries, timeouts and error mapping live here
because they are properties of the transport.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import httpx
import msgspec

from .. import _wire as w
from .._config import DEFAULT_API_MODEL, Config
from .._events import (
    ContentBlock,
    JsonObject,
    Message,
    TextBlock,
    ToolResultBlock,
    UnknownBlock,
)
from .._exceptions import (
    ERROR_TYPE_STATUS,
    ConfigError,
    ConnectError,
    ProtocolError,
    TimeoutError,
    status_error,
)
from ._http import (
    Retry,
    connection_failure,
    make_client,
    require_credentials,
    retry_delay,
    status_failure,
    transport_failure,
)
from ._protocol import (
    Exchange,
    Frame,
    FrameBatches,
    ResponseStarted,
    RetryNotice,
    SessionSpec,
    ToolSpec,
)
from ._retry import backoff, should_retry
from ._sse import SseFramer
from ._stoppable import ReadStopped, StoppableReads

__all__ = ["ApiBackend", "EncodedMessages", "encode_body"]

_EPHEMERAL: JsonObject = {"type": "ephemeral"}
MAX_CACHE_BREAKPOINTS = 4
"""The most ``cache_control`` markers the API accepts in one request."""
_MARK = b'"cache_control":'  # as a key only: inside a JSON string the quotes are escaped
_READ_FAILURES = (StopAsyncIteration, httpx.TransportError, httpx.DecodingError, ReadStopped)
_PROGRESS_EVENTS = (w.ContentBlockStartEvent, w.ContentBlockDeltaEvent, w.ContentBlockStopEvent)


class _ToolDef(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str
    description: str
    input_schema: JsonObject
    cache_control: JsonObject | None = None


class _RequestMessage(msgspec.Struct, frozen=True):
    role: str
    content: str | list[Any]


class _MessagesBody(msgspec.Struct, frozen=True, omit_defaults=True):
    model: str
    messages: list[msgspec.Raw]
    max_tokens: int | None = None
    system: list[TextBlock] | None = None
    tools: list[_ToolDef] | None = None
    stream: bool = False
    cache_control: JsonObject | None = None


_encoder = msgspec.json.Encoder()


class EncodedMessages:
    """Each history message encoded once. A conversation resends its whole history every turn,
    and a turn mostly appends to it: the messages of the previous request are kept with their
    bytes, and only what differs from them is encoded again. Comparing the kept prefix is one
    C-level list comparison (identity first), so a turn's cost stays flat in the history's
    length beyond the bytes themselves. Equal messages encode to equal bytes, so a prefix that
    compares equal may be reused even when its objects were rebuilt."""

    __slots__ = ("_marks", "_messages", "_raws")

    def __init__(self) -> None:
        self._messages: list[Message] = []
        self._raws: list[msgspec.Raw] = []
        self._marks: list[int] = []  # cache_control markers in each message

    def encode(self, history: Sequence[Message]) -> list[msgspec.Raw]:
        messages, raws, marks = self._messages, self._raws, self._marks
        kept = len(messages)
        if len(history) < kept or list(history[:kept]) != messages:
            kept = next(
                (i for i, (a, b) in enumerate(zip(history, messages, strict=False)) if a != b),
                min(len(history), kept),
            )
        del messages[kept:], raws[kept:], marks[kept:]
        for message in history[kept:]:
            data = _encoder.encode(_request_message(message))
            messages.append(message)
            raws.append(msgspec.Raw(data))
            marks.append(data.count(_MARK))
        return list(raws)

    @property
    def cache_marks(self) -> int:
        """The ``cache_control`` markers of the messages last encoded (the user's own)."""
        return sum(self._marks)


def encode_body(
    request: Exchange,
    *,
    default_model: str,
    prompt_caching: bool,
    encoded: EncodedMessages | None = None,
) -> bytes:
    """The Messages request body for one exchange, with automatic prompt-cache breakpoints when
    ``prompt_caching`` is on. ``default_model`` serves when the exchange names no model;
    ``encoded`` keeps the history's messages encoded from one request to the next.

    The API takes at most four cache breakpoints. The user's own (``cache_control`` on their
    message blocks or in ``extra_body``) always stay; ours (automatic, system, last tool, in
    that order of preference) take only the slots that are left."""
    encoded = encoded or EncodedMessages()
    messages = encoded.encode(request.history)
    settings = request.settings
    extra = {**settings.extra_body, **(request.extra_body or {})}
    ours = _our_breakpoints(encoded.cache_marks + _marks_in(extra)) if prompt_caching else 0
    tools = [_tool_def(t) for t in request.tools] or None
    if tools and ours >= 3:
        tools[-1] = msgspec.structs.replace(tools[-1], cache_control=_EPHEMERAL)
    system = None
    if request.system:
        system = [TextBlock(request.system, cache_control=_EPHEMERAL if ours >= 2 else None)]
    body = _MessagesBody(
        model=request.model or default_model,
        max_tokens=request.max_tokens,
        messages=messages,
        system=system,
        tools=tools,
        stream=request.stream,
        cache_control=_EPHEMERAL if ours >= 1 else None,
    )
    encoded_body = _encoder.encode(body)
    added = settings.body_fields()
    if not added and not extra:
        return encoded_body
    fields = msgspec.json.decode(encoded_body, type=dict[str, msgspec.Raw])  # values stay bytes
    return _encoder.encode({**fields, **added, **extra})


def _our_breakpoints(users: int) -> int:
    """How many of our three automatic breakpoints fit beside the user's ``users``."""
    return max(0, min(3, MAX_CACHE_BREAKPOINTS - users))


def _marks_in(extra: Mapping[str, Any]) -> int:
    return _encoder.encode(extra).count(_MARK) if extra else 0


class ApiBackend:
    """Talks to ``{base_url}/v1/messages``. One pooled ``httpx.AsyncClient`` per backend."""

    name = "api"
    drives_tool_loop = False
    default_model = DEFAULT_API_MODEL

    def __init__(
        self,
        config: Config,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        require_credentials(config, "the API backend")
        refuse_cli_only(config)
        self._config = config
        self._client = client
        self._owns_client = client is None
        self._transport = transport
        self._session = SessionSpec()
        self._reads = StoppableReads()
        self._encoded = EncodedMessages()

    # ---------------------------------------------------------------- lifecycle

    async def open(self, session: SessionSpec) -> None:
        self._session = session
        if self._client is None:
            self._client = make_client(self._config, self._transport)

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    async def interrupt(self) -> None:
        """Stop reading the current response; the exchange ends without an error."""
        self._reads.stop()

    # ---------------------------------------------------------------- requests

    def build_body(self, request: Exchange) -> bytes:
        """The request body for one exchange, with automatic prompt-cache breakpoints."""
        return encode_body(
            request,
            default_model=self._session.model or DEFAULT_API_MODEL,
            prompt_caching=self._config.prompt_caching,
            encoded=self._encoded,
        )

    def exchange(self, request: Exchange) -> AsyncIterator[Frame]:
        return self._frames(request)

    async def _frames(self, request: Exchange) -> AsyncIterator[Frame]:
        stream = _ResponseStream(self, request)
        try:
            async for batch in stream:
                for frame in batch:
                    yield frame
        finally:
            await stream.aclose()

    def exchange_batches(self, request: Exchange) -> FrameBatches:
        """``exchange``, with the frames of each network read handed over together: a stream's
        cost then goes to its bytes, not to one generator hop per frame per layer."""
        return _ResponseStream(self, request)

    def _retry_delay(self, retry: Retry, attempt: int, progressed: bool) -> float:
        """How long to wait before the next attempt, or raise when no retry is allowed."""
        if progressed:
            raise retry.final
        return retry_delay(retry, attempt, self._config, backoff)

    # ---------------------------------------------------------------- failures

    def _stream_error(self, event: w.ErrorEvent, headers: httpx.Headers) -> Exception:
        status = ERROR_TYPE_STATUS.get(event.error.type, 500)
        error = status_error(
            status,
            event.error.message or event.error.type,
            error_type=event.error.type,
            request_id=headers.get("request-id"),
        )
        if should_retry(status, {}):
            return Retry(error, status=status, wait=None, kind=event.error.type)
        return error

    def _truncated(self) -> Retry:
        url = self._config.base_url
        failure = ConnectError(f"the stream from {url} ended before message_stop", url=url)
        return Retry(failure, status=None, wait=None, kind="stream_truncated")

    def _timeout(self, idle: bool) -> Exception:
        if idle:
            seconds = self._config.idle_timeout
            failure = TimeoutError(
                f"no stream events for {seconds:g}s (pings do not count) from "
                f"{self._config.base_url}; raise idle_timeout to wait longer",
                kind="idle",
            )
            return Retry(failure, status=None, wait=None, kind="idle_timeout")
        return TimeoutError(
            f"the request took longer than timeout={self._config.timeout:g}s", kind="total"
        )

    # ---------------------------------------------------------------- extras

    async def count_tokens(self, request: Exchange) -> int:
        """Estimate the prompt's input tokens with ``/v1/messages/count_tokens`` (free)."""
        assert self._client is not None, "open() the backend first"
        counted = msgspec.structs.replace(request, stream=False)
        body = msgspec.json.decode(self.build_body(counted), type=JsonObject)
        body.pop("max_tokens", None)
        body.pop("stream", None)
        try:
            response = await self._client.post(
                "/v1/messages/count_tokens", content=_encoder.encode(body)
            )
        except httpx.TransportError as exc:
            raise connection_failure(exc, self._config.base_url).final from exc
        if response.status_code >= 400:
            failure = status_failure(response.status_code, response.headers, response.content)
            raise failure.final if isinstance(failure, Retry) else failure
        return w.decode_count_tokens(response.content).input_tokens


_CLI_ONLY = ("tools", "setting_sources", "settings", "agents", "plugins", "add_dirs")


def refuse_cli_only(config: Config) -> None:
    """Raise ``ConfigError`` naming the first Claude Code option set in ``config``: the
    Messages API has nothing to give them to, and a setting is never dropped silently."""
    for name in _CLI_ONLY:
        if getattr(config, name):
            raise ConfigError(
                f"{name} is a Claude Code CLI option; the API backend cannot honour it. "
                f"Use backend='cli', or leave {name} unset for the API.",
                field=name,
            )


class _ResponseStream:
    """One exchange's frames, a network read at a time: the request, its retries and the event
    stream. A hand-written async iterator rather than nested generators, so that a read costs
    one call, not a hop through each generator layer.

    Each network read (not each event) can be stopped by ``interrupt()``. Silence is caught by
    the read timeout (``idle_timeout``, set per request); the total deadline joins a read only
    once less than ``idle_timeout`` is left. Both clocks are checked after every read, and only
    real events (not pings, not comments) move the idle clock on, so nothing that keeps the
    connection busy keeps a stalled stream alive. Retries follow ``_retry_delay``: never once
    content of that response has been handed over.
    """

    def __init__(self, backend: ApiBackend, request: Exchange):
        self._backend = backend
        self._config = backend._config
        self._body = backend.build_body(request)
        self._stream = request.stream
        self._deadline = time.monotonic() + self._config.timeout
        self._reads = backend._reads
        self._reads.reset()
        self._attempt = 0
        self._progressed = False
        self._wait: float | None = None  # before the next attempt
        self._done = False
        self._opened: AbstractAsyncContextManager[httpx.Response] | None = None
        self._response: httpx.Response | None = None
        self._chunks: AsyncIterator[bytes] | None = None
        self._framer = SseFramer()
        self._idle_deadline = 0.0
        self._now = 0.0
        self._quiet = False
        self._failure: w.ErrorEvent | None = None  # after the events before it are handed over

    def __aiter__(self) -> _ResponseStream:
        return self

    def __anext__(self) -> Awaitable[list[Frame]]:
        """The next batch. A plain function handing out the read's own coroutine: one frame
        less per network read. ``_read`` and ``_start`` hand their failures to ``_failed``."""
        if self._chunks is not None:
            return self._read()
        if self._done:
            raise StopAsyncIteration
        return self._start()

    async def _failed(self, exc: BaseException) -> list[Frame]:
        """What a failed read or start becomes: the end of the stream, a retry notice, or the
        failure itself once the response is closed."""
        if isinstance(exc, ReadStopped):  # by interrupt(); a deadline raises TimeoutError
            await self.aclose()
            raise StopAsyncIteration from None
        if isinstance(exc, Retry):
            retry = exc
            await self._close_response()
            try:
                self._wait = self._backend._retry_delay(retry, self._attempt, self._progressed)
            except BaseException:
                self._done = True
                raise
            self._attempt += 1
            return [
                RetryNotice(
                    self._attempt, self._config.max_retries, self._wait, retry.status, retry.kind
                )
            ]
        await self.aclose()
        raise exc

    async def _start(self) -> list[Frame]:
        try:
            return await self._open_response()
        except BaseException as exc:
            return await self._failed(exc)

    async def _open_response(self) -> list[Frame]:
        if self._wait is not None:
            await anyio.sleep(self._wait)
            self._wait = None
        client = self._backend._client
        assert client is not None, "open() the backend first"
        self._progressed = False
        extra = _read_timeout(client.timeout, self._config) if self._stream else {}
        try:
            opened = client.stream("POST", "/v1/messages", content=self._body, **extra)
            response = await opened.__aenter__()
            self._opened, self._response = opened, response
            headers = response.headers
            if response.status_code >= 400:
                await response.aread()
                raise status_failure(response.status_code, headers, response.content)
            started = ResponseStarted(headers.get("request-id"), _rate_limits(headers))
            if not self._stream:
                message = w.decode_message_response(await response.aread())
                self._done = True
                await self._close_response()
                return [started, message]
        except httpx.TransportError as exc:
            raise transport_failure(exc, self._config.base_url) from exc
        except httpx.DecodingError as exc:
            raise _undecodable(exc, self._config.base_url) from exc
        _require_event_stream(response, self._config.base_url)
        self._framer = SseFramer()
        self._chunks = response.aiter_bytes().__aiter__()
        self._now = time.monotonic()
        self._idle_deadline = self._now + self._config.idle_timeout
        return [started]

    async def _read(self) -> list[Frame]:
        """The events of the next network read that brings any (pings and comments do not)."""
        try:
            assert self._response is not None
            if self._failure is not None:
                pending, self._failure = self._failure, None
                raise self._backend._stream_error(pending, self._response.headers)  # noqa: TRY301
            reads, deadline, idle = self._reads, self._deadline, self._config.idle_timeout
            chunks = self._chunks
            assert chunks is not None
            now = self._now  # the end of the previous read: this read's start, µs ago at most
            self._quiet = False  # set when a read brings no event: the idle deadline then joins
            while True:
                until = min(deadline, self._idle_deadline) if self._quiet else deadline
                joined = (
                    _loop_deadline(until, now) if self._quiet or until - now < idle else math.inf
                )
                try:  # reads.read(chunks, joined), made here: one coroutine frame less per read
                    task = reads.begin(joined)
                    if task is None:
                        chunk = await reads.read_scoped(chunks, joined)
                    else:
                        try:
                            chunk = await chunks.__anext__()
                        except asyncio.CancelledError:
                            reads.cancelled(task)
                            raise
                        finally:
                            reads.end(task)
                except (
                    StopAsyncIteration,
                    httpx.TransportError,
                    httpx.DecodingError,
                    ReadStopped,
                ) as exc:
                    mapped = self._read_failure(exc)
                    if mapped is exc:
                        raise
                    raise mapped from exc
                batch, failure = _decode(self._framer.feed(chunk))
                now = self._now = time.monotonic()
                if batch and failure is None and now < deadline and not reads.stopped:
                    # the bulk of a stream, inline: a read that brought events and nothing else
                    self._idle_deadline = now + idle
                    if type(batch[-1]) is w.MessageStopEvent:
                        self._done = True
                        await self._close_response()
                    return batch if self._progressed else self._progress(batch)
                settled = await self._settle(batch, failure, now)
                if settled is not None:
                    return settled
        except BaseException as exc:
            return await self._failed(exc)

    async def _settle(
        self, batch: list[Frame], failure: w.ErrorEvent | None, now: float
    ) -> list[Frame] | None:
        """A read off the inline path: what it hands over, or None to read on. Raises when a
        clock has run out, the reads were stopped or the stream failed."""
        self._check_clocks(now, bool(batch))
        if self._reads.stopped:
            raise ReadStopped(True)
        if failure is not None:
            if batch:  # what came before the error event reaches the core first
                self._failure = failure
                return self._progress(batch)
            assert self._response is not None
            raise self._backend._stream_error(failure, self._response.headers)
        if batch:
            if type(batch[-1]) is w.MessageStopEvent:
                self._done = True
                await self._close_response()
            return self._progress(batch)
        return None

    def _check_clocks(self, now: float, brought_events: bool) -> None:
        """After a read: raise when a deadline has passed; only events move the idle clock."""
        deadline = self._deadline
        if brought_events:
            if now >= deadline:
                raise self._backend._timeout(False)
            self._idle_deadline = now + self._config.idle_timeout
            return
        if now >= self._idle_deadline or now >= deadline:
            raise self._backend._timeout(self._idle_deadline <= deadline)
        self._quiet = True

    def _read_failure(self, exc: Exception) -> Exception:
        """What a failed network read is to the library (or a ``Retry``)."""
        if isinstance(exc, StopAsyncIteration):
            return self._backend._truncated()
        if isinstance(exc, httpx.ReadTimeout):
            return self._backend._timeout(True)
        if isinstance(exc, httpx.TransportError):
            return transport_failure(exc, self._config.base_url)
        if isinstance(exc, httpx.DecodingError):
            return _undecodable(exc, self._config.base_url)
        assert isinstance(exc, ReadStopped)
        if exc.by_stop:
            return exc
        return self._backend._timeout(self._quiet and self._idle_deadline <= self._deadline)

    def _progress(self, batch: list[Frame]) -> list[Frame]:
        if not self._progressed:
            self._progressed = any(isinstance(f, _PROGRESS_EVENTS) for f in batch)
        return batch

    async def _close_response(self) -> None:
        opened, self._opened, self._response, self._chunks = self._opened, None, None, None
        if opened is not None:
            with anyio.CancelScope(shield=True):
                await opened.__aexit__(None, None, None)

    async def aclose(self) -> None:
        self._done = True
        await self._close_response()


def _decode(datas: list[bytes]) -> tuple[list[Frame], w.ErrorEvent | None]:
    """The events of one read's frames, without pings, up to ``message_stop`` or an error
    event (returned apart)."""
    batch: list[Frame] = []
    decode, ping, error, stop = w.decode_api_event, w.PingEvent, w.ErrorEvent, w.MessageStopEvent
    for data in datas:
        event = decode(data)
        kind = type(event)  # by identity: a missed isinstance on a Struct class is slow
        if kind is ping:
            continue
        if kind is error and isinstance(event, w.ErrorEvent):
            return batch, event
        batch.append(event)
        if kind is stop:
            break
    return batch, None


def _tool_def(spec: ToolSpec) -> _ToolDef:
    return _ToolDef(spec.name, spec.description, spec.input_schema)


def _request_message(message: Message) -> _RequestMessage:
    content = message.content
    if isinstance(content, str):
        return _RequestMessage(message.role, content)
    return _RequestMessage(message.role, [_wire_block(b) for b in content])


def _wire_block(block: ContentBlock) -> Any:
    if isinstance(block, UnknownBlock):
        return block.raw
    if isinstance(block, ToolResultBlock) and not isinstance(block.content, str):
        # blocks nested in a tool result are sent back as-is too
        return {**msgspec.to_builtins(block), "content": [_wire_block(b) for b in block.content]}
    return block


def _undecodable(exc: httpx.DecodingError, url: str) -> ProtocolError:
    """A body whose content-encoding (a broken gzip, say) cannot be undone."""
    return ProtocolError(f"the response from {url} could not be decoded: {exc}")


def _loop_deadline(monotonic: float, now: float) -> float:
    """A ``time.monotonic()`` deadline on the event loop's clock (trio's has its own origin)."""
    return anyio.current_time() + (monotonic - now)


def _read_timeout(client: httpx.Timeout, config: Config) -> dict[str, Any]:
    """The client's timeouts with ``read`` set to ``idle_timeout``: a silent stream must end."""
    read = config.idle_timeout
    if client.read == read:
        return {}
    return {
        "timeout": httpx.Timeout(
            connect=client.connect, read=read, write=client.write, pool=client.pool
        )
    }


def _require_event_stream(response: httpx.Response, url: str) -> None:
    content_type = response.headers.get("content-type", "").partition(";")[0]
    if "text/event-stream" not in content_type:
        problem = f"expected an event stream, got content-type {content_type!r}"
        raise transport_failure(httpx.TransportError(problem), url)


def _rate_limits(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith("anthropic-ratelimit-")}
