"""Recording sessions to JSON lines and replaying them (in-process backends only)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import msgspec
import pytest

import claude_unified as cu
from claude_unified.backends import resolve_backend
from claude_unified.backends._protocol import SessionSpec
from claude_unified.backends._scrub import Scrubber
from claude_unified.testing import (
    FakeBackend,
    FunctionBackend,
    RecordingBackend,
    ReplayBackend,
    ReplayMismatch,
    error,
    override,
    reply,
    tool_call,
)

pytestmark = pytest.mark.anyio


@cu.tool
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


async def turn(conv: cu.Conversation, prompt: str) -> list[cu.Event]:
    return [event async for event in conv.send(prompt)]


def blanked(event: cu.Event) -> cu.Event:
    """Without what the core makes up afresh on the API path: session ids, durations."""
    if isinstance(event, cu.Result):
        return msgspec.structs.replace(event, session_id=None, duration_s=0.0)
    if isinstance(event, cu.SessionStarted):
        return msgspec.structs.replace(event, session_id=None)
    return event


def comparable(events: list[cu.Event]) -> list[cu.Event]:
    return [blanked(e) for e in events]


async def two_conversations(config: cu.Config) -> list[list[cu.Event]]:
    policy = cu.allow_list(["add"])
    turns = []
    async with cu.Conversation(config, tools=[add], policy=policy) as conv:
        turns.append(await turn(conv, "What is 2+3?"))
        turns.append(await turn(conv, "Thanks."))
    async with cu.Conversation(config) as conv:
        turns.append(await turn(conv, "Hello again."))
    return turns


async def test_a_recording_replays_to_the_same_events(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    fake = FakeBackend(
        [tool_call("add", {"a": 2, "b": 3}), reply("5"), reply("welcome"), reply("hi")]
    )
    with override(backend=fake):
        live = await two_conversations(cu.Config(record_path=str(path)))
    replay = ReplayBackend(path)
    assert (replay.name, replay.drives_tool_loop, replay.remaining) == ("fake", False, 4)
    with override(backend=replay):
        replayed = await two_conversations(cu.Config())
    assert [comparable(t) for t in replayed] == [comparable(t) for t in live]
    assert replay.remaining == 0
    text = path.read_text()
    assert text.count('"backend":"fake"') == 2  # one header per session
    assert '"frame":"Exchange"' in text


async def test_secrets_and_paths_are_scrubbed_and_paths_put_back(tmp_path: Path) -> None:
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    home = os.environ.get("HOME", str(Path.home()))
    said = (
        f"key sk-ant-api03-abcDEF_123 and configured-key-9876, Authorization: Bearer "
        f"abcdefghijklmnopqrstuvwxyz012345; see {work}/notes.txt and {home}/.config"
    )
    path = tmp_path / "session.jsonl"
    config = cu.Config(api_key="configured-key-9876", cwd=str(work), record_path=str(path))
    with override(backend=FunctionBackend(lambda request: said)):
        async with cu.Conversation(config) as conv:
            assert (await conv.ask("hi")).text == said
    recorded = path.read_text()
    for leaked in ("sk-ant-api03", "configured-key-9876", "abcdefghijklmnop", str(work), home):
        assert leaked not in recorded
    for placeholder in ("<secret>", "<cwd", "<home"):
        assert placeholder in recorded
    with override(backend=ReplayBackend(path)):
        async with cu.Conversation(cu.Config(cwd=str(elsewhere))) as conv:
            replayed = (await conv.ask("hi")).text
    assert replayed == (
        "key <secret> and <secret>, Authorization: Bearer <secret>; "
        f"see {elsewhere}/notes.txt and {home}/.config"
    )


async def test_an_error_replays_as_the_same_typed_exception(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    with override(backend=FakeBackend([error(529)])):
        async with cu.Conversation(cu.Config(record_path=str(path))) as conv:
            with pytest.raises(cu.OverloadedError) as live:
                await conv.ask("hi")
    with override(backend=ReplayBackend(path)):
        async with cu.Conversation(cu.Config()) as conv:
            with pytest.raises(cu.OverloadedError) as replayed:
                await conv.ask("hi")
    assert str(replayed.value) == str(live.value)
    assert replayed.value.status_code == 529
    assert replayed.value.request_id == live.value.request_id


async def test_a_different_prompt_is_a_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    with override(backend=FakeBackend([reply("hello")])):
        async with cu.Conversation(cu.Config(record_path=str(path))) as conv:
            await conv.ask("hello")
    with override(backend=ReplayBackend(path)):
        async with cu.Conversation(cu.Config()) as conv:
            with pytest.raises(ReplayMismatch, match=r"exchange 1: Exchange differs") as info:
                await conv.ask("goodbye")
    assert '"prompt":"goodbye"' in str(info.value)
    assert '"prompt":"hello"' in str(info.value)


async def test_an_exchange_beyond_the_recording_is_a_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    with override(backend=FakeBackend([reply("hello")])):
        async with cu.Conversation(cu.Config(record_path=str(path))) as conv:
            await conv.ask("hello")
    with override(backend=ReplayBackend(path)):
        async with cu.Conversation(cu.Config()) as conv:
            await conv.ask("hello")
            with pytest.raises(ReplayMismatch, match="holds 1 exchanges"):
                await conv.ask("more")


def test_record_path_comes_from_the_environment(tmp_path: Path) -> None:
    path = str(tmp_path / "r.jsonl")
    config = cu.Config.load(cwd=tmp_path, environ={"CLAUDE_UNIFIED_RECORD": path})
    assert config.record_path == path
    backend = resolve_backend(config.replace(backend="fake"))
    assert isinstance(backend, RecordingBackend)
    assert isinstance(backend.inner, FakeBackend)
    assert (backend.name, backend.drives_tool_loop) == ("fake", False)
    assert resolve_backend(config, backend) is backend  # never wrapped twice


def test_chunks_are_scrubbed_as_one_text_and_keep_their_boundaries(tmp_path: Path) -> None:
    here, there = tmp_path / "here", tmp_path / "somewhere-else"
    recorder = Scrubber(SessionSpec(cwd=str(here)), secrets=["hunter2-secret"])
    text = f"open {here}/a.txt with hunter2-secret now"
    cuts = [0, 9, 30, text.index("secret"), len(text)]
    chunks = [text[a:b] for a, b in itertools.pairwise(cuts)]
    scrubbed = recorder.scrub_chunks(chunks)
    assert len(scrubbed) == len(chunks)
    assert "".join(scrubbed).startswith("open <cwd:0:")
    assert "".join(scrubbed).endswith("/a.txt with <secret> now")
    assert str(here) not in "".join(scrubbed)
    assert "hunter2" not in "".join(scrubbed)

    def replayed(scrubber: Scrubber) -> list[str]:
        encoded = [msgspec.json.encode(chunk) for chunk in scrubbed]
        return [msgspec.json.decode(scrubber.restore(e)) for e in encoded]

    same = replayed(Scrubber(SessionSpec(cwd=str(here))))
    assert same[:2] == chunks[:2]  # the path comes back cut where it was cut
    assert same[2:] == [chunks[2].replace("hunter2-", "<secret>"), " now"]
    elsewhere = "".join(replayed(Scrubber(SessionSpec(cwd=str(there)))))
    assert elsewhere == f"open {there}/a.txt with <secret> now"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("", "no recording header"),
        ('{"exchange":1,"frame":"Exchange","value":{"prompt":"x"}}\n', "no recording header"),
        ("not json\n", "is not a claude_unified recording"),
        (
            '{"backend":"api","drives_tool_loop":false}\n{"backend":"cli","drives_tool_loop":true}\n',
            "mixes recordings",
        ),
        ('{"backend":"api","drives_tool_loop":false,"format":99}\n', "another recording format"),
        (
            '{"backend":"api","drives_tool_loop":false}\n{"exchange":1,"frame":"Teleport"}\n',
            "unknown frame 'Teleport'",
        ),
    ],
)
def test_files_that_are_not_recordings_are_refused(
    tmp_path: Path, lines: str, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(lines)
    with pytest.raises(ValueError, match=message):
        ReplayBackend(path)
