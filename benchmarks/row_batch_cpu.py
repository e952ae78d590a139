"""Row 8: ``run_batch`` CPU per item against the floor a user would write by hand.

The floor: a capacity limiter and one shared HTTP client, a fresh ``Conversation`` per item
(each with an ``ApiBackend`` on that client), ``ask()`` under the limiter. ``run_batch`` adds
its engine, the adaptive rate-limit backoff and the result records. Both run on the same
event-loop thread against one ``FakeAnthropicServer`` on loopback, which runs on threads of its
own: the CPU counted is the event-loop thread's, so the server's work stays out of both.
"""

from __future__ import annotations

import anyio

import claude_unified as cu
from claude_unified.backends._http import make_client
from claude_unified.backends.api import ApiBackend
from claude_unified.testing import FakeAnthropicServer

from ._harness import Line, Row, Size, Target, ainterleave, median, note, ratio
from ._harness import cpu_clock as clock

CONCURRENCY = (1, 4, 16)


async def _floor(prompts: list[str], config: cu.Config, concurrency: int) -> float:
    limiter = anyio.CapacityLimiter(concurrency)
    start = clock()
    async with make_client(config) as client:

        async def one(prompt: str) -> None:
            async with limiter:
                backend = ApiBackend(config, client=client)
                async with cu.Conversation(config, backend=backend) as conv:
                    await conv.ask(prompt)

        async with anyio.create_task_group() as tg:
            for prompt in prompts:
                tg.start_soon(one, prompt)
    return (clock() - start) / len(prompts)


async def _ours(prompts: list[str], config: cu.Config, concurrency: int) -> float:
    start = clock()
    results = await cu.run_batch(prompts, config, concurrency=concurrency)
    elapsed = clock() - start
    failed = [r for r in results if r.is_error]
    if failed:
        raise RuntimeError(f"{len(failed)} batch items failed, e.g. {failed[0]}")
    return elapsed / len(prompts)


async def _run(size: Size) -> Row:
    items = size.pick(40, 200)
    repeats = size.pick(2, 5)
    prompts = [f"Summarise item {n}." for n in range(items)]
    row = Row(8, f"run_batch: event-loop CPU per item, {items} items", "CPU per item (min)")
    worst = 0.0
    with FakeAnthropicServer() as server:  # nothing queued: it echoes each prompt, streamed
        config = cu.Config(backend="api", api_key="sk-ant-bench", base_url=server.url)
        for concurrency in CONCURRENCY:
            note(f"row 8: concurrency {concurrency}, {repeats} interleaved repeats")

            async def floor(c: int = concurrency) -> float:
                return await _floor(prompts, config, c)

            async def ours(c: int = concurrency) -> float:
                return await _ours(prompts, config, c)

            times = await ainterleave({"floor": floor, "ours": ours}, repeats)
            best = {name: min(values) for name, values in times.items()}
            worst = max(worst, best["ours"] / best["floor"])
            for name, label in (("floor", "floor: limiter + shared client"), ("ours", "run_batch")):
                row.lines.append(
                    Line(
                        f"{label}, concurrency {concurrency}",
                        f"{best[name] * 1e6:.0f} µs",
                        ratio(best[name], best["floor"]),
                        f"median {median(times[name]) * 1e6:.0f} µs",
                    )
                )
    row.notes.append("ratio: CPU ÷ the floor's at the same concurrency")
    row.targets.append(
        Target(
            "run_batch ≤ 1.15x the floor up to 16 concurrent", f"worst {worst:.2f}x", worst <= 1.15
        )
    )
    return row


def run(size: Size) -> Row:
    return anyio.run(_run, size)
