"""Workloads: a long Messages API SSE stream and a long CLI stream-json transcript.

Both are shaped like the real thing. The SSE stream is rendered by the test kit's
``render_stream`` (the bytes the fake server sends) with its deltas re-cut into token-sized
pieces; the CLI transcript repeats the line shapes of a real CLI 2.1.330 run with partial
messages and a tool call, with fresh ids and text on every line.
"""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any

import msgspec

from claude_unified import TextBlock, ToolUseBlock
from claude_unified.testing._script import Reply, render_ping, render_stream, sse_frame

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "cli-2.1.330"

_TEXT = (
    "the model streams text in small pieces while the client decodes each frame, "
    "keeps a running message and hands typed events to the caller; "
    'quotes "like these", back\\slashes, tabs\tand newlines\n, café, naïve, 日本語, 🚀 '
)
_WORDS = _TEXT.split(" ")
_PIECE_SIZES = (3, 5, 8, 4, 11, 6, 2, 9, 7, 4)  # characters per delta: token-sized, varied


def prose(chars: int, seed: int = 0) -> str:
    words = itertools.cycle(_WORDS[seed % len(_WORDS) :] + _WORDS[: seed % len(_WORDS)])
    parts: list[str] = []
    size = 0
    while size < chars:
        word = next(words)
        parts.append(word)
        size += len(word) + 1
    return " ".join(parts)[:chars]


def _pieces(text: str) -> list[str]:
    out: list[str] = []
    sizes = itertools.cycle(_PIECE_SIZES)
    i = 0
    while i < len(text):
        n = next(sizes)
        out.append(text[i : i + n])
        i += n
    return out


# --------------------------------------------------------------------------- API stream

_dict_decoder = msgspec.json.Decoder(dict[str, Any])
_encoder = msgspec.json.Encoder()


def api_reply(deltas: int) -> Reply:
    """A reply of two text blocks and two tool calls holding about ``deltas`` deltas in all:
    two thirds text, one third tool input (stop_reason ``end_turn``, so no agent loop runs)."""
    avg = sum(_PIECE_SIZES) / len(_PIECE_SIZES)
    text_chars = int(deltas * 2 / 3 * avg / 2)
    json_chars = int(deltas / 3 * avg / 2)
    blocks: list[Any] = []
    for i in range(2):
        blocks.append(TextBlock(prose(text_chars, seed=i)))
        tool_input = {
            "path": f"src/module_{i}.py",
            "content": prose(json_chars - 80, seed=i + 7),
            "options": {"overwrite": True, "mode": 420, "tags": ["a", "b"]},
        }
        blocks.append(ToolUseBlock(f"toolu_bench_{i:04d}", "write_file", tool_input))
    return Reply(tuple(blocks), stop_reason="end_turn")


def api_events(deltas: int) -> list[bytes]:
    """The JSON bodies of the stream events of ``api_reply(deltas)``, deltas token-sized."""
    out: list[bytes] = []
    rendered = render_stream(api_reply(deltas), model="claude-bench", input_tokens=1200)
    pending: dict[int, tuple[str, str]] = {}  # index -> (delta type, text so far)
    for body in rendered:
        event = _dict_decoder.decode(body)
        kind = event["type"]
        if kind == "content_block_delta":
            delta = event["delta"]
            dtype = delta["type"]
            key = "text" if dtype == "text_delta" else "partial_json"
            prev = pending.get(event["index"], (dtype, ""))[1]
            pending[event["index"]] = (dtype, prev + delta[key])
            continue
        if kind == "content_block_stop" and event["index"] in pending:
            dtype, text = pending.pop(event["index"])
            key = "text" if dtype == "text_delta" else "partial_json"
            for piece in _pieces(text):
                out.append(
                    _encoder.encode(
                        {
                            "type": "content_block_delta",
                            "index": event["index"],
                            "delta": {"type": dtype, key: piece},
                        }
                    )
                )
        out.append(body)
    return out


def sse_body(events: list[bytes]) -> list[bytes]:
    """SSE frames, one per event, with a ping after ``message_start`` as the API sends."""
    frames = [sse_frame(e) for e in events]
    return [frames[0], sse_frame(render_ping()), *frames[1:]]


# --------------------------------------------------------------------------- CLI transcript


def _fixture_lines(name: str) -> list[dict[str, Any]]:
    out = []
    for raw in (FIXTURES / name).read_bytes().splitlines():
        record = _dict_decoder.decode(raw)
        if record.get("dir") == "from_cli":
            out.append(record["msg"])
    return out


def _templates() -> dict[str, dict[str, Any]]:
    """One real line of every shape, picked from the partial-messages transcript."""
    found: dict[str, dict[str, Any]] = {}
    for msg in _fixture_lines("partial-messages-tool.stdio.jsonl"):
        kind = msg["type"]
        if kind == "system":
            key = msg["subtype"]
        elif kind == "stream_event":
            ev = msg["event"]
            key = ev["type"]
            if key == "content_block_start":
                key += ":" + ev["content_block"]["type"]
            elif key == "content_block_delta":
                key += ":" + ev["delta"]["type"]
        elif kind == "assistant":
            key = "assistant:" + msg["message"]["content"][0]["type"]
        else:
            key = kind
        found.setdefault(key, msg)
    return found


def _fresh(template: dict[str, Any], **changes: Any) -> dict[str, Any]:
    line: dict[str, Any] = msgspec.json.decode(_encoder.encode(template))  # deep copy
    if "uuid" in line:
        line["uuid"] = str(uuid.uuid4())
    line.update(changes)
    return line


def cli_lines(turns: int, text_deltas: int = 40) -> list[bytes]:
    """A long transcript: ``turns`` turns, each one text reply streamed in ``text_deltas``
    pieces, a Bash call with its input streamed, the CLI's tool result, and a final answer."""
    t = _templates()
    out: list[dict[str, Any]] = []

    def stream(event: dict[str, Any], key: str, msg_id: str) -> dict[str, Any]:
        return _fresh(t[key], event=event, api_message_id=msg_id)

    def message(msg_id: str, blocks: list[tuple[str, str | dict[str, Any]]], stop: str) -> None:
        start = msgspec.json.decode(_encoder.encode(t["message_start"]["event"]))
        start["message"]["id"] = msg_id
        out.append(stream(start, "message_start", msg_id))
        for index, (kind, payload) in enumerate(blocks):
            if kind == "text":
                assert isinstance(payload, str)
                block: dict[str, Any] = {"type": "text", "text": ""}
                out.append(
                    stream(
                        {"type": "content_block_start", "index": index, "content_block": block},
                        "content_block_start:text",
                        msg_id,
                    )
                )
                for piece in _pieces(payload):
                    delta = {"type": "text_delta", "text": piece}
                    ev = {"type": "content_block_delta", "index": index, "delta": delta}
                    out.append(stream(ev, "content_block_delta:text_delta", msg_id))
                full: dict[str, Any] = {"type": "text", "text": payload}
                key = "assistant:text"
            else:
                assert isinstance(payload, dict)
                tool_id = f"toolu_{uuid.uuid4().hex[:24]}"
                block = {"type": "tool_use", "id": tool_id, "name": "Bash", "input": {}}
                out.append(
                    stream(
                        {"type": "content_block_start", "index": index, "content_block": block},
                        "content_block_start:tool_use",
                        msg_id,
                    )
                )
                for piece in _pieces(_encoder.encode(payload).decode()):
                    delta = {"type": "input_json_delta", "partial_json": piece}
                    ev = {"type": "content_block_delta", "index": index, "delta": delta}
                    out.append(stream(ev, "content_block_delta:input_json_delta", msg_id))
                full = {**block, "input": payload}
                key = "assistant:tool_use"
            assistant = _fresh(t[key])
            assistant["message"]["id"] = msg_id
            assistant["message"]["content"] = [full]
            out.append(assistant)
            stop_ev = {"type": "content_block_stop", "index": index}
            out.append(stream(stop_ev, "content_block_stop", msg_id))
        delta_ev = msgspec.json.decode(_encoder.encode(t["message_delta"]["event"]))
        delta_ev["delta"]["stop_reason"] = stop
        out.append(stream(delta_ev, "message_delta", msg_id))
        out.append(stream({"type": "message_stop"}, "message_stop", msg_id))

    chars = int(text_deltas * sum(_PIECE_SIZES) / len(_PIECE_SIZES))
    for turn in range(turns):
        out.append(_fresh(t["init"]))
        out.append(_fresh(t["status"]))
        command = {"command": f"echo turn-{turn} && ls -la src/", "description": prose(60, turn)}
        first = f"msg_{uuid.uuid4().hex[:24]}"
        message(first, [("text", prose(chars, turn)), ("tool", command)], "tool_use")
        tool_use_id = out[-4]["message"]["content"][0]["id"]
        user = _fresh(t["user"])
        user["message"]["content"][0]["tool_use_id"] = tool_use_id
        user["message"]["content"][0]["content"] = prose(200, turn + 3)
        user["tool_result_meta"] = [
            {"id": tool_use_id, "permission_decision": {"decision": "accept", "source": "config"}}
        ]
        out.append(user)
        out.append(_fresh(t["status"]))
        second = f"msg_{uuid.uuid4().hex[:24]}"
        message(second, [("text", prose(chars, turn + 1))], "end_turn")
        out.append(_fresh(t["result"], result=prose(chars, turn + 1), num_turns=2))
    return [_encoder.encode(line) for line in out]
