"""Row 3: per-event cost of the sync facade against the async API, over the in-process fake."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import Any

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

    def one_call_run() -> float:
        return _one_call(SyncConversation, config, [step], 1)

    sync_run()  # start the portal thread outside the measurement
    cpu["sync"].clear()
    note(f"row 3: {blocks} blocks, {repeats} repeats")
    times = interleave({"async": async_run, "sync": sync_run, "one call": one_call_run}, repeats)
    one_call = times.pop("one call")
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
    floor = min(one_call)
    row.lines.append(
        Line(
            "floor: this turn run on the loop thread, its events brought back at once",
            f"{floor / n * 1e6:.2f} µs",
            ratio(floor, best["async"]),
            f"median {median(one_call) / n * 1e6:.2f} µs",
        )
    )
    paired = median([s / a for s, a in zip(times["sync"], times["async"], strict=True)])
    row.notes.append(
        "ratio: time ÷ async; both include FakeBackend rendering and decoding the stream. "
        f"Repeats run async then sync back to back; the median of their ratios is {paired:.2f}x"
    )
    factor = best["sync"] / best["async"]
    measured = f"{factor:.2f}x (median of back-to-back pairs: {paired:.2f}x)"
    row.targets.append(
        Target(
            "sync ≤ 1.1x async per event",
            measured,
            factor <= 1.1,
            why=f"the turn run on the loop thread alone, its events brought back at once, is "
            f"{floor / best['async']:.2f}x; ours is {best['sync'] / floor:.2f}x that"
            if factor > 1.1
            else "",
        )
    )
    _short_turns(row, size, SyncConversation)
    _burst_latency(row, size)
    return row


def _one_call(sync_conversation: Any, config: Config, steps: list[Reply], turns: int) -> float:
    """The least ``turns`` sync turns can cost: each async turn started on the loop thread the
    leanest way there is, its events brought back in one go (no streaming, no early exit)."""
    from claude_unified._sync import portal

    with sync_conversation(config, backend=FakeBackend(steps)) as conv:
        inner = conv._conversation

        async def whole_turn() -> list[Any]:
            return [event async for event in inner.send(PROMPT)]

        start_task = portal().start_task_soon  # the leanest hand-over there is
        start = clock()
        for _ in range(turns):
            for _event in start_task(whole_turn).result():
                pass
        return float(clock() - start)


def _short_turns(row: Row, size: Size, sync_conversation: Any) -> None:
    """Many turns of 10 events each: what a chat-like use pays per turn."""
    turns, repeats = size.pick(50, 300), size.pick(3, 9)
    step = Reply((TextBlock("Two short words, then one more."),))  # 10 events with the Result
    config = Config(backend="fake")

    def async_turns() -> float:
        async def main() -> float:
            async with Conversation(config, backend=FakeBackend([step] * turns)) as conv:
                start = clock()
                for _ in range(turns):
                    async for _event in conv.send(PROMPT):
                        pass
                return (clock() - start) / turns

        return anyio.run(main)

    def sync_turns() -> float:
        with sync_conversation(config, backend=FakeBackend([step] * turns)) as conv:
            start = clock()
            for _ in range(turns):
                for _event in conv.send(PROMPT):
                    pass
            return float(clock() - start) / turns

    def round_trip() -> float:
        """The least a blocking call can cost: one hand-over to the loop thread and back."""
        from claude_unified._sync import portal

        def noop() -> None:
            return None

        call = portal().call
        start = clock()
        for _ in range(turns):
            call(noop)
        return float(clock() - start) / turns

    def one_call_turns() -> float:
        return _one_call(sync_conversation, config, [step] * turns, turns) / turns

    times = interleave(
        {
            "async": async_turns,
            "sync": sync_turns,
            "round trip": round_trip,
            "one call": one_call_turns,
        },
        repeats,
    )
    best = {name: min(values) for name, values in times.items()}
    floors = {
        "round trip": "short turns' floor: a blocking hand-over to the loop thread and back "
        "(no-op portal.call)",
        "one call": "short turns' floor: each turn run on the loop thread, its events brought "
        "back at once",
    }
    for name, label in floors.items():
        row.lines.append(
            Line(
                label,
                f"{best[name] * 1e6:.0f} µs",
                ratio(best[name], best["async"]),
                f"median {median(times[name]) * 1e6:.0f} µs",
            )
        )
    for name in ("async", "sync"):
        row.lines.append(
            Line(
                f"{name}: short turns (10 events), per turn",
                f"{best[name] * 1e6:.0f} µs",
                ratio(best[name], best["async"]),
                f"median {median(times[name]) * 1e6:.0f} µs",
            )
        )
    factor = best["sync"] / best["async"]
    floor = best["one call"] / best["async"]
    row.targets.append(
        Target(
            "sync ≤ 1.3x async on 10-event turns",
            f"{factor:.2f}x",
            factor <= 1.3,
            why=f"out of reach: the least a sync turn can cost, the async turn run on the loop "
            f"thread with its events brought back at once, is {floor:.2f}x; ours is "
            f"{best['sync'] / best['one call']:.2f}x that"
            if floor > 1.3
            else "",
        )
    )


def _burst_latency(row: Row, size: Size) -> None:
    """How long an event waits in the sync hand-over when the stream comes in bursts (as text
    does: a read of many deltas, then a pause): the linger must not show to a person."""
    from claude_unified import TextDelta
    from claude_unified._sync import SyncTurn

    bursts, per_burst = size.pick(20, 100), 100

    async def source() -> AsyncGenerator[TextDelta, None]:
        for _ in range(bursts):
            for _ in range(per_burst):
                yield TextDelta(index=0, text=repr(time.perf_counter()))
            await anyio.sleep(0.01)  # a fast stream: a read of many deltas every 10 ms

    waits: list[float] = []
    for event in SyncTurn(source()):
        assert isinstance(event, TextDelta)
        waits.append(time.perf_counter() - float(event.text))
    waits.sort()
    p50, p99 = waits[len(waits) // 2], waits[int(len(waits) * 0.99)]
    row.lines.append(
        Line(
            f"sync: burst delivery, {bursts} bursts of {per_burst} events",
            f"p99 {p99 * 1e3:.2f} ms",
            "",
            f"p50 {p50 * 1e3:.2f} ms, max {waits[-1] * 1e3:.2f} ms",
        )
    )
    row.targets.append(
        Target("sync burst delivery latency p99 ≤ 5 ms", f"{p99 * 1e3:.2f} ms", p99 <= 0.005)
    )
