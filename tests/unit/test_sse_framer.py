"""The bytes-level SSE framer gives the same event data as httpx-sse on any chunking."""

from __future__ import annotations

import random

import httpx
import pytest
from httpx_sse import EventSource

from claude_unified.backends._sse import SseFramer

LINE_ENDINGS = (b"\n", b"\r\n", b"\r")


def make_stream(rng: random.Random, events: int) -> bytes:
    out = bytearray()
    for n in range(events):
        end = rng.choice(LINE_ENDINGS)
        if rng.random() < 0.2:
            out += b": a comment" + end
        if rng.random() < 0.2:
            out += b"event: ping" + end + end  # no data: never dispatched
        out += b"event: content_block_delta" + end
        if rng.random() < 0.3:
            out += b"id: " + str(n).encode() + end
        for part in range(rng.randint(1, 3)):
            space = b" " if rng.random() < 0.7 else b""
            out += b"data:" + space + f'{{"n":{n},"part":{part},"t":"\u00e9x"}}'.encode() + end
        out += end
    return bytes(out)


def chunked(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(1, 60))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def reference(data: bytes) -> list[bytes]:
    response = httpx.Response(200, content=data, headers={"content-type": "text/event-stream"})
    return [sse.data.encode() for sse in EventSource(response).iter_sse() if sse.data]


@pytest.mark.parametrize("seed", range(40))
def test_same_events_as_httpx_sse_on_any_chunking(seed: int) -> None:
    rng = random.Random(seed)
    data = make_stream(rng, rng.randint(1, 25))
    framer = SseFramer()
    ours = [event for chunk in chunked(data, rng) for event in framer.feed(chunk)]
    assert ours == reference(data)


def test_an_event_cut_off_by_the_end_is_not_dispatched() -> None:
    framer = SseFramer()
    assert framer.feed(b"data: complete\n\ndata: cut") == [b"complete"]
