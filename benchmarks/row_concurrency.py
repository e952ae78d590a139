"""Row 5: hundreds of concurrent streaming conversations in one process against a loopback fake
server (in a subprocess) that streams at a fixed pace: events per second, client CPU per event,
memory per idle conversation."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import msgspec

from claude_unified import Config, Conversation, Result

from ._data import prose
from ._harness import Line, Row, Size, Target, median, note
from ._serve import reply

API_KEY = "sk-ant-bench"
MODEL = "claude-bench"
PROMPT = "Tell me a story."


class _Server:
    def __init__(self, latency: float, blocks: int):
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks._serve",
                f"--latency={latency}",
                f"--blocks={blocks}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        self.url = self._proc.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the fake server did not start: {self.url!r}")

    def close(self) -> float:
        """Stop the server; its CPU seconds."""
        out, _ = self._proc.communicate("", timeout=30)
        return float(out.strip() or "nan")


def _request_body() -> bytes:
    """The streaming request the clients without an SDK send, encoded by hand."""
    return msgspec.json.encode(
        {
            "model": MODEL,
            "max_tokens": 1024,
            "stream": True,
            "messages": [{"role": "user", "content": PROMPT}],
        }
    )


def _expected_text(blocks: int) -> str:
    return "".join(prose(40, seed=i) for i in range(blocks))


async def _all(n: int, one: Callable[[], Awaitable[str]], expected: str) -> tuple[float, float]:
    """Run ``n`` conversations at once; wall and client CPU seconds."""
    failures: list[str] = []

    async def run() -> None:
        text = await one()
        if text != expected:
            failures.append(text[:80])

    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(run)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if failures:
        raise AssertionError(f"{len(failures)} conversations got a wrong text: {failures[0]!r}")
    return wall, cpu


async def _ours(url: str, n: int, expected: str) -> tuple[float, float]:
    config = Config(backend="api", api_key=API_KEY, base_url=url, model=MODEL, max_retries=0)
    conversations = [Conversation(config) for _ in range(n)]
    for conv in conversations:
        await conv.open()

    it = iter(conversations)

    async def one() -> str:
        conv = next(it)
        text = ""
        async for event in conv.send(PROMPT):
            if isinstance(event, Result):
                text = event.text
        conv.history.clear()
        return text

    try:
        return await _all(n, one, expected)
    finally:
        for conv in conversations:
            await conv.aclose()


async def _floor(url: str, n: int, expected: str) -> tuple[float, float]:
    """The least a client can do: one shared httpx client, httpx-sse, one typed decoder."""
    import httpx
    from httpx_sse import EventSource

    from .row_api_stream import _BlockDelta, _Delta, _FloorEvent

    decoder = msgspec.json.Decoder(_FloorEvent)
    body = _request_body()
    headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=100)
    client = httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60)

    async def one() -> str:
        text = []
        async with client.stream("POST", "/v1/messages", content=body) as response:
            async for sse in EventSource(response).aiter_sse():
                if sse.data:
                    event = decoder.decode(sse.data)
                    if isinstance(event, _BlockDelta) and isinstance(event.delta, _Delta):
                        text.append(event.delta.text)
        return "".join(text)

    try:
        return await _all(n, one, expected)
    finally:
        await client.aclose()


async def _bare(url: str, n: int, expected: str) -> tuple[float, float]:
    """Below any HTTP library: an anyio TCP stream per conversation, the request written by hand,
    the chunked body parsed inline, our SSE framer and decoder. What the event loop and the
    sockets cost on their own."""
    from claude_unified import _wire as w
    from claude_unified.backends._sse import SseFramer

    host, _, port = url.removeprefix("http://").partition(":")
    body = _request_body()
    head = (
        f"POST /v1/messages HTTP/1.1\r\nhost: {host}:{port}\r\nx-api-key: {API_KEY}\r\n"
        "anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    request = head.encode() + body

    async def one() -> str:
        text: list[str] = []
        framer = SseFramer()
        async with await anyio.connect_tcp(host, int(port)) as stream:
            await stream.send(request)
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive()
            headers, _, data = data.partition(b"\r\n\r\n")
            assert b"transfer-encoding: chunked" in headers.lower()
            while True:
                line_end = data.find(b"\r\n")
                size = int(data[:line_end], 16) if line_end >= 0 else -1
                if size < 0 or len(data) < line_end + size + 4:
                    data += await stream.receive()
                    continue
                if size == 0:
                    return "".join(text)
                chunk, data = data[line_end + 2 : line_end + 2 + size], data[line_end + size + 4 :]
                for frame in framer.feed(chunk):
                    event = w.decode_api_event(frame)
                    if isinstance(event, w.ContentBlockDeltaEvent) and isinstance(
                        event.delta, w.TextDeltaBody
                    ):
                        text.append(event.delta.text)
                    elif isinstance(event, w.MessageStopEvent):
                        return "".join(text)

    return await _all(n, one, expected)


async def _anthropic(url: str, n: int, expected: str, *, accumulate: bool) -> tuple[float, float]:
    import anthropic

    client = anthropic.AsyncAnthropic(api_key=API_KEY, base_url=url, max_retries=0)
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": PROMPT}],
    }

    async def one() -> str:
        if accumulate:
            async with client.messages.stream(**params) as stream:
                final = await stream.get_final_message()
            return "".join(b.text for b in final.content if b.type == "text")
        text = []
        stream = await client.messages.create(**params, stream=True)
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                text.append(event.delta.text)
        return "".join(text)

    try:
        return await _all(n, one, expected)
    finally:
        await client.close()


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _idle_one(who: str, url: str, n: int) -> tuple[float, float, float]:
    """Per idle conversation (opened, not used): CPU to open it, Python heap (tracemalloc) and
    resident memory (which also counts what C code allocates, such as TLS contexts)."""
    config = Config(backend="api", api_key=API_KEY, base_url=url, model=MODEL, max_retries=0)

    async def make() -> Any:
        if who == "ours":
            conv = Conversation(config)
            await conv.open()
            return conv
        import anthropic

        return anthropic.AsyncAnthropic(api_key=API_KEY, base_url=url, max_retries=0)

    await make()  # first use loads modules and builds shared state: not per conversation
    gc.collect()
    rss, cpu = _rss(), time.process_time()
    kept = [await make() for _ in range(n)]
    cpu = time.process_time() - cpu
    gc.collect()
    rss = _rss() - rss
    tracemalloc.start()
    more = [await make() for _ in range(max(1, n // 4))]
    gc.collect()
    heap = tracemalloc.get_traced_memory()[0] / len(more)
    tracemalloc.stop()
    del kept, more
    return cpu / n, heap, rss / n


def _idle(url: str, n: int, who: list[str]) -> dict[str, tuple[float, float, float]]:
    """``_idle_one`` for each contender, each in a fresh interpreter (memory freed by one
    contender would otherwise be reused by the next and hide its growth)."""
    out = {}
    for name in who:
        code = (
            "import anyio, json; from benchmarks.row_concurrency import _idle_one; "
            f"print(json.dumps(anyio.run(_idle_one, {name!r}, {url!r}, {n})))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        out[name] = tuple(json.loads(done.stdout))
    return out


async def _run(size: Size) -> Row:
    n = size.pick(50, 500)
    blocks = size.pick(6, 20)
    latency = size.pick(20, 50) / 1000
    repeats = size.pick(1, 3)
    per_stream = len(reply(blocks).content) * 5 + 5  # starts, 3 deltas, stops; envelope + ping
    expected = _expected_text(blocks)
    server = _Server(latency, blocks)
    contenders: dict[str, Callable[[], Awaitable[tuple[float, float]]]] = {
        "bare": lambda: _bare(server.url, n, expected),
        "floor": lambda: _floor(server.url, n, expected),
        "ours": lambda: _ours(server.url, n, expected),
    }
    notes = []
    try:
        import anthropic  # noqa: F401

        contenders["anthropic_raw"] = lambda: _anthropic(server.url, n, expected, accumulate=False)
        contenders["anthropic_accumulate"] = lambda: _anthropic(
            server.url, n, expected, accumulate=True
        )
    except ImportError as exc:
        notes.append(f"anthropic is not installed ({exc})")
    note(f"row 5: {n} conversations x {per_stream} events, latency {latency * 1e3:.0f} ms")
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    try:
        for _ in range(repeats):
            for name, run in contenders.items():
                results[name].append(await run())
        idle = _idle(
            server.url,
            size.pick(20, 200),
            ["ours", *(["anthropic"] if len(contenders) > 1 else [])],
        )
    finally:
        server_cpu = server.close()
    events = n * per_stream
    row = Row(
        5,
        f"Concurrency: {n} streaming conversations at once, {per_stream} events each, "
        f"one event per {latency * 1e3:.0f} ms per stream",
        "client CPU per 1,000 events (median)",
    )
    labels = {
        "bare": "bare: anyio TCP streams, HTTP parsed inline, our framer and decoder",
        "floor": "floor: one httpx client, httpx-sse, one typed msgspec decoder",
        "ours": "ours: Conversation.send per conversation (own backend each)",
        "anthropic_raw": "anthropic: one AsyncAnthropic, messages.create(stream=True)",
        "anthropic_accumulate": "anthropic: one AsyncAnthropic, messages.stream() + final message",
    }
    cpu = {name: median([c for _, c in values]) for name, values in results.items()}
    for name, values in results.items():
        wall = median([w for w, _ in values])
        row.lines.append(
            Line(
                labels[name],
                f"{cpu[name] / events * 1e6:.1f} ms",
                f"{cpu[name] / cpu['ours']:.2f}x",
                f"{events / wall:,.0f} events/s; wall {wall:.2f} s",
            )
        )
    row.notes.append("ratio: CPU ÷ ours (above 1: costs more CPU than ours)")
    row.notes.append(
        f"the server ran in its own process and used {server_cpu:.1f} CPU s in all; "
        "events/s is bounded by the server's pace and by the machine's two cores"
    )
    row.notes.append(
        "per idle conversation (opened, not used; anthropic: one AsyncAnthropic client each): "
        + "; ".join(
            f"{name} {cpu_s * 1e3:.2f} ms CPU to open, {heap / 1024:.1f} KiB Python heap, "
            f"{rss / 1024:.0f} KiB resident"
            for name, (cpu_s, heap, rss) in idle.items()
        )
    )
    row.notes += notes
    for peer in ("anthropic_raw", "anthropic_accumulate"):
        if peer in cpu:
            factor, bare = cpu[peer] / cpu["ours"], cpu[peer] / cpu["bare"]
            why = (
                f"out of reach: even a client with no HTTP library at all uses only {bare:.2f}x "
                f"less (the httpx floor: {cpu[peer] / cpu['floor']:.2f}x); the event loop and "
                "the sockets take most of the CPU per event"
                if bare < 3
                else f"a client with no HTTP library at all uses {bare:.2f}x less"
            )
            row.targets.append(
                Target(
                    f"ours ≥ 3x less CPU per event than {labels[peer].split(', ', 1)[1]}",
                    f"{factor:.2f}x",
                    factor >= 3,
                    why,
                )
            )
    return row


def run(size: Size) -> Row:
    return anyio.run(_run, size)
