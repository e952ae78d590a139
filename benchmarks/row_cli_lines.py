"""Row 2: a long CLI stream-json transcript, decoded and normalized line by line (no process)."""

from __future__ import annotations

import json
import logging
from typing import Any

import msgspec

from claude_unified._normalize import CliNormalizer
from claude_unified._wire import decode_cli_line

from . import _data
from ._harness import Line, Row, Size, Target, interleave, median, note, ratio
from ._harness import cpu_clock as clock


class _Event(msgspec.Struct):
    type: str
    index: int | None = None
    delta: dict[str, Any] | None = None
    content_block: dict[str, Any] | None = None


class _Message(msgspec.Struct):
    id: str | None = None
    role: str | None = None
    content: list[dict[str, Any]] | str | None = None


class _Line(msgspec.Struct):
    """What the floor decodes per line: the envelope plus the parts a consumer reads."""

    type: str
    subtype: str | None = None
    event: _Event | None = None
    message: _Message | None = None
    result: str | None = None
    session_id: str | None = None


def run(size: Size) -> Row:
    turns = size.pick(15, 150)
    repeats = size.pick(3, 7)
    lines = _data.cli_lines(turns)
    n = len(lines)
    floor_decoder = msgspec.json.Decoder(_Line)
    counts: dict[str, int] = {}

    def floor() -> float:
        decode = floor_decoder.decode
        start = clock()
        for line in lines:
            decode(line)
        return clock() - start

    def ours() -> float:
        normalizer = CliNormalizer()
        feed = normalizer.feed
        events = 0
        start = clock()
        for line in lines:
            events += len(feed(decode_cli_line(line)))
        elapsed = clock() - start
        counts["ours"] = events
        return elapsed

    contenders: dict[str, Any] = {"floor": floor, "ours": ours}
    notes: list[str] = []
    try:
        from claude_agent_sdk._internal.message_parser import parse_message

        def agent_sdk() -> float:
            start = clock()
            for line in lines:
                parse_message(json.loads(line))
            return clock() - start

        contenders["claude_agent_sdk"] = agent_sdk
    except ImportError as exc:
        notes.append(f"claude-agent-sdk is not installed ({exc})")
    try:
        from claudestream import flatten_event, parse_event

        logging.getLogger("claudestream").setLevel(logging.ERROR)

        def claudestream() -> float:
            start = clock()
            for line in lines:
                flatten_event(parse_event(json.loads(line)))
            return clock() - start

        contenders["claudestream"] = claudestream
    except ImportError as exc:
        notes.append(f"claudestream is not installed ({exc})")

    note(f"row 2: {n} lines, {repeats} repeats")
    times = interleave(contenders, repeats)
    best = {name: min(values) for name, values in times.items()}
    avg_bytes = sum(map(len, lines)) / n
    row = Row(
        2,
        f"CLI stream-json: {n:,} transcript lines (avg {avg_bytes:.0f} B), decode + normalize",
        "CPU per line (min)",
    )
    labels = {
        "floor": "floor: one typed msgspec decode per line",
        "ours": "ours: decode_cli_line + CliNormalizer.feed",
        "claude_agent_sdk": "claude-agent-sdk: json.loads + message_parser.parse_message",
        "claudestream": "claudestream: json.loads + parse_event + flatten_event",
    }
    for name, value in best.items():
        extra = f"; {counts['ours']:,} events out" if name == "ours" else ""
        row.lines.append(
            Line(
                labels[name],
                f"{value / n * 1e6:.2f} µs",
                ratio(value, best["ours"]),
                f"median {median(times[name]) / n * 1e6:.2f} µs{extra}",
            )
        )
    row.notes.append("ratio: time ÷ ours (above 1: slower than ours)")
    row.notes.append(
        "the peers do less: the agent SDK keeps stream events as raw dicts and does not "
        "accumulate; claudestream does not parse stream events' deltas"
    )
    row.notes += notes
    per_line = best["ours"] / n
    row.targets.append(Target("ours ≤ 3 µs per line", f"{per_line * 1e6:.2f} µs", per_line <= 3e-6))
    if "claude_agent_sdk" in best:
        speedup = best["claude_agent_sdk"] / best["ours"]
        row.targets.append(
            Target(
                "ours ≥ 10x faster than claude-agent-sdk",
                f"{speedup:.1f}x",
                speedup >= 10,
                "out of reach: the floor, one msgspec decode per line, is itself only "
                f"{best['claude_agent_sdk'] / best['floor']:.1f}x faster than the agent SDK",
            )
        )
    return row
