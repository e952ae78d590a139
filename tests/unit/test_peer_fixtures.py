"""Streams we did not write decode with nothing lost.

The official SDK's own SSE fixtures accumulate to the same content, stop reason, stop details
and usage as the SDK's ``MessageStream.get_final_message()``, compared field by field; the CLI
lines of other projects' tests and cassettes decode with their content blocks, usage and unknown
lines kept exactly.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from claude_unified import _wire as w
from claude_unified._events import (
    ContentBlock,
    Message,
    ToolResultBlock,
    Unknown,
    UnknownBlock,
    Usage,
)
from claude_unified._exceptions import ProtocolError
from claude_unified._normalize import MessageAccumulator
from claude_unified.backends._sse import SseFramer

PEER = Path(__file__).parent.parent / "fixtures" / "peer"
API_FIXTURES = sorted((PEER / "api").iterdir())
CLI_FIXTURES = sorted((PEER / "cli").rglob("*.jsonl"))


def test_fixtures_are_the_peers_bytes() -> None:
    manifest = json.loads((PEER / "MANIFEST.json").read_text())
    files = {entry["file"]: entry["sha256"] for entry in manifest["files"]}
    here = {p.relative_to(PEER).as_posix() for p in [*API_FIXTURES, *CLI_FIXTURES]}
    assert here == set(files)
    for name, sha in files.items():
        assert hashlib.sha256((PEER / name).read_bytes()).hexdigest() == sha, name


# --------------------------------------------------------------------------- API streams


def _sdk_final_message(body: bytes) -> dict[str, Any]:
    """The official SDK's own accumulation of ``body`` (its beta stream helper, which knows
    every block and delta type the fixtures use), served through an in-memory transport."""
    anthropic = pytest.importorskip("anthropic")
    httpx2 = pytest.importorskip("httpx2")

    def serve(_: Any) -> Any:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    http_client = httpx2.Client(transport=httpx2.MockTransport(serve))
    client = anthropic.Anthropic(
        api_key="k", base_url="http://127.0.0.1:9", http_client=http_client
    )
    request: dict[str, Any] = {"role": "user", "content": "hi"}
    with client.beta.messages.stream(model="m", max_tokens=8, messages=[request]) as stream:
        message: dict[str, Any] = stream.get_final_message().to_dict()
    return message


def _ours(
    body: bytes, chunk: int
) -> tuple[Message, list[Any], list[w.ApiEvent], ProtocolError | None]:
    # Some fixtures end without the blank line that ends an event. The event-stream rules say
    # such an event is never dispatched (a connection cut mid-event must not look complete);
    # the SDK dispatches it anyway. The API always ends its events, so we end them here.
    if not body.endswith((b"\n\n", b"\r\n\r\n")):
        body += b"\n\n"
    framer, acc = SseFramer(), MessageAccumulator()
    frames = [
        w.decode_api_event(data)
        for i in range(0, len(body), chunk)
        for data in framer.feed(body[i : i + chunk])
    ]
    events: list[Any] = []
    failure = None
    for frame in frames:
        try:
            events += acc.feed(frame)
        except ProtocolError as exc:
            failure = exc
    assert acc.complete is (failure is None)
    return acc.message(), events, frames, failure


def _wire(block: ContentBlock) -> Any:
    if isinstance(block, UnknownBlock):
        return block.raw
    if isinstance(block, ToolResultBlock) and not isinstance(block.content, str):
        return {**msgspec.to_builtins(block), "content": [_wire(b) for b in block.content]}
    return msgspec.to_builtins(block)


@pytest.mark.parametrize("path", API_FIXTURES, ids=lambda p: p.name)
@pytest.mark.parametrize("chunk", [1 << 20, 7])
def test_api_fixture_accumulates_like_the_official_sdk(path: Path, chunk: int) -> None:
    body = path.read_bytes()
    sdk = _sdk_final_message(body)
    ours, events, frames, failure = _ours(body, chunk)

    # A block the stream never finished (a tool call cut off, then message_stop) makes the
    # stream a ProtocolError here, where the SDK keeps a guess at the cut JSON. What was
    # finished before it is the same on both sides.
    started = {f.index for f in frames if isinstance(f, w.ContentBlockStartEvent)}
    finished = {f.index for f in frames if isinstance(f, w.ContentBlockStopEvent)}
    if "incomplete" in path.name:
        assert started - finished == {1}
        assert failure is not None
        assert "content block(s) 1 were still open" in str(failure)
    else:
        assert started == finished
        assert failure is None
    assert isinstance(ours.content, list)
    assert [_wire(b) for b in ours.content] == [
        b for i, b in enumerate(sdk["content"]) if i in finished
    ]

    assert ours.id == sdk["id"]
    assert (ours.stop_reason, ours.stop_sequence) == (sdk["stop_reason"], sdk["stop_sequence"])
    assert ours.stop_details == sdk.get("stop_details")
    assert ours.container == sdk.get("container")

    assert ours.usage is not None
    extra = ours.usage.extra or {}
    for field, value in sdk["usage"].items():
        if field in Usage.__struct_fields__:
            theirs = getattr(msgspec.convert({field: value}, Usage), field)
            assert getattr(ours.usage, field) == theirs, field
        else:
            assert extra[field] == value, field
    kept = msgspec.to_builtins(msgspec.structs.replace(ours.usage, extra=None))
    assert set(kept) | set(extra) <= set(sdk["usage"])

    # every delta was understood; what is unknown is a whole block, with its index
    unknown = [e for e in events if isinstance(e, Unknown)]
    assert all(e.index is not None and not e.raw["type"].endswith("_delta") for e in unknown)


# --------------------------------------------------------------------------- CLI lines

# line literals of the peers' tests that are not valid CLI output (they test error handling,
# or are requests the host sends): ours must reject them with the exact bytes
MALFORMED = {
    "tests/test_close_cancellation.py:209",  # a control_request without its request
    "tests/test_message_parser.py:993",  # a user line without its message
    "tests/test_message_parser.py:999",
    "tests/test_message_parser.py:1033",
    "tests/test_events.py:149",  # a content_block_delta without its index
    "tests/test_events.py:291",  # request_id inside the request, not beside it
    "tests/test_mcp_handshake_integration.py:101",  # host → CLI requests, same shape
    "tests/test_mcp_handshake_integration.py:115",
    "mcp_handshake.jsonl:3",  # control responses whose request_id the cassette scrubbed away
    "mcp_handshake.jsonl:5",
}


def _cli_lines() -> list[tuple[str, dict[str, Any]]]:
    lines = []
    for path in CLI_FIXTURES:
        for number, text in enumerate(path.read_text().splitlines(), 1):
            record = json.loads(text)
            line = record.get("line", record.get("payload"))
            if line is not None and record.get("kind", "cli") == "cli":
                lines.append((record.get("origin", f"{path.name}:{number}"), line))
    return lines


CLI_LINES = _cli_lines()


def test_cli_fixture_lines_cover_every_kind() -> None:
    kinds = {
        type(w.decode_cli_line(json.dumps(line).encode())).__name__
        for origin, line in CLI_LINES
        if origin not in MALFORMED
    }
    assert {"AssistantLine", "UserLine", "ResultLine", "UnknownLine"} <= kinds
    assert {origin for origin, _ in CLI_LINES} >= MALFORMED


@pytest.mark.parametrize(("origin", "line"), CLI_LINES, ids=[o for o, _ in CLI_LINES])
def test_cli_fixture_line_decodes_with_nothing_lost(origin: str, line: dict[str, Any]) -> None:
    data = json.dumps(line).encode()
    if origin in MALFORMED:
        with pytest.raises(ProtocolError) as caught:
            w.decode_cli_line(data)
        assert caught.value.raw in data  # the line, or the frame inside it that is malformed
        return
    decoded = w.decode_cli_line(data)
    if isinstance(decoded, w.AssistantLine | w.UserLine):
        content = line["message"].get("content", [] if isinstance(decoded, w.AssistantLine) else "")
        if isinstance(decoded, w.AssistantLine) and isinstance(content, str):
            content = [{"type": "text", "text": content}] if content else []
        if isinstance(content, list):
            assert isinstance(decoded.message.content, list)
            assert [_wire(b) for b in decoded.message.content] == content
        else:
            assert decoded.message.content == content
    elif isinstance(decoded, w.ResultLine) and line.get("usage") is not None:
        sent = line["usage"]
        extra = {k: v for k, v in sent.items() if k not in w.WireUsage.__struct_fields__}
        expected = msgspec.convert({**sent, "extra": extra or None}, w.WireUsage)
        assert decoded.usage == expected
    elif isinstance(decoded, w.UnknownLine):
        assert decoded.raw == line
