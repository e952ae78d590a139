"""ApiBackend over an in-memory HTTP transport: SSE framing, request bodies, headers, errors and
retries."""

from __future__ import annotations

import time
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import anyio
import httpx
import msgspec
import pytest

from claude_unified import _wire as w
from claude_unified._config import Config
from claude_unified._events import (
    ContentBlock,
    Message,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UnknownBlock,
)
from claude_unified._exceptions import (
    APIStatusError,
    BadRequestError,
    ClaudeError,
    ConfigError,
    ConnectError,
    OverloadedError,
    ProtocolError,
    RateLimitError,
)
from claude_unified._exceptions import TimeoutError as LibraryTimeout
from claude_unified.backends._protocol import (
    Exchange,
    Frame,
    ResponseStarted,
    RetryNotice,
    SessionSpec,
    ToolSpec,
)
from claude_unified.backends.api import ApiBackend

SECRET = "sk-ant-api03-TOPSECRET-0123456789abcdef"
_enc = msgspec.json.Encoder()

# --------------------------------------------------------------------------- stream fixtures

MESSAGE_START = {
    "type": "message_start",
    "message": {
        "id": "msg_01Xy",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 472, "output_tokens": 1},
    },
}
PING = {"type": "ping"}
STREAM: list[dict[str, Any]] = [
    MESSAGE_START,
    PING,
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "Héllo, wörld 🌍 "},
    },
    PING,
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {
            "type": "tool_use",
            "id": "toolu_01Ab",
            "name": "get_weather",
            "input": {},
        },
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": ""},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '{"city": "Paris"}'},
    },
    {"type": "content_block_stop", "index": 1},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 61},
    },
    {"type": "message_stop"},
]
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
RATE_HEADERS = {
    "anthropic-ratelimit-requests-remaining": "99",
    "anthropic-ratelimit-tokens-reset": "2026-11-22T03:00:00Z",
}


def frame(event: dict[str, Any]) -> bytes:
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + _enc.encode(event) + b"\n\n"


def sse_body(events: Sequence[dict[str, Any]]) -> bytes:
    return b"".join(frame(e) for e in events)


def expected_events(events: Sequence[dict[str, Any]]) -> list[Frame]:
    return [w.decode_api_event(_enc.encode(e)) for e in events if e["type"] != "ping"]


EXPECTED = [ResponseStarted("req_stream", RATE_HEADERS), *expected_events(STREAM)]


class _Chunks(httpx.AsyncByteStream):
    def __init__(self, parts: list[bytes]):
        self.parts = parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part


def split(body: bytes, sizes: Sequence[int]) -> list[bytes]:
    """Cut ``body`` into chunks, cycling through ``sizes``."""
    parts, pos, i = [], 0, 0
    while pos < len(body):
        size = sizes[i % len(sizes)]
        parts.append(body[pos : pos + size])
        pos += size
        i += 1
    return parts


def sse_response(
    body: bytes,
    sizes: Sequence[int] = (),
    *,
    request_id: str = "req_stream",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    all_headers = {"content-type": "text/event-stream", "request-id": request_id, **RATE_HEADERS}
    all_headers.update(headers or {})
    parts = split(body, sizes) if sizes else [body]
    return httpx.Response(200, headers=all_headers, stream=_Chunks(parts))


def error_response(
    status: int,
    error_type: str,
    message: str = "failed",
    *,
    headers: dict[str, str] | None = None,
    details: dict[str, Any] | None = None,
    request_id: str | None = "req_err",
) -> httpx.Response:
    body = {
        "type": "error",
        "error": {"type": error_type, "message": message, "details": details},
        "request_id": request_id,
    }
    return httpx.Response(status, headers=headers or {}, content=_enc.encode(body))


Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


class Server:
    """Plays scripted replies in order (the last one repeats) and records every request."""

    def __init__(self, *replies: Reply):
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return reply(request) if callable(reply) else reply

    def body(self, n: int = 0) -> dict[str, Any]:
        return msgspec.json.decode(self.requests[n].content, type=dict[str, Any])


def repeat(factory: Callable[[], httpx.Response]) -> Reply:
    return lambda _request: factory()


def exchange(**kwargs: Any) -> Exchange:
    kwargs.setdefault("prompt", "hi")
    kwargs.setdefault("history", [Message(role="user", content="hi")])
    kwargs.setdefault("turn_id", "t")
    return Exchange(**kwargs)


async def make_backend(server: Server, **config: Any) -> ApiBackend:
    config.setdefault("api_key", SECRET)
    backend = ApiBackend(Config(**config), transport=httpx.MockTransport(server.handle))
    await backend.open(SessionSpec())
    return backend


async def run(
    server: Server,
    request: Exchange | None = None,
    frames: list[Frame] | None = None,
    **config: Any,
) -> list[Frame]:
    """Run one exchange to the end, appending frames to ``frames`` as they arrive."""
    out = [] if frames is None else frames
    backend = await make_backend(server, **config)
    try:
        async for item in backend.exchange(request or exchange()):
            out.append(item)
    finally:
        await backend.aclose()
    return out


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("claude_unified.backends.api.backoff", lambda attempt: 0.0)


# --------------------------------------------------------------------------- SSE framing


@pytest.mark.anyio
async def test_stream_decodes_frames_and_skips_pings() -> None:
    server = Server(sse_response(sse_body(STREAM)))
    frames = await run(server)
    assert frames == EXPECTED
    assert not any(isinstance(f, w.PingEvent) for f in frames)
    assert len(server.requests) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize("sizes", [(1,), (2,), (3, 5, 7), (13,), (64, 1), (4096,)])
async def test_odd_chunk_splits_and_line_endings(newline: bytes, sizes: tuple[int, ...]) -> None:
    body = sse_body(STREAM).replace(b"\n", newline)
    frames = await run(Server(sse_response(body, sizes)))
    assert frames == EXPECTED


@pytest.mark.anyio
async def test_chunk_boundaries_inside_multibyte_characters() -> None:
    body = sse_body(STREAM)
    cut = body.index("🌍".encode()) + 2  # in the middle of the 4-byte emoji
    frames = await run(Server(sse_response(body, (cut, 1, 1, 1, 1000))))
    assert frames == EXPECTED


@pytest.mark.anyio
async def test_comments_ids_and_retry_fields_are_ignored() -> None:
    parts = [b": keep-alive comment\n\n", b":\n"]
    for event in STREAM:
        parts.append(b"id: 7\nretry: 3000\n: note\n" + frame(event))
        parts.append(b": between\n\n")
    frames = await run(Server(sse_response(b"".join(parts), (9,))))
    assert frames == EXPECTED


@pytest.mark.anyio
async def test_frames_without_data_are_not_dispatched() -> None:
    # WHATWG: a frame whose data buffer is empty dispatches nothing
    parts = [b"event: ping\n\n", b"retry: 100\n\n", b"id: 4\n\n"]
    parts += [frame(e) + b"event: ping\n\n" for e in STREAM]
    frames = await run(Server(sse_response(b"".join(parts))))
    assert frames == EXPECTED


@pytest.mark.anyio
async def test_multi_line_data_is_joined_with_newlines() -> None:
    body = (
        sse_body(STREAM[:-1])
        + b'event: message_stop\ndata: {"type":\ndata:  "message_stop"\ndata: }\n\n'
    )
    frames = await run(Server(sse_response(body)))
    assert frames == EXPECTED


@pytest.mark.anyio
async def test_unknown_stream_events_pass_through() -> None:
    odd = {"type": "message_annotation", "note": "x"}
    events = [*STREAM[:2], odd, *STREAM[2:]]
    frames = await run(Server(sse_response(sse_body(events))))
    assert w.UnknownApiEvent(raw=odd) in frames
    assert len(frames) == len(EXPECTED) + 1


@pytest.mark.anyio
async def test_malformed_frame_raises_protocol_error_with_bytes() -> None:
    body = (
        sse_body(STREAM[:1]) + b'event: content_block_stop\ndata: {"type":"content_block_stop"}\n\n'
    )
    with pytest.raises(ProtocolError) as info:
        await run(Server(sse_response(body)))
    assert info.value.raw == b'{"type":"content_block_stop"}'


@pytest.mark.anyio
async def test_non_streaming_response() -> None:
    body = {
        "id": "msg_2",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5-5",
        "content": [{"type": "text", "text": "hello"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    server = Server(
        httpx.Response(200, headers={"request-id": "req_ns"}, content=_enc.encode(body))
    )
    frames = await run(server, exchange(stream=False))
    assert frames[0] == ResponseStarted("req_ns", {})
    response = frames[1]
    assert isinstance(response, w.MessageResponse)
    assert response.content == [TextBlock("hello")]
    assert "stream" not in server.body()


# --------------------------------------------------------------------------- request body


TOOLS = (
    ToolSpec("get_weather", "Current weather", {"type": "object", "properties": {}}),
    ToolSpec("get_time", "Current time", {"type": "object"}),
)


def body_of(backend: ApiBackend, request: Exchange) -> dict[str, Any]:
    return msgspec.json.decode(backend.build_body(request), type=dict[str, Any])


@pytest.mark.anyio
async def test_build_body_places_cache_breakpoints() -> None:
    backend = await make_backend(Server(sse_response(b"")))
    body = body_of(backend, exchange(system="You are terse.", tools=TOOLS, max_tokens=1024))
    await backend.aclose()
    assert body["model"] == "claude-sonnet-5-5"
    assert body["max_tokens"] == 1024
    assert body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["system"] == [
        {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}
    ]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather",
            "input_schema": {"type": "object", "properties": {}},
        },
        {
            "name": "get_time",
            "description": "Current time",
            "input_schema": {"type": "object"},
            "cache_control": {"type": "ephemeral"},
        },
    ]
    assert body["cache_control"] == {"type": "ephemeral"}


@pytest.mark.anyio
async def test_build_body_without_prompt_caching() -> None:
    backend = await make_backend(Server(sse_response(b"")), prompt_caching=False)
    raw = backend.build_body(exchange(system="You are terse.", tools=TOOLS))
    await backend.aclose()
    assert b"cache_control" not in raw
    body = msgspec.json.decode(raw, type=dict[str, Any])
    assert body["system"] == [{"type": "text", "text": "You are terse."}]
    assert len(body["tools"]) == 2


@pytest.mark.anyio
async def test_build_body_minimal_and_overrides() -> None:
    backend = ApiBackend(Config(api_key=SECRET), transport=httpx.MockTransport(Server().handle))
    await backend.open(SessionSpec(model="claude-opus-5-5"))
    body = body_of(backend, exchange())
    assert body["model"] == "claude-opus-5-5"
    assert "system" not in body
    assert "tools" not in body
    explicit = body_of(
        backend,
        exchange(model="claude-haiku-5-5", stream=False, extra_body={"metadata": {"user_id": "u"}}),
    )
    await backend.aclose()
    assert explicit["model"] == "claude-haiku-5-5"
    assert "stream" not in explicit
    assert explicit["metadata"] == {"user_id": "u"}


@pytest.mark.anyio
async def test_history_blocks_are_sent_as_wire_blocks() -> None:
    unknown = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}
    history = [
        Message(role="user", content="weather?"),
        Message(
            role="assistant",
            content=[
                TextBlock("Checking"),
                UnknownBlock(raw=unknown),
                ToolUseBlock("toolu_1", "get_weather", {"city": "Paris"}),
            ],
            id="msg_1",
            model="claude-sonnet-5-5",
            stop_reason="tool_use",
        ),
        Message(role="user", content=[ToolResultBlock("toolu_1", "sunny")]),
    ]
    backend = await make_backend(Server(sse_response(b"")))
    body = body_of(backend, exchange(history=history))
    await backend.aclose()
    assert body["messages"] == [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking"},
                unknown,
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}],
        },
    ]


@pytest.mark.anyio
async def test_unknown_block_nested_in_a_tool_result_is_sent_raw() -> None:
    search_result = {"type": "search_result", "source": "kb://1", "title": "T", "content": []}
    nested: list[ContentBlock] = [UnknownBlock(raw=search_result), TextBlock("x")]
    history = [Message(role="user", content=[ToolResultBlock("toolu_1", nested)])]
    backend = await make_backend(Server(sse_response(b"")))
    body = body_of(backend, exchange(history=history))
    await backend.aclose()
    assert body["messages"][0]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_1",
            "content": [search_result, {"type": "text", "text": "x"}],
        }
    ]


# --------------------------------------------------------------------------- headers


@pytest.mark.anyio
async def test_headers_with_api_key() -> None:
    server = Server(sse_response(sse_body(STREAM)))
    await run(
        server,
        betas=("files-api-2025-04-14", "context-1m"),
        extra_headers={"x-team": "core"},
        base_url="https://gateway.example.com/",
    )
    request = server.requests[0]
    assert request.method == "POST"
    assert request.url == httpx.URL("https://gateway.example.com/v1/messages")
    assert request.headers["x-api-key"] == SECRET
    assert "authorization" not in request.headers
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["anthropic-beta"] == "files-api-2025-04-14,context-1m"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("claude-unified/")
    assert request.headers["x-team"] == "core"
    assert server.body()["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.anyio
async def test_headers_with_bearer_token() -> None:
    server = Server(sse_response(sse_body(STREAM)))
    await run(server, api_key=None, auth_token="oauth-token-1", anthropic_version="2026-10-21")
    headers = server.requests[0].headers
    assert headers["authorization"] == "Bearer oauth-token-1"
    assert "x-api-key" not in headers
    assert "anthropic-beta" not in headers
    assert headers["anthropic-version"] == "2026-10-21"


def test_no_credentials_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        ApiBackend(Config())
    assert "ANTHROPIC_API_KEY" in str(info.value)
    assert "ANTHROPIC_AUTH_TOKEN" in str(info.value)


# --------------------------------------------------------------------------- HTTP errors


@pytest.mark.anyio
async def test_bad_request_raises_with_request_id() -> None:
    server = Server(
        error_response(400, "invalid_request_error", "max_tokens: required", request_id="req_011C")
    )
    with pytest.raises(BadRequestError) as info:
        await run(server)
    error = info.value
    assert error.status_code == 400
    assert error.error_type == "invalid_request_error"
    assert error.request_id == "req_011C"
    assert "max_tokens: required" in str(error)
    assert "req_011C" in str(error)
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_non_json_error_body_uses_the_header_request_id() -> None:
    server = Server(
        httpx.Response(
            413, headers={"request-id": "req_edge"}, content=b"<html>413 Too Large</html>"
        )
    )
    with pytest.raises(APIStatusError) as info:
        await run(server)
    assert info.value.status_code == 413
    assert info.value.request_id == "req_edge"
    assert "413 Too Large" in str(info.value)


@pytest.mark.anyio
async def test_529_then_success_yields_a_retry_notice_then_frames() -> None:
    server = Server(
        error_response(529, "overloaded_error", "Overloaded", headers={"retry-after-ms": "1"}),
        sse_response(sse_body(STREAM)),
    )
    frames = await run(server, max_retries=2)
    assert frames[0] == RetryNotice(1, 2, 0.001, 529, "overloaded_error")
    assert frames[1:] == EXPECTED
    assert len(server.requests) == 2
    assert server.requests[0].content == server.requests[1].content


@pytest.mark.anyio
async def test_persistent_529_raises_overloaded_after_the_retries(no_backoff: None) -> None:
    server = Server(repeat(lambda: error_response(529, "overloaded_error", "Overloaded")))
    frames: list[Frame] = []
    with pytest.raises(OverloadedError) as info:
        await run(server, frames=frames, max_retries=3)
    assert info.value.status_code == 529
    assert [f.attempt for f in frames if isinstance(f, RetryNotice)] == [1, 2, 3]
    assert len(server.requests) == 4


@pytest.mark.anyio
async def test_retry_uses_backoff_without_a_server_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[int] = []

    def fake_backoff(attempt: int) -> float:
        attempts.append(attempt)
        return 0.002

    monkeypatch.setattr("claude_unified.backends.api.backoff", fake_backoff)
    server = Server(
        error_response(500, "api_error"),
        error_response(503, "api_error"),
        sse_response(sse_body(STREAM)),
    )
    frames = await run(server, max_retries=2)
    notices = [f for f in frames if isinstance(f, RetryNotice)]
    assert [(n.attempt, n.delay_s, n.status) for n in notices] == [(1, 0.002, 500), (2, 0.002, 503)]
    assert attempts == [0, 1]
    assert frames[2:] == EXPECTED


@pytest.mark.anyio
async def test_429_over_max_retry_wait_raises_without_sleeping() -> None:
    server = Server(
        error_response(429, "rate_limit_error", "Slow down", headers={"retry-after": "3600"})
    )
    frames: list[Frame] = []
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        await run(server, frames=frames, max_retries=5, max_retry_wait=60.0)
    assert time.monotonic() - started < 2.0
    assert info.value.retry_after == 3600.0
    assert info.value.status_code == 429
    assert frames == []
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_spend_limit_429_is_not_retried() -> None:
    server = Server(
        error_response(
            429,
            "rate_limit_error",
            "Spend limit reached",
            headers={"retry-after-ms": "1"},
            details={"error_code": "enforced_spend_limit_reached"},
        )
    )
    with pytest.raises(RateLimitError):
        await run(server, max_retries=3)
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_x_should_retry_false_is_honoured() -> None:
    server = Server(error_response(529, "overloaded_error", headers={"x-should-retry": "false"}))
    with pytest.raises(OverloadedError):
        await run(server, max_retries=3)
    assert len(server.requests) == 1


# --------------------------------------------------------------------------- mid-stream failures


@pytest.mark.anyio
async def test_mid_stream_overloaded_before_content_is_retried(no_backoff: None) -> None:
    server = Server(
        sse_response(sse_body([MESSAGE_START, PING, OVERLOADED]), request_id="req_a"),
        sse_response(sse_body(STREAM)),
    )
    frames = await run(server, max_retries=2)
    assert frames[:3] == [
        ResponseStarted("req_a", RATE_HEADERS),
        w.decode_api_event(_enc.encode(MESSAGE_START)),
        RetryNotice(1, 2, 0.0, 529, "overloaded_error"),
    ]
    assert frames[3:] == EXPECTED
    assert len(server.requests) == 2


@pytest.mark.anyio
async def test_mid_stream_overloaded_after_content_raises(no_backoff: None) -> None:
    server = Server(sse_response(sse_body([*STREAM[:4], OVERLOADED]), request_id="req_b"))
    frames: list[Frame] = []
    with pytest.raises(OverloadedError) as info:
        await run(server, frames=frames, max_retries=2)
    assert info.value.status_code == 529
    assert info.value.error_type == "overloaded_error"
    assert info.value.request_id == "req_b"
    assert "Overloaded" in str(info.value)
    assert frames == [ResponseStarted("req_b", RATE_HEADERS), *expected_events(STREAM[:4])]
    assert not any(isinstance(f, RetryNotice) for f in frames)
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_mid_stream_invalid_request_is_not_retried(no_backoff: None) -> None:
    error = {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}
    server = Server(sse_response(sse_body([MESSAGE_START, error])))
    with pytest.raises(BadRequestError) as info:
        await run(server, max_retries=2)
    assert info.value.status_code == 400
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_truncated_stream_is_retried_then_raises_connect_error(no_backoff: None) -> None:
    server = Server(repeat(lambda: sse_response(sse_body([MESSAGE_START, PING]))))
    frames: list[Frame] = []
    with pytest.raises(ConnectError) as info:
        await run(server, frames=frames, max_retries=2, base_url="http://127.0.0.1:9")
    assert "message_stop" in str(info.value)
    assert info.value.url == "http://127.0.0.1:9"
    notices = [f for f in frames if isinstance(f, RetryNotice)]
    assert [(n.attempt, n.error) for n in notices] == [
        (1, "stream_truncated"),
        (2, "stream_truncated"),
    ]
    assert len(server.requests) == 3


@pytest.mark.anyio
async def test_truncated_after_content_raises_at_once(no_backoff: None) -> None:
    server = Server(sse_response(sse_body(STREAM[:4])))
    with pytest.raises(ConnectError):
        await run(server, max_retries=2)
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_connection_failures_are_retried_then_raise(no_backoff: None) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    server = Server(refuse)
    frames: list[Frame] = []
    with pytest.raises(ConnectError) as info:
        await run(server, frames=frames, max_retries=1, base_url="http://127.0.0.1:9")
    assert "127.0.0.1:9" in str(info.value)
    assert [f.error for f in frames if isinstance(f, RetryNotice)] == ["connection_error"]
    assert len(server.requests) == 2


# --------------------------------------------------------------------------- secrets


async def _failure(server: Server, **config: Any) -> ClaudeError:
    try:
        await run(server, **config)
    except ClaudeError as exc:
        return exc
    raise AssertionError("the exchange did not fail")


@pytest.mark.anyio
async def test_api_key_never_appears_in_errors(no_backoff: None) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    failures = [
        await _failure(Server(error_response(400, "invalid_request_error"))),
        await _failure(Server(error_response(401, "authentication_error", "invalid x-api-key"))),
        await _failure(
            Server(error_response(429, "rate_limit_error", headers={"retry-after": "999"}))
        ),
        await _failure(
            Server(repeat(lambda: error_response(529, "overloaded_error"))), max_retries=1
        ),
        await _failure(Server(sse_response(sse_body([*STREAM[:4], OVERLOADED])))),
        await _failure(Server(repeat(lambda: sse_response(sse_body([MESSAGE_START]))))),
        await _failure(Server(refuse), max_retries=0),
    ]
    for failure in failures:
        texts = [str(failure), repr(failure), *map(str, failure.args)]
        texts += traceback.format_exception(failure)
        assert not any(SECRET in text for text in texts), type(failure).__name__
    config = Config(api_key=SECRET)
    backend = ApiBackend(config, transport=httpx.MockTransport(Server().handle))
    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    assert SECRET not in repr(backend)


def test_history_messages_are_encoded_once_and_resent_exactly() -> None:
    from claude_unified.backends.api import EncodedMessages, encode_body

    history = [Message(role="user", content="one"), Message(role="assistant", content="two")]
    cache = EncodedMessages()

    def body(messages: list[Message], encoded: EncodedMessages | None) -> bytes:
        request = exchange()
        request = msgspec.structs.replace(request, history=tuple(messages))
        return encode_body(request, default_model="m", prompt_caching=True, encoded=encoded)

    assert body(history, cache) == body(history, None)
    first = cache.encode(history)
    history.append(Message(role="user", content=[TextBlock("three")]))
    again = cache.encode(history)
    assert again[0] is first[0]  # the same bytes object: not encoded again
    assert again[1] is first[1]
    assert body(history, cache) == body(history, None)
    # a message replaced in the middle, and a history cut short, are encoded anew
    history[0] = Message(role="user", content="changed")
    assert b'"changed"' in body(history, cache)
    assert body(history, cache) == body(history, None)
    del history[1:]
    assert body(history, cache) == body(history, None)
    assert body([], cache) == body([], None)


class _CommentsForever(httpx.AsyncByteStream):
    """A stream that keeps the connection busy with SSE comments and never sends an event."""

    def __init__(self) -> None:
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield frame(MESSAGE_START)
        while True:
            await anyio.sleep(0.01)
            self.sent += 1
            yield b": still here\n\n"


@pytest.mark.anyio
async def test_a_stream_of_comments_alone_ends_at_the_idle_timeout() -> None:
    comments = _CommentsForever()
    headers = {"content-type": "text/event-stream", "request-id": "req_c"}
    server = Server(httpx.Response(200, headers=headers, stream=comments))
    with anyio.fail_after(10):
        with pytest.raises(LibraryTimeout) as info:
            await run(server, idle_timeout=0.3, max_retries=0)
    assert info.value.kind == "idle"
    assert comments.sent >= 5  # the comments kept coming: only events count as progress


@pytest.mark.anyio
async def test_the_frames_of_one_read_are_handed_over_together() -> None:
    body = sse_body(STREAM)
    server = Server(sse_response(body, sizes=[len(body)]))  # the whole stream in one read
    backend = await make_backend(server)
    try:
        batches = [batch async for batch in backend.exchange_batches(exchange())]
    finally:
        await backend.aclose()
    assert batches == [EXPECTED[:1], EXPECTED[1:]]
