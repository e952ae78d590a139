"""The built-in tools under attack: symlinks swapped in while a tool runs, a FIFO in the tree, a
search cancelled half-way, a Bash job that leaves its process group."""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from claude_unified import _builtin_tools
from claude_unified._builtin_tools import builtin_tools
from claude_unified._tools import Tool, ToolError

from .conftest import fd_guard

SECRET = "outside the root: must never be read"


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "real").mkdir(parents=True)
    outside.mkdir()
    (root / "real" / "f.txt").write_text("inside\n")
    (outside / "f.txt").write_text(SECRET + "\n")
    return root, outside


@pytest.fixture
def tools(tree: tuple[Path, Path]) -> dict[str, Tool]:
    return {t.name: t for t in builtin_tools(tree[0])}


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2
_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def swapping(tree: tuple[Path, Path]) -> Iterator[None]:
    """``root/real`` flips between the real directory and a symlink to ``outside``, atomically
    (``renameat2(RENAME_EXCHANGE)``) and as fast as it can, while the block runs."""
    root, outside = tree
    (root / "decoy").symlink_to(outside)
    real, decoy = bytes(root / "real"), bytes(root / "decoy")
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            if _libc.renameat2(_AT_FDCWD, real, _AT_FDCWD, decoy, _RENAME_EXCHANGE) != 0:
                raise OSError(ctypes.get_errno(), "renameat2")

    racer = threading.Thread(target=swap)
    racer.start()
    try:
        yield
    finally:
        stop.set()
        racer.join()
        if (root / "real").is_symlink():  # leave the tree as it was
            _libc.renameat2(_AT_FDCWD, real, _AT_FDCWD, decoy, _RENAME_EXCHANGE)


def run(tool: Tool, **arguments: Any) -> Any:
    async def call() -> Any:
        return await tool.run(arguments)

    return anyio.run(call)


def test_racing_writes_never_land_outside(tree: tuple[Path, Path], tools: dict[str, Tool]) -> None:
    outside = tree[1]
    outcomes = {"written": 0, "refused": 0}

    async def writes() -> None:
        for i in range(1500):
            try:
                await tools["Write"].run({"file_path": f"real/new-{i}.txt", "content": "x"})
                outcomes["written"] += 1
            except ToolError:
                outcomes["refused"] += 1

    with fd_guard(), swapping(tree):
        anyio.run(writes)
    assert sorted(p.name for p in outside.iterdir()) == ["f.txt"]
    assert outcomes["written"] + outcomes["refused"] == 1500
    assert outcomes["written"] > 0


def test_racing_reads_never_see_outside(tree: tuple[Path, Path], tools: dict[str, Tool]) -> None:
    seen: set[str] = set()

    async def reads() -> None:
        for _ in range(1500):
            try:
                seen.add(str(await tools["Read"].run({"file_path": "real/f.txt"})))
            except ToolError as exc:
                seen.add(type(exc).__name__)

    with fd_guard(), swapping(tree):
        anyio.run(reads)
    assert not any(SECRET in text for text in seen)
    assert any("inside" in text for text in seen)


def test_racing_edits_never_change_outside(tree: tuple[Path, Path], tools: dict[str, Tool]) -> None:
    outside = tree[1]
    (outside / "f.txt").write_text("inside\n")  # the same text: an escaped edit would change it

    async def edits() -> None:
        for i in range(1000):
            old, new = ("inside", "edited") if i % 2 == 0 else ("edited", "inside")
            with contextlib.suppress(ToolError):
                await tools["Edit"].run(
                    {"file_path": "real/f.txt", "old_string": old, "new_string": new}
                )

    with fd_guard(), swapping(tree):
        anyio.run(edits)
    assert (outside / "f.txt").read_text() == "inside\n"


def test_a_symlink_inside_the_root_still_works(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    (root / "alias").symlink_to(root / "real")
    tools = {t.name: t for t in builtin_tools(root)}
    assert "inside" in run(tools["Read"], file_path="alias/f.txt")
    assert run(tools["Write"], file_path="alias/g.txt", content="y").startswith("Created")
    assert (root / "real" / "g.txt").read_text() == "y"


@pytest.fixture
def fifo(tree: tuple[Path, Path]) -> Path:
    path = tree[0] / "real" / "pipe"
    os.mkfifo(path)
    return path


def test_grep_skips_a_fifo(tools: dict[str, Tool], fifo: Path) -> None:
    with fd_guard():
        found = run(tools["Grep"], pattern="inside")
    assert found == "real/f.txt"


@pytest.mark.parametrize("tool", ["Read", "Edit"])
def test_reading_a_fifo_is_refused_without_blocking(
    tools: dict[str, Tool], fifo: Path, tool: str
) -> None:
    arguments = {"file_path": "real/pipe"}
    if tool == "Edit":
        arguments |= {"old_string": "a", "new_string": "b"}
    with fd_guard(), pytest.raises(ToolError, match="not a regular file"):
        run(tools[tool], **arguments)


def test_writing_a_fifo_is_refused_without_blocking(tools: dict[str, Tool], fifo: Path) -> None:
    with fd_guard(), pytest.raises(ToolError, match="not a regular file"):
        run(tools["Write"], file_path="real/pipe", content="x")


@pytest.mark.anyio
async def test_grep_is_cancellable(
    tree: tuple[Path, Path], tools: dict[str, Tool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search stuck on one file: cancelling returns at once, and the search stops there."""
    root, _ = tree
    for i in range(20):
        (root / "real" / f"more-{i}.txt").write_text("inside\n")
    entered, release = threading.Event(), threading.Event()
    visited: list[Path] = []
    text_lines = _builtin_tools._Workspace._text_lines

    def stuck(self: Any, path: Path) -> list[str]:
        visited.append(path)
        entered.set()
        release.wait(60)
        return list(text_lines(self, path))

    monkeypatch.setattr(_builtin_tools._Workspace, "_text_lines", stuck)
    with anyio.fail_after(20), anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(tools["Grep"].run, {"pattern": "inside"})
            await anyio.to_thread.run_sync(entered.wait)
            scope.cancel()
    assert scope.cancelled_caught
    release.set()
    await anyio.sleep(0.2)  # the worker thread notices the cancellation at the next file
    assert len(visited) <= 2


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "command",
    [
        "setsid sh -c 'echo $$; exec sleep 300' < /dev/null > /dev/null 2>&1 & sleep 0.2; "
        "cat /proc/$!/task/*/children 2>/dev/null; pgrep -n -f 'sleep 300'",
        "(sleep 300 & echo $!) ; true",
    ],
    ids=["setsid", "background"],
)
async def test_bash_jobs_do_not_outlive_the_call(tools: dict[str, Tool], command: str) -> None:
    with anyio.fail_after(30):
        out = str(await tools["Bash"].run({"command": command}))
    pids = [int(word) for word in out.split() if word.isdigit()]
    assert pids, out
    for _ in range(50):
        if not any(map(_alive, pids)):
            break
        await anyio.sleep(0.05)
    assert not any(map(_alive, pids)), out
