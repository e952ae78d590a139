"""``FakeAnthropicServer``: a real loopback HTTP/1.1 server speaking the Messages API.

It answers ``POST /v1/messages`` (SSE or JSON) and ``POST /v1/messages/count_tokens`` with
scripted steps, records every request, emulates prompt caching and acts out faults on the wire
(error statuses, in-stream errors, dropped and reset connections, stalls with pings or only
comments, malformed or raw frames, a stream dripped byte by byte or gzipped, delays). The
Message Batches endpoints (``/v1/messages/batches``) answer each batched request with the same
scripted steps; see ``_fake_batches``.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import struct
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import urlsplit

import anyio.to_thread
import msgspec

from claude_unified.testing._fake_api import (
    DEFAULT_MODEL,
    ApiRequest,
    Match,
    PromptCache,
    RecordedRequest,
    Script,
    count_tokens,
    parse_request,
)
from claude_unified.testing._fake_batches import PREFIX as BATCHES_PREFIX
from claude_unified.testing._fake_batches import FakeBatches
from claude_unified.testing._script import (
    CommentStall,
    Delay,
    Drip,
    Drop,
    ErrorReply,
    Fault,
    Gzip,
    Malformed,
    Raw,
    Reply,
    Reset,
    Stall,
    Step,
    StreamError,
    error,
    render_error,
    render_malformed,
    render_message,
    render_ping,
    render_stream,
    render_stream_error,
    sse_frame,
)

__all__ = ["FakeAnthropicServer"]

MAX_BODY_BYTES = 32 * 1024 * 1024
"""The API's own limit for a Messages or count_tokens body."""

MAX_BATCH_BYTES = 256 * 1024 * 1024
"""The API's limit for a Message Batches create body."""


class _TokenCount(msgspec.Struct, frozen=True):
    input_tokens: int


_encoder = msgspec.json.Encoder()


class _Closed(Exception):
    """The server is closing; the handler stops at once."""


class FakeAnthropicServer:
    """A scripted Messages API on ``127.0.0.1`` (ephemeral port), served from a thread.

    Use it as ``with FakeAnthropicServer() as server:`` or ``async with``; point clients at
    ``server.url``. Replies come from :meth:`on` rules, then the :meth:`queue`, then a default
    scheme keyed on the last user message. ``latency`` is the pause between SSE events;
    ``ping_interval`` (when set) sends a ping during any such pause at that interval.
    Only the newest ``max_recorded`` requests are kept in :attr:`requests`.
    With ``strict=True`` there is no default scheme: a request that no rule and no queued step
    answers gets a non-retryable 500 saying so, and leaving the ``with`` block (or
    :meth:`check`) raises ``AssertionError`` listing those requests.

    :attr:`batches` holds the Message Batches created on this server: set
    ``batches.processing_s`` (seconds from creation to end, ``None`` to hold batches) and call
    ``batches.finish()`` or ``batches.expire()`` to drive them.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        ping_interval: float | None = None,
        port: int = 0,
        max_recorded: int = 1000,
        strict: bool = False,
    ) -> None:
        if ping_interval is not None and ping_interval <= 0:
            raise ValueError(f"ping_interval must be positive, got {ping_interval}")
        self.latency = latency
        self.ping_interval = ping_interval
        self._port = port
        self._script = Script(strict=strict)
        self._cache = PromptCache()
        self.batches = FakeBatches(self._script, self._cache)
        self._lock = threading.Lock()
        self._records: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self._connections: set[socket.socket] = set()
        self._closing = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Bind and start serving; returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError("FakeAnthropicServer is already running")
        self._closing.clear()
        self._httpd = _HTTPServer(self, self._port)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeAnthropicServer:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, cut open connections (ending stalls and streams) and join the thread."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._closing.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            _shutdown(connection)
        thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        if exc_type is None:
            self.check()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await anyio.to_thread.run_sync(self.close)
        if exc_type is None:
            self.check()

    @property
    def port(self) -> int:
        """The port the server listens on (127.0.0.1); raises when it is not running."""
        if self._httpd is None:
            raise RuntimeError("FakeAnthropicServer is not running; use start() or `with`")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the base URL to give a client."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ scripting

    def on(self, match: Match, step: Step, *, times: int | None = None) -> None:
        """Answer with ``step`` when ``match`` (a substring of the last user message's text, or a
        predicate on the :class:`RecordedRequest`) matches; at most ``times`` times if given.
        The first matching rule wins."""
        self._script.on(match, step, times=times)

    def queue(self, *steps: Step) -> None:
        """Answer the next requests that no rule matches with ``steps``, first in, first out."""
        self._script.queue(*steps)

    def reset(self) -> None:
        """Forget rules, queued steps, recorded requests, the prompt cache and the batches."""
        self._script.reset()
        self._cache.clear()
        self.batches.clear()
        with self._lock:
            self._records.clear()

    @property
    def unscripted(self) -> list[RecordedRequest]:
        """With ``strict=True``: the requests nothing was scripted for, oldest first."""
        return self._script.unscripted

    def check(self) -> None:
        """With ``strict=True``, raise ``AssertionError`` if any request found nothing scripted
        (each got a 500 at the time). Leaving the ``with`` block calls it."""
        missed = self.unscripted
        if missed:
            said = ", ".join(repr(r.last_user_text.strip()[:60]) for r in missed)
            raise AssertionError(
                f"FakeAnthropicServer(strict=True): {len(missed)} request(s) found nothing "
                f"scripted (the queue ran out): {said}"
            )

    @property
    def requests(self) -> list[RecordedRequest]:
        """The recorded requests, oldest first (a snapshot)."""
        with self._lock:
            return list(self._records)

    # ------------------------------------------------------------------ used by the handler

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._records.append(request)

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _wait(self, seconds: float) -> None:
        if self._closing.wait(seconds):
            raise _Closed


def _shutdown(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the peer may have closed it already
        connection.shutdown(socket.SHUT_RDWR)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 drops bursts of connects for a second

    def __init__(self, fake: FakeAnthropicServer, port: int) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Peers that hang up are normal for a fake; anything else is reported."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


_RESET_PAUSE_S = 0.05


class _ConnectionReset(Exception):
    """The handler reset the connection on purpose (a ``Reset`` fault)."""


class _StreamBody:
    """The event stream's bytes on their way to the socket: counted (``Reset``), compressed
    (``Gzip``), cut into pieces (``Drip``) and framed as HTTP chunks."""

    def __init__(self, handler: _Handler, faults: Sequence[Fault]) -> None:
        self._handler = handler
        self._sent = 0
        self._reset_at = min((f.after_bytes for f in faults if isinstance(f, Reset)), default=None)
        self._drip = next((f for f in faults if isinstance(f, Drip)), None)
        gz = next((f for f in faults if isinstance(f, Gzip)), None)
        self.gzip = zlib.compressobj(wbits=31) if gz is not None else None
        self._corrupt = gz is not None and gz.corrupt
        self._header_left = 10  # the gzip header stays intact, so the client starts decoding

    def write(self, data: bytes) -> None:
        if self._reset_at is not None and self._sent + len(data) >= self._reset_at:
            self._send(data[: self._reset_at - self._sent])
            self._reset()
        self._sent += len(data)
        self._send(data)

    def end(self) -> None:
        if self.gzip is not None:
            self._emit(self.gzip.flush())
        self._handler.wfile.write(b"0\r\n\r\n")

    def _send(self, data: bytes) -> None:
        if self.gzip is not None:
            data = self.gzip.compress(data) + self.gzip.flush(zlib.Z_SYNC_FLUSH)
        self._emit(data)

    def _emit(self, data: bytes) -> None:
        if self._corrupt:
            keep = min(self._header_left, len(data))
            self._header_left -= keep
            data = data[:keep] + bytes(b ^ 0x5A for b in data[keep:])
        drip = self._drip
        if drip is None:
            self._chunk(data)
            return
        for i in range(0, len(data), drip.size):
            if i and drip.every:
                self._handler.fake._wait(drip.every)
            self._chunk(data[i : i + drip.size])

    def _chunk(self, data: bytes) -> None:
        if data:
            self._handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _reset(self) -> None:
        """A TCP RST: close with a zero linger time, then stop the handler. A RST makes the
        peer's kernel drop what it has not read yet, so the bytes sent get a moment first."""
        self._handler.fake._wait(_RESET_PAUSE_S)
        connection = self._handler.connection
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()
        raise _ConnectionReset


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Overloaded" if status == 529 else "Error"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeAnthropic/1.0"
    timeout = 120  # seconds an idle keep-alive connection may stay open

    @property
    def fake(self) -> FakeAnthropicServer:
        return cast(_HTTPServer, self.server).fake

    def setup(self) -> None:
        super().setup()
        # Headers, body and each SSE event are separate writes; without this, Nagle's algorithm
        # meets the client's delayed ACK and every response stalls for ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fake._track(self.connection, add=True)

    def finish(self) -> None:
        self.fake._track(self.connection, add=False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read :attr:`FakeAnthropicServer.requests` instead."""

    def do_POST(self) -> None:
        self._request_id = f"req_fake_{secrets.token_hex(12)}"
        try:
            self._route()
        except (_Closed, ConnectionError):
            self.close_connection = True

    do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_POST

    # ------------------------------------------------------------------ routing

    def _route(self) -> None:
        parts = urlsplit(self.path)
        batches = parts.path.startswith(BATCHES_PREFIX)
        length = self.headers.get("content-length") or "0"
        if not length.isdigit() or int(length) > (MAX_BATCH_BYTES if batches else MAX_BODY_BYTES):
            self.close_connection = True  # the unread body would garble the next request
            self._send_error(error(413 if length.isdigit() else 400))
            return
        raw = self.rfile.read(int(length))
        data, body, text = parse_request(raw)
        record = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=parts.query,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=raw,
            json=data,
            last_user_text=text,
        )
        self.fake._record(record)
        route = (self.command, parts.path.rstrip("/"))
        if route == ("POST", "/v1/messages"):
            self._messages(record, body)
        elif route == ("POST", "/v1/messages/count_tokens"):
            self._count_tokens(body)
        elif batches:
            self._batches(record)
        else:
            missing = f"{self.command} {parts.path} is not part of the fake API"
            self._send_error(error(404, message=missing))

    def _messages(self, record: RecordedRequest, body: ApiRequest | None) -> None:
        if body is None:
            self._send_error(error(400, message="the body is not a valid Messages request"))
            return
        try:
            step = self.fake._script.choose(record, body)
        except msgspec.ValidationError as exc:
            self._send_error(error(400, message=f"malformed request: {exc}"))
            return
        for fault in step.faults:
            if isinstance(fault, Delay):
                self.fake._wait(fault.seconds)
        if isinstance(step, ErrorReply):
            self._send_error(step)
        elif any(isinstance(f, Drop) and f.after_events <= 0 for f in step.faults):
            self._drop()
        else:
            self._reply(step, body, len(record.body))

    def _reply(self, step: Reply, body: ApiRequest, body_size: int) -> None:
        try:
            plan = self.fake._cache.plan(body, body_size)
        except msgspec.ValidationError as exc:
            self._send_error(error(400, message=f"malformed cache_control: {exc}"))
            return
        model, message_id = body.model or DEFAULT_MODEL, f"msg_fake_{secrets.token_hex(12)}"
        if body.stream:
            events = render_stream(
                step,
                model=model,
                input_tokens=plan.input_tokens,
                cache_read=plan.cache_read,
                cache_write=plan.cache_write,
                cache_write_1h=plan.cache_write_1h,
                message_id=message_id,
            )
            self._send_stream(step, events)
        else:
            payload = render_message(
                step,
                model=model,
                input_tokens=plan.input_tokens,
                cache_read=plan.cache_read,
                cache_write=plan.cache_write,
                cache_write_1h=plan.cache_write_1h,
                message_id=message_id,
            )
            self._send_json(200, payload)

    def _batches(self, record: RecordedRequest) -> None:
        answer = self.fake.batches.handle(record, self.fake.url)
        if isinstance(answer, ErrorReply):
            self._send_error(answer)
        else:
            self._send_json(answer.status, answer.body, content_type=answer.content_type)

    def _count_tokens(self, body: ApiRequest | None) -> None:
        if body is None:
            self._send_error(error(400, message="the body is not a valid count_tokens request"))
            return
        self._send_json(200, _encoder.encode(_TokenCount(count_tokens(body))))

    # ------------------------------------------------------------------ responses

    def _start(self, status: int, content_type: str, headers: tuple[tuple[str, str], ...]) -> None:
        self.send_response(status, _reason(status))
        self.send_header("content-type", content_type)
        self.send_header("request-id", self._request_id)
        for name, value in headers:
            self.send_header(name, value)

    def _send_json(
        self,
        status: int,
        payload: bytes,
        headers: tuple[tuple[str, str], ...] = (),
        *,
        content_type: str = "application/json",
    ) -> None:
        self._start(status, content_type, headers)
        self.send_header("content-length", str(len(payload)))
        if self.close_connection:
            self.send_header("connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _send_error(self, step: ErrorReply) -> None:
        self._send_json(step.status, render_error(step, request_id=self._request_id), step.headers)

    def _drop(self) -> None:
        """Hang up without another byte (a FIN, so bytes already sent still arrive)."""
        self.close_connection = True
        _shutdown(self.connection)

    def _send_stream(self, step: Reply, events: list[bytes]) -> None:
        """Send ``events`` as SSE over chunked transfer-encoding, acting out stream faults.

        A fault with ``after_events=N`` happens once N events have been sent (N is clamped to
        the number of events); a ping follows ``message_start`` as on the real API.
        """
        faults = [f for f in step.faults if not isinstance(f, Delay)]
        body = _StreamBody(self, faults)
        headers = [("cache-control", "no-cache")]
        if body.gzip is not None:
            headers.append(("content-encoding", "gzip"))
        self._start(200, "text/event-stream; charset=utf-8", tuple(headers))
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        try:
            for sent in range(len(events) + 1):
                for fault in faults:
                    at = getattr(fault, "after_events", None)
                    if at is not None and min(at, len(events)) == sent and self._act(fault, body):
                        return
                if sent == len(events):
                    break
                if sent:
                    self._pause(self.fake.latency, self.fake.ping_interval, body)
                body.write(sse_frame(events[sent]))
                if sent == 0:
                    body.write(sse_frame(render_ping()))
            body.end()
        except _ConnectionReset:
            self.close_connection = True

    def _act(self, fault: Fault, body: _StreamBody) -> bool:
        """Act out one stream fault; True when it ended the response."""
        if isinstance(fault, StreamError):
            body.write(sse_frame(render_stream_error(fault)))
            body.end()
            return True
        if isinstance(fault, Drop):
            self._drop()
            return True
        if isinstance(fault, Stall):
            self._pause(fault.seconds, fault.ping_every, body)
        elif isinstance(fault, CommentStall):
            end = time.monotonic() + fault.seconds
            while time.monotonic() < end:
                body.write(b": keep-alive\n\n")
                self.fake._wait(min(fault.every, max(end - time.monotonic(), 0)))
        elif isinstance(fault, Malformed):
            body.write(sse_frame(render_malformed(), event="content_block_delta"))
        elif isinstance(fault, Raw):
            body.write(fault.data)
            if fault.end:
                body.end()
                return True
        return False

    def _pause(self, seconds: float, ping_every: float | None, body: _StreamBody) -> None:
        """Wait ``seconds``, sending a ping after every full ``ping_every`` interval."""
        end = time.monotonic() + seconds
        while (remaining := end - time.monotonic()) > 0:
            if not ping_every or remaining <= ping_every:
                self.fake._wait(remaining)
                return
            self.fake._wait(ping_every)
            body.write(sse_frame(render_ping()))
