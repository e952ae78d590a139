"""Row 3: per-event cost of the sync facade against the async API, over the in-process fake."""

from __future__ import annotations

import time

import anyio

from claude_unified import Config, Conversation, TextBlock
from claude_unified.testing import FakeBackend
from claude_unified.testing._script import Reply

from . import _data
from ._harness import Line, Row, Size, Target, clock, interleave, median, note, ratio

PROMPT = "go"


def _reply(blocks: int) -> Reply:
    """Many text blocks of ~40 characters: each streams as three deltas, then its Text."""
    return Reply(tuple(TextBlock(_data.prose(40, seed=i)) for i in range(blocks)))


def run(size: Size) -> Row:
    try:
        from claude_unified._sync import SyncConversation
    except ImportError:
        return Row(3, "Sync facade: not available (claude_unified._sync is missing)", "—")
    blocks = size.pick(500, 5_000)
    repeats = size.pick(3, 31)
    step = _reply(blocks)
    config = Config(backend="fake")
    counts: dict[str, int] = {}
    cpu: dict[str, list[float]] = {"async": [], "sync": []}

    def async_run() -> float:
        async def main() -> float:
            async with Conversation(config, backend=FakeBackend([step])) as conv:
                events = 0
                start, used = clock(), time.process_time()
                async for _event in conv.send(PROMPT):
                    events += 1
                elapsed = clock() - start
                cpu["async"].append(time.process_time() - used)
            counts["async"] = events
            return elapsed

        return anyio.run(main)

    def sync_run() -> float:
        with SyncConversation(config, backend=FakeBackend([step])) as conv:
            events = 0
            start, used = clock(), time.process_time()
            for _event in conv.send(PROMPT):
                events += 1
            elapsed = clock() - start
            cpu["sync"].append(time.process_time() - used)
        counts["sync"] = events
        return elapsed

    sync_run()  # start the portal thread outside the measurement
    cpu["sync"].clear()
    note(f"row 3: {blocks} blocks, {repeats} repeats")
    times = interleave({"async": async_run, "sync": sync_run}, repeats)
    assert counts["async"] == counts["sync"], counts
    n = counts["async"]
    best = {name: min(values) for name, values in times.items()}
    row = Row(3, f"Sync facade: one turn of {n:,} events over FakeBackend", "wall per event (min)")
    labels = {
        "async": "async: Conversation.send, async for",
        "sync": "sync: SyncConversation.send, for (events cross from the portal thread)",
    }
    cpu_best = {name: min(values) for name, values in cpu.items()}
    for name, value in best.items():
        row.lines.append(
            Line(
                labels[name],
                f"{value / n * 1e6:.2f} µs",
                ratio(value, best["async"]),
                f"median {median(times[name]) / n * 1e6:.2f} µs; CPU of all threads "
                f"{cpu_best[name] / n * 1e6:.2f} µs ({ratio(cpu_best[name], cpu_best['async'])})",
            )
        )
    paired = median([s / a for s, a in zip(times["sync"], times["async"], strict=True)])
    row.notes.append(
        "ratio: time ÷ async; both include FakeBackend rendering and decoding the stream. "
        f"Repeats run async then sync back to back; the median of their ratios is {paired:.2f}x"
    )
    factor = best["sync"] / best["async"]
    measured = f"{factor:.2f}x (median of back-to-back pairs: {paired:.2f}x)"
    row.targets.append(Target("sync ≤ 1.1x async per event", measured, factor <= 1.1))
    return row
