"""Property tests over the CLI path's pure parts: the line decoder, the normalizer, the MCP server
and the backend's handling of each line (control requests included). Whatever the CLI prints,
only the library's own exceptions may escape, and every control request it sends is answered
exactly once or handed to the core to answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_unified import _wire as w
from claude_unified._config import Config
from claude_unified._events import Event
from claude_unified._exceptions import ClaudeError, ProtocolError
from claude_unified._normalize import CliNormalizer
from claude_unified.backends._control import ControlChannel
from claude_unified.backends._mcp import InvalidMcpMessage, McpServer
from claude_unified.backends._protocol import HookQuery, PermissionQuery, ToolInvocation, ToolSpec
from claude_unified.backends.cli import CliBackend

FIXTURES = Path(__file__).parent.parent / "fixtures" / "cli-2.1.330"
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _real_lines() -> list[dict[str, Any]]:
    """Every line the real CLI printed in the recorded transcripts."""
    lines = []
    for path in sorted(FIXTURES.glob("*.jsonl")):
        for raw in path.read_text().splitlines():
            obj = msgspec.json.decode(raw)
            if "dir" in obj:  # stdio/wire transcripts: {"t", "dir", "msg"}
                if obj["dir"] != "from_cli":
                    continue
                obj = obj["msg"]
            lines.append(obj)
    return lines


REAL = _real_lines()
KNOWN_TYPES = sorted({str(line.get("type")) for line in REAL} | {"control_request", "result"})

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated_lines(draw: st.DrawFn) -> dict[str, Any]:
    """A real line with fields replaced, dropped or added at any depth."""
    line: Any = msgspec.json.decode(msgspec.json.encode(draw(st.sampled_from(REAL))))
    for _ in range(draw(st.integers(1, 3))):
        target = line
        for _ in range(draw(st.integers(0, 3))):  # walk down a few levels
            children = [k for k, v in target.items() if isinstance(v, dict)]
            if not children:
                break
            target = target[draw(st.sampled_from(children))]
        keys = sorted(target)
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "add" or not keys:
            target[draw(st.text(max_size=8))] = draw(json_values)
        elif action == "drop":
            del target[draw(st.sampled_from(keys))]
        else:
            target[draw(st.sampled_from(keys))] = draw(json_values)
    return dict(line)


made_up_lines = st.fixed_dictionaries(
    {"type": st.sampled_from([*KNOWN_TYPES, "something_new"])},
    optional=dict.fromkeys(
        ("subtype", "request_id", "request", "message", "event", "result", "errors"), json_values
    ),
)
any_line = st.one_of(mutated_lines(), made_up_lines)


def _decode(data: bytes) -> w.CliLine | None:
    try:
        return w.decode_cli_line(data)
    except ProtocolError as exc:
        error = exc
    assert error.raw in data  # the line, or the nested part that was malformed
    return None


@SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_protocol_error(data: bytes) -> None:
    _decode(data)


@SETTINGS
@given(any_line)
def test_any_line_decodes_or_raises_protocol_error(line: dict[str, Any]) -> None:
    _decode(msgspec.json.encode(line))


@SETTINGS
@given(st.lists(any_line, max_size=12))
def test_the_normalizer_only_raises_library_errors(lines: list[dict[str, Any]]) -> None:
    normalizer = CliNormalizer()
    for line in lines:
        decoded = _decode(msgspec.json.encode(line))
        if decoded is None:
            continue
        try:
            events = normalizer.feed(decoded)
        except ClaudeError:
            normalizer.abandon()
            continue
        assert all(isinstance(event, Event) for event in events)
    normalizer.abandon()
    assert isinstance(normalizer.partial_text(), str)


mcp_params = json_values | st.fixed_dictionaries(
    {},
    optional={"name": json_values | st.just("add"), "arguments": json_values, "_meta": json_values},
)
mcp_messages = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.just("2.0") | json_values,
        "id": st.integers(0, 9) | json_values,
        "method": st.sampled_from(
            ["tools/call", "tools/list", "initialize", "ping", "notifications/initialized", "x"]
        )
        | json_values,
        "params": mcp_params,
    },
)


@SETTINGS
@given(mcp_messages)
def test_the_mcp_server_answers_or_raises_a_json_rpc_error(message: dict[str, Any]) -> None:
    server = McpServer((ToolSpec("add", "Add.", {"type": "object"}),))
    try:
        rpc = server.parse(message)
        if rpc.method == "tools/call":
            params = server.call_params(rpc)
            assert isinstance(params.arguments, dict)
            return
        response = server.answer(rpc)
    except InvalidMcpMessage as exc:
        response = exc.response
        assert isinstance(response["error"]["code"], int)
    assert response["jsonrpc"] == "2.0"
    msgspec.json.encode(response)  # it can be sent


@st.composite
def control_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A control request of any subtype, with a valid or broken body (or none)."""
    subtype = draw(st.sampled_from(["can_use_tool", "mcp_message", "hook_callback", "elicit", ""]))
    body: dict[str, Any] = {"subtype": subtype}
    if subtype == "mcp_message":
        body["server_name"] = "claude_unified"
        body["message"] = draw(mcp_messages | json_values)
    elif subtype == "can_use_tool":
        body.update(
            draw(
                st.fixed_dictionaries({}, optional={"tool_name": json_values, "input": json_values})
            )
        )
    line: dict[str, Any] = {
        "type": "control_request",
        "request_id": draw(st.text(min_size=1, max_size=6)),
    }
    if draw(st.booleans()):
        line["request"] = body if draw(st.booleans()) else draw(json_values)
    return line


@SETTINGS
@given(st.lists(st.one_of(control_requests(), any_line), min_size=1, max_size=6))
def test_every_control_request_is_answered_once_or_handed_on(lines: list[dict[str, Any]]) -> None:
    anyio.run(_handle_lines, lines)


async def _handle_lines(lines: list[dict[str, Any]]) -> None:
    sent: list[bytes] = []

    async def send_line(data: bytes) -> None:
        sent.append(data)

    backend = CliBackend(Config())  # its line handler only: no process is started
    backend._mcp = McpServer((ToolSpec("add", "Add.", {"type": "object"}),))
    control = backend._control = ControlChannel(send_line)
    withdrawn: set[str] = set()
    for line in lines:
        before = len(sent)
        try:
            frame = await backend._on_line(msgspec.json.encode(line), control)
        except ClaudeError:  # only the library's own errors may escape
            continue
        request_id = line.get("request_id")
        if not isinstance(request_id, str):
            continue
        if line.get("type") == "control_cancel_request":
            withdrawn.add(request_id)  # the CLI took it back: its answer is not sent
        if line.get("type") != "control_request":
            continue
        answers = [msgspec.json.decode(data) for data in sent[before:]]
        if request_id in withdrawn:
            withdrawn.discard(request_id)
            assert answers == []
        elif isinstance(frame, PermissionQuery | ToolInvocation | HookQuery):
            assert answers == []  # the core answers it
        else:
            assert len(answers) == 1, (line, answers)
            assert answers[0]["response"]["request_id"] == request_id
