"""FakeAnthropicServer over real loopback HTTP: protocol, scripting, faults and caching."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import anthropic
import anyio
import httpx
import msgspec
import pytest
from anthropic.types import TextBlock as SdkTextBlock
from anthropic.types import ToolUseBlock as SdkToolUseBlock

import claude_unified as cu
from claude_unified.testing import (
    FakeAnthropicServer,
    RecordedRequest,
    delay,
    drop,
    error,
    malformed,
    reply,
    stall,
    stream_error,
    thinking,
    tool_call,
    tool_calls,
)

# --------------------------------------------------------------------------- wire model for asserts


class WireUsage(msgspec.Struct):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cache_creation: dict[str, int]

    @property
    def prompt(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


class WireBlock(msgspec.Struct):
    type: str
    text: str = ""
    id: str = ""
    name: str = ""
    input: dict[str, Any] | None = None
    thinking: str = ""
    signature: str = ""


class WireMessage(msgspec.Struct):
    id: str
    type: str
    role: str
    model: str
    content: list[WireBlock]
    stop_reason: str | None
    usage: WireUsage


class WireDelta(msgspec.Struct):
    type: str | None = None
    text: str = ""
    partial_json: str = ""
    thinking: str = ""
    signature: str = ""
    stop_reason: str | None = None


class WireError(msgspec.Struct):
    type: str
    message: str


class WireEvent(msgspec.Struct):
    type: str
    index: int = -1
    message: WireMessage | None = None
    content_block: WireBlock | None = None
    delta: WireDelta | None = None
    usage: WireUsage | None = None
    error: WireError | None = None


class ErrorBody(msgspec.Struct):
    type: str
    error: WireError
    request_id: str


class TokenCount(msgspec.Struct):
    input_tokens: int


event_decoder = msgspec.json.Decoder(WireEvent)
message_decoder = msgspec.json.Decoder(WireMessage)
error_decoder = msgspec.json.Decoder(ErrorBody)
count_decoder = msgspec.json.Decoder(TokenCount)
input_decoder = msgspec.json.Decoder(dict[str, Any])


class Frame(NamedTuple):
    event: str
    data: bytes


def frames(payload: bytes) -> list[Frame]:
    """Split an SSE body whose frames are ``event:`` + one ``data:`` line."""
    found = []
    for chunk in payload.split(b"\n\n"):
        if chunk:
            event_line, data_line = chunk.split(b"\n")
            assert event_line.startswith(b"event: ")
            assert data_line.startswith(b"data: ")
            found.append(Frame(event_line[7:].decode(), data_line[6:]))
    return found


def events(payload: bytes) -> list[WireEvent]:
    decoded = [event_decoder.decode(frame.data) for frame in frames(payload)]
    assert [e.type for e in decoded] == [f.event for f in frames(payload)]
    return decoded


def names(payload: bytes) -> list[str]:
    return [frame.event for frame in frames(payload)]


def block_start(decoded: list[WireEvent], index: int) -> WireBlock:
    return next(
        e.content_block
        for e in decoded
        if e.type == "content_block_start" and e.index == index and e.content_block
    )


def stop_reason(decoded: list[WireEvent]) -> str | None:
    final = next(e for e in decoded if e.type == "message_delta")
    assert final.delta is not None
    return final.delta.stop_reason


def deltas(decoded: list[WireEvent], index: int) -> list[WireDelta]:
    return [
        e.delta for e in decoded if e.type == "content_block_delta" and e.index == index and e.delta
    ]


def body(text: str = "hello", *, stream: bool | None = True, **extra: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": "claude-sonnet-5-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }
    if stream is not None:
        request["stream"] = stream
    return request


def read_until_drop(client: httpx.Client, request: dict[str, Any]) -> bytes:
    """Collect a streamed body until the server hangs up mid-response."""
    received = bytearray()

    def consume() -> None:
        with client.stream("POST", "/v1/messages", json=request) as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                received.extend(chunk)

    with pytest.raises(httpx.RemoteProtocolError):
        consume()
    return bytes(received)


@pytest.fixture
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as fake:
        yield fake


@pytest.fixture
def client(server: FakeAnthropicServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5) as http:
        yield http


# --------------------------------------------------------------------------- responses


def test_streams_text_as_chunked_sse(server: FakeAnthropicServer, client: httpx.Client) -> None:
    answer = "Hello there, this answer is long enough to arrive in three deltas."
    server.queue(reply(answer))
    request = body()
    response = client.post("/v1/messages?beta=true", json=request)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.headers["request-id"].startswith("req_fake_")
    decoded = events(response.content)
    assert names(response.content) == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = decoded[0].message
    assert start is not None
    assert start.id.startswith("msg_fake_")
    assert (start.model, start.role, start.content, start.stop_reason) == (
        "claude-sonnet-5-5",
        "assistant",
        [],
        None,
    )
    assert start.usage.input_tokens == len(response.request.content) // 4
    assert "".join(d.text for d in deltas(decoded, 0)) == answer
    assert stop_reason(decoded) == "end_turn"
    final_usage = decoded[-2].usage
    assert final_usage is not None
    assert final_usage.output_tokens == len(answer) // 4


def test_keep_alive_connection_is_reused_without_stalls(server: FakeAnthropicServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    sockets = []
    started = time.monotonic()
    try:
        for number in range(10):
            request = msgspec.json.encode(body(stream=number % 2 == 0))
            connection.request("POST", "/v1/messages", body=request)
            response = connection.getresponse()
            assert response.status == 200
            assert b'"stop_reason":"end_turn"' in response.read()
            sockets.append(connection.sock)
    finally:
        connection.close()
    assert sockets[0] is not None
    assert sockets.count(sockets[0]) == 10
    # Small writes held back by Nagle's algorithm would cost ~40 ms per response.
    assert time.monotonic() - started < 0.3


def test_streams_tool_use_with_input_json_deltas(
    client: httpx.Client, server: FakeAnthropicServer
) -> None:
    tool_input = {"city": "Paris", "units": "metric", "days": [1, 2, 3]}
    server.queue(tool_call("get_weather", tool_input, text="Checking"))
    decoded = events(client.post("/v1/messages", json=body()).content)

    tool_start = block_start(decoded, 1)
    assert (tool_start.type, tool_start.name, tool_start.input) == ("tool_use", "get_weather", {})
    assert tool_start.id.startswith("toolu_fake_")
    pieces = [d.partial_json for d in deltas(decoded, 1)]
    assert all(d.type == "input_json_delta" for d in deltas(decoded, 1))
    assert pieces[0] == ""
    assert len(pieces) >= 2
    assert input_decoder.decode("".join(pieces)) == tool_input
    assert "".join(d.text for d in deltas(decoded, 0)) == "Checking"
    assert stop_reason(decoded) == "tool_use"


def test_streams_thinking_then_signature(client: httpx.Client, server: FakeAnthropicServer) -> None:
    server.queue(thinking("The user greets me, so I greet back.", "Hi!", signature="sig_abc"))
    decoded = events(client.post("/v1/messages", json=body()).content)

    block = block_start(decoded, 0)
    assert (block.type, block.thinking, block.signature) == ("thinking", "", "")
    thought = deltas(decoded, 0)
    assert [d.type for d in thought][-1] == "signature_delta"
    assert {d.type for d in thought[:-1]} == {"thinking_delta"}
    assert "".join(d.thinking for d in thought) == "The user greets me, so I greet back."
    assert thought[-1].signature == "sig_abc"
    assert [d.text for d in deltas(decoded, 1)] == ["Hi!"]


@pytest.mark.parametrize("stream", [None, False])
def test_answers_json_when_not_streaming(
    client: httpx.Client, server: FakeAnthropicServer, stream: bool | None
) -> None:
    server.queue(
        tool_calls(("Read", {"file_path": "/a"}), ("Read", {"file_path": "/b"}), text="Both")
    )
    response = client.post("/v1/messages", json=body(stream=stream))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["request-id"].startswith("req_fake_")
    result = message_decoder.decode(response.content)
    assert (result.type, result.role, result.stop_reason) == ("message", "assistant", "tool_use")
    assert [b.type for b in result.content] == ["text", "tool_use", "tool_use"]
    assert [b.input for b in result.content[1:]] == [{"file_path": "/a"}, {"file_path": "/b"}]
    assert result.content[1].id != result.content[2].id
    assert result.usage.input_tokens == len(response.request.content) // 4
    assert result.usage.cache_creation == {
        "ephemeral_5m_input_tokens": 0,
        "ephemeral_1h_input_tokens": 0,
    }


def test_count_tokens(client: httpx.Client, server: FakeAnthropicServer) -> None:
    short = client.post("/v1/messages/count_tokens", json={"model": "m", "messages": []})
    long = client.post(
        "/v1/messages/count_tokens",
        json={"model": "m", "system": "x" * 4000, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert short.status_code == long.status_code == 200
    assert count_decoder.decode(short.content).input_tokens >= 1
    assert 1000 <= count_decoder.decode(long.content).input_tokens <= 1100
    assert server.requests[-1].path == "/v1/messages/count_tokens"


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/models"), ("POST", "/v1/complete")])
def test_unknown_endpoints_get_a_json_404(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 404
    failure = error_decoder.decode(response.content)
    assert (failure.type, failure.error.type) == ("error", "not_found_error")
    assert failure.request_id == response.headers["request-id"]


def test_invalid_json_is_a_400(client: httpx.Client) -> None:
    response = client.post("/v1/messages", content=b"{not json")
    assert response.status_code == 400
    assert error_decoder.decode(response.content).error.type == "invalid_request_error"


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (429, "rate_limit_error"),
        (529, "overloaded_error"),
        (500, "api_error"),
        (401, "authentication_error"),
    ],
)
def test_error_status_with_headers(
    client: httpx.Client, server: FakeAnthropicServer, status: int, error_type: str
) -> None:
    server.queue(error(status, headers={"retry-after": "1", "x-should-retry": "true"}))
    response = client.post("/v1/messages", json=body())

    assert response.status_code == status
    assert response.headers["retry-after"] == "1"
    assert response.headers["x-should-retry"] == "true"
    failure = error_decoder.decode(response.content)
    assert failure.error.type == error_type
    assert failure.request_id == response.headers["request-id"]
    assert client.post("/v1/messages", json=body()).status_code == 200  # the queue is spent


def test_stream_error_after_n_events(client: httpx.Client, server: FakeAnthropicServer) -> None:
    server.on("hello", reply("Hello world").with_fault(stream_error(after_events=3)))
    response = client.post("/v1/messages", json=body())

    assert response.status_code == 200
    assert names(response.content) == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "error",
    ]
    failure = events(response.content)[-1].error
    assert failure is not None
    assert failure.type == "overloaded_error"
    # Stream faults leave non-streaming requests alone, as a client's fallback call expects.
    fallback = client.post("/v1/messages", json=body(stream=False))
    assert message_decoder.decode(fallback.content).content[0].text == "Hello world"


def test_drop_before_the_response(client: httpx.Client, server: FakeAnthropicServer) -> None:
    server.queue(reply("never sent").with_fault(drop()))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/v1/messages", json=body(stream=False))
    assert client.post("/v1/messages", json=body()).status_code == 200


def test_drop_after_n_events(client: httpx.Client, server: FakeAnthropicServer) -> None:
    server.queue(reply("cut short").with_fault(drop(after_events=2)))
    received = read_until_drop(client, body())
    assert names(received) == ["message_start", "ping", "content_block_start"]


def test_stall_sends_only_pings(client: httpx.Client, server: FakeAnthropicServer) -> None:
    server.queue(reply("late").with_fault(stall(0.3, after_events=1, ping_every=0.08)))
    started = time.monotonic()
    response = client.post("/v1/messages", json=body())

    assert time.monotonic() - started >= 0.3
    sequence = names(response.content)
    assert sequence[:5] == ["message_start", "ping", "ping", "ping", "ping"]
    assert sequence[-1] == "message_stop"
    assert "".join(d.text for d in deltas(events(response.content), 0)) == "late"


def test_malformed_frame(client: httpx.Client, server: FakeAnthropicServer) -> None:
    server.queue(reply("fine").with_fault(malformed(after_events=2)))
    sent = frames(client.post("/v1/messages", json=body()).content)

    bad = sent[3]
    assert bad.event == "content_block_delta"
    with pytest.raises(msgspec.DecodeError):
        event_decoder.decode(bad.data)
    assert [f.event for f in sent[4:]][-1] == "message_stop"


def test_delay_before_responding(client: httpx.Client, server: FakeAnthropicServer) -> None:
    server.queue(reply("slow").with_fault(delay(0.2)), error(503).with_fault(delay(0.1)))
    started = time.monotonic()
    assert client.post("/v1/messages", json=body()).status_code == 200
    assert client.post("/v1/messages", json=body()).status_code == 503
    assert time.monotonic() - started >= 0.3


def test_latency_and_ping_interval() -> None:
    with FakeAnthropicServer(latency=0.06, ping_interval=0.025) as fake:
        started = time.monotonic()
        response = httpx.post(f"{fake.url}/v1/messages", json=body("hi"), timeout=5)
    sequence = names(response.content)
    assert time.monotonic() - started >= 5 * 0.06  # 6 message events, 5 pauses
    assert sequence.count("ping") >= 1 + 5 * 2


def test_close_ends_a_stalled_stream_promptly() -> None:
    fake = FakeAnthropicServer().start()
    fake.queue(reply("never").with_fault(stall(30, after_events=1)))
    outcome: list[BaseException] = []

    def consume() -> None:
        try:
            with httpx.stream(
                "POST", f"{fake.url}/v1/messages", json=body(), timeout=10
            ) as response:
                response.read()
        except httpx.HTTPError as exc:
            outcome.append(exc)

    reader = threading.Thread(target=consume)
    reader.start()
    while not fake.requests:
        time.sleep(0.01)
    time.sleep(0.05)
    started = time.monotonic()
    fake.close()
    reader.join(timeout=5)
    assert time.monotonic() - started < 2
    assert len(outcome) == 1
    assert isinstance(outcome[0], httpx.RemoteProtocolError)


# --------------------------------------------------------------------------- scripting


def text_of(client: httpx.Client, text: str, **extra: Any) -> str:
    response = client.post("/v1/messages", json=body(text, stream=False, **extra))
    assert response.status_code == 200
    return "".join(b.text for b in message_decoder.decode(response.content).content)


def test_rules_then_queue_then_default(client: httpx.Client, server: FakeAnthropicServer) -> None:
    server.on("alpha", reply("rule A"), times=1)
    server.on(lambda request: request.headers.get("x-tag") == "b", reply("rule B"))
    server.queue(reply("queued 1"), reply("queued 2"))

    assert text_of(client, "say alpha") == "rule A"
    assert text_of(client, "say alpha") == "queued 1"  # the rule is used up
    assert (
        client.post("/v1/messages", json=body(stream=False), headers={"x-tag": "b"}).content.count(
            b"rule B"
        )
        == 1
    )
    assert text_of(client, "probe", max_tokens=1) == "OK"  # a probe leaves the queue alone
    assert text_of(client, "next") == "queued 2"
    assert text_of(client, "first line\nlast line") == "ECHO: last line"


def test_reset_clears_rules_queue_and_records(
    client: httpx.Client, server: FakeAnthropicServer
) -> None:
    server.on("x", reply("rule"))
    server.queue(reply("queued"))
    client.post("/v1/messages", json=body("y"))
    server.reset()
    assert server.requests == []
    assert text_of(client, "x") == "ECHO: x"


def tool_result(content: str | list[dict[str, Any]], *, is_error: bool) -> dict[str, Any]:
    return {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": content,
        "is_error": is_error,
    }


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([tool_result("ok\n", is_error=False)], "TOOL_RESULT_SEEN is_error=false: ok\n"),
        (
            [
                tool_result(
                    [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], is_error=True
                )
            ],
            "TOOL_RESULT_SEEN is_error=true: a\nb",
        ),
        ("just text", "ECHO: just text"),
        ([{"type": "text", "text": "<reminder>"}, {"type": "text", "text": "hey"}], "ECHO: hey"),
        ("TOOL: Read not-json", "ECHO: TOOL: Read not-json"),
    ],
)
def test_default_text_answers(
    client: httpx.Client, content: str | list[dict[str, Any]], expected: str
) -> None:
    request = body(stream=False)
    request["messages"] = [{"role": "user", "content": content}]
    response = client.post("/v1/messages", json=request)
    assert message_decoder.decode(response.content).content[0].text == expected


@pytest.mark.parametrize(
    ("text", "name", "tool_input"),
    [
        (
            "please\nBASH: echo hi && ls",
            "Bash",
            {"command": "echo hi && ls", "description": "run command"},
        ),
        (
            "WRITE: /tmp/a.txt hello world",
            "Write",
            {"file_path": "/tmp/a.txt", "content": "hello world"},
        ),
        ('TOOL: mcp__calc__add {"a": 2, "b": 3}', "mcp__calc__add", {"a": 2, "b": 3}),
    ],
)
def test_default_tool_calls(
    client: httpx.Client, text: str, name: str, tool_input: dict[str, Any]
) -> None:
    result = message_decoder.decode(
        client.post("/v1/messages", json=body(text, stream=False)).content
    )
    assert result.stop_reason == "tool_use"
    assert [b.type for b in result.content] == ["text", "tool_use"]
    assert result.content[0].text == f"I'll use {name}."
    assert (result.content[1].name, result.content[1].input) == (name, tool_input)


def test_lenient_cli_shaped_request(client: httpx.Client, server: FakeAnthropicServer) -> None:
    request = {
        "model": "claude-unknown-model",
        "max_tokens": 128000,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>x"},
                    {"type": "text", "text": "hello"},
                ],
            },
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "env", "cache_control": {"type": "ephemeral"}}
                ],
                "output_config": {"effort": "medium"},
            },
        ],
        "thinking": {"type": "adaptive", "display": "updates"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "stream": True,
    }
    response = client.post(
        "/v1/messages?beta=true",
        json=request,
        headers={"X-App": "cli", "anthropic-version": "2023-06-01"},
    )
    assert response.status_code == 200
    assert "".join(d.text for d in deltas(events(response.content), 0)) == "ECHO: hello"

    recorded: RecordedRequest = server.requests[-1]
    assert (recorded.method, recorded.path, recorded.query) == ("POST", "/v1/messages", "beta=true")
    assert recorded.headers["x-app"] == "cli"
    assert recorded.last_user_text == "<system-reminder>x\nhello"
    assert recorded.body == response.request.content
    assert recorded.json is not None
    assert recorded.json["context_management"] == request["context_management"]


# --------------------------------------------------------------------------- prompt caching


def usage_of(client: httpx.Client, request: dict[str, Any]) -> WireUsage:
    response = client.post("/v1/messages", json=request)
    assert response.status_code == 200
    return message_decoder.decode(response.content).usage


def conversation(turns: list[str], *, mark_last: bool) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for number, text in enumerate(turns):
        block: dict[str, Any] = {"type": "text", "text": text}
        if mark_last and number == len(turns) - 1:
            block["cache_control"] = {"type": "ephemeral"}
        messages.append({"role": "user", "content": [block]})
        if number < len(turns) - 1:
            messages.append(
                {"role": "assistant", "content": [{"type": "text", "text": f"ECHO: {text}"}]}
            )
    return messages


def test_cache_reads_grow_over_a_resent_conversation(client: httpx.Client) -> None:
    system = [
        {"type": "text", "text": "You are terse. " * 200, "cache_control": {"type": "ephemeral"}}
    ]
    turns = ["first question " * 40, "second question " * 40, "third question " * 40]
    seen = [
        usage_of(
            client,
            body(stream=False, system=system, messages=conversation(turns[:n], mark_last=True)),
        )
        for n in (1, 2, 3)
    ]

    assert seen[0].cache_read_input_tokens == 0
    assert seen[0].cache_creation_input_tokens > 750
    assert 0 < seen[1].cache_read_input_tokens < seen[2].cache_read_input_tokens
    assert seen[1].cache_read_input_tokens == seen[0].cache_creation_input_tokens
    assert (
        seen[2].cache_read_input_tokens
        == seen[1].cache_read_input_tokens + seen[1].cache_creation_input_tokens
    )
    for usage in seen:
        assert (
            usage.cache_creation["ephemeral_5m_input_tokens"] == usage.cache_creation_input_tokens
        )
        assert usage.prompt > 0


def test_cache_needs_markers_and_an_identical_prefix(client: httpx.Client) -> None:
    plain = body(stream=False, system="s" * 2000)
    assert usage_of(client, plain).cache_creation_input_tokens == 0
    assert usage_of(client, plain).cache_read_input_tokens == 0

    automatic = body(
        stream=False, system="s" * 2000, cache_control={"type": "ephemeral", "ttl": "1h"}
    )
    first = usage_of(client, automatic)
    assert (
        first.cache_creation["ephemeral_1h_input_tokens"] == first.cache_creation_input_tokens > 0
    )
    assert usage_of(client, automatic).cache_read_input_tokens == first.cache_creation_input_tokens

    changed = body(stream=False, system="t" * 2000, cache_control={"type": "ephemeral"})
    assert usage_of(client, changed).cache_read_input_tokens == 0


def test_streamed_usage_carries_cache_counts(client: httpx.Client) -> None:
    request = body(
        system=[{"type": "text", "text": "z" * 800, "cache_control": {"type": "ephemeral"}}]
    )
    client.post("/v1/messages", json=request)
    decoded = events(client.post("/v1/messages", json=request).content)
    start, end = decoded[0].message, decoded[-2].usage
    assert start is not None
    assert end is not None
    assert start.usage.cache_read_input_tokens == end.cache_read_input_tokens > 0


# --------------------------------------------------------------------------- async; official SDK


@pytest.mark.anyio
async def test_async_streaming_client() -> None:
    async with FakeAnthropicServer() as fake:
        fake.queue(reply("async hello"))
        async with httpx.AsyncClient(base_url=fake.url, timeout=5) as http:
            received = bytearray()
            async with http.stream("POST", "/v1/messages", json=body()) as response:
                async for chunk in response.aiter_bytes():
                    received += chunk
            second = await http.post("/v1/messages", json=body("again", stream=False))
    assert "".join(d.text for d in deltas(events(bytes(received)), 0)) == "async hello"
    assert message_decoder.decode(second.content).content[0].text == "ECHO: again"


@pytest.mark.anyio
async def test_concurrent_streams_are_served_in_parallel() -> None:
    answers: dict[int, str] = {}
    async with (
        FakeAnthropicServer(latency=0.05) as fake,
        httpx.AsyncClient(base_url=fake.url, timeout=5) as http,
    ):

        async def ask(number: int) -> None:
            response = await http.post("/v1/messages", json=body(f"question {number}"))
            answers[number] = "".join(d.text for d in deltas(events(response.content), 0))

        started = time.monotonic()
        async with anyio.create_task_group() as group:
            for number in range(10):
                group.start_soon(ask, number)
        elapsed = time.monotonic() - started
    assert answers == {number: f"ECHO: question {number}" for number in range(10)}
    # one stream takes about 0.25 s: ten in sequence take 2.5 s or more, in parallel well under
    # one (the bound leaves room for a loaded machine)
    assert elapsed < 1.5


def test_official_sdk_speaks_to_the_fake(server: FakeAnthropicServer) -> None:
    sdk = anthropic.Anthropic(base_url=server.url, api_key="sk-ant-test", max_retries=0)
    server.on("weather", tool_call("get_weather", {"city": "Paris"}, text="Let me check."))
    server.queue(reply("Streaming from the fake server works."))
    messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hello"}]

    with sdk.messages.stream(model="claude-sonnet-5-5", max_tokens=64, messages=messages) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == "Streaming from the fake server works."
    assert isinstance(final.content[0], SdkTextBlock)
    assert final.content[0].text == streamed
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens >= 1

    with sdk.messages.stream(
        model="claude-sonnet-5-5", max_tokens=64, messages=[{"role": "user", "content": "weather?"}]
    ) as stream:
        tool_message = stream.get_final_message()
    tool_block = tool_message.content[1]
    assert isinstance(tool_block, SdkToolUseBlock)
    assert tool_block.input == {"city": "Paris"}

    created = sdk.messages.create(model="claude-sonnet-5-5", max_tokens=64, messages=messages)
    assert isinstance(created.content[0], SdkTextBlock)
    assert created.content[0].text == "ECHO: hello"
    assert created.usage.input_tokens > 0

    counted = sdk.messages.count_tokens(model="claude-sonnet-5-5", messages=messages)
    assert counted.input_tokens >= 1
    assert {r.path for r in server.requests} == {"/v1/messages", "/v1/messages/count_tokens"}
    auth = server.requests[0].headers
    assert "sk-ant-test" in (
        auth.get("x-api-key"),
        auth.get("authorization", "").removeprefix("Bearer "),
    )


# --------------------------------------------------------------------------- strict mode


def test_strict_server_fails_loudly_when_the_queue_runs_out() -> None:
    server = FakeAnthropicServer(strict=True).start()
    try:
        server.queue(reply("first"))
        config = cu.Config(backend="api", api_key="sk-test", base_url=server.url)
        assert cu.query_sync("one", config=config) == "first"
        with pytest.raises(cu.InternalServerError, match="nothing is scripted") as failed:
            cu.query_sync("two, unscripted", config=config)
        assert "'two, unscripted'" in str(failed.value)
        assert len(server.requests) == 2  # no retry: x-should-retry is false
        assert [r.last_user_text for r in server.unscripted] == ["two, unscripted"]
    finally:
        server.close()
    with pytest.raises(AssertionError, match=r"1 request\(s\) found nothing scripted") as info:
        server.__exit__(None, None, None)  # what leaving `with FakeAnthropicServer(...)` does
    assert "'two, unscripted'" in str(info.value)
    server.__exit__(RuntimeError, RuntimeError("boom"), None)  # another failure is not masked


def test_strict_server_passes_when_everything_was_scripted() -> None:
    with FakeAnthropicServer(strict=True) as server:
        server.on("hello", reply("rule"), times=1)
        server.queue(reply("queued"))
        config = cu.Config(backend="api", api_key="sk-test", base_url=server.url)
        assert cu.query_sync("hello", config=config) == "rule"
        assert cu.query_sync("hello again", config=config) == "queued"
        server.check()
        server.reset()
        assert server.unscripted == []


@pytest.mark.anyio
async def test_strict_batches_error_unscripted_requests() -> None:
    server = FakeAnthropicServer(strict=True)
    async with server:
        server.queue(reply("only one"))
        config = cu.Config(api_key="sk-test", base_url=server.url)
        items = [cu.BatchItem(id="a", prompt="first"), cu.BatchItem(id="b", prompt="second")]
        results = await cu.run_via_batches_api(items, config, poll_initial=0.01)
        assert sorted(r.is_error for r in results) == [False, True]
        assert len(server.unscripted) == 1
        server.reset()  # acknowledged: leaving the block does not raise


def test_the_default_server_still_echoes() -> None:
    with FakeAnthropicServer() as server:
        config = cu.Config(backend="api", api_key="sk-test", base_url=server.url)
        assert cu.query_sync("hi", config=config) == "ECHO: hi"
        assert server.unscripted == []
