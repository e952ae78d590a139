"""ApiBackend: the Anthropic Messages API over HTTP (httpx), streamed with SSE (httpx-sse).

It moves bytes: builds the request body from Structs, frames the SSE stream, decodes each frame
with the core's typed decoders and yields them. Retries, timeouts and error mapping live here
because they are properties of the transport.
"""

from __future__ import annotations

import platform
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import httpx
import msgspec
from httpx_sse import EventSource

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
    RateLimitError,
    TimeoutError,
    status_error,
)
from .._version import __version__
from ._protocol import Exchange, Frame, ResponseStarted, RetryNotice, SessionSpec, ToolSpec
from ._retry import backoff, server_wait, should_retry

__all__ = ["ApiBackend"]

_EPHEMERAL: JsonObject = {"type": "ephemeral"}
_USER_AGENT = f"claude-unified/{__version__} (python {platform.python_version()}; httpx)"
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
    messages: list[_RequestMessage]
    max_tokens: int | None = None
    system: list[TextBlock] | None = None
    tools: list[_ToolDef] | None = None
    stream: bool = False
    cache_control: JsonObject | None = None


_encoder = msgspec.json.Encoder()


class _Retry(Exception):
    """A failed attempt that may be retried; ``final`` is what to raise when retries run out."""

    def __init__(self, final: Exception, *, status: int | None, wait: float | None, kind: str):
        super().__init__(str(final))
        self.final = final
        self.status = status
        self.wait = wait
        self.kind = kind


class _Interrupted(Exception):
    pass


class ApiBackend:
    """Talks to ``{base_url}/v1/messages``. One pooled ``httpx.AsyncClient`` per backend."""

    name = "api"
    drives_tool_loop = False

    def __init__(
        self,
        config: Config,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        if not config.has_credentials:
            raise ConfigError(
                "the API backend needs credentials: set ANTHROPIC_API_KEY (or api_key), or "
                "ANTHROPIC_AUTH_TOKEN (or auth_token) for a bearer token",
                field="api_key",
            )
        self._config = config
        self._client = client
        self._owns_client = client is None
        self._transport = transport
        self._session = SessionSpec()
        self._read_scope: anyio.CancelScope | None = None
        self._interrupted = False

    # ---------------------------------------------------------------- lifecycle

    async def open(self, session: SessionSpec) -> None:
        self._session = session
        if self._client is None:
            self._client = self._make_client()

    def _make_client(self) -> httpx.AsyncClient:
        cfg = self._config
        timeout = httpx.Timeout(cfg.idle_timeout, connect=cfg.connect_timeout)
        http2 = cfg.http2 and _has_h2()
        return httpx.AsyncClient(
            base_url=cfg.base_url.rstrip("/"),
            headers=self._headers(),
            timeout=timeout,
            http2=http2,
            transport=self._transport,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
        )

    def _headers(self) -> dict[str, str]:
        cfg = self._config
        headers = {
            "anthropic-version": cfg.anthropic_version,
            "content-type": "application/json",
            "accept": "application/json",
            "user-agent": _USER_AGENT,
        }
        if cfg.api_key:
            headers["x-api-key"] = cfg.api_key
        else:
            headers["authorization"] = f"Bearer {cfg.auth_token}"
        if cfg.betas:
            headers["anthropic-beta"] = ",".join(cfg.betas)
        headers.update(cfg.extra_headers)
        return headers

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    async def interrupt(self) -> None:
        """Stop reading the current response; the exchange ends without an error."""
        self._interrupted = True
        if self._read_scope is not None:
            self._read_scope.cancel()

    # ---------------------------------------------------------------- requests

    def build_body(self, request: Exchange) -> bytes:
        """The request body for one exchange, with automatic prompt-cache breakpoints."""
        caching = self._config.prompt_caching
        tools = [_tool_def(t) for t in request.tools] or None
        if tools and caching:
            tools[-1] = msgspec.structs.replace(tools[-1], cache_control=_EPHEMERAL)
        system = None
        if request.system:
            system = [TextBlock(request.system, cache_control=_EPHEMERAL if caching else None)]
        body = _MessagesBody(
            model=request.model or self._session.model or DEFAULT_API_MODEL,
            max_tokens=request.max_tokens,
            messages=[_request_message(m) for m in request.history],
            system=system,
            tools=tools,
            stream=request.stream,
            cache_control=_EPHEMERAL if caching else None,
        )
        if not request.extra_body:
            return _encoder.encode(body)
        return _encoder.encode({**msgspec.to_builtins(body), **request.extra_body})

    def exchange(self, request: Exchange) -> AsyncIterator[Frame]:
        return self._exchange(request)

    async def _exchange(self, request: Exchange) -> AsyncIterator[Frame]:
        body = self.build_body(request)
        deadline = time.monotonic() + self._config.timeout
        self._interrupted = False
        attempt = 0
        while True:
            progressed = False
            try:
                async for frame in self._attempt(body, request.stream, deadline):
                    progressed = progressed or isinstance(frame, _PROGRESS_EVENTS)
                    yield frame
            except _Interrupted:
                return
            except _Retry as retry:
                delay = self._retry_delay(retry, attempt, progressed)
                yield RetryNotice(
                    attempt + 1, self._config.max_retries, delay, retry.status, retry.kind
                )
                await anyio.sleep(delay)
                attempt += 1
                continue
            return

    def _retry_delay(self, retry: _Retry, attempt: int, progressed: bool) -> float:
        """How long to wait before the next attempt, or raise when no retry is allowed."""
        if progressed or attempt >= self._config.max_retries:
            raise retry.final
        if retry.wait is None:
            return backoff(attempt)
        if retry.wait > self._config.max_retry_wait:
            if isinstance(retry.final, RateLimitError):
                retry.final.retry_after = retry.wait
            raise retry.final
        return retry.wait

    async def _attempt(self, body: bytes, stream: bool, deadline: float) -> AsyncIterator[Frame]:
        assert self._client is not None, "open() the backend first"
        url = "/v1/messages"
        try:
            async with self._client.stream("POST", url, content=body) as response:
                headers = response.headers
                if response.status_code >= 400:
                    await response.aread()
                    raise self._status_failure(response.status_code, headers, response.content)
                yield ResponseStarted(headers.get("request-id"), _rate_limits(headers))
                if stream:
                    async for frame in self._sse(response, deadline):
                        yield frame
                else:
                    yield w.decode_message_response(await response.aread())
        except httpx.TimeoutException as exc:
            kind = "connect" if isinstance(exc, httpx.ConnectTimeout) else "idle"
            failure = TimeoutError(f"{kind} timeout talking to {self._config.base_url}", kind=kind)
            raise _Retry(failure, status=None, wait=None, kind="timeout") from exc
        except httpx.TransportError as exc:
            raise self._connection_failure(exc) from exc

    async def _sse(self, response: httpx.Response, deadline: float) -> AsyncIterator[Frame]:
        events = EventSource(response).aiter_sse().__aiter__()
        idle = self._config.idle_timeout
        idle_deadline = time.monotonic() + idle
        while True:
            now = time.monotonic()
            with anyio.CancelScope() as read_scope:
                self._read_scope = read_scope
                if self._interrupted:
                    read_scope.cancel()
                with anyio.move_on_after(min(idle_deadline, deadline) - now) as timer:
                    try:
                        sse = await events.__anext__()
                    except StopAsyncIteration:
                        raise self._truncated() from None
            self._read_scope = None
            if read_scope.cancelled_caught:
                raise _Interrupted
            if timer.cancelled_caught:
                raise self._timeout(idle_deadline <= deadline)
            if not sse.data:  # WHATWG: a frame with an empty data buffer dispatches nothing
                continue
            event = w.decode_api_event(sse.data)
            if isinstance(event, w.PingEvent):
                continue
            idle_deadline = time.monotonic() + idle
            if isinstance(event, w.ErrorEvent):
                raise self._stream_error(event, response.headers)
            yield event
            if isinstance(event, w.MessageStopEvent):
                return

    # ---------------------------------------------------------------- failures

    def _status_failure(self, status: int, headers: httpx.Headers, content: bytes) -> Exception:
        parsed = w.decode_error_body(content)
        message = parsed.error.message if parsed else content[:500].decode("utf-8", "replace")
        error_type = parsed.error.type if parsed else None
        request_id = (parsed.request_id if parsed else None) or headers.get("request-id")
        wait = server_wait(headers)
        error = status_error(
            status,
            message or f"HTTP {status}",
            error_type=error_type,
            request_id=request_id,
            retry_after=wait,
        )
        if should_retry(status, headers, _error_code(content)):
            return _Retry(error, status=status, wait=wait, kind=error_type or f"http_{status}")
        return error

    def _stream_error(self, event: w.ErrorEvent, headers: httpx.Headers) -> Exception:
        status = ERROR_TYPE_STATUS.get(event.error.type, 500)
        error = status_error(
            status,
            event.error.message or event.error.type,
            error_type=event.error.type,
            request_id=headers.get("request-id"),
        )
        if should_retry(status, {}):
            return _Retry(error, status=status, wait=None, kind=event.error.type)
        return error

    def _connection_failure(self, exc: httpx.TransportError) -> _Retry:
        url = self._config.base_url
        what = (
            "could not connect to" if isinstance(exc, httpx.ConnectError) else "lost connection to"
        )
        failure = ConnectError(f"{what} {url}: {exc or type(exc).__name__}", url=url)
        return _Retry(failure, status=None, wait=None, kind="connection_error")

    def _truncated(self) -> _Retry:
        url = self._config.base_url
        failure = ConnectError(f"the stream from {url} ended before message_stop", url=url)
        return _Retry(failure, status=None, wait=None, kind="stream_truncated")

    def _timeout(self, idle: bool) -> Exception:
        if idle:
            seconds = self._config.idle_timeout
            failure = TimeoutError(
                f"no stream events for {seconds:g}s (pings do not count) from "
                f"{self._config.base_url}; raise idle_timeout to wait longer",
                kind="idle",
            )
            return _Retry(failure, status=None, wait=None, kind="idle_timeout")
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
            raise self._connection_failure(exc).final from exc
        if response.status_code >= 400:
            failure = self._status_failure(response.status_code, response.headers, response.content)
            raise failure.final if isinstance(failure, _Retry) else failure
        return w.decode_count_tokens(response.content).input_tokens


def _has_h2() -> bool:
    try:
        import h2  # noqa: F401
    except ImportError:
        return False
    return True


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


def _rate_limits(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith("anthropic-ratelimit-")}


class _ErrorCode(msgspec.Struct):
    class _Inner(msgspec.Struct):
        details: dict[str, Any] | None = None

    error: _Inner | None = None


_error_code_decoder = msgspec.json.Decoder(_ErrorCode)


def _error_code(content: bytes) -> str | None:
    try:
        details = _error_code_decoder.decode(content).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if details is None or not details.details:
        return None
    code = details.details.get("error_code")
    return str(code) if code is not None else None
