"""Row 7: a long API conversation. The client's CPU per turn at turn 1,000 against turn 10.

Every turn resends the whole history, so some cost must grow with it: the bytes themselves. The
floor is a hand-written client that posts the same body, pre-joined, through the same mock
transport and reads the same short streamed reply. Ours should grow no faster than the floor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx
import msgspec

from claude_unified import Config, Conversation, Message
from claude_unified.backends.api import ApiBackend
from claude_unified.testing._script import render_stream, reply

from . import _data
from ._harness import Line, Row, Size, Target, median, note
from ._harness import cpu_clock as clock

URL = "http://127.0.0.1:9"  # never contacted: every request goes to the mock transport
MODEL = "claude-bench"
_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "request-id": "req_bench"}
_FRAMES = _data.sse_body(render_stream(reply("Noted."), model=MODEL, input_tokens=10))


async def _handle(request: httpx.Request) -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        for frame in _FRAMES:
            yield frame

    return httpx.Response(200, headers=_HEADERS, content=body())


def _history(turns: int) -> list[Message]:
    """``turns`` earlier exchanges: a user prompt and an assistant answer of some length each."""
    out: list[Message] = []
    for n in range(turns):
        out.append(Message(role="user", content=f"Question {n}: {_data.prose(200, seed=n)}"))
        out.append(Message(role="assistant", content=_data.prose(600, seed=n + 1)))
    return out


async def _ours(turns: int, measured: int) -> float:
    """Median CPU of one ``ask()`` when the history holds ``turns`` earlier exchanges."""
    config = Config(backend="api", api_key="sk-ant-bench", base_url=URL, max_retries=0)
    backend = ApiBackend(config, transport=httpx.MockTransport(_handle))
    times: list[float] = []
    async with Conversation(config, backend=backend) as conv:
        conv.history.extend(_history(turns))
        for n in range(measured + 2):  # two turns first: what a long conversation has cached
            start = clock()
            await conv.ask(f"And question {n}?")
            if n >= 2:
                times.append(clock() - start)
    return median(times)


def _encode(message: Message) -> bytes:
    return msgspec.json.encode({"role": message.role, "content": message.content})


async def _floor(turns: int, measured: int) -> float:
    """The same turns by a client that only joins pre-encoded messages and reads the stream."""
    encoded = [_encode(m) for m in _history(turns)]
    times: list[float] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(_handle), base_url=URL) as client:
        for n in range(measured + 2):
            start = clock()
            new = Message(role="user", content=f"And question {n}?")
            encoded.append(_encode(new))
            body = b'{"model":"m","max_tokens":1024,"stream":true,"messages":[%s]}' % b",".join(
                encoded
            )
            async with client.stream("POST", "/v1/messages", content=body) as response:
                async for _ in response.aiter_bytes():
                    pass
            encoded.append(b'{"role":"assistant","content":"Noted."}')
            if n >= 2:
                times.append(clock() - start)
    return median(times)


async def _run(size: Size) -> Row:
    short, long_ = 10, size.pick(300, 1_000)
    measured = size.pick(5, 15)
    note(f"row 7: turns {short} and {long_}, {measured} measured turns each")
    results: dict[str, dict[int, list[float]]] = {"ours": {}, "floor": {}}
    for _ in range(size.pick(1, 9)):  # interleaved: ours and the floor at both lengths in turn
        for turns in (short, long_):
            results["ours"].setdefault(turns, []).append(await _ours(turns, measured))
            results["floor"].setdefault(turns, []).append(await _floor(turns, measured))
    got = {name: {t: min(v) for t, v in by.items()} for name, by in results.items()}
    row = Row(7, f"Long API conversation: client CPU per turn, turn {short} vs {long_}", "CPU")
    for name, label in (("floor", "floor: join pre-encoded messages + post"), ("ours", "ours")):
        for turns in (short, long_):
            row.lines.append(
                Line(f"{label}, turn {turns}", f"{got[name][turns] * 1e3:.3f} ms", "", "")
            )
    grow_ours = got["ours"][long_] - got["ours"][short]
    grow_floor = got["floor"][long_] - got["floor"][short]
    row.notes.append(
        f"growth from turn {short} to {long_}: ours +{grow_ours * 1e3:.3f} ms, "
        f"floor +{grow_floor * 1e3:.3f} ms (the bytes that must be built and sent)"
    )
    beyond = grow_ours - grow_floor
    row.targets.append(
        Target(
            "per-turn cost flat beyond the bytes sent: growth ≤ floor's growth + 0.1 ms",
            f"ours grows {grow_ours * 1e3:+.3f} ms, the floor {grow_floor * 1e3:+.3f} ms",
            beyond <= 0.0001,
        )
    )
    return row


def run(size: Size) -> Row:
    return anyio.run(_run, size)
