"""Batch throughput: how close ``run_batch`` gets to the ideal, on the API and on the CLI.

API path: a FakeAnthropicServer with a fixed pause between stream events makes every request
take the same time ``t``; ``n`` items at concurrency ``c`` ideally take ``n * t / c``. The table
shows the measured wall time against that ideal.

CLI path: the real ``claude`` CLI (offline, against the same fake server) runs the items with
warm processes (``run_batch``: a pool reset with ``/clear`` between items) and, for comparison,
one fresh process per item, one after another.

    python benchmarks/bench_batch.py [--quick] [--cli PATH]

The CLI rows need the CLI: ``--cli``, ``$CLAUDE_UNIFIED_TEST_CLI`` or ``claude`` on PATH.
Numbers depend on the machine; nothing here asserts anything.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable

import anyio

import claude_unified as cu
from claude_unified.backends._discovery import find_cli
from claude_unified.testing import FakeAnthropicServer
from claude_unified.testing._cli_env import isolated_cli_env

EVENT_LATENCY_S = 0.01


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started


async def timed_batch(prompts: list[str], config: cu.Config, concurrency: int) -> float:
    """Wall time of one ``run_batch``; exits if an item failed."""
    started = time.perf_counter()
    results = await cu.run_batch(prompts, config, concurrency=concurrency)
    wall = time.perf_counter() - started
    failed = [r for r in results if r.is_error]
    if failed:
        raise SystemExit(f"{len(failed)} items failed, e.g. {failed[0]}")
    return wall


async def one_request(config: cu.Config) -> float:
    """The median time of one request in a warm conversation."""
    samples = []
    async with cu.Conversation(config) as conversation:
        for i in range(5):
            started = time.perf_counter()
            await conversation.ask(f"warm-up {i}")
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def api_rows(items: int, concurrencies: list[int]) -> list[list[str]]:
    rows = []
    with FakeAnthropicServer(latency=EVENT_LATENCY_S) as server:
        config = cu.Config(backend="api", api_key="sk-ant-bench", base_url=server.url)
        one = await one_request(config)
        prompts = [f"api item {i}" for i in range(items)]
        for concurrency in concurrencies:
            wall = await timed_batch(prompts, config, concurrency)
            ideal = items * one / concurrency
            rows.append(
                [
                    "API",
                    f"{items} items, -j {concurrency}",
                    f"{wall:.2f} s",
                    f"{ideal:.2f} s",
                    f"{ideal / wall:.0%}",
                    f"{items / wall:.1f}/s",
                ]
            )
    return rows


async def fresh_processes(config: cu.Config, prompts: list[str]) -> None:
    for text in prompts:
        async with cu.Conversation(config) as conversation:
            await conversation.ask(text)


async def cli_rows(cli: str, items: int) -> list[list[str]]:
    rows = []
    with FakeAnthropicServer() as server, tempfile.TemporaryDirectory() as root:
        env = isolated_cli_env(server.url, root)
        config = cu.Config(backend="cli", cli_path=cli, env=env, cwd=root)
        prompts = [f"cli item {i}" for i in range(items)]
        fresh = await timed(lambda: fresh_processes(config, prompts))
        rows.append(
            ["CLI", f"{items} items, a fresh process each, serial", f"{fresh:.2f} s", "", "",
             f"{items / fresh:.2f}/s"]
        )  # fmt: skip
        for concurrency in (1, 2):
            wall = await timed_batch(prompts, config, concurrency)
            rows.append(
                ["CLI", f"{items} items, warm pool, -j {concurrency}", f"{wall:.2f} s", "",
                 f"{fresh / wall:.1f}x faster", f"{items / wall:.2f}/s"]
            )  # fmt: skip
    return rows


def table(rows: list[list[str]]) -> str:
    head = ["path", "run", "wall", "ideal", "vs ideal / fresh", "throughput"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def cli_path(explicit: str | None) -> str | None:
    candidate = explicit or os.environ.get("CLAUDE_UNIFIED_TEST_CLI")
    if candidate:
        return candidate
    try:
        return str(find_cli())
    except cu.CLINotFoundError:
        return None


async def main(args: argparse.Namespace) -> None:
    api_items = 200 if args.quick else 1000
    rows = await api_rows(api_items, [1, 8, 32] if not args.quick else [8, 32])
    cli = cli_path(args.cli)
    if cli is None:
        print("CLI rows skipped: no claude CLI found (use --cli PATH)", file=sys.stderr)
    else:
        rows += await cli_rows(cli, 4 if args.quick else 12)
    print(f"Fake server pause between stream events: {EVENT_LATENCY_S * 1000:.0f} ms\n")
    print(table(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer items, a few seconds")
    parser.add_argument("--cli", help="path to the claude CLI")
    anyio.run(main, parser.parse_args())
